"""The average kernel magnitude matrix A of ACNet (Eq. 9-10, Fig. 6)."""
import numpy as np
from mxnet.gluon import nn

from ..nn.acb import ACBlock
from ..utils.blocks import iter_blocks

__all__ = ['square_kernels', 'kernel_magnitude_matrix', 'plot_kernel_matrix', 'dominant_kernel_size',
           'square_kernel_sizes']


def square_kernels(net, kernel_size=3):
    """``[(path, OIHW numpy kernel)]`` of every kxk layer: plain ``nn.Conv2D`` weights as they are,
    ACBlocks as their fused (BN-folded, branch-summed) kernel -- what the deployed net would hold."""
    out = []
    for path, _, _, blk in iter_blocks(net):
        if isinstance(blk, ACBlock):
            if blk.kernel_size == kernel_size:
                out.append((path, blk.get_equivalent_kernel_bias(as_numpy=True)[0]))
        elif isinstance(blk, nn.Conv2D):
            w = blk.weight
            if w.shape and tuple(w.shape[2:]) == (kernel_size, kernel_size) and \
                    not any(isinstance(a, ACBlock) for a in _ancestors(net, path)):
                out.append((path, w.data().asnumpy()))
    return out


def square_kernel_sizes(net):
    """``Counter`` of the odd square kernel sizes k >= 3 of the net's convs and ACBlocks (read from
    the layers' settings: works before the first forward)."""
    from collections import Counter
    sizes = Counter()
    for path, _, _, blk in iter_blocks(net):
        if isinstance(blk, ACBlock):
            sizes[blk.kernel_size] += 1
        elif isinstance(blk, nn.Conv2D) and blk.weight.shape and \
                not any(isinstance(a, ACBlock) for a in _ancestors(net, path)):
            kh, kw = blk._kwargs['kernel']
            if kh == kw and kh >= 3 and kh % 2:
                sizes[kh] += 1
    return sizes


def dominant_kernel_size(net):
    """The most frequent odd square kernel size k >= 3 among the net's convs / ACBlocks (ties: the
    smaller k), e.g. 3 for ResNets, 5 for Cifar-quick."""
    sizes = square_kernel_sizes(net)
    if not sizes:
        raise ValueError("the network has no square kxk (odd k >= 3) conv layers")
    return sorted(sizes.items(), key=lambda kv: (-kv[1], kv[0]))[0][0]


def _ancestors(net, path):
    blk, res = net, []
    for key in path.split('.')[:-1]:
        blk = blk._children[key]
        res.append(blk)
    return res


def kernel_magnitude_matrix(net, kernel_size=3, kernels=None):
    """A = (1/L) sum_i S_i / max(S_i), with S_i = sum over filters and input channels of |F| of layer i.

    Returns a (k, k) float64 array; the centre is 1.0 when every layer's largest magnitude sits there.
    """
    kernels = kernels if kernels is not None else [k for _, k in square_kernels(net, kernel_size)]
    if not kernels:
        raise ValueError("the network has no %dx%d conv layers (or ACBlocks)" % (kernel_size, kernel_size))
    acc = np.zeros((kernel_size, kernel_size))
    for k in kernels:
        s = np.abs(np.asarray(k, dtype=np.float64)).sum(axis=(0, 1))
        m = s.max()
        if m > 0:
            acc += s / m
    return acc / len(kernels)


def plot_kernel_matrix(matrices, path, titles=None):
    """Heat maps of one or more A matrices side by side, values written in the cells (Fig. 6)."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    from ..io import atomic_savefig
    if isinstance(matrices, np.ndarray):
        matrices = [matrices]
    titles = titles or [''] * len(matrices)
    fig, axes = plt.subplots(1, len(matrices), figsize=(3.2 * len(matrices), 3.2), squeeze=False)
    for ax, a, t in zip(axes[0], matrices, titles):
        ax.imshow(a, cmap='Blues', vmin=0, vmax=1)
        for (r, c), v in np.ndenumerate(a):
            ax.text(c, r, '%.3f' % v, ha='center', va='center',
                    color='white' if v > 0.6 else 'black', fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(t, fontsize=9)
    fig.tight_layout()
    atomic_savefig(fig, path, dpi=120)
    return path
