"""Channel concatenation that trains on every CPU.

MXNet 1.9's oneDNN concat backward cuts the incoming gradient into sub-memories at each input's
channel offset. When the gradient arrives in a blocked layout (8 channels a block with AVX2 kernels,
16 with AVX-512 ones) an offset that is not a multiple of the block cannot be cut, and the backward
fails with ``could not construct a sub-memory`` (or worse). Which offsets fail therefore depends on
the CPU, not on the model.

:func:`channel_concat` concatenates 5-D views ``(N, C, 1, H, W)`` and folds them back to 4-D. The
reshapes hand oneDNN plain (unblocked) arrays, whose channel offsets can always be cut, so the same
graph trains for any offsets on any instruction set. The numbers are exactly those of
``F.concat(*parts, dim=1)``; no parameters are involved.

A network that only runs inference can use the plain 4-D concat (its forward is correct on every
CPU): blocks that call :func:`channel_concat` keep a ``plain_concat`` attribute, which
:func:`asymmzoo.deploy` sets through :func:`use_plain_concat`, and the ONNX export folds the views
away in any case.
"""

import contextlib

from mxnet import autograd, ndarray

from ..utils.blocks import clear_cached_graphs, iter_blocks

__all__ = ['channel_concat', 'use_plain_concat', 'plain_concat']


def channel_concat(F, *parts, plain=False):
    """Concatenate NCHW ``parts`` along channels; safe for training unless ``plain``.

    A single part is returned as is. ``plain=True`` is ``F.concat(*parts, dim=1)``: use it only in
    inference graphs (an imperative call under ``autograd.record()`` takes the safe form anyway; a
    hybridized deployed network refuses to train, see :func:`asymmzoo.deploy`).
    """
    if not parts:
        raise ValueError("channel_concat needs at least one input")
    if len(parts) == 1:
        return parts[0]
    if plain and not (F is ndarray and autograd.is_recording()):   # imperative training: always safe
        return F.concat(*parts, dim=1)
    views, seen = [], {}
    for p in parts:  # a part used twice (AsymmNet's X | Y | X) is viewed once
        v = seen.get(id(p))
        if v is None:
            v = seen[id(p)] = p.expand_dims(2)
        views.append(v)
    return F.concat(*views, dim=1).reshape((0, 0, -3, 0))


def _concat_blocks(net):
    """``net`` and every block below it that chooses its concat form (``plain_concat``)."""
    return [b for b in [net] + [child for _, _, _, child in iter_blocks(net)]
            if hasattr(b, 'plain_concat')]


def use_plain_concat(net, plain=True):
    """Switch every block below ``net`` (``net`` included) that has a ``plain_concat`` attribute to
    the plain 4-D concat (``plain=True``: inference only) or back to the training-safe form.
    Returns the number of blocks whose setting changed; cached graphs are then dropped so the
    change takes effect on the next call."""
    changed = 0
    for b in _concat_blocks(net):
        if b.plain_concat != bool(plain):
            b.plain_concat = bool(plain)
            changed += 1
    if changed:
        clear_cached_graphs(net)
    return changed


@contextlib.contextmanager
def plain_concat(net):
    """Within the ``with``, ``net`` builds inference graphs with plain concats (for an export);
    afterwards every block has its own setting back."""
    before = [(b, b.plain_concat) for b in _concat_blocks(net)]
    changed = use_plain_concat(net, True)
    try:
        yield net
    finally:
        if changed:
            for b, v in before:
                b.plain_concat = v
            clear_cached_graphs(net)
