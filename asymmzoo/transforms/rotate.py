"""``rotatify(net, num_params)``: every 3x3 convolution of a network becomes a RotateConv2D (the
whole-network rewrite of RotateConv; ``asymmzoo.deploy`` turns them back into plain 3x3 convs)."""
import mxnet as mx
from mxnet.gluon import nn

from ..nn.rotate import RotateConv2D
from ..utils.blocks import iter_blocks, replace_child, clear_cached_graphs, check_block

__all__ = ['rotatify']


def _is_rotatable(conv):
    if type(conv) is not nn.Conv2D:
        return False
    kw = conv._kwargs
    return (tuple(kw['kernel']) == (3, 3) and tuple(kw.get('dilate', (1, 1))) == (1, 1)
            and kw.get('layout', 'NCHW') == 'NCHW')


def _infer_in_channels(net, input_shape, convs):
    """in_channels of convs built with in_channels=0, read off the symbol's inferred shapes."""
    if input_shape is None:
        input_shape = getattr(net, 'default_input_shape', None)
    if input_shape is None:
        raise ValueError("some 3x3 convolutions were built without in_channels; pass "
                         "input_shape=(1, C, H, W) to rotatify() so they can be inferred")
    sym = net(mx.sym.var('data'))
    if isinstance(sym, (list, tuple)):
        sym = mx.sym.Group(list(sym))
    arg_shapes, _, _ = sym.infer_shape_partial(data=tuple(input_shape))
    shapes = dict(zip(sym.list_arguments(), arg_shapes))
    out = {}
    for conv in convs:
        shp = shapes.get(conv.weight.name)
        if not shp or len(shp) != 4 or shp[1] == 0:
            raise ValueError("could not infer the input channels of %s from input_shape %s"
                             % (conv.name, tuple(input_shape)))
        out[id(conv)] = shp[1] * conv._kwargs['num_group']
    return out


def rotatify(net, num_params=4, input_shape=None, theta_init=None):
    """Replace, in place, every 3x3 ``nn.Conv2D`` (dilation 1, NCHW) of ``net`` by a RotateConv2D
    with the same in/out channels, stride, padding, groups, bias and activation; returns ``net``.

    Apply it to an uninitialised network (as models come from ``get_model``). Convolutions built
    without ``in_channels`` get it from a shape inference with ``input_shape`` (default the model's
    ``default_input_shape``). ``net.rotate_num_params`` records the version.
    """
    check_block(net, 'rotatify()')
    if num_params not in (2, 4):
        raise ValueError("num_params must be 4 or 2, got %r" % (num_params,))
    todo = [(parent, key, child) for _, parent, key, child in iter_blocks(net) if _is_rotatable(child)]
    if not todo:
        raise ValueError("%s has no 3x3 nn.Conv2D to turn into RotateConv2D" % type(net).__name__)
    unknown = [c for _, _, c in todo if not c._in_channels]
    inferred = _infer_in_channels(net, input_shape, unknown) if unknown else {}
    for parent, key, conv in todo:
        kw = conv._kwargs
        in_ch = conv._in_channels or inferred[id(conv)]
        act = getattr(conv.act, '_act_type', None) if conv.act is not None else None
        rot = RotateConv2D(kw['num_filter'], in_ch, strides=tuple(kw['stride']),
                           padding=tuple(kw['pad']), groups=kw['num_group'], num_params=num_params,
                           use_bias=not kw['no_bias'], theta_init=theta_init, activation=act,
                           prefix=conv.prefix)
        if conv.weight._data is not None:  # the net was initialised already: follow it there
            rot.initialize(ctx=conv.weight.list_ctx())
        replace_child(parent, key, rot)
    clear_cached_graphs(net)
    try:
        net.rotate_num_params = num_params
    except AttributeError:  # pragma: no cover
        pass
    return net
