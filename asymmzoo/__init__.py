"""asymmzoo: AsymmNet, ACNet and RotateConv model zoo for MXNet / Gluon, in the style of GluonCV."""
__version__ = '0.1.0'

from . import compat as _compat
_compat.apply()      # before mxnet: numpy's removed aliases on numpy >= 1.24 (see compat.py)

from .registry import register_model, register_builder, get_model, list_models, is_registered
from . import nn, models, heads, utils
from .deploy import deploy, register_converter
from .transforms import acnetify, rotatify


def __getattr__(name):  # the export / quantize / bench packages load on first use: `import asymmzoo` stays light
    if name in ('export', 'quantize', 'bench'):
        import importlib
        return importlib.import_module('.' + name, __name__)
    raise AttributeError("module %r has no attribute %r" % (__name__, name))
