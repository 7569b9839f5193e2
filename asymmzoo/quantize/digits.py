"""The embedded digits as quantization data (:func:`digits_arrays`: resized to the network's input
size, normalised, replicated to its channels), a short training run for a model without a checkpoint
(:func:`train_on_digits`) and the top-1 in percent with the predicted labels that the quantize report
compares (:func:`top1_and_labels`: the argmax of the first output, as
:func:`asymmzoo.train.quick.accuracy` counts; the report needs the labels too).

The digits come from :mod:`asymmzoo.data.digits` and the training run is :func:`asymmzoo.train.quick.fit`,
like every other quick run of the project.
"""
import numpy as np

from ..data.digits import DIGITS_MEAN, DIGITS_STD, digits_arrays as _digits
from ..train.quick import evaluate, fit, predict

__all__ = ['DIGITS_MEAN', 'DIGITS_STD', 'digits_arrays', 'top1_and_labels', 'train_on_digits']


def digits_arrays(split='train', size=32, channels=3, limit=None):
    """The embedded digits as float32 NCHW ``(x, y)``: resized to ``size`` (bilinear), normalised,
    replicated to ``channels`` channels; ``limit`` keeps a fixed random subset."""
    return _digits(split, size=size, channels=channels, limit=limit, fit='resize')


def top1_and_labels(net, x, y, batch_size=250):
    """``(top-1 in percent, predicted labels)``: the report compares the labels of the fp32 and the
    INT8 network (their agreement), so it needs both."""
    p = predict(net, x, batch_size).argmax(axis=1).astype(np.int64)
    return 100.0 * float((p == np.asarray(y)).mean()), p


def train_on_digits(net, epochs=2, size=32, batch_size=64, lr=0.05, seed=0, log=None, channels=3):
    """Quickly train an initialised 10-class network on the embedded training digits (SGD with
    Nesterov momentum, cosine schedule to lr / 100; ``channels``: the network's input channels).
    Returns the validation top-1 (%)."""
    if not _is_int(epochs) or epochs < 1:
        raise ValueError("epochs=%r: give a positive number of training epochs (CLI: --epochs)" % (epochs,))
    say = log or (lambda m: None)
    x, y = digits_arrays('train', size, channels=channels)
    xv, yv = digits_arrays('val', size, channels=channels)
    accs = []

    def on_epoch(epoch, net, hist):
        accs.append(100.0 * evaluate(net, xv, yv))
        say('epoch %d: val top-1 %.2f%%' % (epoch + 1, accs[-1]))
    fit(net, x, y, epochs=epochs, batch_size=batch_size, lr=lr, momentum=0.9, wd=1e-4, seed=seed,
        optimizer='nag', final_lr=lr * 0.01, hybridize=dict(static_alloc=True, static_shape=True),
        on_epoch=on_epoch)
    return accs[-1]


def _is_int(v):
    import numbers
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)
