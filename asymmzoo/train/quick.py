"""The training engine for short real runs on in-memory arrays: :func:`fit`, :func:`predict`,
:func:`evaluate` (a fraction in [0, 1]; :func:`accuracy` is the counting it shares with
``train_imagenet.py``'s validation).

Analyses, quantization, rotate-mnist, tests and demos (ACNet vs base, RotateConv vs base) train with it;
real training is ``train_imagenet.py``::

    from asymmzoo.train.quick import digits_arrays, quick_train, evaluate
    xtr, ytr = digits_arrays('train', size=32, channels=3)     # float32 NCHW, int labels
    xva, yva = digits_arrays('val', size=32, channels=3)
    net = asymmzoo.get_model('cifar_quick_acb', classes=10); net.initialize(mx.init.Xavier())
    hist = quick_train(net, xtr, ytr, epochs=2, batch_size=64, lr=0.05)   # hist['loss']: per-step
    acc = evaluate(net, xva, yva)                                          # top-1 in [0, 1]

Everything is seeded (``seed``). Measured here: with ``optimizer='sgd'`` (the default) or ``'adam'``,
repeated calls at one thread count end with equal parameters, in one process and in separate ones;
with ``'nag'`` and weight decay, repeated calls sometimes drift apart (at rounding level from the
second update on, then growing). Results also depend on the number of threads (``OMP_NUM_THREADS``).
"""
import numpy as np
import mxnet as mx
from mxnet import autograd, gluon

from ..utils.blocks import param_contexts
from .common import check_loss, lr_schedule

__all__ = ['digits_arrays', 'fit', 'quick_train', 'evaluate', 'accuracy', 'predict']

from ..data.digits import digits_arrays, DIGITS_MEAN, DIGITS_STD  # noqa: F401  (the one digits loader)


def _ctx_of(net):
    return (param_contexts(net) or [mx.cpu()])[0]


def fit(net, x, y, epochs=1, batch_size=64, lr=0.05, momentum=0.9, wd=1e-4, seed=0, steps=None,
        hybridize=True, log_every=0, ctx=None, optimizer='sgd', final_lr=0.0, after_step=None,
        on_epoch=None):
    """Train an initialised classifier on numpy arrays: softmax cross entropy, ``optimizer`` ('sgd' /
    'nag' with ``momentum``, or any MXNet optimizer such as 'adam'), a cosine schedule from ``lr`` to
    ``final_lr`` over all steps, shuffled batches (the last partial one dropped).

    ``steps`` caps the number of updates (default: ``epochs`` full passes). ``hybridize``: True, False
    or the keyword arguments of ``net.hybridize``. ``after_step(net)`` runs after every update (e.g.
    RotateConv's angle projection; what it returns is summed into ``hist['after_step']``);
    ``on_epoch(epoch, net, hist)`` after every full pass. Returns ``{'loss': [per-step batch loss],
    'acc': [per-step batch accuracy], 'steps': n, 'epoch_loss': [mean loss per pass],
    'after_step': total}``. A NaN / infinite loss stops it (:class:`asymmzoo.train.common.TrainingDiverged`
    naming the step and the fix). Seeded: with 'sgd' and 'adam' the same call repeats (at one thread
    count; 'nag': see the module's docstring).
    """
    if len(x) != len(y):
        raise ValueError("x and y differ in length: %d vs %d" % (len(x), len(y)))
    if len(x) < batch_size:
        raise ValueError("batch_size %d exceeds the %d training samples" % (batch_size, len(x)))
    ctx = ctx or _ctx_of(net)
    rng = np.random.RandomState(seed)
    mx.random.seed(seed)
    per_epoch = len(x) // batch_size
    total = steps if steps else epochs * per_epoch
    if hybridize:
        net.hybridize(**(hybridize if isinstance(hybridize, dict) else {}))
    # one phase of total + 1 steps: update u (1 .. total) gets the cosine at u / total, so the last
    # update runs at final_lr
    sched = lr_schedule(lr, 1, max(total, 1) + 1, 'cosine', final_lr=final_lr)
    opt = dict(learning_rate=lr, wd=wd, lr_scheduler=sched)
    if optimizer in ('sgd', 'nag'):
        opt['momentum'] = momentum
    trainer = gluon.Trainer(net.collect_params(), optimizer, opt)
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
    hist = {'loss': [], 'acc': [], 'epoch_loss': [], 'after_step': 0}
    step, epoch = 0, 0
    while step < total:
        order = rng.permutation(len(x))
        for i in range(per_epoch):
            if step >= total:
                break
            idx = order[i * batch_size:(i + 1) * batch_size]
            xb = mx.nd.array(x[idx], ctx=ctx)
            yb = mx.nd.array(y[idx], ctx=ctx)
            with autograd.record():
                out = net(xb)
                loss = loss_fn(out, yb)
            loss.backward()
            trainer.step(batch_size)
            if after_step is not None:
                hist['after_step'] += after_step(net) or 0
            hist['loss'].append(check_loss(loss.mean().asscalar(), 'step %d' % (step + 1),
                                           'Lower the learning rate (lr=%g; CLI: --lr)' % lr))
            hist['acc'].append(float((out.argmax(axis=1) == yb.astype('float32')).mean().asscalar()))
            step += 1
            if log_every and step % log_every == 0:
                print("step %d/%d loss %.4f acc %.3f" % (step, total, np.mean(hist['loss'][-log_every:]),
                                                         np.mean(hist['acc'][-log_every:])))
        else:   # a full pass
            hist['epoch_loss'].append(float(np.mean(hist['loss'][-per_epoch:])))
            if on_epoch is not None:
                on_epoch(epoch, net, hist)
            epoch += 1
    hist['steps'] = step
    return hist


quick_train = fit   # the name the docs and analyses use


def predict(net, x, batch_size=256, ctx=None):
    """Logits of ``net`` in inference mode for a numpy batch array, as numpy (the first output of a
    network with several)."""
    ctx = ctx or _ctx_of(net)
    outs = []
    with autograd.predict_mode():
        for i in range(0, len(x), batch_size):
            out = net(mx.nd.array(x[i:i + batch_size], ctx=ctx))
            out = out[0] if isinstance(out, (list, tuple)) else out
            outs.append(out.asnumpy())
    return np.concatenate(outs, 0)


def accuracy(net, batches, ctx=None, top_k=(1,), dtype='float32'):
    """Top-k accuracies of ``net``, fractions in [0, 1] (one per k in ``top_k``), in inference mode
    (running BN statistics) over ``(data, label)`` batches (NDArrays or numpy), each batch split over
    the devices ``ctx`` (default: the network's); the first output of a network with several.
    ``evaluate`` here and ``train_imagenet.py``'s validation both count with it."""
    ctx = ctx or [_ctx_of(net)]
    ctx = list(ctx) if isinstance(ctx, (list, tuple)) else [ctx]
    metrics = [mx.metric.TopKAccuracy(top_k=k) if k > 1 else mx.metric.Accuracy() for k in top_k]
    with autograd.predict_mode():
        for data, label in batches:
            data = data if isinstance(data, mx.nd.NDArray) else mx.nd.array(data)
            label = label if isinstance(label, mx.nd.NDArray) else mx.nd.array(label)
            ys = gluon.utils.split_and_load(label, ctx, even_split=False)
            outs = []
            for x in gluon.utils.split_and_load(data.astype(dtype), ctx, even_split=False):
                out = net(x)
                outs.append((out[0] if isinstance(out, (list, tuple)) else out).astype('float32'))
            for m in metrics:
                m.update(ys, outs)
    return tuple(float(m.get()[1]) for m in metrics)


def evaluate(net, x, y, batch_size=256, ctx=None):
    """Top-1 accuracy on numpy arrays, a fraction in [0, 1], in inference mode (running BN
    statistics); :func:`accuracy` over batches of ``batch_size``."""
    if len(x) != len(y):
        raise ValueError("x and y differ in length: %d vs %d" % (len(x), len(y)))
    batches = ((x[i:i + batch_size], np.asarray(y[i:i + batch_size])) for i in range(0, len(x), batch_size))
    return accuracy(net, batches, ctx)[0]
