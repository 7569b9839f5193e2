"""What every training run of the project shares: seeding and devices.

``train_imagenet.py``, the in-memory engine (:mod:`asymmzoo.train.quick`) and the downstream training
scripts all seed and pick their devices through these two functions.
"""
import random

import numpy as np

__all__ = ['seed_all', 'contexts']


def seed_all(seed):
    """Seed Python's ``random``, numpy and MXNet with ``seed``."""
    import mxnet as mx
    random.seed(seed)
    np.random.seed(seed % (2 ** 32))
    mx.random.seed(seed)


def contexts(gpus):
    """The devices of a ``--gpus`` value ('' = the CPU, '0,1' = two GPUs); an id this machine does
    not have is refused with the fix."""
    import mxnet as mx
    ids = [g.strip() for g in str(gpus or '').split(',') if g.strip()]
    if not ids:
        return [mx.cpu()]
    n = mx.context.num_gpus()
    bad = [i for i in ids if not i.isdigit() or int(i) >= n]
    if bad:
        raise ValueError("--gpus %s: this machine has %d GPU(s) visible to MXNet (ids 0..%d); leave "
                         "--gpus empty to train on the CPU" % (gpus, n, n - 1))
    return [mx.gpu(int(i)) for i in ids]
