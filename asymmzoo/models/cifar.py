"""CIFAR model families of the ACNet paper (Table 1 / Table 2) and their ACNet twins.

* ``cifar_quick``        Caffe's Cifar-quick (three 5x5 convs, two FC), with BN after every conv
* ``cifar_vgg16``        VGG-16 for 32x32 inputs (13 conv-BN-ReLU, FC 512, FC classes)
* ``cifar_resnet56_v1``  GluonCV's CIFAR ResNet-56 v1 builder (pretrained=False)
* ``cifar_wrn16_8``      GluonCV's CIFAR Wide ResNet builder (16, 8) (pretrained=False)
* ``cifar_densenet40``   DenseNet-40 (k=12, BN-ReLU-Conv, no bottleneck, no compression);
                         GluonCV has no CIFAR DenseNet, so it is written here
* ``{name}_acb``         ``asymmzoo.acnetify(get_model(name))`` for each of them

All take ``classes`` (default 10), ``norm_layer``, ``norm_kwargs``; inputs are (N, 3, 32, 32).
"""
from mxnet.gluon import nn

from ..nn import ConvBNAct, make_norm, channel_concat
from ..registry import register_builder

__all__ = ['CIFARQuick', 'CIFARVGG', 'CIFARDenseNet', 'DenseLayer', 'get_cifar_quick', 'get_cifar_vgg16',
           'get_cifar_densenet', 'get_cifar_resnet56_v1', 'get_cifar_wrn16_8', 'CIFAR_MODELS']

CIFAR_INPUT = (1, 3, 32, 32)


class CIFARQuick(nn.HybridBlock):
    """Cifar-quick (Caffe's ``cifar10_quick``): conv5x5(32)-maxpool-relu, conv5x5(32)-relu-avgpool,
    conv5x5(64)-relu-avgpool, FC 64, FC classes; a BN follows every conv (as in ACNet's code)."""

    def __init__(self, classes=10, norm_layer=None, norm_kwargs=None, in_channels=3, **kwargs):
        super(CIFARQuick, self).__init__(**kwargs)
        nk = dict(norm_layer=norm_layer, norm_kwargs=norm_kwargs)
        with self.name_scope():
            self.features = nn.HybridSequential(prefix='')
            self.features.add(ConvBNAct(in_channels, 32, 5, act=None, **nk),
                              nn.MaxPool2D(3, 2, 1), nn.Activation('relu'),
                              ConvBNAct(32, 32, 5, act='relu', **nk), nn.AvgPool2D(3, 2, 1),
                              ConvBNAct(32, 64, 5, act='relu', **nk), nn.AvgPool2D(3, 2, 1),
                              nn.Flatten())
            self.head = nn.HybridSequential(prefix='head_')
            self.head.add(nn.Dense(64, in_units=64 * 4 * 4), nn.Activation('relu'))
            self.output = nn.Dense(classes, in_units=64)

    def hybrid_forward(self, F, x):
        return self.output(self.head(self.features(x)))


VGG16_CFG = (64, 64, 'M', 128, 128, 'M', 256, 256, 256, 'M', 512, 512, 512, 'M', 512, 512, 512, 'M')


class CIFARVGG(nn.HybridBlock):
    """VGG for 32x32 inputs: conv3x3-BN-ReLU stacks with 2x2 max pools (``cfg``), then FC 512, ReLU,
    FC classes (ACNet's CIFAR VGG-16)."""

    def __init__(self, cfg=VGG16_CFG, classes=10, hidden=512, norm_layer=None, norm_kwargs=None,
                 in_channels=3, **kwargs):
        super(CIFARVGG, self).__init__(**kwargs)
        nk = dict(norm_layer=norm_layer, norm_kwargs=norm_kwargs)
        with self.name_scope():
            self.features = nn.HybridSequential(prefix='')
            c = in_channels
            for v in cfg:
                if v == 'M':
                    self.features.add(nn.MaxPool2D(2, 2))
                else:
                    self.features.add(ConvBNAct(c, v, 3, act='relu', **nk))
                    c = v
            self.features.add(nn.Flatten())
            self.head = nn.HybridSequential(prefix='head_')
            self.head.add(nn.Dense(hidden, in_units=c), nn.Activation('relu'))
            self.output = nn.Dense(classes, in_units=hidden)

    def hybrid_forward(self, F, x):
        return self.output(self.head(self.features(x)))


class DenseLayer(nn.HybridBlock):
    """BN-ReLU-Conv3x3(k) [-Dropout] (``body``), concatenated after its input along channels.

    The concat is :func:`asymmzoo.nn.channel_concat`, which trains for any channel offsets on any
    CPU (DenseNet-40's growth rate 12 gives offsets that are not multiples of 8).
    """

    def __init__(self, in_channels, growth_rate, dropout=0.0, norm_layer=None, norm_kwargs=None,
                 **kwargs):
        super(DenseLayer, self).__init__(**kwargs)
        with self.name_scope():
            self.body = nn.HybridSequential(prefix='')
            self.body.add(make_norm(norm_layer, norm_kwargs, in_channels), nn.Activation('relu'),
                          nn.Conv2D(growth_rate, 3, padding=1, use_bias=False,
                                    in_channels=in_channels))
            if dropout:
                self.body.add(nn.Dropout(dropout))
        self.plain_concat = False  # True only in inference graphs (see asymmzoo.nn.concat)

    def hybrid_forward(self, F, x):
        y = self.body(x)
        return channel_concat(F, x, y, plain=self.plain_concat)


class CIFARDenseNet(nn.HybridBlock):
    """DenseNet for CIFAR (Huang et al. 2017), the ACNet paper's DenseNet-40: a 3x3 stem conv to
    ``2k`` (16 for k=12 as in the original Torch code when not compressed), three dense blocks of
    ``(depth - 4) / 3`` BN-ReLU-Conv3x3 layers with growth rate k, transitions BN-ReLU-Conv1x1-AvgPool2
    (``compression`` < 1 gives DenseNet-BC widths), final BN-ReLU, global pool, FC.
    """

    def __init__(self, depth=40, growth_rate=12, init_channels=16, compression=1.0, dropout=0.0,
                 classes=10, norm_layer=None, norm_kwargs=None, in_channels=3, **kwargs):
        super(CIFARDenseNet, self).__init__(**kwargs)
        if (depth - 4) % 3:
            raise ValueError("DenseNet depth must be 3n + 4 (e.g. 40, 100), got %d" % depth)
        n = (depth - 4) // 3
        nk = dict(norm_layer=norm_layer, norm_kwargs=norm_kwargs)
        with self.name_scope():
            self.features = nn.HybridSequential(prefix='')
            self.features.add(nn.Conv2D(init_channels, 3, padding=1, use_bias=False,
                                        in_channels=in_channels))
            c = init_channels
            for stage in range(3):
                block = nn.HybridSequential(prefix='stage%d_' % (stage + 1))
                with block.name_scope():
                    for _ in range(n):
                        block.add(DenseLayer(c, growth_rate, dropout, **nk))
                        c += growth_rate
                self.features.add(block)
                if stage < 2:
                    out_c = int(c * compression)
                    trans = nn.HybridSequential(prefix='trans%d_' % (stage + 1))
                    with trans.name_scope():
                        trans.add(make_norm(norm_layer, norm_kwargs, c), nn.Activation('relu'),
                                  nn.Conv2D(out_c, 1, use_bias=False, in_channels=c),
                                  nn.AvgPool2D(2, 2))
                    self.features.add(trans)
                    c = out_c
            self.features.add(make_norm(norm_layer, norm_kwargs, c), nn.Activation('relu'),
                              nn.GlobalAvgPool2D(), nn.Flatten())
            self.num_features = c
            self.output = nn.Dense(classes, in_units=c)

    def hybrid_forward(self, F, x):
        return self.output(self.features(x))


def get_cifar_quick(classes=10, **kwargs):
    return CIFARQuick(classes=classes, **kwargs)


def get_cifar_vgg16(classes=10, **kwargs):
    return CIFARVGG(VGG16_CFG, classes=classes, **kwargs)


def get_cifar_densenet(depth=40, growth_rate=12, classes=10, **kwargs):
    return CIFARDenseNet(depth, growth_rate, classes=classes, **kwargs)


def _gluoncv_kwargs(kwargs):
    from mxnet.gluon.nn import BatchNorm
    kwargs = dict(kwargs)
    if kwargs.get('norm_layer') is None:
        kwargs['norm_layer'] = BatchNorm
    return kwargs


def get_cifar_resnet56_v1(classes=10, **kwargs):
    from gluoncv.model_zoo import cifarresnet
    return cifarresnet.cifar_resnet56_v1(classes=classes, pretrained=False, **_gluoncv_kwargs(kwargs))


def get_cifar_wrn16_8(classes=10, drop_rate=0.0, **kwargs):
    from gluoncv.model_zoo import cifarwideresnet
    # GluonCV ships 16-10, 28-10, 40-8 wrappers; 16-8 comes from its generic builder
    return cifarwideresnet.get_cifar_wide_resnet(16, 8, drop_rate=drop_rate, classes=classes,
                                                 pretrained=False, **_gluoncv_kwargs(kwargs))


CIFAR_MODELS = {
    'cifar_quick': get_cifar_quick,
    'cifar_vgg16': get_cifar_vgg16,
    'cifar_resnet56_v1': get_cifar_resnet56_v1,
    'cifar_wrn16_8': get_cifar_wrn16_8,
    'cifar_densenet40': get_cifar_densenet,
}


def _register():
    for name, fn in CIFAR_MODELS.items():
        register_builder(name, fn, meta=dict(family='cifar', input_shape=CIFAR_INPUT))


_register()
