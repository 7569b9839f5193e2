"""SimplePose (Xiao et al., 2018) on the zoo's backbones, plus GluonCV's MobilePose on our names.

``simple_pose_{backbone}``: the backbone's stride-32 pre-pool map (``backbone.stages((32,))``, channels
from ``backbone.stage_channels((32,))``), three 4x4 stride-2 deconvolutions (no bias) + BN + ReLU with
256 channels, and a 1x1 convolution (with bias) to the joints: a 256x192 input gives a (17, 64, 48)
heatmap, i.e. input / 4. Initialisation follows GluonCV's SimplePoseResNet (deconvs and final conv
N(0, 0.001), zero bias); the backbone takes whatever ``initialize`` is given.

``mobile_pose_{backbone}``: GluonCV's own :class:`~gluoncv.model_zoo.simple_pose.mobile_pose.MobilePose`
(1x1 conv + three DUC upsamplers) built *by name* on our backbone through GluonCV's model-zoo table
(``asymmzoo`` publishes every name there). GluonCV cuts ``features[:-4]`` off any name starting with
``mobilenetv3`` (its own MobileNetV3 layout); for our ``mobilenetv3_*`` names the contract's stride-32
map is put back so every backbone ends at the same place.
"""
from mxnet import initializer
from mxnet.gluon import nn

from ..nn import make_norm
from .backbone import build_backbone, backbone_stages

__all__ = ['SimplePose', 'get_simple_pose', 'get_mobile_pose', 'NUM_JOINTS']

NUM_JOINTS = 17


def _num_joints(num_joints, classes):
    # ``classes`` is accepted as an alias (the registry's common kwarg): a count of joints
    if classes is not None:
        if not isinstance(classes, int):
            classes = len(classes)
        num_joints = classes
    if num_joints < 1:
        raise ValueError("num_joints must be >= 1, got %r" % (num_joints,))
    return num_joints


class SimplePose(nn.HybridBlock):
    """Backbone stride-32 map -> deconv x3 (+BN+ReLU) -> 1x1 conv to ``num_joints`` heatmaps."""


    def __init__(self, features, in_channels, num_joints=NUM_JOINTS, deconv_filters=(256, 256, 256),
                 deconv_kernels=(4, 4, 4), norm_layer=None, norm_kwargs=None, **kwargs):
        super(SimplePose, self).__init__(**kwargs)
        if len(deconv_filters) != len(deconv_kernels):
            raise ValueError("deconv_filters and deconv_kernels need the same length")
        pads = {4: (1, 0), 3: (1, 1), 2: (0, 0)}
        self.num_joints = num_joints
        with self.name_scope():
            self.features = features
            self.deconv_layers = nn.HybridSequential(prefix='deconv_')
            c = in_channels
            with self.deconv_layers.name_scope():
                for planes, k in zip(deconv_filters, deconv_kernels):
                    if k not in pads:
                        raise ValueError("deconv kernel must be 2, 3 or 4, got %r" % (k,))
                    pad, out_pad = pads[k]
                    self.deconv_layers.add(
                        nn.Conv2DTranspose(planes, k, strides=2, padding=pad, output_padding=out_pad,
                                           use_bias=False, in_channels=c,
                                           weight_initializer=initializer.Normal(0.001)),
                        make_norm(norm_layer, norm_kwargs, planes),
                        nn.Activation('relu'))
                    c = planes
            self.final_layer = nn.Conv2D(num_joints, 1, in_channels=c,
                                         weight_initializer=initializer.Normal(0.001),
                                         bias_initializer=initializer.Zero())

    def hybrid_forward(self, F, x):
        return self.final_layer(self.deconv_layers(self.features(x)))


def get_simple_pose(backbone, num_joints=NUM_JOINTS, classes=None, norm_layer=None, norm_kwargs=None,
                    pretrained_base=False, pretrained_ctx=None, backbone_kwargs=None, **kwargs):
    """SimplePose on a registered zoo backbone (``classes`` = alias of ``num_joints``).

    ``pretrained_base`` (True: the store's weights of ``backbone``, or a path) loads the backbone onto
    ``pretrained_ctx`` (one device or a list; GluonCV's meaning): the network then comes back with its
    backbone initialised and its deconvolution head (``deconv_layers``, ``final_layer``) not, which is
    what GluonCV's ``train_simple_pose.py --use-pretrained-base`` initialises.
    """
    num_joints = _num_joints(num_joints, classes)
    base = build_backbone(backbone, norm_layer=norm_layer, norm_kwargs=norm_kwargs,
                          backbone_kwargs=backbone_kwargs, pretrained=pretrained_base, ctx=pretrained_ctx)
    features = backbone_stages(base, (32,))[0]
    net = SimplePose(features, base.stage_channels((32,))[0], num_joints=num_joints,
                     norm_layer=norm_layer, norm_kwargs=norm_kwargs, **kwargs)
    net.backbone_name = backbone
    return net


def get_mobile_pose(backbone, num_joints=NUM_JOINTS, classes=None, pretrained_base=False,
                    pretrained_ctx=None, backbone_kwargs=None, **kwargs):
    """GluonCV's MobilePose, built by its own name-based builder on a zoo backbone.

    ``pretrained_base`` / ``pretrained_ctx`` as in :func:`get_simple_pose`: the backbone comes back
    loaded, the ``upsampling`` head uninitialised (what GluonCV's script initialises).
    """
    from gluoncv.model_zoo.simple_pose.mobile_pose import get_mobile_pose as _gluon_mobile_pose
    from ..utils.blocks import replace_child
    num_joints = _num_joints(num_joints, classes)
    # a clear error for an unknown name before GluonCV's KeyError
    build_backbone(backbone, backbone_kwargs=backbone_kwargs)
    if backbone.startswith('mobilenet') or backbone_kwargs:
        # GluonCV's prefix rule cuts features[:-4] off names starting with 'mobilenetv3' (its own
        # layout), which would drop our last block, and its builder cannot pass backbone options:
        # build its base unloaded, then put the contract's stride-32 map back, built and loaded as asked
        net = _gluon_mobile_pose(backbone, base_attrs=('features',), num_joints=num_joints,
                                 pretrained_base=False, **kwargs)
        with net.name_scope():
            base = build_backbone(backbone, backbone_kwargs=backbone_kwargs, pretrained=pretrained_base,
                                  ctx=pretrained_ctx)
            features = backbone_stages(base, (32,))[0]
        replace_child(net.features, '0', features)
    else:
        net = _gluon_mobile_pose(backbone, base_attrs=('features',), num_joints=num_joints,
                                 pretrained_base=pretrained_base, pretrained_ctx=pretrained_ctx,
                                 **kwargs)
    net.backbone_name = backbone
    return net
