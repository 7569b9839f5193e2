"""The asymmetrical bottleneck (AsymmNet, Table 2 / Eq. 3), its pruned variant, and r=0 =
MobileNetV3's inverted residual."""
import numbers

from mxnet.gluon import nn

from .conv_bn import ConvBNAct
from .se import SE
from .concat import channel_concat

__all__ = ['AsymmBottleneck', 'bottleneck_widths']


def bottleneck_widths(in_channels, exp_channels, r=1, pruned=False):
    """Channel bookkeeping of one block.

    Returns ``(expand_channels, dw_channels, copies_left, copies_right)``: the width of the first
    1x1 conv (0 = no expand), the depthwise width, and how many raw copies of the input are
    concatenated on each side of the expanded features.
    """
    c, e = in_channels, exp_channels
    if isinstance(r, bool) or not isinstance(r, numbers.Real) or r < 0 or int(r) != r:
        raise ValueError("asymmetry rate r must be a non-negative integer, got %r" % (r,))
    r = int(r)
    if e > max(c, r * c):
        expand = e - r * c
        if pruned:
            return expand, e, r, 0
        return expand, e + r * c, r, r
    if e != c:
        raise ValueError("expansion width %d must exceed max(C, r*C) = %d for an expanding block "
                         "(C=%d, r=%d); lower r" % (e, max(c, r * c), c, r))
    return 0, c, 0, 0


class AsymmBottleneck(nn.HybridBlock):
    """Asymmetrical bottleneck block.

    For input X (C channels), expansion width E, asymmetry rate r:
    ``Y = act(BN(conv1x1(X)))`` with E - r*C channels, then ``[X]*r | Y | [X]*r`` (E + r*C channels;
    the pruned block concatenates ``[X]*r | Y`` only: E channels) -> depthwise kxk, stride s, BN, act
    -> SE (optional) -> 1x1 projection to O, BN -> + X when C == O and s == 1.
    r = 0 is exactly MobileNetV3's inverted residual. The first block of a network (E == C) has no
    expand and no concat.

    Child names follow the AsymmNet authors' released checkpoint: ``expand``, ``conv1`` (depthwise),
    ``se``, ``conv2`` (projection). ``last_gamma`` initialises the projection's BN gamma to zero in a
    block with a residual sum (as GluonCV's ResNets do for the last BN of a residual block), so the
    block starts as the identity; blocks without a residual are unchanged.
    """

    def __init__(self, in_channels, exp_channels, out_channels, kernel_size=3, strides=1, use_se=False,
                 act='relu', r=1, pruned=False, norm_layer=None, norm_kwargs=None, se_divisor=8,
                 last_gamma=False, **kwargs):
        super(AsymmBottleneck, self).__init__(**kwargs)
        expand, dw, left, right = bottleneck_widths(in_channels, exp_channels, r, pruned)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.expand_channels, self.dw_channels = expand, dw
        self.copies = (left, right)
        self.strides = strides
        self.use_residual = in_channels == out_channels and strides == 1
        nk = dict(norm_layer=norm_layer, norm_kwargs=norm_kwargs)
        with self.name_scope():
            if expand:
                self.expand = ConvBNAct(in_channels, expand, 1, act=act, **nk)
            self.conv1 = ConvBNAct(dw, dw, kernel_size, strides=strides, groups=dw, act=act, **nk)
            if use_se:
                self.se = SE(dw, divisor=se_divisor)
            if last_gamma and self.use_residual:   # the block starts as the identity (GluonCV's last_gamma)
                nk['norm_kwargs'] = dict(norm_kwargs or {}, gamma_initializer='zeros')
            self.conv2 = ConvBNAct(dw, out_channels, 1, act=None, **nk)
        self.use_se = use_se
        self.plain_concat = False  # True only in inference graphs (see asymmzoo.nn.concat)

    def hybrid_forward(self, F, x):
        out = x
        if self.expand_channels:
            y = self.expand(x)
            left, right = self.copies
            parts = [x] * left + [y] + [x] * right
            out = channel_concat(F, *parts, plain=self.plain_concat)
        out = self.conv1(out)
        if self.use_se:
            out = self.se(out)
        out = self.conv2(out)
        if self.use_residual:
            out = out + x
        return out
