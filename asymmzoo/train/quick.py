"""A tiny, dependency-free training loop for short real runs on in-memory arrays.

Meant for tests, analyses and demos (ACNet vs base, RotateConv vs base), not for real training (see
``train_imagenet.py``)::

    from asymmzoo.train.quick import digits_arrays, quick_train, evaluate
    xtr, ytr = digits_arrays('train', size=32, channels=3)     # float32 NCHW, int labels
    xva, yva = digits_arrays('val', size=32, channels=3)
    net = asymmzoo.get_model('cifar_quick_acb', classes=10); net.initialize(mx.init.Xavier())
    hist = quick_train(net, xtr, ytr, epochs=2, batch_size=64, lr=0.05)   # hist['loss']: per-step
    acc = evaluate(net, xva, yva)                                          # top-1 in [0, 1]

Everything is seeded (``seed``): the same call gives the same curve.
"""
import numpy as np
import mxnet as mx
from mxnet import autograd, gluon

__all__ = ['digits_arrays', 'quick_train', 'evaluate', 'predict']

DIGITS_MEAN, DIGITS_STD = 0.1307, 0.3081


def digits_arrays(split='train', size=32, channels=3, limit=None):
    """The embedded handwritten digits as float32 (N, channels, size, size), normalised, + labels.

    The 28x28 images are zero-padded (size >= 28) or bilinearly resized (size < 28) to ``size``.
    ``limit`` keeps a fixed random subset of that many images (the splits are ordered by class).
    """
    from ..data import load_digits
    x, y = load_digits(split)
    if limit and limit < len(y):
        keep = np.sort(np.random.RandomState(1234).permutation(len(y))[:limit])
        x, y = x[keep], y[keep]
    x = x.astype(np.float32) / 255.0
    if size >= 28:
        a = (size - 28) // 2
        b = size - 28 - a
        x = np.pad(x, ((0, 0), (a, b), (a, b)))
    else:
        x = mx.nd.contrib.BilinearResize2D(mx.nd.array(x[:, None]), height=size,
                                           width=size).asnumpy()[:, 0]
    x = (x - DIGITS_MEAN) / DIGITS_STD
    x = np.repeat(x[:, None], channels, axis=1).astype(np.float32)
    return x, y.astype(np.int64)


def _ctx_of(net):
    for p in net.collect_params().values():
        if p._data is not None:
            return p.list_ctx()[0]
    return mx.cpu()


def quick_train(net, x, y, epochs=1, batch_size=64, lr=0.05, momentum=0.9, wd=1e-4, seed=0,
                steps=None, hybridize=True, log_every=0, ctx=None):
    """Plain SGD (momentum, cosine LR, softmax cross entropy) on numpy arrays.

    Returns ``{'loss': [per-step batch loss], 'acc': [per-step batch accuracy], 'steps': n}``.
    ``steps`` caps the number of updates (default: ``epochs`` full passes, last partial batch
    dropped). The net must be initialised.
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
        net.hybridize()
    sched = mx.lr_scheduler.CosineScheduler(max_update=max(total, 1), base_lr=lr, final_lr=0)
    trainer = gluon.Trainer(net.collect_params(), 'sgd',
                            dict(learning_rate=lr, momentum=momentum, wd=wd, lr_scheduler=sched))
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
    hist = {'loss': [], 'acc': []}
    step = 0
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
            hist['loss'].append(float(loss.mean().asscalar()))
            hist['acc'].append(float((out.argmax(axis=1) == yb.astype('float32')).mean().asscalar()))
            step += 1
            if log_every and step % log_every == 0:
                print("step %d/%d loss %.4f acc %.3f" % (step, total, np.mean(hist['loss'][-log_every:]),
                                                         np.mean(hist['acc'][-log_every:])))
    hist['steps'] = step
    return hist


def predict(net, x, batch_size=256, ctx=None):
    """Logits of ``net`` in inference mode for a numpy batch array, as numpy."""
    ctx = ctx or _ctx_of(net)
    outs = []
    with autograd.predict_mode():
        for i in range(0, len(x), batch_size):
            outs.append(net(mx.nd.array(x[i:i + batch_size], ctx=ctx)).asnumpy())
    return np.concatenate(outs, 0)


def evaluate(net, x, y, batch_size=256, ctx=None):
    """Top-1 accuracy in inference mode (running BN statistics)."""
    return float((predict(net, x, batch_size, ctx).argmax(1) == np.asarray(y)).mean())
