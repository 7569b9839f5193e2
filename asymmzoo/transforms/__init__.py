"""Whole-network rewrites into train-time forms: ``acnetify`` (ACNet's asymmetric branches on every
kxk conv) and ``rotatify`` (RotateConv on every 3x3 conv). ``asymmzoo.deploy`` turns both back into
plain convolutions, verified."""
from .acnet import acnetify, is_acnet_convertible, acb_blocks, count_lone_bias
from .rotate import rotatify

__all__ = ['acnetify', 'is_acnet_convertible', 'acb_blocks', 'count_lone_bias', 'rotatify']
