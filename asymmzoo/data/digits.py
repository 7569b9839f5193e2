"""The embedded digits as in-memory arrays, for quick runs, analyses, quantization and rotate-mnist.

``digits_arrays(split, size, channels)`` gives float32 ``(N, channels, size, size)`` images, normalised
with MNIST's mean and std (:data:`DIGITS_MEAN`, :data:`DIGITS_STD`), and int64 labels. The 28x28 images
are zero-padded to a larger ``size`` (``fit='pad'``, the default: the digit keeps its pixels) or
bilinearly resized (``fit='resize'``; always for a smaller size). ``limit`` keeps a fixed random subset
(the splits are ordered by class, so their first images are all zeros).

The ImageNet-style main job reads the same digits through GluonCV's transforms instead
(:mod:`asymmzoo.data.pipelines`).
"""
import numpy as np

__all__ = ['DIGITS_MEAN', 'DIGITS_STD', 'digits_arrays', 'normalize_digits']

DIGITS_MEAN, DIGITS_STD = 0.1307, 0.3081   # MNIST's pixel mean and std (pixels scaled to [0, 1])
_LIMIT_SEED = 0


def normalize_digits(pixels):
    """uint8 (or [0, 255] float) digit pixels -> float32, ``(pixel / 255 - mean) / std``."""
    return ((np.asarray(pixels, np.float32) / 255.0 - DIGITS_MEAN) / DIGITS_STD).astype(np.float32)


def digits_arrays(split='train', size=28, channels=1, limit=None, fit='pad'):
    """The embedded digits of ``split`` ('train': 4000, 'val': 1000) as ``(x, y)``: float32 NCHW
    images of ``size`` x ``size`` with ``channels`` identical channels, int64 labels."""
    import mxnet as mx
    from .embedded import load_digits
    if fit not in ('pad', 'resize'):
        raise ValueError("fit must be 'pad' or 'resize', got %r" % (fit,))
    for what, v in (('size', size), ('channels', channels)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError("%s must be a positive integer, got %r" % (what, v))
    x, y = load_digits(split)
    if limit is not None and limit < len(y):
        keep = np.sort(np.random.RandomState(_LIMIT_SEED).permutation(len(y))[:limit])
        x, y = x[keep], y[keep]
    x = x.astype(np.float32) / 255.0
    side = x.shape[-1]
    if size >= side and fit == 'pad':
        a = (size - side) // 2
        x = np.pad(x, ((0, 0), (a, size - side - a), (a, size - side - a)))
    elif size != side:
        x = mx.nd.contrib.BilinearResize2D(mx.nd.array(x[:, None]), height=size,
                                           width=size).asnumpy()[:, 0]
    x = (x - DIGITS_MEAN) / DIGITS_STD
    x = np.repeat(x[:, None], channels, axis=1).astype(np.float32)
    return x, y.astype(np.int64)
