"""AsymmNet-L / AsymmNet-S (Yang et al., 2021) and their baselines, all from one table-driven builder.

* ``asymmnet_{large,small}_{mult}``          asymmetrical bottleneck, r = 1 (``r`` kwarg: any r >= 0)
* ``asymmnet_{large,small}_{mult}_pruned``   the pruned block of Table 5 (first PW shrunk, no move)
* ``mobilenetv3_{large,small}_{mult}``       the same block with r = 0 = MobileNetV3

Layer tables are the paper's Tables 3 and 4 (identical to MobileNetV3's). Widths are scaled by the
multiplier with ``make_divisible`` (stem, every exp/out, the last 1x1 conv, SE squeeze); block 0's
input is the *scaled* stem width (the authors' code wires it for 16 channels at every width).
"""
import numbers

from mxnet import init as mx_init
from mxnet.gluon import nn

from ..nn import AsymmBottleneck, ConvBNAct, HardSwish, make_norm
from ..registry import register_builder
from ..utils.math import make_divisible
from .backbone import Backbone, FeatureTap

__all__ = ['AsymmNet', 'ARCHS', 'MULTIPLIERS', 'get_asymmnet']

# kernel, exp, out, SE, activation, stride  (paper Table 3 / Table 4, rows 2-17 / 2-12)
ARCHS = {
    'large': dict(
        blocks=[
            (3, 16, 16, False, 'relu', 1),
            (3, 64, 24, False, 'relu', 2),
            (3, 72, 24, False, 'relu', 1),
            (5, 72, 40, True, 'relu', 2),
            (5, 120, 40, True, 'relu', 1),
            (5, 120, 40, True, 'relu', 1),
            (3, 240, 80, False, 'hard_swish', 2),
            (3, 200, 80, False, 'hard_swish', 1),
            (3, 184, 80, False, 'hard_swish', 1),
            (3, 184, 80, False, 'hard_swish', 1),
            (3, 480, 112, True, 'hard_swish', 1),
            (3, 672, 112, True, 'hard_swish', 1),
            (5, 672, 160, True, 'hard_swish', 2),
            (5, 960, 160, True, 'hard_swish', 1),
            (5, 960, 160, True, 'hard_swish', 1),
        ],
        stem=16, last=960, hidden=1280),
    'small': dict(
        blocks=[
            (3, 16, 16, True, 'relu', 2),
            (3, 72, 24, False, 'relu', 2),
            (3, 88, 24, False, 'relu', 1),
            (5, 96, 40, True, 'hard_swish', 2),
            (5, 240, 40, True, 'hard_swish', 1),
            (5, 240, 40, True, 'hard_swish', 1),
            (5, 120, 48, True, 'hard_swish', 1),
            (5, 144, 48, True, 'hard_swish', 1),
            (5, 288, 96, True, 'hard_swish', 2),
            (5, 576, 96, True, 'hard_swish', 1),
            (5, 576, 96, True, 'hard_swish', 1),
        ],
        stem=16, last=576, hidden=1280),
}
MULTIPLIERS = ('0.35', '0.5', '0.75', '1.0', '1.25')


class AsymmNet(Backbone):
    """AsymmNet / MobileNetV3 classifier and backbone.

    Parameters
    ----------
    arch : 'large' | 'small'
    multiplier : float, width multiplier
    r : int, asymmetry rate (0 = MobileNetV3 inverted residual)
    pruned : bool, use the pruned block (Table 5 "Pruned")
    channel_divisor : int, every scaled width is rounded up to a multiple of this (8, the papers'
        rule, by default; e.g. 4 gives custom widths such as 12 or 20 channels)
    last_gamma : bool, zero-initialised gamma of the last BN of every block with a residual sum
        (GluonCV's ``last_gamma``: each residual block starts as the identity)
    classes, dropout, norm_layer, norm_kwargs : as in GluonCV
    """

    def __init__(self, arch='large', multiplier=1.0, r=1, pruned=False, classes=1000, dropout=0.2,
                 norm_layer=None, norm_kwargs=None, in_channels=3, channel_divisor=8, last_gamma=False,
                 **kwargs):
        super(AsymmNet, self).__init__(**kwargs)
        if arch not in ARCHS:
            raise ValueError("arch must be one of %s, got %r" % (sorted(ARCHS), arch))
        spec = ARCHS[arch]
        k = float(multiplier)
        if k <= 0:
            raise ValueError("width multiplier must be positive, got %r" % (multiplier,))
        if not (isinstance(dropout, numbers.Real) and 0 <= dropout < 1):
            raise ValueError("dropout must be a probability in [0, 1), got %r" % (dropout,))
        if isinstance(classes, bool) or not isinstance(classes, numbers.Integral) or classes < 1:
            raise ValueError("classes must be a positive integer (the number of classes), got %r"
                             % (classes,))
        if int(channel_divisor) != channel_divisor or channel_divisor < 1:
            raise ValueError("channel_divisor must be a positive integer, got %r" % (channel_divisor,))
        d = self.channel_divisor = int(channel_divisor)
        self.arch, self.multiplier, self.r, self.pruned = arch, k, r, pruned
        self.in_channels = in_channels
        self._classes = classes
        nk = dict(norm_layer=norm_layer, norm_kwargs=norm_kwargs)
        stem = make_divisible(spec['stem'] * k, d)
        last = make_divisible(spec['last'] * k, d)
        hidden = spec['hidden']
        self.num_features = last
        self.classifier_in_channels = hidden
        taps, stride = {}, 2
        with self.name_scope():
            self.features = nn.HybridSequential(prefix='')
            # stem: kept flat (conv, bn, act) like the released checkpoint
            self.features.add(nn.Conv2D(stem, 3, strides=2, padding=1, use_bias=False,
                                        in_channels=in_channels))
            self.features.add(make_norm(norm_layer, norm_kwargs, stem))
            self.features.add(HardSwish())
            c = stem
            for kernel, exp, out, se, act, s in spec['blocks']:
                e, o = make_divisible(exp * k, d), make_divisible(out * k, d)
                self.features.add(AsymmBottleneck(c, e, o, kernel, s, se, act, r=r, pruned=pruned,
                                                  se_divisor=d, last_gamma=last_gamma, **nk))
                c, stride = o, stride * s
                taps[stride] = (len(self.features), o)  # the last block at this stride wins
            self.features.add(nn.Conv2D(last, 1, use_bias=False, in_channels=c))
            self.features.add(make_norm(norm_layer, norm_kwargs, last))
            self.features.add(HardSwish())
            taps[32] = (len(self.features), last)  # stride-32 tap = the pre-pool map
            self.head = nn.HybridSequential(prefix='head_')
            with self.head.name_scope():
                self.head.add(nn.GlobalAvgPool2D(),
                              nn.Conv2D(hidden, 1, use_bias=False, in_channels=last),
                              HardSwish())
                if dropout:
                    self.head.add(nn.Dropout(dropout))
            self.output = self._make_output(classes)
        self.feature_taps = tuple(FeatureTap(s, taps[s][0], taps[s][1]) for s in (8, 16, 32))

    @property
    def blocks(self):
        return [b for b in self.features if isinstance(b, AsymmBottleneck)]


def get_asymmnet(arch, multiplier, r=1, pruned=False, **kwargs):
    """Build an AsymmNet (r>=1), pruned AsymmNet or MobileNetV3 (r=0)."""
    return AsymmNet(arch, multiplier, r=r, pruned=pruned, **kwargs)


def _register():
    for arch in ('large', 'small'):
        for mult in MULTIPLIERS:
            name = 'asymmnet_%s_%s' % (arch, mult)
            small = (2, 3, 64, 64)   # the smallest input the checks run (any size of 32+ works)
            register_builder(name, get_asymmnet, meta=dict(family='asymmnet', min_input_shape=small),
                             arch=arch, multiplier=float(mult))
            register_builder(name + '_pruned', get_asymmnet,
                             meta=dict(family='asymmnet', base=name, min_input_shape=small),
                             arch=arch, multiplier=float(mult), pruned=True)
            register_builder('mobilenetv3_%s_%s' % (arch, mult), get_asymmnet,
                             meta=dict(family='mobilenetv3', min_input_shape=small), arch=arch,
                             multiplier=float(mult), r=0)


_register()
