"""Asymmetric Convolution Block (ACNet, Ding et al. 2019).

Three branches on the same input -- square kxk, vertical kx1, horizontal 1xk -- each a conv without
bias followed by its own BN; the output is the sum of the three BN outputs. After training the block
fuses into one kxk conv with bias (``get_equivalent_kernel_bias``), exactly in inference mode.

Padding (docs/acnet.md, "Padding"): with square padding p and c = p - k//2, if c >= 0 the 1xk branch pads
(c, p) and the kx1 branch (p, c) as (pad_h, pad_w); if c < 0 the input is cropped by k//2 - p: the 1xk
branch sees rows [crop:-crop] with padding (0, p), the kx1 branch columns [crop:-crop] with padding
(p, 0). Both branches then read exactly the centre row / centre column of every square window.

``asym_kernel_size=a`` (odd, 3 <= a <= k) gives shorter 1xa / ax1 branches that sit on the middle of
the centre row / column (ACNet used 1x3 / 3x1 on AlexNet's 11x11 and 5x5 layers); the same rule
applies per axis: a branch needs padding p - (k - a)/2 along its long axis and crops when negative.
"""
import numpy as np
import mxnet as mx
from mxnet.gluon import nn

__all__ = ['ACBlock', 'ACBAbsorbedBN', 'fuse_bn', 'bn_stats']


def _pair(v, what):
    if isinstance(v, (tuple, list)):
        if len(v) != 2:
            raise ValueError("%s must be an int or a pair, got %r" % (what, v))
        return int(v[0]), int(v[1])
    return int(v), int(v)


def bn_stats(bn):
    """(gamma, beta, running_mean, running_var, eps) of a BatchNorm as float64 numpy arrays.

    gamma is all ones when the BN was built with ``scale=False`` (MXNet's ``fix_gamma``).
    """
    kw = getattr(bn, '_kwargs', {})
    axis = kw.get('axis', 1)
    if axis != 1:
        raise ValueError("only channel-axis-1 (NCHW) BatchNorm can be fused, got axis=%r" % (axis,))
    gamma = bn.gamma.data().asnumpy().astype(np.float64)
    if kw.get('fix_gamma', False):
        gamma = np.ones_like(gamma)
    beta = bn.beta.data().asnumpy().astype(np.float64)
    mean = bn.running_mean.data().asnumpy().astype(np.float64)
    var = bn.running_var.data().asnumpy().astype(np.float64)
    return gamma, beta, mean, var, float(kw.get('eps', 1e-5))


def fuse_bn(kernel, bn, conv_bias=None):
    """Fold an inference-mode BN into the conv kernel in front of it: (kernel', bias') in float64."""
    gamma, beta, mean, var, eps = bn_stats(bn)
    t = gamma / np.sqrt(var + eps)
    kernel = np.asarray(kernel, dtype=np.float64) * t.reshape(-1, 1, 1, 1)
    b = beta - mean * t
    if conv_bias is not None:
        b = b + np.asarray(conv_bias, dtype=np.float64) * t
    return kernel, b


class ACBlock(nn.HybridBlock):
    """Asymmetric Convolution Block, a drop-in for ``nn.Conv2D`` (+ the BN after it).

    Parameters
    ----------
    channels, kernel_size, strides, padding, groups, in_channels : as in ``nn.Conv2D``;
        ``kernel_size`` must be an odd square k >= 3 and ``padding`` square.
    dilation : must be 1 (ACB's fusion does not hold for dilated kernels); anything else is refused.
    activation : optional activation applied after the sum (what a ``Conv2D(activation=...)`` had).
    gamma_init : float or None, initial value of the three BN gammas (ACNet suggests 1/3).
    asym_kernel_size : odd int a with 3 <= a <= k, length of the 1xa / ax1 branches (default k).
    norm_layer, norm_kwargs : the branch norm layer (default ``nn.BatchNorm``, eps 1e-5).

    Children are named ``square_conv, square_bn, ver_conv, ver_bn, hor_conv, hor_bn`` (ACNet's own
    names, so weights port over by name).
    """

    def __init__(self, channels, kernel_size, strides=1, padding=0, groups=1, in_channels=0,
                 dilation=1, activation=None, gamma_init=None, norm_layer=None, norm_kwargs=None,
                 asym_kernel_size=None, **kwargs):
        super(ACBlock, self).__init__(**kwargs)
        kh, kw = _pair(kernel_size, 'kernel_size')
        if kh != kw:
            raise ValueError("ACBlock needs a square kernel, got %dx%d; use a plain Conv2D for "
                             "rectangular kernels" % (kh, kw))
        k = kh
        if k < 3 or k % 2 == 0:
            raise ValueError("ACBlock needs an odd kernel size k >= 3 (the kx1 and 1xk branches must "
                             "sit on a centre row / column), got %d; keep a plain Conv2D for it" % k)
        if _pair(dilation, 'dilation') != (1, 1):
            raise ValueError("ACBlock does not support dilation %r: the asymmetric branches cannot be "
                             "fused into a dilated kernel; keep a plain Conv2D (dilation=1 only)"
                             % (dilation,))
        ph, pw = _pair(padding, 'padding')
        if ph != pw:
            raise ValueError("ACBlock needs square padding, got (%d, %d)" % (ph, pw))
        p = ph
        if p < 0:
            raise ValueError("padding must be >= 0, got %d" % p)
        if in_channels and in_channels % groups:
            raise ValueError("in_channels %d is not divisible by groups %d" % (in_channels, groups))
        if channels % groups:
            raise ValueError("channels %d is not divisible by groups %d" % (channels, groups))
        self.channels, self.kernel_size, self.groups = channels, k, groups
        self.strides = _pair(strides, 'strides')
        self.padding = p
        self.in_channels = in_channels
        self.activation = activation
        self.gamma_init = gamma_init
        a = k if asym_kernel_size is None else int(asym_kernel_size)
        if a < 3 or a % 2 == 0 or a > k:
            raise ValueError("asym_kernel_size must be odd with 3 <= a <= kernel_size %d, got %r"
                             % (k, asym_kernel_size))
        self.asym_kernel_size = a
        c = p - k // 2            # short axis: the branch reads the centre row / column
        d = p - (k - a) // 2      # long axis: the branch reads the middle a taps of it
        # (pad_h, pad_w) of each branch; a negative entry means "crop that many on both sides"
        hor = (c, d)
        ver = (d, c)
        self._hor_crop = tuple(max(-v, 0) for v in hor)
        self._ver_crop = tuple(max(-v, 0) for v in ver)
        hor_pad = tuple(max(v, 0) for v in hor)
        ver_pad = tuple(max(v, 0) for v in ver)
        nk = dict(norm_kwargs or {})
        nk.setdefault('in_channels', channels)
        if norm_layer is None:
            norm_layer = nn.BatchNorm
            nk.setdefault('epsilon', 1e-5)
        if gamma_init is not None:
            nk['gamma_initializer'] = mx.init.Constant(float(gamma_init))
        conv = dict(strides=self.strides, groups=groups, use_bias=False, in_channels=in_channels)
        with self.name_scope():
            self.square_conv = nn.Conv2D(channels, (k, k), padding=(p, p), prefix='square_conv_',
                                         **conv)
            self.square_bn = norm_layer(prefix='square_bn_', **nk)
            self.ver_conv = nn.Conv2D(channels, (a, 1), padding=ver_pad, prefix='ver_conv_', **conv)
            self.ver_bn = norm_layer(prefix='ver_bn_', **nk)
            self.hor_conv = nn.Conv2D(channels, (1, a), padding=hor_pad, prefix='hor_conv_', **conv)
            self.hor_bn = norm_layer(prefix='hor_bn_', **nk)
            self.act = nn.Activation(activation) if activation else None

    def hybrid_forward(self, F, x):
        square = self.square_bn(self.square_conv(x))
        out = square + self.ver_bn(self.ver_conv(self._crop(F, x, self._ver_crop))) \
            + self.hor_bn(self.hor_conv(self._crop(F, x, self._hor_crop)))
        if self.act is not None:
            out = self.act(out)
        return out

    @staticmethod
    def _crop(F, x, crop):
        for axis, n in zip((2, 3), crop):
            if n:
                x = F.slice_axis(x, axis=axis, begin=n, end=-n)
        return x

    @property
    def crop(self):
        """Rows cropped for the 1xk branch (= columns for the kx1 branch): k//2 - p when positive."""
        return self._hor_crop[0]

    def get_equivalent_kernel_bias(self, as_numpy=False):
        """The fused (OIHW kernel, bias) of the block in inference mode (running statistics).

        Returned as NDArrays on the block's context (float32), or float64 numpy arrays with
        ``as_numpy=True``.
        """
        k, m = self.kernel_size, self.kernel_size // 2
        lo, hi = m - self.asym_kernel_size // 2, m + self.asym_kernel_size // 2 + 1
        sq, b = fuse_bn(self.square_conv.weight.data().asnumpy(), self.square_bn)
        ver, bv = fuse_bn(self.ver_conv.weight.data().asnumpy(), self.ver_bn)
        hor, bh = fuse_bn(self.hor_conv.weight.data().asnumpy(), self.hor_bn)
        kernel = sq.copy()
        kernel[:, :, lo:hi, m:m + 1] += ver   # a x 1 onto the middle of the centre column
        kernel[:, :, m:m + 1, lo:hi] += hor   # 1 x a onto the middle of the centre row
        bias = b + bv + bh
        assert kernel.shape[2:] == (k, k)
        if as_numpy:
            return kernel, bias
        ctx = self.square_conv.weight.list_ctx()[0]
        return (mx.nd.array(kernel, ctx=ctx, dtype='float32'),
                mx.nd.array(bias, ctx=ctx, dtype='float32'))

    def to_conv(self, use_bias=True):
        """A plain initialised ``nn.Conv2D`` carrying the fused kernel (and bias when ``use_bias``)."""
        kernel, bias = self.get_equivalent_kernel_bias()
        in_ch = kernel.shape[1] * self.groups
        conv = nn.Conv2D(self.channels, self.kernel_size, strides=self.strides, padding=self.padding,
                         groups=self.groups, use_bias=use_bias, in_channels=in_ch,
                         activation=self.activation)
        ctxs = self.square_conv.weight.list_ctx()
        conv.initialize(ctx=ctxs)
        conv.weight.set_data(kernel)
        if use_bias:
            conv.bias.set_data(bias)
        return conv

    def __repr__(self):
        return '{name}({cin} -> {c}, kernel={k}, stride={s}, padding={p}, groups={g}{a}{b})'.format(
            name=type(self).__name__, cin=self.in_channels or None, c=self.channels,
            k=self.kernel_size, s=self.strides, p=self.padding, g=self.groups,
            a=', act=%s' % self.activation if self.activation else '',
            b=', asym=%d' % self.asym_kernel_size if self.asym_kernel_size != self.kernel_size else '')

    def deploy_convert(self, parent, key):
        """The deployed form (what :func:`asymmzoo.deploy` puts in this block's slot): one kxk conv
        holding the fused kernel; where this block absorbed the BN next to it, that BN comes back in
        its slot holding the fused bias (so the base structure is restored)."""
        from ..utils.blocks import replace_child, clear_cached_graphs
        bn_key = getattr(self, '_absorbed_key', None)
        if bn_key is not None:
            # the container being walked wins when it holds this ACB's own placeholder (a backbone's
            # blocks re-homed into a head's stages() containers); else the container acnetify saw
            here = parent._children.get(bn_key)
            if isinstance(here, ACBAbsorbedBN) and getattr(here, '_owner', lambda: None)() is self:
                bn_parent = parent
            else:
                ref = getattr(self, '_absorbed_parent', None)
                bn_parent = (ref() if ref is not None else None) or parent
            ph = bn_parent._children.get(bn_key)
            if not isinstance(ph, ACBAbsorbedBN):
                raise RuntimeError("the BN slot %r next to ACBlock %r is no longer its placeholder; "
                                   "the network was edited after acnetify" % (bn_key, key))
            kernel, bias = self.get_equivalent_kernel_bias()
            use_bias = getattr(self, '_base_use_bias', False)
            in_ch = kernel.shape[1] * self.groups
            conv = nn.Conv2D(self.channels, self.kernel_size, strides=self.strides,
                             padding=self.padding, groups=self.groups, use_bias=use_bias,
                             in_channels=in_ch)
            bn = ph.make_bn()
            ctxs = self.square_conv.weight.list_ctx()
            conv.initialize(ctx=ctxs)
            bn.initialize(ctx=ctxs)
            conv.weight.set_data(kernel)
            if use_bias:
                conv.bias.set_data(mx.nd.zeros_like(bias))
            eps = float(bn._kwargs.get('eps', 1e-5))
            bn.gamma.set_data(mx.nd.ones_like(bias))
            bn.beta.set_data(bias)
            bn.running_mean.set_data(mx.nd.zeros_like(bias))
            bn.running_var.set_data(mx.nd.ones_like(bias) * (1.0 - eps))
            if bn_parent is parent:
                return {str(key): conv, str(bn_key): bn}
            replace_child(bn_parent, bn_key, bn)
            clear_cached_graphs(bn_parent)
            return conv
        conv = self.to_conv(use_bias=True)
        if getattr(self, '_base_use_bias', None) is False and self.activation is None:
            conv._asymm_fold_bias = True  # the base had no bias here: try to fold it downstream
        return conv


class ACBAbsorbedBN(nn.HybridBlock):
    """Identity placeholder left in the slot of a BN that an :class:`ACBlock` absorbed.

    It remembers how to rebuild that BN (``bn_cls``, ``bn_kwargs``) so that ``deploy`` restores the
    base structure; it has no parameters.
    """

    def __init__(self, bn_cls, bn_kwargs, **kwargs):
        super(ACBAbsorbedBN, self).__init__(**kwargs)
        self._bn_cls = bn_cls
        self._bn_kwargs = dict(bn_kwargs)

    def hybrid_forward(self, F, x):
        return x

    def make_bn(self):
        try:
            return self._bn_cls(**self._bn_kwargs)
        except TypeError:  # an exotic norm layer that does not take BatchNorm's kwargs
            kw = {k: v for k, v in self._bn_kwargs.items()
                  if k in ('axis', 'momentum', 'epsilon', 'center', 'scale', 'in_channels')}
            return nn.BatchNorm(**kw)

    def deploy_convert(self, parent, key):
        """Left as is: its ACBlock, converted, puts the BN back here."""
        owner = getattr(self, '_owner', None)
        if owner is not None and owner() is not None:
            return self  # its ACBlock (elsewhere in the tree) replaces it when converted
        raise RuntimeError("found an ACBAbsorbedBN placeholder at %r without its ACBlock in front; "
                           "the network was edited after acnetify" % (key,))

    def __repr__(self):
        return 'ACBAbsorbedBN(%s)' % self._bn_cls.__name__
