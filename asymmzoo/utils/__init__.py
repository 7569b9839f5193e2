"""Counting, export and benchmarking helpers."""
from .math import make_divisible
from .counting import count_params, count_buffers, count_madds, layer_madds


def __getattr__(name):  # export / benchmark / quantize load on first use (keeps `import asymmzoo` light)
    if name in ('export', 'benchmark', 'quantize'):
        import importlib
        return importlib.import_module('.' + name, __name__)
    raise AttributeError("module %r has no attribute %r" % (__name__, name))
