"""Accuracy under rotational distortion (ACNet Table 4): original, 90 degrees counter-clockwise,
180 degrees, up-down flip."""
import numpy as np

__all__ = ['TRANSFORMS', 'transform_images', 'rotation_robustness']

TRANSFORMS = ('original', 'rot90', 'rot180', 'flipud')


def transform_images(x, name):
    """Apply a Table 4 distortion to an NCHW numpy batch (rot90 is counter-clockwise, as displayed
    with row 0 at the top; it needs H == W)."""
    if name == 'original':
        return x
    if name == 'rot90':
        if x.shape[2] != x.shape[3]:
            raise ValueError("rot90 needs square images, got %dx%d" % x.shape[2:])
        return np.ascontiguousarray(np.rot90(x, 1, axes=(2, 3)))
    if name == 'rot180':
        return np.ascontiguousarray(np.rot90(x, 2, axes=(2, 3)))
    if name == 'flipud':
        return np.ascontiguousarray(x[:, :, ::-1, :])
    raise ValueError("transform must be one of %s, got %r" % (TRANSFORMS, name))


def rotation_robustness(net, x, y, transforms=TRANSFORMS, batch_size=256):
    """``{transform: top-1 accuracy}`` of ``net`` (inference mode) on the distorted ``x``."""
    from ..train.quick import evaluate
    return {t: evaluate(net, transform_images(x, t), y, batch_size) for t in transforms}
