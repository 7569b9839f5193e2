"""Test helpers: reproducible random inputs and random BN statistics.

Checks such as "deploy leaves the inference output unchanged" are only meaningful when BN running
statistics are not the trivial (mean 0, var 1) of a fresh network; ``randomize_bn`` sets them (and
optionally the affine gammas) to random values, reproducibly.
"""
import mxnet as mx
import numpy as np

__all__ = ['random_input', 'randomize_bn']


def random_input(shape, seed=0, low=-1.0, high=1.0):
    """float32 NDArray of ``shape``, uniform in [low, high), from ``np.random.RandomState(seed)``."""
    return mx.nd.array(np.random.RandomState(seed).uniform(low, high, size=shape).astype('float32'))


def randomize_bn(net, seed=1, affine=False):
    """Random running statistics for every BN of ``net``: mean ~ U(-0.5, 0.5), var ~ U(0.5, 2);
    with ``affine`` also trainable gammas ~ U(0.5, 1.5). Parameters are matched by name suffix, so
    any BatchNorm-like layer (SyncBatchNorm, ACB branch BNs) is covered."""
    rng = np.random.RandomState(seed)
    for name, p in net.collect_params().items():
        if name.endswith('running_mean'):
            p.set_data(mx.nd.array(rng.uniform(-0.5, 0.5, p.shape)))
        elif name.endswith('running_var'):
            p.set_data(mx.nd.array(rng.uniform(0.5, 2.0, p.shape)))
        elif affine and name.endswith('gamma') and p.grad_req != 'null':
            p.set_data(mx.nd.array(rng.uniform(0.5, 1.5, p.shape)))
    return net
