"""An ``_acb`` twin started from its base model's weights (``get_model(twin, pretrained=True)``).

Every :class:`~asymmzoo.nn.ACBlock` sits where the base had a conv (+ the BN after it, now an
:class:`~asymmzoo.nn.acb.ACBAbsorbedBN` placeholder): the square branch takes that conv's kernel and
that BN (a conv without a BN gets an identity BN carrying its bias); the 1xk / kx1 branches keep a
fresh kernel but start with BN gamma = beta = 0, so they add exactly zero and the twin computes
exactly the base function (in inference and in training mode) -- then training grows them (the
gradient of a zero gamma is not zero). Every other parameter is the base's, by structural name.

RotateConv twins (``_rot4`` / ``_rot2``) cannot start this way: a line-segment kernel has 4 or 2
parameters per filter and cannot represent a trained k x k kernel, so no exact start exists.
"""
import numpy as np
import mxnet as mx

from ..io import WeightsError
from ..nn.acb import ACBlock, ACBAbsorbedBN
from ..registry import get_model, get_spec, list_models, set_pretrained_init

__all__ = ['copy_base_into_twin', 'init_twin_from_base', 'register_twin_inits']

_TWIN_ONLY_KWARGS = ('gamma_init', 'asym_kernel_size')


def _named_blocks(block, prefix=''):
    yield prefix, block
    for name, child in block._children.items():
        yield from _named_blocks(child, prefix + '.' + name if prefix else name)


def _materialise(net, shape, ctx):
    """Initialise ``net`` and run it once so that every deferred shape is known."""
    net.initialize(mx.init.Xavier(), ctx=ctx, force_reinit=True)
    with mx.autograd.predict_mode():
        net(mx.nd.zeros((1,) + tuple(shape[1:]), ctx=ctx))


def copy_base_into_twin(twin, base, input_shape=(1, 3, 224, 224), ctx=None):
    """Set ``twin`` (``acnetify`` of the base's structure) so that it computes exactly ``base``."""
    ctx = ctx or mx.cpu()
    _materialise(twin, input_shape, ctx)
    with mx.autograd.predict_mode():   # the base's deferred shapes (its loaded values stay)
        base(mx.nd.zeros((1,) + tuple(input_shape[1:]), ctx=ctx))
    bp = {k: p.data(ctx).copy() for k, p in base._collect_params_with_prefix().items()}
    tp = twin._collect_params_with_prefix()
    blocks = dict(_named_blocks(twin))
    out = {k: v for k, v in bp.items() if k in tp and tuple(tp[k].shape) == tuple(v.shape)}
    absorbed = {}
    for path, blk in blocks.items():
        if isinstance(blk, ACBAbsorbedBN):
            owner = getattr(blk, '_owner', lambda: None)()
            if owner is not None:
                absorbed[id(owner)] = path
    fresh = []
    for path, blk in blocks.items():
        if not isinstance(blk, ACBlock):
            continue
        out[path + '.square_conv.weight'] = bp[path + '.weight']
        sq = path + '.square_bn.'
        bn_path = absorbed.get(id(blk))
        if bn_path is not None:
            for s in ('gamma', 'beta', 'running_mean', 'running_var'):
                out[sq + s] = bp[bn_path + '.' + s]
        else:   # a conv without BN: an identity BN carrying the conv's bias
            c = tp[sq + 'gamma'].shape[0]
            eps = blk.square_bn._kwargs.get('eps', 1e-5)
            out[sq + 'gamma'] = mx.nd.full((c,), float(np.sqrt(1 + eps)))
            out[sq + 'beta'] = bp[path + '.bias'] if path + '.bias' in bp else mx.nd.zeros((c,))
            out[sq + 'running_mean'] = mx.nd.zeros((c,))
            out[sq + 'running_var'] = mx.nd.ones((c,))
        for br in ('ver_bn', 'hor_bn'):
            c = tp['%s.%s.gamma' % (path, br)].shape[0]
            for s, v in (('gamma', 0.), ('beta', 0.), ('running_mean', 0.), ('running_var', 1.)):
                out['%s.%s.%s' % (path, br, s)] = mx.nd.full((c,), v)
        fresh += [path + '.ver_conv.weight', path + '.hor_conv.weight']
    left = sorted(set(tp) - set(out) - set(fresh))
    if left:
        raise WeightsError("cannot start %s from its base's weights: no base weights for %s"
                           % (getattr(twin, 'name_in_zoo', type(twin).__name__), ', '.join(left[:5])))
    for k, v in out.items():
        tp[k].set_data(v)
    return twin


def init_twin_from_base(twin, name, ctx=None, root=None, kwargs=None):
    """``get_model(name, pretrained=True)`` of a twin with nothing stored under its own name: the
    base's pretrained weights (the store, fetched when published), copied in exactly."""
    spec = get_spec(name)
    base_kwargs = {k: v for k, v in (kwargs or {}).items() if k not in _TWIN_ONLY_KWARGS}
    base = get_model(spec.base, pretrained=True, root=root, **base_kwargs)
    shape = getattr(twin, 'default_input_shape', None) or spec.input_shape
    ctxs = list(ctx) if isinstance(ctx, (list, tuple)) else [ctx or mx.cpu()]
    copy_base_into_twin(twin, base, shape, ctx=ctxs[0])
    if len(ctxs) > 1:
        twin.collect_params().reset_ctx(ctxs)    # every device of a list ctx, like the base
    return twin


def register_twin_inits():
    """Every registered ``_acb`` twin starts from its base's weights with ``pretrained=True``."""
    for name in list_models('*_acb', family='acnet'):
        if get_spec(name).base:
            set_pretrained_init(name, init_twin_from_base)
