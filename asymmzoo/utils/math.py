"""Small arithmetic helpers: the width rule of the model tables, and the output comparison that
deploy and export checks share."""
import math

import numpy as np

__all__ = ['make_divisible', 'as_numpy_list', 'max_abs_diff', 'max_abs_finite']


def make_divisible(x, divisor=8):
    """Round ``x`` up to a multiple of ``divisor`` (AsymmNet / GluonCV MobileNetV3 rule)."""
    return int(math.ceil(x * 1.0 / divisor) * divisor)


def as_numpy_list(out):
    """A network's output (an array or a tuple / list of them, NDArray or numpy) as numpy arrays."""
    outs = out if isinstance(out, (list, tuple)) else [out]
    return [o if isinstance(o, np.ndarray) else o.asnumpy() for o in outs]


def max_abs_finite(out):
    """Largest absolute finite value of an output (see :func:`as_numpy_list`), 0 if it has none: the
    scale a check's tolerance is set against (a detector's infinite boxes do not make it infinite)."""
    return max(float(np.abs(x[np.isfinite(x)]).max(initial=0.0)) for x in as_numpy_list(out))


def max_abs_diff(a, b, equal_nan=False):
    """Largest absolute difference between two outputs (see :func:`as_numpy_list`); entries equal
    in both (infinities included) count as 0, so a detector's padded or infinite boxes compare as
    equal when they are; a NaN counts as infinitely off (with ``equal_nan``, NaN against NaN as
    equal), so a network whose outputs are NaN never passes a check. Raises ValueError when the outputs' count or shapes
    differ."""
    a_list, b_list = as_numpy_list(a), as_numpy_list(b)
    if len(a_list) != len(b_list):
        raise ValueError("%d outputs against %d" % (len(a_list), len(b_list)))
    worst = 0.0
    for x, y in zip(a_list, b_list):
        if x.shape != y.shape:
            raise ValueError("output shape %s differs from %s" % (x.shape, y.shape))
        same = (x == y) | (np.isnan(x) & np.isnan(y)) if equal_nan else (x == y)
        if not same.all():
            with np.errstate(invalid='ignore'):
                d = np.abs(x[~same].astype(np.float64) - y[~same])
            worst = max(worst, float(np.where(np.isnan(d), np.inf, d).max()))  # NaN vs a number
    return worst
