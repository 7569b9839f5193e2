"""Model families. Importing this package registers every model."""
from .backbone import Backbone, FeatureTap
from .asymmnet import AsymmNet, get_asymmnet
from . import cifar
from . import acnet_imagenet
from . import rotate
from .sources import apply_weight_sources as _apply_weight_sources
_apply_weight_sources()
from .init_from_base import register_twin_inits as _register_twin_inits
_register_twin_inits()
