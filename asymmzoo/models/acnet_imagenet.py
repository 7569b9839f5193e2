"""ImageNet model families of the ACNet paper (Table 3) and the ACNet twins of the AsymmNet family.

* ``alexnet_bn``    the paper's AlexNet (TensorFlow slim's plain AlexNet-v2 widths): five convs
                    11x11/4-64, 5x5-192, 3x3-384, 3x3-384, 3x3-256, each followed by BN and ReLU, three
                    max pools, FC 4096 - FC 4096 (dropout 0.5) - FC classes; no LRN, no groups
* ``resnet18_v1``   GluonCV's ResNet-18 v1 builder (pretrained=False)
* ``densenet121``   GluonCV's DenseNet-121 builder (pretrained=False); its final 7x7 average pool is
                    swapped for a global one (identical at 224x224, no parameters) so smaller inputs work
* ``{name}_acb``    ``asymmzoo.acnetify(get_model(name))`` for the three above (AlexNet with 1x3 / 3x1
                    branches on every layer, as in the paper) and for every
                    ``asymmnet_*`` / ``mobilenetv3_*`` model (ACB on the 3x3 stem and on every depthwise
                    kxk kernel: asymmetric in both senses)

``resnet18_v1`` / ``densenet121`` keep their GluonCV names; ``asymmzoo.get_model`` builds the
versions here, ``gluoncv.model_zoo.get_model`` still builds GluonCV's own (same parameters).
"""
import re

from mxnet.gluon import nn

from ..nn import ConvBNAct
from ..registry import register_builder, list_models, get_model
from ..utils.blocks import replace_child
from . import cifar

__all__ = ['AlexNetBN', 'get_alexnet_bn', 'get_resnet18_v1', 'get_densenet121',
           'get_acnet_twin', 'register_acnet_twin', 'IMAGENET_MODELS']

IMAGENET_INPUT = (1, 3, 224, 224)


class AlexNetBN(nn.HybridBlock):
    """AlexNet with BN after every conv and no LRN (ACNet, section 4.2)."""

    def __init__(self, classes=1000, dropout=0.5, norm_layer=None, norm_kwargs=None, in_channels=3,
                 **kwargs):
        super(AlexNetBN, self).__init__(**kwargs)
        nk = dict(norm_layer=norm_layer, norm_kwargs=norm_kwargs)
        with self.name_scope():
            self.features = nn.HybridSequential(prefix='')
            self.features.add(ConvBNAct(in_channels, 64, 11, strides=4, padding=2, **nk),
                              nn.MaxPool2D(3, 2),
                              ConvBNAct(64, 192, 5, padding=2, **nk),
                              nn.MaxPool2D(3, 2),
                              ConvBNAct(192, 384, 3, **nk),
                              ConvBNAct(384, 384, 3, **nk),
                              ConvBNAct(384, 256, 3, **nk),
                              nn.MaxPool2D(3, 2),
                              nn.Flatten())
            self.head = nn.HybridSequential(prefix='head_')
            self.head.add(nn.Dense(4096, activation='relu', in_units=256 * 6 * 6))
            if dropout:
                self.head.add(nn.Dropout(dropout))
            self.head.add(nn.Dense(4096, activation='relu', in_units=4096))
            if dropout:
                self.head.add(nn.Dropout(dropout))
            self.output = nn.Dense(classes, in_units=4096)

    def hybrid_forward(self, F, x):
        return self.output(self.head(self.features(x)))


def _gluoncv_kwargs(kwargs):
    kwargs = dict(kwargs)
    if kwargs.get('norm_layer') is None:
        kwargs['norm_layer'] = nn.BatchNorm
    return kwargs


def get_alexnet_bn(classes=1000, **kwargs):
    return AlexNetBN(classes=classes, **kwargs)


def get_resnet18_v1(classes=1000, **kwargs):
    from gluoncv.model_zoo import resnet
    return resnet.resnet18_v1(classes=classes, pretrained=False, **_gluoncv_kwargs(kwargs))


def get_densenet121(classes=1000, **kwargs):
    from gluoncv.model_zoo import densenet
    net = densenet.densenet121(classes=classes, pretrained=False, **_gluoncv_kwargs(kwargs))
    feats = net.features
    for key, blk in list(feats._children.items()):
        if isinstance(blk, nn.AvgPool2D) and blk._kwargs.get('kernel') == (7, 7):
            replace_child(feats, key, nn.GlobalAvgPool2D())
    return net


IMAGENET_MODELS = {
    'alexnet_bn': get_alexnet_bn,
    'resnet18_v1': get_resnet18_v1,
    'densenet121': get_densenet121,
}


def get_acnet_twin(base, gamma_init=None, asym_kernel_size=None, **kwargs):
    """``acnetify(get_model(base, **kwargs))``: the ACNet form of a registered model."""
    from ..transforms.acnet import acnetify
    net = get_model(base, **kwargs)
    acnetify(net, gamma_init=gamma_init, norm_layer=kwargs.get('norm_layer'),
             norm_kwargs=kwargs.get('norm_kwargs'), asym_kernel_size=asym_kernel_size)
    net.name_in_zoo = base + '_acb'
    net.acnet_base = base
    return net


# the paper keeps 1x3 / 3x1 branches on AlexNet's 11x11 and 5x5 layers (section 4.2)
TWIN_KWARGS = {'alexnet_bn': dict(asym_kernel_size=3)}


def register_acnet_twin(base, **fixed):
    """Register ``{base}_acb`` for a registered ``base``."""
    fixed = dict(TWIN_KWARGS.get(base, {}), **fixed)
    from ..registry import get_spec
    spec = get_spec(base)
    register_builder(base + '_acb', get_acnet_twin,
                     meta=dict(family='acnet', base=base, input_shape=spec.input_shape,
                               min_input_shape=spec.min_input_shape), base=base, **fixed)


_ASYMM_BASE = re.compile(r'^(asymmnet|mobilenetv3)_(large|small)_[0-9.]+(_pruned)?$')


def _register():
    for name, fn in IMAGENET_MODELS.items():
        # AlexNet's FC layers are sized for a 6x6 final map: it runs at 224 pixels only
        register_builder(name, fn, meta=dict(family=name.split('_')[0].rstrip('0123456789'),
                                             input_shape=IMAGENET_INPUT,
                                             min_input_shape=None if name == 'alexnet_bn' else (2, 3, 64, 64)))
    bases = list(cifar.CIFAR_MODELS) + list(IMAGENET_MODELS)
    bases += [n for n in list_models('asymmnet_*') + list_models('mobilenetv3_*')
              if _ASYMM_BASE.match(n)]
    for base in bases:
        register_acnet_twin(base)


_register()
