"""Walking and rewriting Gluon block trees (used by acnetify and deploy)."""
from mxnet.gluon import HybridBlock

__all__ = ['named_children', 'iter_blocks', 'replace_child', 'clear_cached_graphs', 'is_hybridized',
           'param_contexts']


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
