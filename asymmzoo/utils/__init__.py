"""Small shared helpers: math (``make_divisible``, output comparisons), counting (params, buffers,
MAdds), block-tree walking, BN folding, argparse types, a tiny training loop and test helpers.

The export, quantization and benchmarking code lives in the packages :mod:`asymmzoo.export`,
:mod:`asymmzoo.quantize` and :mod:`asymmzoo.bench`; ``asymmzoo.utils.export`` / ``.quantize`` /
``.benchmark`` / ``.nchwc`` are deprecated re-exports of them, kept so that old imports work.
"""
from .math import make_divisible
from .counting import count_params, count_buffers, count_madds, layer_madds

_MOVED = ('export', 'benchmark', 'quantize', 'nchwc')   # deprecated re-exports (see the docstring)


def __getattr__(name):  # the deprecated re-exports load on first use (keeps `import asymmzoo` light)
    if name in _MOVED:
        import importlib
        return importlib.import_module('.' + name, __name__)
    raise AttributeError("module %r has no attribute %r" % (__name__, name))
