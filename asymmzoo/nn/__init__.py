"""Building blocks: asymmetrical bottleneck, SE, activations, conv-BN units, the training-safe channel
concat, the Asymmetric Convolution Block (ACNet) and RotateConv."""
from .activations import ReLU6, HardSigmoid, HardSwish, make_activation
from .conv_bn import ConvBNAct, make_norm
from .se import SE
from .concat import channel_concat, use_plain_concat
from .bottleneck import AsymmBottleneck, bottleneck_widths
from .acb import ACBlock, ACBAbsorbedBN
from .rotate import RotateConv2D, project_angles, snapshot_angles
