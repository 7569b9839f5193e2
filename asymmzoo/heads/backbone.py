"""Building a zoo backbone for a head, by name, with the checks every head needs.

``backbone_kwargs`` (a dict) reaches the backbone's builder: ``get_model('yolo3_asymmnet_small_1.0_voc',
backbone_kwargs=dict(r=2))`` puts YOLOv3 on an AsymmNet with asymmetry rate 2."""
import re

__all__ = ['build_backbone', 'head_backbones', 'backbone_stages', 'BACKBONE_RE']

# backbones the heads are registered for: AsymmNet / MobileNetV3 at every width, and their ACB forms
BACKBONE_RE = re.compile(r'^(asymmnet|mobilenetv3)_(large|small)_(\d+\.\d+)(_acb)?$')


def head_backbones():
    """Backbone names that get heads: ``{asymmnet,mobilenetv3}_{large,small}_{mult}`` and their
    ``_acb`` forms. A fixed list (not read off the registry), so the order in which model families
    register does not matter: the backbone is looked up when the head is built."""
    from ..models.asymmnet import MULTIPLIERS
    return ['%s_%s_%s%s' % (fam, arch, mult, acb) for fam in ('asymmnet', 'mobilenetv3')
            for arch in ('large', 'small') for mult in MULTIPLIERS for acb in ('', '_acb')]


def build_backbone(name, norm_layer=None, norm_kwargs=None, backbone_kwargs=None, **kwargs):
    """Build the registered backbone ``name`` (uninitialised) and check it follows the contract.

    Raises ValueError for an unknown name (listing close names) and TypeError for a model that does
    not expose the stride-8/16/32 taps (``stages()`` / ``stage_channels()``).
    """
    from ..registry import get_model, is_registered, unknown_model
    if not isinstance(name, str):
        raise TypeError("backbone must be a registered model name (str), got %r" % (name,))
    if not is_registered(name):
        err = unknown_model(name.lower())
        raise ValueError("unknown backbone %r: %s" % (name, str(err).split('; ', 1)[-1]))
    kwargs = dict(backbone_kwargs or {}, **kwargs)   # the user's backbone options (r=2, ...)
    if norm_layer is not None:
        kwargs['norm_layer'] = norm_layer
    if norm_kwargs is not None:
        kwargs['norm_kwargs'] = norm_kwargs
    base = get_model(name, **kwargs)
    if not (hasattr(base, 'stages') and hasattr(base, 'stage_channels')
            and hasattr(base, 'feature_taps')):
        raise TypeError("%r (%s) does not follow the backbone contract (feature_taps / stages() / "
                        "stage_channels(), see asymmzoo/models/backbone.py); pick an asymmnet_* or "
                        "mobilenetv3_* backbone" % (name, type(base).__name__))
    return base


def backbone_stages(base, strides):
    """``base.stages(strides)``, with ACNet blocks re-pointed at the new containers.

    ``stages()`` puts the backbone's top-level blocks into new containers. An ACBlock that absorbed
    the BN next to it (the stem's, on ``_acb`` backbones) remembers the container holding that BN's
    placeholder so ``asymmzoo.deploy`` can put the folded BN back there; inside a head that container
    is the stage, not the backbone's ``features``. No-op for backbones without such blocks.
    """
    import weakref
    stages = base.stages(tuple(strides))
    for stage in stages:
        children = stage._children
        for child in list(children.values()):
            key = getattr(child, '_absorbed_key', None)
            if key is not None and hasattr(child, '_absorbed_parent') \
                    and hasattr(children.get(str(key)), 'make_bn'):
                child._absorbed_parent = weakref.ref(stage)
    return stages
