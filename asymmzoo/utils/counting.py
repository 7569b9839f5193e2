"""Parameter and multiply-add counting.

MAdds are the multiply-adds of convolutions, deconvolutions and dense layers only (BN, activations,
pooling, SE scaling and element-wise ops excluded), read from the network's symbol graph with shapes
inferred for one input: this is the convention of the AsymmNet / MobileNet papers' MAdds columns.
"""
import json

import mxnet as mx
import numpy as np

__all__ = ['count_params', 'count_buffers', 'count_madds', 'layer_madds']


def _ensure_shapes(net, input_shape):
    from .blocks import check_block, check_input_shape
    check_block(net, 'count_params()')
    if input_shape is not None:
        input_shape = check_input_shape(input_shape, 'count_params()')
    params = net.collect_params()
    if any(p._deferred_init or p.shape is None or 0 in p.shape for p in params.values()):
        if input_shape is None:
            raise ValueError("parameter shapes are not known yet; pass input_shape=(1, 3, H, W) "
                             "so a forward pass can infer them")
        _probe_forward(net, input_shape)
    return params


def _probe_forward(net, input_shape):
    params = net.collect_params()
    uninit = [p for p in params.values() if p._data is None and not p._deferred_init]
    for p in uninit:
        p.initialize()
    with mx.autograd.predict_mode():
        net(mx.nd.zeros(input_shape))


def count_params(net, input_shape=None):
    """True trainable parameter count (parameters with grad_req != 'null')."""
    params = _ensure_shapes(net, input_shape)
    return int(sum(np.prod(p.shape) for p in params.values() if p.grad_req != 'null'))


def count_buffers(net, input_shape=None):
    """Non-trainable state (BN running mean / var and any other grad_req='null' parameter)."""
    params = _ensure_shapes(net, input_shape)
    return int(sum(np.prod(p.shape) for p in params.values() if p.grad_req == 'null'))


def _symbol_of(net, input_shape):
    data = mx.sym.var('data')
    out = net(data)
    if isinstance(out, (list, tuple)):
        out = mx.sym.Group(list(out))
    return out


def layer_madds(net, input_shape=(1, 3, 224, 224)):
    """Per-layer MAdds: a list of (node name, op, MAdds per sample)."""
    from .blocks import check_block, check_input_shape
    check_block(net, 'layer_madds()')
    input_shape = check_input_shape(input_shape, 'layer_madds()')
    sym = _symbol_of(net, input_shape)
    internals = sym.get_internals()
    _, out_shapes, _ = internals.infer_shape_partial(data=input_shape)
    shape_of = dict(zip(internals.list_outputs(), out_shapes))
    nodes = json.loads(sym.tojson())['nodes']
    batch = input_shape[0]
    rows = []

    def out_name(i):
        n = nodes[i]
        return n['name'] if n['op'] == 'null' else n['name'] + '_output'

    for node in nodes:
        op = node['op']
        if op not in ('Convolution', 'Deconvolution', 'FullyConnected'):
            continue
        attrs = node.get('attrs', {})
        in_shape = shape_of[out_name(node['inputs'][0][0])]
        o_shape = shape_of[node['name'] + '_output']
        if in_shape is None or o_shape is None:
            raise ValueError("could not infer shapes at %s for input %s" % (node['name'], input_shape))
        if op == 'FullyConnected':
            flat_in = int(np.prod(in_shape[1:])) if attrs.get('flatten', 'True') == 'True' \
                else int(in_shape[-1])
            m = int(np.prod(o_shape)) * flat_in // batch
        else:
            kernel = [int(v) for v in attrs['kernel'].strip('()').split(',') if v.strip()]
            groups = int(attrs.get('num_group', 1))
            if op == 'Convolution':
                m = int(np.prod(o_shape)) // batch * (in_shape[1] // groups) * int(np.prod(kernel))
            else:  # deconvolution: every input element scatters (C_out / groups) * k*k products
                m = int(np.prod(in_shape)) // batch * (o_shape[1] // groups) * int(np.prod(kernel))
        rows.append((node['name'], op, m))
    return rows


def count_madds(net, input_shape=(1, 3, 224, 224)):
    """Total multiply-adds per sample of convolutions and dense layers."""
    from .blocks import check_block, check_input_shape
    check_block(net, 'count_madds()')
    input_shape = check_input_shape(input_shape, 'count_madds()')
    return int(sum(m for _, _, m in layer_madds(net, input_shape)))
