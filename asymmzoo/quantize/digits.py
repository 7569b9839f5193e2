"""The embedded digits as quantization data: float NCHW arrays at any size (:func:`digits_arrays`:
resized, normalised, replicated to the network's channels), a short training run for a model without
a checkpoint (:func:`train_on_digits`) and top-1 evaluation (:func:`evaluate`).

``asymmzoo.train.quick`` has a digits loader of its own (zero-padded rather than resized from 28
pixels up, other normalisation constants); the two are not unified.
"""
import mxnet as mx
import numpy as np

DIGITS_MEAN, DIGITS_STD = 0.13, 0.31


def digits_arrays(split='train', size=32, channels=3, limit=None):
    """The embedded digits as float32 NCHW ``(x, y)``: resized to ``size`` (bilinear), normalised,
    replicated to ``channels`` channels."""
    from ..data import load_digits
    imgs, labels = load_digits(split)
    if limit:
        imgs, labels = imgs[:limit], labels[:limit]
    x = mx.nd.array(imgs.astype(np.float32) / 255.0).expand_dims(1)
    if size != imgs.shape[-1]:
        x = mx.nd.contrib.BilinearResize2D(x, height=size, width=size)
    x = (x - DIGITS_MEAN) / DIGITS_STD
    if channels > 1:
        x = x.repeat(channels, axis=1)
    return x.asnumpy().astype(np.float32), labels.astype(np.int32)


def evaluate(net, x, y, batch_size=250):
    """Top-1 accuracy (%) and the predicted labels."""
    preds = []
    with mx.autograd.predict_mode():
        for i in range(0, len(x), batch_size):
            out = net(mx.nd.array(x[i:i + batch_size]))
            out = out[0] if isinstance(out, (list, tuple)) else out
            preds.append(out.argmax(axis=1).asnumpy().astype(np.int32))
    p = np.concatenate(preds)
    return 100.0 * float((p == y).mean()), p


def train_on_digits(net, epochs=2, size=32, batch_size=64, lr=0.05, seed=0, log=None, channels=3):
    """Quickly train an initialised 10-class network on the embedded training digits (SGD with
    Nesterov momentum, cosine schedule; ``channels``: the network's input channels). Returns the
    validation top-1 (%)."""
    if not _is_int(epochs) or epochs < 1:
        raise ValueError("epochs=%r: give a positive number of training epochs (CLI: --epochs)" % (epochs,))
    say = log or (lambda m: None)
    x, y = digits_arrays('train', size, channels=channels)
    xv, yv = digits_arrays('val', size, channels=channels)
    rng = np.random.RandomState(seed)
    steps = epochs * (len(x) // batch_size)
    sched = mx.lr_scheduler.CosineScheduler(max(steps, 1), base_lr=lr, final_lr=lr * 0.01)
    trainer = mx.gluon.Trainer(net.collect_params(), 'nag',
                               {'learning_rate': lr, 'momentum': 0.9, 'wd': 1e-4,
                                'lr_scheduler': sched})
    loss_fn = mx.gluon.loss.SoftmaxCrossEntropyLoss()
    net.hybridize(static_alloc=True, static_shape=True)
    for ep in range(epochs):
        idx = rng.permutation(len(x))
        for i in range(0, len(idx) - batch_size + 1, batch_size):
            b = idx[i:i + batch_size]
            xb, yb = mx.nd.array(x[b]), mx.nd.array(y[b])
            with mx.autograd.record():
                out = net(xb)
                loss = loss_fn(out, yb)
            loss.backward()
            trainer.step(batch_size)
        acc, _ = evaluate(net, xv, yv)
        say('epoch %d: val top-1 %.2f%%' % (ep + 1, acc))
    return acc


def _is_int(v):
    import numbers
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)
