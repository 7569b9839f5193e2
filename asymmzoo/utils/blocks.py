"""Walking and rewriting Gluon block trees (used by acnetify and deploy)."""
from mxnet.gluon import HybridBlock

__all__ = ['named_children', 'iter_blocks', 'replace_child', 'clear_cached_graphs', 'is_hybridized',
           'param_contexts', 'check_block', 'check_input_shape']


def check_block(net, who, what='a Gluon network (e.g. asymmzoo.get_model(name))'):
    """TypeError naming what ``who`` takes unless ``net`` is a Gluon Block."""
    from mxnet.gluon import Block
    if not isinstance(net, Block):
        raise TypeError("%s takes %s, got %r" % (who, what, net))


def check_input_shape(shape, who):
    """``shape`` as a tuple of positive ints, or a ValueError naming it (MXNet would fail later,
    deep in shape inference, with a message that does not say which input was wrong)."""
    import numbers
    try:
        dims = tuple(shape)
    except TypeError:
        raise ValueError("%s: input_shape %r is not a shape: give a tuple such as (1, 3, 224, 224)"
                         % (who, shape))
    if not dims or not all(isinstance(d, numbers.Integral) and not isinstance(d, bool) and d > 0
                           for d in dims):
        raise ValueError("%s: input_shape %r is not a valid shape: every dimension must be a positive "
                         "integer, e.g. (1, 3, 224, 224)" % (who, shape))
    return tuple(int(d) for d in dims)


def named_children(block):
    """(key, child) pairs in registration order; keys are attribute names or Sequential indices."""
    return list(block._children.items())


def iter_blocks(block, prefix=''):
    """Depth-first (path, parent, key, child) over the whole tree."""
    for key, child in named_children(block):
        path = prefix + str(key)
        yield path, block, key, child
        for item in iter_blocks(child, path + '.'):
            yield item


def replace_child(parent, key, new):
    """Put ``new`` in ``parent`` under ``key`` (works for Sequential slots and attribute children,
    and across types, which ``Block.__setattr__`` refuses)."""
    key = str(key)
    if key not in parent._children:
        raise KeyError("%s has no child %r" % (type(parent).__name__, key))
    parent._children[key] = new
    if key in parent.__dict__:
        object.__setattr__(parent, key, new)


def is_hybridized(block):
    return isinstance(block, HybridBlock) and bool(getattr(block, '_active', False))


def clear_cached_graphs(block):
    """Drop every cached symbolic graph below ``block`` so a rewrite takes effect on the next call."""
    if isinstance(block, HybridBlock):
        block._clear_cached_op()
    for _, child in named_children(block):
        clear_cached_graphs(child)


def param_contexts(block):
    """The devices of ``block``'s first initialised parameter (a list), or None before initialisation."""
    for p in block.collect_params().values():
        if p._data is not None:
            return p.list_ctx()
    return None
