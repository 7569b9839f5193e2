"""Pruning kernel positions (ACNet Fig. 5): zero random weights at the corners, on the skeleton
(centre row + centre column) or anywhere of every kxk kernel, to a given per-layer sparsity ratio,
and record the accuracy."""
import mxnet as mx
import numpy as np
from mxnet.gluon import nn

from ..nn.acb import ACBlock
from ..utils.blocks import iter_blocks

__all__ = ['MODES', 'position_mask', 'prune_kernels', 'pruning_curves', 'plot_pruning_curves']

MODES = ('corner', 'skeleton', 'global')


def position_mask(mode, k=3):
    """Boolean (k, k) mask of the positions a mode may prune.

    ``skeleton``: the centre row and centre column; ``corner``: everything off the skeleton (the four
    corners of a 3x3 kernel, the four (k//2)x(k//2) corner squares of a larger one); ``global``: all.
    """
    m = np.zeros((k, k), dtype=bool)
    c = k // 2
    if mode == 'corner':
        m[:] = True
        m[c, :] = False
        m[:, c] = False
    elif mode == 'skeleton':
        m[c, :] = True
        m[:, c] = True
    elif mode == 'global':
        m[:] = True
    else:
        raise ValueError("pruning mode must be one of %s, got %r" % (MODES, mode))
    return m


def prune_kernels(kernel, mode, ratio, rng):
    """Copy of an OIHW ``kernel`` with ``round(ratio * kernel.size)`` weights zeroed, drawn uniformly
    among the positions of ``mode`` (capped at all of them: 4/9 for 3x3 corners)."""
    kernel = np.array(kernel, copy=True)
    k = kernel.shape[-1]
    allowed = np.broadcast_to(position_mask(mode, k), kernel.shape).reshape(-1)
    cand = np.flatnonzero(allowed)
    n = min(int(round(ratio * kernel.size)), len(cand))
    flat = kernel.reshape(-1)
    flat[rng.choice(cand, n, replace=False)] = 0
    return flat.reshape(kernel.shape)


def _plain_square_convs(net, k):
    convs = [b for _, _, _, b in iter_blocks(net)
             if isinstance(b, nn.Conv2D) and b.weight.shape and tuple(b.weight.shape[2:]) == (k, k)]
    if any(isinstance(b, ACBlock) for _, _, _, b in iter_blocks(net)):
        raise ValueError("the network still has ACBlocks; prune the deployed form: "
                         "asymmzoo.deploy(net) first (the paper prunes the fused kernels)")
    if not convs:
        raise ValueError("the network has no %dx%d conv layers" % (k, k))
    return convs


def pruning_curves(net, evaluate_fn, ratios=(0.0, 0.1, 0.2, 0.3, 0.4), modes=MODES, seeds=5,
                   kernel_size=3):
    """Accuracy under random position pruning.

    ``evaluate_fn(net) -> accuracy``. For each mode, ratio and seed every kxk conv layer is pruned to
    that sparsity, evaluated, and restored. Returns rows
    ``dict(mode, ratio, mean, std, accs)`` (ratios a mode cannot reach are capped, see prune_kernels).
    """
    bad = [r for r in ratios if not (0 <= float(r) <= 1)]
    if bad:
        raise ValueError("pruning ratios must lie in [0, 1] (a fraction of each kernel's weights); got %s"
                         % ', '.join(str(r) for r in bad))
    if int(seeds) < 1:
        raise ValueError("seeds must be at least 1 (random repeats per point); got %r" % (seeds,))
    for mode in modes:
        position_mask(mode, kernel_size)   # an unknown mode is refused before any evaluation
    convs = _plain_square_convs(net, kernel_size)
    saved = [c.weight.data().asnumpy().copy() for c in convs]
    restore = lambda: [c.weight.set_data(mx.nd.array(w)) for c, w in zip(convs, saved)]
    rows = []
    try:
        for mode in modes:
            position_mask(mode, kernel_size)
            for ratio in ratios:
                accs = []
                for seed in range(seeds):
                    rng = np.random.RandomState(seed)
                    for c, w in zip(convs, saved):
                        # NDArray source: MKLDNN-laid-out params refuse a raw numpy copy
                        c.weight.set_data(mx.nd.array(prune_kernels(w, mode, ratio, rng)))
                    accs.append(float(evaluate_fn(net)))
                    restore()
                rows.append(dict(mode=mode, ratio=float(ratio), mean=float(np.mean(accs)),
                                 std=float(np.std(accs)), accs=accs))
    finally:
        restore()
    return rows


def plot_pruning_curves(groups, path, titles=None):
    """One panel per model: accuracy (mean +- std) vs sparsity for every mode. ``groups`` is a
    list of row lists as returned by :func:`pruning_curves`."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    from ..io import atomic_savefig
    titles = titles or [''] * len(groups)
    fig, axes = plt.subplots(1, len(groups), figsize=(4.2 * len(groups), 3.4), squeeze=False)
    for ax, rows, t in zip(axes[0], groups, titles):
        for mode in MODES:
            rs = [r for r in rows if r['mode'] == mode]
            if not rs:
                continue
            x = np.array([r['ratio'] for r in rs]) * 100
            m = np.array([r['mean'] for r in rs]) * 100
            s = np.array([r['std'] for r in rs]) * 100
            ax.plot(x, m, marker='o', label=mode)
            ax.fill_between(x, m - s, m + s, alpha=0.2)
        ax.set_xlabel('sparsity ratio (%)')
        ax.set_ylabel('accuracy (%)')
        ax.set_title(t, fontsize=9)
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    atomic_savefig(fig, path, dpi=120)
    return path
