"""ACNet: turn any Gluon network into its Asymmetric Convolution form, and back.

``acnetify(net)`` replaces every square kxk ``nn.Conv2D`` (odd k >= 3, dilation 1, NCHW) by an
:class:`~asymmzoo.nn.ACBlock`. When the conv is directly followed by a BatchNorm in a sequential
container (our ``ConvBNAct`` units, GluonCV's ``HybridSequential`` stacks), that BN is absorbed: the
ACB's three branch BNs take its settings, and its slot holds a parameter-free
:class:`ACBAbsorbedBN` placeholder. ``asymmzoo.deploy(net)`` then turns the pair back into exactly the
base structure -- the conv slot becomes ``nn.Conv2D`` with the fused kernel (bias-free unless the
original conv had a bias), the placeholder slot a ``nn.BatchNorm`` with gamma=1, beta=fused bias,
running_mean=0, running_var=1-eps -- so the deployed parameters save into / load from the base model
and the deployed latency is the base's. A conv with no BN after it ("lone") becomes an ACB that
deploys to a conv carrying the fused bias; when the base conv had no bias, deploy then folds that
bias into the BNs downstream (through residual sums and dense concats: pre-activation WRN and
DenseNet, see :mod:`asymmzoo.utils.fold`) and drops it, so those nets too come back as exactly the
base. Only a bias that reaches something other than a BN (an activation, a pooling, an output)
stays, as ``nn.Conv2D(use_bias=True)``.
"""
import weakref

import mxnet as mx
from mxnet.gluon import nn

from ..deploy import register_post_pass
from ..nn.acb import ACBlock, ACBAbsorbedBN
from ..utils.blocks import iter_blocks, replace_child, clear_cached_graphs, is_hybridized, param_contexts
from ..utils.fold import fold_conv_biases

__all__ = ['acnetify', 'ACBAbsorbedBN', 'is_acnet_convertible', 'acb_blocks', 'count_lone_bias']


def _conv_spec(conv):
    kw = conv._kwargs
    return dict(kernel=tuple(kw['kernel']), stride=tuple(kw['stride']), pad=tuple(kw['pad']),
                dilate=tuple(kw['dilate']), groups=int(kw['num_group']),
                channels=int(kw['num_filter']), use_bias=not kw['no_bias'],
                layout=kw.get('layout', 'NCHW'))


def is_acnet_convertible(block):
    """True for an ``nn.Conv2D`` with an odd square kernel k >= 3, square padding, dilation 1, NCHW."""
    if type(block) is not nn.Conv2D:  # subclasses (e.g. RotateConv2D) have their own meaning
        return False
    s = _conv_spec(block)
    k = s['kernel']
    return (len(k) == 2 and k[0] == k[1] and k[0] >= 3 and k[0] % 2 == 1
            and s['pad'][0] == s['pad'][1] and s['dilate'] == (1, 1) and s['layout'] == 'NCHW')


def _bn_spec(bn):
    """(class, constructor kwargs) rebuilding ``bn`` as an untrained BN of the same kind."""
    kw = bn._kwargs
    spec = dict(axis=kw.get('axis', 1), momentum=kw.get('momentum', 0.9),
                epsilon=kw.get('eps', 1e-5), center=bn.beta.grad_req != 'null',
                scale=not kw.get('fix_gamma', False),
                use_global_stats=kw.get('use_global_stats', False),
                in_channels=bn.gamma.shape[0] if bn.gamma.shape else 0)
    if type(bn) is not nn.BatchNorm:
        # e.g. SyncBatchNorm(num_devices=...): keep what its constructor recorded
        for key in ('num_devices', 'key'):
            if hasattr(bn, '_' + key):
                spec[key] = getattr(bn, '_' + key)
    return type(bn), spec


def _absorbable_bn(conv, nxt):
    if not isinstance(nxt, nn.BatchNorm):
        return False
    if nxt._kwargs.get('axis', 1) != 1 or conv.act is not None:
        return False
    ch = nxt.gamma.shape[0] if nxt.gamma.shape else 0
    return ch in (0, _conv_spec(conv)['channels'])


def _slots(net):
    """id(block) -> [(parent, key)] for every block in the tree."""
    out = {}
    for _, parent, key, child in iter_blocks(net):
        out.setdefault(id(child), []).append((parent, str(key)))
    return out


def _traced_pairs(net):
    """{id(conv): bn} for convs whose output feeds nothing but one BatchNorm, read off the net's
    symbolic graph (so pairs that only the code of a block's forward wires -- GluonCV's
    ``BasicBlockV1b`` keeps conv1 / bn1 as attributes -- are found too). Empty if the net cannot
    be traced (a non-hybrid block) or names are ambiguous."""
    import json
    from collections import Counter
    try:
        out = net(mx.sym.var('data'))
    except Exception:  # pylint: disable=broad-except
        return {}
    if isinstance(out, (list, tuple)):
        out = mx.sym.Group(list(out))
    graph = json.loads(out.tojson())
    nodes = graph['nodes']
    blocks = [b for _, _, _, b in iter_blocks(net)]
    by_name, dup = {}, set()
    for b in blocks:
        if isinstance(b, (nn.Conv2D, nn.BatchNorm)):
            name = b.prefix + 'fwd'
            if name in by_name and by_name[name] is not b:
                dup.add(name)
            by_name[name] = b
    count = Counter(n['name'] for n in nodes if n['op'] != 'null')
    consumers = {}
    for i, n in enumerate(nodes):
        for inp in n['inputs']:
            consumers.setdefault(inp[0], []).append(i)
    for h in graph['heads']:
        consumers.setdefault(h[0], []).append(-1)
    pairs = {}
    for i, n in enumerate(nodes):
        name = n['name']
        if n['op'] != 'Convolution' or count[name] != 1 or name in dup or name not in by_name:
            continue
        cons = consumers.get(i, [])
        if len(cons) != 1 or cons[0] < 0:
            continue
        m = nodes[cons[0]]
        if m['op'] != 'BatchNorm' or m['inputs'][0][0] != i or count[m['name']] != 1 \
                or m['name'] in dup or m['name'] not in by_name:
            continue
        conv, bn = by_name[name], by_name[m['name']]
        if isinstance(conv, nn.Conv2D) and _absorbable_bn(conv, bn):
            pairs[id(conv)] = bn
    return pairs


def acnetify(net, gamma_init=None, norm_layer=None, norm_kwargs=None, absorb_bn=True,
             asym_kernel_size=None, trace=True):
    """Turn ``net`` (any Gluon network) into its ACNet form in place and return it.

    Parameters
    ----------
    net : Block containing ``nn.Conv2D`` layers (not a bare conv: wrap it in a HybridSequential)
    gamma_init : float or None, initial value of every branch BN gamma (ACNet's option: 1/3)
    norm_layer, norm_kwargs : branch norm for convs that have no BN after them (default BatchNorm)
    absorb_bn : replace a conv together with the BN that directly follows it in a sequential
        container (default True; False makes every conv a "lone" ACB)
    trace : also absorb a BN that is not the conv's next sibling but the only consumer of its
        output in the net's symbolic graph (BN kept as an attribute and called in the forward code;
        default True; needs a HybridBlock net, otherwise only the container rule applies)
    asym_kernel_size : None (branches as long as the kernel: 1xk / kx1) or an odd a >= 3: 1xa / ax1
        branches on every conv with k > a (ACNet's AlexNet: a=3 on its 11x11 and 5x5 layers)

    Convs that cannot take an ACB (1x1, even or rectangular kernels, dilation, NHWC) are left alone.
    If ``net`` was already initialised, the new blocks are initialised on the same context (with
    the default initialisers); a hybridized net is re-hybridized.
    """
    if not isinstance(net, mx.gluon.Block):
        raise TypeError("acnetify() takes a Gluon network (e.g. asymmzoo.get_model(name)), got %r"
                        % (net,))
    if isinstance(net, nn.Conv2D):
        raise TypeError("acnetify() rewrites the convs inside a network; wrap a bare Conv2D in a "
                        "HybridSequential first")
    if isinstance(net, ACBlock):
        return net
    have = sum(1 for _, _, _, child in iter_blocks(net) if isinstance(child, ACBlock))
    if have:
        raise ValueError("acnetify(): %s already holds %d ACBlock(s) (it is in ACNet form): acnetify "
                         "again would add branches to its branches; use the net as it is, or "
                         "asymmzoo.deploy(net) it first to fuse the branches"
                         % (getattr(net, 'name_in_zoo', None) or type(net).__name__, have))
    todo = [(parent, key, child) for _, parent, key, child in iter_blocks(net)
            if is_acnet_convertible(child)]
    done = {}  # id(conv) -> ACBlock, so a conv shared by several parents stays shared
    traced = _traced_pairs(net) if (absorb_bn and trace) else {}
    slots = _slots(net) if traced else {}
    for parent, key, conv in todo:
        key = str(key)
        if parent._children.get(key) is not conv:
            continue
        if id(conv) in done:
            replace_child(parent, key, done[id(conv)])
            continue
        s = _conv_spec(conv)
        bn_key, bn, bn_parent = None, None, parent
        if absorb_bn and isinstance(parent, (nn.Sequential, nn.HybridSequential)):
            keys = list(parent._children.keys())
            i = keys.index(key)
            if i + 1 < len(keys) and _absorbable_bn(conv, parent._children[keys[i + 1]]):
                bn_key, bn = keys[i + 1], parent._children[keys[i + 1]]
        if bn is None and id(conv) in traced:
            where = slots.get(id(traced[id(conv)]), [])
            if len(where) == 1 and where[0][0]._children.get(where[0][1]) is traced[id(conv)]:
                bn_parent, bn_key = where[0]
                bn = traced[id(conv)]
        act = conv.act._act_type if conv.act is not None else None
        if bn is not None:
            bn_cls, bn_kw = _bn_spec(bn)
            bn_kw['in_channels'] = s['channels']
            branch_layer = bn_cls
            branch_kw = {k: v for k, v in bn_kw.items() if k != 'in_channels'}
        else:
            branch_layer, branch_kw = norm_layer, norm_kwargs
        in_ch = conv.weight.shape[1] * s['groups'] if conv.weight.shape and conv.weight.shape[1] \
            else 0
        acb = ACBlock(s['channels'], s['kernel'][0], strides=s['stride'], padding=s['pad'][0],
                      groups=s['groups'], in_channels=in_ch, activation=act,
                      gamma_init=gamma_init, norm_layer=branch_layer, norm_kwargs=branch_kw,
                      asym_kernel_size=min(asym_kernel_size, s['kernel'][0]) if asym_kernel_size
                      else None, prefix=conv.prefix + 'acb_')
        acb._base_use_bias = s['use_bias']
        acb._absorbed_key = bn_key
        # a weak reference: a Block attribute (or a list holding one) would register / warn
        acb._absorbed_parent = weakref.ref(bn_parent) if bn is not None else None
        ctx = param_contexts(conv)
        if ctx is not None and all(p._data is not None for p in conv.collect_params().values()):
            acb.initialize(ctx=ctx)
        replace_child(parent, key, acb)
        if bn is not None:
            ph = ACBAbsorbedBN(bn_cls, bn_kw, prefix=bn.prefix)
            ph._owner = weakref.ref(acb)
            replace_child(bn_parent, bn_key, ph)
        done[id(conv)] = acb
    if is_hybridized(net):
        clear_cached_graphs(net)
        net.hybridize()
    net.acnet = True
    return net


def acb_blocks(net):
    """Every ACBlock in ``net`` (depth-first order)."""
    return [child for _, _, _, child in iter_blocks(net) if isinstance(child, ACBlock)]


def count_lone_bias(net):
    """Biases of lone ACBs whose base conv had none: what deploy must fold into downstream BNs to
    come back to the base's parameters (0 for nets whose every converted conv was followed by a BN,
    or already had a bias). Whatever cannot be folded stays as a conv bias on top of the base."""
    return sum(b.channels for b in acb_blocks(net)
               if getattr(b, '_absorbed_key', None) is None and not getattr(b, '_base_use_bias', False))


def _without_bias(conv):
    s = _conv_spec(conv)
    new = nn.Conv2D(s['channels'], s['kernel'], strides=s['stride'], padding=s['pad'],
                    dilation=s['dilate'], groups=s['groups'], layout=s['layout'], use_bias=False,
                    in_channels=conv.weight.shape[1] * s['groups'])
    new.initialize(ctx=conv.weight.list_ctx())
    if conv.weight.dtype != new.weight.dtype:
        new.cast(conv.weight.dtype)
    new.weight.set_data(conv.weight.data())
    return new


@register_post_pass
def _fold_lone_biases(net, replaced, data_shape):
    """Lone ACBs of a bias-free base conv: fold their fused bias into the BNs downstream."""
    cands = [(parent, key, conv) for parent, key, conv in replaced
             if getattr(conv, '_asymm_fold_bias', False) and parent._children.get(key) is conv]
    if not cands:
        return
    folded = set(id(c) for c in fold_conv_biases(net, [c for _, _, c in cands], data_shape))
    for parent, key, conv in cands:
        if id(conv) in folded:
            replace_child(parent, key, _without_bias(conv))


