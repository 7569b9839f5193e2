"""RotateConv (Ma et al., "RotateConv: Making Asymmetric Convolutional Kernels Rotatable", ICPR 2018).

A RotateConv kernel is a line segment of three taps ``w0`` (centre), ``w1``, ``w2`` (the two ends)
at a learnable angle ``theta`` (degrees, counter-clockwise from +x). No public implementation exists;
this one is the project's reference; its angle convention (docs/rotateconv.md, "Angle convention
and composition") is the project's decision, written out below.

Composition ("inverse interpolation", paper Eq. 3). ``K[r, c]``, row 0 at the top, centre (1, 1).
``t = theta - 180 * floor(theta / 180)``, sector ``s = floor(t / 45)``, ``a = (t mod 45) / 45``.
``w0`` sits at the centre; ``w1`` puts ``(1 - a) * w1`` on its "small" cell and ``a * w1`` on its "big"
cell, ``w2`` likewise at the opposite end:

=============  ==========  ========  ==========  ========
theta          w1 (1-a)    w1 (a)    w2 (1-a)    w2 (a)
=============  ==========  ========  ==========  ========
[0, 45)        (1,2)       (0,2)     (1,0)       (2,0)
[45, 90)       (0,2)       (0,1)     (2,0)       (2,1)
[90, 135)      (0,1)       (0,0)     (2,1)       (2,2)
[135, 180)     (0,0)       (1,0)     (2,2)       (1,2)
=============  ==========  ========  ==========  ========

theta = 0 gives the horizontal kernel ``[w2, w0, w1]`` (centre row), theta = 90 the vertical one with
``w1`` on top. The composition is built from differentiable MXNet operators (``floor`` and the sector
masks carry no gradient), so autograd gives exactly the paper's Eq. 5 gradients, with
``f'(theta) = 1/45`` per degree; it runs the same imperatively and hybridized.

The 2-parameter version (paper III.B) shares one weight ``w`` for the three taps.

Training: angles move by ordinary gradient steps and are then projected with Eq. 6 by
:func:`project_angles` (call it after every ``trainer.step``). Angles carry no weight decay
(``wd_mult = 0``: decay would pull every angle towards 0 degrees).

Deployment: ``asymmzoo.deploy(net)`` replaces each RotateConv2D by a plain 3x3 ``nn.Conv2D`` holding
the composed kernel (converter registered below). :func:`asymmzoo.transforms.rotatify` turns every 3x3 convolution of a
network into a RotateConv2D.
"""
import numpy as np
import mxnet as mx
from mxnet import initializer
from mxnet.gluon import nn
from mxnet.gluon.block import HybridBlock

from ..utils.blocks import iter_blocks, replace_child, clear_cached_graphs

__all__ = ['RotateConv2D', 'compose_rotate_kernel', 'AngleUniform', 'LineKernelXavier', 'project_angles',
           'snapshot_angles', 'rotate_convs', 'DEFAULT_EPS']

#: default epsilon (degrees) of the Eq. 6 angle projection
DEFAULT_EPS = 1.0


class AngleUniform(initializer.Initializer):
    """Angles uniform in ``[low, high)`` degrees (paper III.A.5: "in the range from zero to 180")."""

    def __init__(self, low=0.0, high=180.0):
        super(AngleUniform, self).__init__(low=low, high=high)
        self.low, self.high = float(low), float(high)

    def _init_weight(self, _, arr):
        mx.nd.random.uniform(self.low, self.high, shape=arr.shape, dtype=arr.dtype, out=arr)

    _init_default = _init_weight


class LineKernelXavier(initializer.Xavier):
    """Xavier for line-kernel weights: fans count the three taps whatever the weight's last axis.

    ``mx.init.Xavier`` reads the 2-parameter weight (C_out, C_in/g, 1) as a 1x1 kernel and gives it
    3x the variance a 3-tap kernel should get (every layer then amplifies, and a plain network
    diverges). The default for ``num_params=2``; ``num_params=4`` weights (C_out, C_in/g, 3) follow
    the global initializer, whose fans are already right.
    """

    def _init_weight(self, name, arr):
        shape = arr.shape
        fan_in, fan_out = shape[1] * 3.0, shape[0] * 3.0
        factor = {'avg': (fan_in + fan_out) / 2.0, 'in': fan_in, 'out': fan_out}[self.factor_type]
        scale = np.sqrt(self.magnitude / factor)
        if self.rnd_type == 'uniform':
            mx.nd.random.uniform(-scale, scale, shape=shape, dtype=arr.dtype, out=arr)
        else:
            mx.nd.random.normal(0, scale, shape=shape, dtype=arr.dtype, out=arr)

    _init_default = _init_weight


def compose_rotate_kernel(F, weight, theta, num_params=None):
    """The (C_out, C_in/g, 3, 3) kernel composed from ``weight`` (C_out, C_in/g, 3 | 1) and
    ``theta`` (C_out, C_in/g) degrees, with MXNet ops of namespace ``F`` (mx.nd or mx.sym).

    ``weight[..., 0]`` is w0 (centre), ``[..., 1]`` w1, ``[..., 2]`` w2; a last axis of size 1 is the
    weight-shared 2-parameter version. ``num_params`` (4 or 2) is read off an NDArray's shape when
    not given; pass it for symbols, whose shapes are unknown.
    """
    if num_params is None and not hasattr(weight, 'shape'):
        raise ValueError("pass num_params=4 or 2 when composing symbols")
    return _compose(F, weight, theta, num_params)


def _compose(F, weight, theta, num_params):
    t = theta - 180.0 * F.floor(theta / 180.0)
    # float rounding can leave t at -tiny or 180 exactly; fold back into [0, 180)
    t = t + 180.0 * F._internal._lesser_scalar(t, scalar=0.0) \
        - 180.0 * F._internal._greater_equal_scalar(t, scalar=180.0)
    s = F.clip(F.floor(t / 45.0), 0.0, 3.0)
    a = t / 45.0 - s                            # d a / d theta = 1 / 45 (floor has zero gradient)
    m = [F._internal._equal_scalar(s, scalar=float(k)) for k in range(4)]
    one_minus_a = 1.0 - a
    # c_p: coefficient that a tip puts on the p-th ring cell counted from its sector's small cell
    c0 = one_minus_a * m[0]
    c1 = one_minus_a * m[1] + a * m[0]
    c2 = one_minus_a * m[2] + a * m[1]
    c3 = one_minus_a * m[3] + a * m[2]
    c4 = a * m[3]
    if num_params is None:
        num_params = 4 if weight.shape[-1] == 3 else 2
    if num_params == 4:
        w0 = F.reshape(F.slice_axis(weight, axis=-1, begin=0, end=1), shape=(0, 0))
        w1 = F.reshape(F.slice_axis(weight, axis=-1, begin=1, end=2), shape=(0, 0))
        w2 = F.reshape(F.slice_axis(weight, axis=-1, begin=2, end=3), shape=(0, 0))
    else:
        w0 = w1 = w2 = F.reshape(weight, shape=(0, 0))
    # ring cells counter-clockwise from (1,2): (1,2) (0,2) (0,1) (0,0) (1,0) (2,0) (2,1) (2,2);
    # w1's small cell is ring[s], w2's is ring[s + 4]
    cells = [w1 * c3,                 # (0,0)
             w1 * c2,                 # (0,1)
             w1 * c1,                 # (0,2)
             w1 * c4 + w2 * c0,       # (1,0)
             w0,                      # (1,1)
             w1 * c0 + w2 * c4,       # (1,2)
             w2 * c1,                 # (2,0)
             w2 * c2,                 # (2,1)
             w2 * c3]                 # (2,2)
    k = F.stack(*cells, axis=2)
    return F.reshape(k, shape=(0, 0, 3, 3))


class RotateConv2D(HybridBlock):
    """3x3 convolution whose every (output, input) kernel is a rotatable line segment.

    Parameters
    ----------
    channels : int, output channels
    in_channels : int, input channels (required: the composition needs the parameter shapes)
    strides, padding : int or tuple, as nn.Conv2D (padding default 1 keeps the size)
    groups : int, grouped / depthwise convolution
    num_params : 4 (three weights + angle per kernel) or 2 (one shared weight + angle)
    use_bias : bool
    theta_init : None (uniform [0, 180)), a number (every angle = that value, degrees), or an
        ``mx.init.Initializer``
    weight_initializer, bias_initializer : as nn.Conv2D; the 2-parameter version defaults to
        :class:`LineKernelXavier` (magnitude 2) instead of the global initializer
    activation : optional activation name applied after the convolution (as nn.Conv2D)
    kernel_size : must be 3 (the line segment has three taps)

    Parameters created: ``weight`` (channels, in_channels / groups, 3 or 1), ``theta``
    (channels, in_channels / groups) in degrees (``wd_mult = 0``), ``bias`` (channels,) if use_bias.
    """

    def __init__(self, channels, in_channels, strides=1, padding=1, groups=1, num_params=4,
                 use_bias=False, theta_init=None, weight_initializer=None, bias_initializer='zeros',
                 activation=None, kernel_size=3, **kwargs):
        super(RotateConv2D, self).__init__(**kwargs)
        if kernel_size not in (3, (3, 3), [3, 3]):
            raise ValueError("RotateConv2D kernels are 3-tap line segments inside a 3x3 window; "
                             "kernel_size must be 3, got %r" % (kernel_size,))
        if num_params not in (2, 4):
            raise ValueError("num_params must be 4 (3 weights + angle) or 2 (shared weight + angle), "
                             "got %r" % (num_params,))
        if not in_channels or in_channels <= 0:
            raise ValueError("RotateConv2D needs in_channels > 0 (got %r): the kernel is composed from "
                             "parameters whose shapes must be known; rotatify() infers it for you"
                             % (in_channels,))
        if in_channels % groups or channels % groups:
            raise ValueError("in_channels (%d) and channels (%d) must be divisible by groups (%d)"
                             % (in_channels, channels, groups))
        self._channels, self._in_channels = int(channels), int(in_channels)
        self._groups, self._num_params = int(groups), int(num_params)
        self._strides = (strides,) * 2 if isinstance(strides, int) else tuple(strides)
        self._padding = (padding,) * 2 if isinstance(padding, int) else tuple(padding)
        self._use_bias = bool(use_bias)
        self._act_type = activation
        if theta_init is None:
            theta_init = AngleUniform()
        elif isinstance(theta_init, (int, float)):
            theta_init = initializer.Constant(float(theta_init))
        nw = 3 if num_params == 4 else 1
        if weight_initializer is None and num_params == 2:
            weight_initializer = LineKernelXavier(magnitude=2.0)
        cin = in_channels // groups
        with self.name_scope():
            self.weight = self.params.get('weight', shape=(channels, cin, nw),
                                          init=weight_initializer, allow_deferred_init=True)
            self.theta = self.params.get('theta', shape=(channels, cin), init=theta_init,
                                         wd_mult=0.0, allow_deferred_init=True)
            if use_bias:
                self.bias = self.params.get('bias', shape=(channels,), init=bias_initializer,
                                            allow_deferred_init=True)
            else:
                self.bias = None

    @property
    def num_params(self):
        return self._num_params

    def hybrid_forward(self, F, x, weight, theta, bias=None):
        kernel = _compose(F, weight, theta, self._num_params)
        out = F.Convolution(x, kernel, bias, kernel=(3, 3), stride=self._strides, pad=self._padding,
                            num_filter=self._channels, num_group=self._groups,
                            no_bias=bias is None, name='fwd')
        if self._act_type:
            out = F.Activation(out, act_type=self._act_type)
        return out

    def kernel(self, ctx=None):
        """The composed (channels, in_channels / groups, 3, 3) kernel as an NDArray."""
        return _compose(mx.nd, self.weight.data(ctx), self.theta.data(ctx), self._num_params)

    def load_line_kernels(self, kernels):
        """Initialise weights and angles from pre-trained 1x3 or 3x1 kernels (paper III.A.5).

        ``kernels``: array (channels, in_channels / groups, 1, 3) -> theta = 0, [w2, w0, w1] = the row;
        or (..., 3, 1) -> theta = 90, [w1, w0, w2] = the column top to bottom. The 2-parameter version
        takes the mean of the three taps (the least-squares shared weight). Composing then reproduces
        the given kernel exactly (4-parameter version).
        """
        k = kernels.asnumpy() if isinstance(kernels, mx.nd.NDArray) else np.asarray(kernels)
        cin = self._in_channels // self._groups
        if k.shape == (self._channels, cin, 1, 3):
            line, angle = k[:, :, 0, :], 0.0
            w0, w1, w2 = line[..., 1], line[..., 2], line[..., 0]
        elif k.shape == (self._channels, cin, 3, 1):
            line, angle = k[:, :, :, 0], 90.0
            w0, w1, w2 = line[..., 1], line[..., 0], line[..., 2]
        else:
            raise ValueError("expected 1x3 or 3x1 kernels of shape (%d, %d, 1, 3) or (%d, %d, 3, 1), "
                             "got %s" % (self._channels, cin, self._channels, cin, k.shape))
        if self._num_params == 4:
            w = np.stack([w0, w1, w2], axis=-1)
        else:
            w = ((w0 + w1 + w2) / 3.0)[..., None]
        self.weight.set_data(mx.nd.array(w, dtype=self.weight.dtype))
        self.theta.set_data(mx.nd.full(self.theta.shape, angle, dtype=self.theta.dtype))
        for b in rotate_convs(self):
            b._theta_last = None

    def __repr__(self):
        s = '{name}({inc} -> {c}, num_params={p}, stride={st}, padding={pad}'.format(
            name=type(self).__name__, inc=self._in_channels, c=self._channels, p=self._num_params,
            st=self._strides, pad=self._padding)
        if self._groups != 1:
            s += ', groups=%d' % self._groups
        if self._use_bias:
            s += ', bias'
        if self._act_type:
            s += ', act=%s' % self._act_type
        return s + ')'

    def deploy_convert(self, parent, key):
        """RotateConv2D -> nn.Conv2D 3x3 with the composed kernel (and the same bias)."""
        ctxs = self.weight.list_ctx()
        conv = nn.Conv2D(self._channels, 3, strides=self._strides, padding=self._padding,
                         groups=self._groups, use_bias=self._use_bias, in_channels=self._in_channels,
                         activation=self._act_type, prefix=self.prefix)
        conv.initialize(ctx=ctxs)
        conv.cast(self.weight.dtype)
        conv.weight.set_data(self.kernel(ctxs[0]))
        if self._use_bias:
            conv.bias.set_data(self.bias.data(ctxs[0]))
        return conv


def rotate_convs(net):
    """Every RotateConv2D in ``net`` (including ``net`` itself)."""
    found = [net] if isinstance(net, RotateConv2D) else []
    found += [child for _, _, _, child in iter_blocks(net) if isinstance(child, RotateConv2D)]
    return found


# ---------------------------------------------------------------------------------------------
# Eq. 6: the angle update rule, as a projection after the optimiser step
# ---------------------------------------------------------------------------------------------
def _wrap(th):
    th = np.mod(th, 180.0)
    th[th >= 180.0] = 0.0  # np.mod(-tiny, 180) rounds to 180 in float32
    return th


def snapshot_angles(net):
    """Wrap every angle into [0, 180) and remember it as ``theta_last`` for the next projection.

    Call once after ``initialize`` (or loading weights) and before training; :func:`project_angles`
    calls it implicitly for blocks that have no snapshot yet.
    """
    for b in rotate_convs(net):
        th = _wrap(b.theta.data().asnumpy().astype(np.float64))
        b.theta.set_data(mx.nd.array(th, dtype=b.theta.dtype))
        b._theta_last = th
    return net


def project_angles(net, eps=DEFAULT_EPS):
    """Apply the paper's Eq. 6 to every RotateConv2D of ``net``; call after each ``trainer.step``.

    With ``theta_last`` the angle after the previous projection (in [0, 180)) and
    ``small = theta_last - theta_last % 45``, ``big = small + 45``, the stepped angle is clipped to
    ``[small - eps, big + eps]`` (eps in degrees) and wrapped ``% 180``. Blocks without a snapshot
    (first call) are only wrapped. Returns the number of angles the clip changed.

    Usage::

        snapshot_angles(net)                        # once, after initialisation
        for x, y in data:
            with autograd.record():
                loss = loss_fn(net(x), y)
            loss.backward()
            trainer.step(batch_size)
            project_angles(net, eps=1.0)
    """
    if eps < 0:
        raise ValueError("eps must be >= 0 degrees, got %r" % (eps,))
    clipped = 0
    for b in rotate_convs(net):
        th = b.theta.data().asnumpy().astype(np.float64)
        last = getattr(b, '_theta_last', None)
        if last is not None and last.shape == th.shape:
            small = last - np.mod(last, 45.0)
            lo, hi = small - eps, small + 45.0 + eps
            new = np.clip(th, lo, hi)
            clipped += int(np.sum(new != th))
            th = new
        th = _wrap(th)
        b.theta.set_data(mx.nd.array(th, dtype=b.theta.dtype))
        b._theta_last = th
    return clipped
