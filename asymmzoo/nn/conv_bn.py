"""Conv + norm (+ activation) as a sequential container with named children.

The children are ``conv``, ``bn`` and (optionally) ``act``: a HybridSequential, so generic passes
such as :func:`asymmzoo.acnetify` see "a conv directly followed by its BN", and parameter names read
``...expand.conv.weight`` like the AsymmNet authors' released checkpoint.
"""
from mxnet.gluon import nn

from .activations import make_activation

__all__ = ['ConvBNAct', 'make_norm']


def make_norm(norm_layer=None, norm_kwargs=None, in_channels=0):
    norm_layer = norm_layer or nn.BatchNorm
    kwargs = dict(norm_kwargs or {})
    kwargs.setdefault('in_channels', in_channels)
    return norm_layer(**kwargs)


class ConvBNAct(nn.HybridSequential):
    """``conv`` (no bias) -> ``bn`` -> ``act`` (skipped when ``act`` is None)."""

    def __init__(self, in_channels, channels, kernel_size=1, strides=1, padding=None, groups=1,
                 act='relu', norm_layer=None, norm_kwargs=None, **kwargs):
        super(ConvBNAct, self).__init__(**kwargs)
        if padding is None:
            padding = kernel_size // 2
        with self.name_scope():
            self.register_child(nn.Conv2D(channels, kernel_size, strides=strides, padding=padding,
                                          groups=groups, use_bias=False, in_channels=in_channels),
                                'conv')
            self.register_child(make_norm(norm_layer, norm_kwargs, channels), 'bn')
            if act is not None:
                self.register_child(make_activation(act), 'act')

    def __getattr__(self, name):
        # named children are reachable as attributes: unit.conv, unit.bn, unit.act
        children = self.__dict__.get('_children', {})
        if name in children:
            return children[name]
        raise AttributeError("%r object has no attribute %r" % (type(self).__name__, name))
