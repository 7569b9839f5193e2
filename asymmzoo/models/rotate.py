"""RotateConv model families (paper Table I), each as ``{base}``, ``{base}_rot4`` and ``{base}_rot2``.

* ``rotate_sn``          the paper's simple network for MNIST (28x28x1): four 3x3 conv layers with
                         20 / 50 / 50 / 50 channels (with bias, ReLU), the first three followed by
                         stride-2 max pooling, then global average pooling and the inner-product
                         classifier (Table I: 55k / 25k / 13k, see docs/rotateconv.md)
* ``cifar_resnet20_v1``  GluonCV's CIFAR ResNet v1 builder ``get_cifar_resnet(1, 20 | 44)`` (pretrained=False)
* ``cifar_resnet44_v1``
* ``cifar_densenet40``   the ACNet family's DenseNet-40 (asymmzoo.models.cifar); only its variants
                         are registered here
* ``{base}_rot4`` / ``{base}_rot2``: ``rotatify(get_model(base), num_params)`` -- every 3x3 conv
                         becomes a RotateConv2D with 4 (3 weights + angle) or 2 (weight + angle)
                         parameters per kernel

All take ``classes`` (default 10), ``norm_layer``, ``norm_kwargs``; the rotated ones also
``theta_init``. :func:`table1_param_count` counts parameters the way Table I does.
"""
import numpy as np
from mxnet.gluon import nn

from ..nn import make_norm
from ..transforms.rotate import rotatify
from ..registry import register_builder, is_registered, get_model
from ..utils.blocks import iter_blocks

__all__ = ['RotateSN', 'get_rotate_sn', 'get_cifar_resnet_v1', 'get_rotated', 'ROTATE_BASES',
           'table1_param_count', 'TABLE1_PARAMS']

MNIST_INPUT = (1, 1, 28, 28)
CIFAR_INPUT = (1, 3, 32, 32)


class RotateSN(nn.HybridBlock):
    """The RotateConv paper's simple network (SN, section IV.B): four 3x3 conv layers (20 / 50 / 50 /
    50 channels, with bias, as Caffe builds them), each followed by ReLU, the first three by 2x2
    stride-2 max pooling (28 -> 14 -> 7 -> 3), then global average pooling and the inner-product
    classifier. ``use_bn=True`` puts a norm layer after every conv instead of the conv bias (not the
    paper's network; its Table I count excludes norm layers either way)."""

    def __init__(self, classes=10, channels=(20, 50, 50, 50), in_channels=1, use_bn=False,
                 norm_layer=None, norm_kwargs=None, **kwargs):
        super(RotateSN, self).__init__(**kwargs)
        with self.name_scope():
            self.features = nn.HybridSequential(prefix='')
            c = in_channels
            for i, out in enumerate(channels):
                self.features.add(nn.Conv2D(out, 3, padding=1, use_bias=not use_bn, in_channels=c))
                if use_bn:
                    self.features.add(make_norm(norm_layer, norm_kwargs, out))
                self.features.add(nn.Activation('relu'))
                if i < len(channels) - 1:
                    self.features.add(nn.MaxPool2D(2, 2))
                c = out
            self.features.add(nn.GlobalAvgPool2D(), nn.Flatten())
            self.output = nn.Dense(classes, in_units=c)
        self.in_channels = in_channels

    def hybrid_forward(self, F, x):
        return self.output(self.features(x))


def _mark(net, shape):
    net.in_channels = shape[1]   # the input shapes come from the registry spec
    return net


def get_rotate_sn(classes=10, **kwargs):
    return _mark(RotateSN(classes=classes, **kwargs), MNIST_INPUT)


def get_cifar_resnet_v1(depth, classes=10, norm_layer=None, **kwargs):
    from gluoncv.model_zoo import cifarresnet
    from mxnet.gluon.nn import BatchNorm
    # GluonCV ships 20 / 56 / 110 wrappers; 44 comes from its generic builder (6n + 2, n = 7)
    net = cifarresnet.get_cifar_resnet(1, depth, classes=classes, pretrained=False,
                                       norm_layer=norm_layer or BatchNorm, **kwargs)
    return _mark(net, CIFAR_INPUT)


def get_rotated(base, num_params, theta_init=None, **kwargs):
    """``rotatify(get_model(base, **kwargs), num_params)``; the base is looked up at build time."""
    net = get_model(base, **kwargs)
    return rotatify(net, num_params, theta_init=theta_init)


def _is_norm(block):
    return isinstance(block, nn.BatchNorm) or 'Norm' in type(block).__name__


def table1_param_count(net, input_shape=None):
    """Trainable parameters counted as RotateConv's Table I does: convolution and inner-product
    weights and biases, and RotateConv angles (4 or 2 per line kernel); normalization layers' gamma /
    beta are *not* counted (in Caffe they live in separate Scale layers). This reproduces the
    paper's ResNet-20 / -44 columns within 0.5%; ``asymmzoo.utils.count_params`` gives the true
    total (which adds the BN affine parameters).
    """
    from ..utils.counting import count_params
    total = count_params(net, input_shape)
    norm = 0
    for _, _, _, child in iter_blocks(net):
        if _is_norm(child):
            norm += sum(int(np.prod(p.shape)) for p in child.params.values() if p.grad_req != 'null')
    return total - norm


#: RotateConv paper Table I, #Params for versions 9 / 4 / 2
TABLE1_PARAMS = {
    'rotate_sn': (55e3, 25e3, 13e3),
    'cifar_resnet20_v1': (271e3, 122e3, 63e3),
    'cifar_resnet44_v1': (657e3, 294e3, 148e3),
    'cifar_densenet40': (1.9e6, 0.86e6, 0.43e6),
}


_OWN_BASES = {
    'rotate_sn': (get_rotate_sn, {}),
    'cifar_resnet20_v1': (get_cifar_resnet_v1, {'depth': 20}),
    'cifar_resnet44_v1': (get_cifar_resnet_v1, {'depth': 44}),
}
#: the bases of Table I
ROTATE_BASES = ['rotate_sn', 'cifar_resnet20_v1', 'cifar_resnet44_v1', 'cifar_densenet40']


def _register():
    try:  # the ACNet family owns cifar_densenet40: make sure it registered first
        from . import cifar  # noqa: F401
    except ImportError:  # pragma: no cover
        pass
    from ..registry import get_spec
    for name, (fn, fixed) in _OWN_BASES.items():
        if not is_registered(name):
            meta = dict(family='rotateconv', input_shape=MNIST_INPUT) if name == 'rotate_sn' else \
                dict(family='cifar', input_shape=CIFAR_INPUT)
            register_builder(name, fn, meta=meta, **fixed)
    for base in ROTATE_BASES:
        if not is_registered(base):
            continue
        for p in (4, 2):
            register_builder('%s_rot%d' % (base, p), get_rotated,
                             meta=dict(family='rotateconv', base=base, input_shape=get_spec(base).input_shape),
                             base=base, num_params=p)


_register()
