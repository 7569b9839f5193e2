"""Squeeze-and-excitation as in MobileNetV3 / AsymmNet."""
from mxnet.gluon import nn

from .activations import HardSigmoid
from ..utils.math import make_divisible

__all__ = ['SE']


class SE(nn.HybridBlock):
    """GAP -> 1x1 conv (bias) to make_divisible(channels // ratio, divisor) -> ReLU -> 1x1 conv
    (bias) back -> hard-sigmoid -> channel-wise scale of the input."""

    def __init__(self, channels, ratio=4, divisor=8, **kwargs):
        super(SE, self).__init__(**kwargs)
        mid = make_divisible(channels // ratio, divisor)
        self.squeeze_channels = mid
        with self.name_scope():
            self.pool = nn.GlobalAvgPool2D()
            self.conv1 = nn.Conv2D(mid, 1, use_bias=True, in_channels=channels)
            self.act1 = nn.Activation('relu')
            self.conv2 = nn.Conv2D(channels, 1, use_bias=True, in_channels=mid)
            self.act2 = HardSigmoid()

    def hybrid_forward(self, F, x):
        w = self.act2(self.conv2(self.act1(self.conv1(self.pool(x)))))
        return F.broadcast_mul(x, w)
