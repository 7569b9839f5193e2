"""Activations used by the MobileNetV3 family (GluonCV's own blocks, reused)."""
from mxnet.gluon import nn
from gluoncv.nn.block import ReLU6, HardSigmoid, HardSwish

__all__ = ['ReLU6', 'HardSigmoid', 'HardSwish', 'make_activation']


def make_activation(name):
    """'relu' | 'relu6' | 'hard_sigmoid' | 'hard_swish' (alias 'hswish') -> a HybridBlock."""
    if name == 'relu':
        return nn.Activation('relu')
    if name == 'relu6':
        return ReLU6()
    if name == 'hard_sigmoid':
        return HardSigmoid()
    if name in ('hard_swish', 'hswish'):
        return HardSwish()
    raise ValueError("unknown activation %r; use one of relu, relu6, hard_sigmoid, hard_swish" % (name,))
