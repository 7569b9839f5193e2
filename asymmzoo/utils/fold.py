"""Fold a convolution's bias into the BatchNorms downstream of it, through sums and concats.

A per-channel constant ``c`` added to a feature map travels unchanged through an element-wise sum
(it adds to the sum's output) and through a channel concat (it lands on its slice of the channels).
A BatchNorm that receives it computes ``gamma * (y + c - mean) / sqrt(var + eps) + beta``, which is
the same BN of ``y`` with ``running_mean - c``; in training mode the batch statistics cancel ``c``
by themselves. So a bias whose every path ends in a BatchNorm can be removed from the conv and
subtracted from those BNs' running means -- exactly, in inference and training mode alike.

This is what lets a pre-activation network (WRN, DenseNet: the kxk conv feeds a residual sum or a
dense concat, and the next BN only sees it later) deploy from its ACNet form to *exactly* the base
architecture: the fused ACB bias has nowhere else to go. Any other consumer on the way (an
activation, a conv, pooling, dropout, a network output) blocks the fold for that conv, which then
keeps its bias.
"""
import json

import numpy as np

__all__ = ['fold_conv_biases']

_ADD_OPS = {'elemwise_add', '_plus', '_Plus', 'ElementWiseSum', 'add_n', '_add'}
_PASS_OPS = {'_copy', 'identity'}
_CONCAT_OPS = {'Concat', 'concat'}


def _keeps_channels(op, attrs):
    """Ops that only re-partition the dims after the channel axis (a per-channel constant stays
    one): ``expand_dims`` at axis >= 2 and a reshape that copies N and C (``(0, 0, ...)``), the pair
    a 5-D concat view uses (our CIFAR DenseNet)."""
    if op == 'expand_dims':
        return int(attrs.get('axis', 0)) >= 2
    if op in ('Reshape', 'reshape'):
        if attrs.get('reverse', 'False') in ('True', 'true', '1'):
            return False
        shape = [t for t in attrs.get('shape', '').strip('()[] ').replace(' ', '').split(',') if t]
        return len(shape) >= 2 and shape[0] == '0' and shape[1] == '0'
    return False


def _shapes(sym, data_shape):
    """{(node_name, output_index): shape} for every internal output we can infer (partially)."""
    internals = sym.get_internals()
    names = internals.list_outputs()
    try:
        _, shapes, _ = internals.infer_shape_partial(data=data_shape)
    except Exception as e:  # pylint: disable=broad-except
        import warnings
        warnings.warn("bias folding: shapes could not be inferred for input %s (%s); biases that "
                      "reach a concat stay in their convs. Pass the model's input shape."
                      % (tuple(data_shape), str(e).strip().splitlines()[-1][:120]))
        return {}
    out = {}
    for name, shape in zip(names, shapes):
        if name.endswith('_output'):
            out[(name[:-len('_output')], 0)] = shape
    return out


def _plan_one(nodes, heads, start, bias, shapes, bn_calls):
    """Follow ``bias`` (added at node ``start``'s output) to the BNs it reaches.

    Returns {moving_mean_var_name: vector to subtract} or None when some path ends elsewhere, or
    reaches a BN whose statistics something else reads too (a BN block called twice shares its
    running mean between the calls; ``output_mean_var`` exposes the statistics)."""
    contrib = {start: bias}
    absorb = {}
    for j in range(start + 1, len(nodes)):
        n = nodes[j]
        ins = [(k, inp) for k, inp in enumerate(n['inputs']) if inp[0] in contrib and inp[1] == 0]
        if not ins:
            continue
        op = n['op']
        attrs = n.get('attrs', {})
        if op == 'BatchNorm' and [k for k, _ in ins] == [0] and int(attrs.get('axis', 1)) == 1:
            mean_var = nodes[n['inputs'][3][0]]['name']
            if bn_calls.get(mean_var, 0) != 1 or \
                    attrs.get('output_mean_var', 'False') in ('True', 'true', '1'):
                return None
            absorb[mean_var] = absorb.get(mean_var, 0) + contrib[ins[0][1][0]]
            continue
        if op in _ADD_OPS or op in _PASS_OPS:
            if op in _PASS_OPS and len(n['inputs']) != 1:
                return None
            total = 0
            for _, inp in ins:
                total = total + contrib[inp[0]]
            contrib[j] = total
            continue
        if _keeps_channels(op, attrs) and len(n['inputs']) == 1:
            contrib[j] = contrib[ins[0][1][0]]
            continue
        if op in _CONCAT_OPS and int(attrs.get('dim', 1)) == 1:
            parts = []
            for inp in n['inputs']:
                if inp[0] in contrib and inp[1] == 0:
                    parts.append(contrib[inp[0]])
                    continue
                shape = shapes.get((nodes[inp[0]]['name'], inp[1]))
                if not shape or len(shape) < 2 or not shape[1]:
                    return None
                parts.append(np.zeros(shape[1], dtype=bias.dtype))
            contrib[j] = np.concatenate(parts)
            continue
        return None  # an op the constant does not pass through unchanged
    for h in heads:
        if h[0] in contrib:
            return None  # reaches a network output directly
    return absorb


def fold_conv_biases(net, convs, data_shape):
    """Move the biases of ``convs`` (``nn.Conv2D`` blocks inside ``net``) into downstream BNs.

    Parameters
    ----------
    net : HybridBlock, initialised
    convs : list of nn.Conv2D with a bias and no activation
    data_shape : input shape used to infer channel counts at concats

    Returns the subset of ``convs`` whose bias was folded: their bias is now zero and the BNs it
    reaches carry it in ``running_mean``; replace them by bias-free convs with the same kernel.
    Convs whose bias cannot be folded exactly are left untouched.
    """
    import mxnet as mx
    if not convs:
        return []
    try:
        out = net(mx.sym.var('data'))
    except Exception:  # pylint: disable=broad-except
        return []
    if isinstance(out, (list, tuple)):
        out = mx.sym.Group(list(out))
    graph = json.loads(out.tojson())
    nodes, heads = graph['nodes'], graph['heads']
    params = net.collect_params()
    by_bias = {c.bias.name: c for c in convs if c.bias is not None and c.act is None}
    uses, readers, bn_calls = {}, {}, {}
    for i, n in enumerate(nodes):
        for inp in n['inputs']:
            readers[inp[0]] = readers.get(inp[0], 0) + 1
        if n['op'] == 'Convolution' and len(n['inputs']) == 3:
            bname = nodes[n['inputs'][2][0]]['name']
            if bname in by_bias:
                uses.setdefault(bname, []).append(i)
        if n['op'] == 'BatchNorm':
            mean_var = nodes[n['inputs'][3][0]]['name']
            bn_calls[mean_var] = bn_calls.get(mean_var, 0) + 1
    # a BN whose statistics outputs (1: mean, 2: var) are read somewhere counts as used twice
    stats_read = {e[0] for m in nodes for e in m['inputs'] if e[1] > 0} | \
        {h[0] for h in heads if h[1] > 0}
    for i in stats_read:
        if nodes[i]['op'] == 'BatchNorm':
            mean_var = nodes[nodes[i]['inputs'][3][0]]['name']
            bn_calls[mean_var] = bn_calls.get(mean_var, 0) + 1
    shapes = _shapes(out, data_shape)
    folded = []
    for bname, where in uses.items():
        bias_node = nodes[where[0]]['inputs'][2][0]
        if len(where) != 1 or readers.get(bias_node, 0) != 1:
            continue  # a conv called twice, or its bias read elsewhere too: cannot zero it
        conv = by_bias[bname]
        bias = conv.bias.data().asnumpy()
        plan = _plan_one(nodes, heads, where[0], bias, shapes, bn_calls)
        if plan is None or not plan or any(name not in params for name in plan):
            continue
        for name, vec in plan.items():
            p = params[name]
            cur = p.data()
            p.set_data(cur - mx.nd.array(vec, ctx=cur.context, dtype=cur.dtype))
        conv.bias.set_data(mx.nd.zeros_like(conv.bias.data()))
        folded.append(conv)
    return folded
