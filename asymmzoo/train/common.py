"""What every training run of the project shares: seeding, devices, the learning-rate schedule and
the stop on a diverged loss.

``train_imagenet.py``, the in-memory engine (:mod:`asymmzoo.train.quick`) and the downstream training
scripts all seed (:func:`seed_all`), pick their devices (:func:`contexts`) and schedule their learning
rate (:func:`lr_schedule`) and stop on a NaN / infinite loss (:func:`check_loss`) through these
functions.
"""
import math
import random

import numpy as np

__all__ = ['seed_all', 'contexts', 'lr_schedule', 'LR_MODES', 'TrainingDiverged', 'check_loss']

LR_MODES = ('cosine', 'step', 'linear', 'poly', 'constant')


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite: the run stops, naming the step and the fix."""


def check_loss(value, where, fix):
    """Stop a run whose loss ``value`` is NaN or infinite: :class:`TrainingDiverged` naming ``where``
    (e.g. 'epoch 2 step 7') and ``fix``. Returns ``value`` as a float."""
    value = float(value)
    if not math.isfinite(value):
        raise TrainingDiverged("loss is %s at %s; stopped. %s" % (value, where, fix))
    return value


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


def lr_schedule(lr, epochs, iters_per_epoch, mode='cosine', warmup_epochs=0, warmup_lr=0.0, final_lr=0.0,
                decay=0.1, decay_epochs=()):
    """The learning-rate schedule of every run: GluonCV's ``LRSequential`` of a linear warmup from
    ``warmup_lr`` to ``lr`` over ``warmup_epochs``, then ``mode`` over the remaining epochs: 'cosine',
    'linear' and 'poly' (power 2) fall to ``final_lr``; 'step' multiplies by ``decay`` from the first
    update of each of ``decay_epochs`` on (epochs counted from the start of the run, 0-based; a
    sequence, or the flags' comma-separated text such as ``'40,60'``);
    'constant' holds ``lr``. A run shorter than its warmup ends in it.

    Give it to a ``gluon.Trainer`` as ``lr_scheduler``: the optimizer asks for update ``u`` = 1, 2, ...
    and gets step ``u`` of GluonCV's phases (which run over steps 0 .. n-1, so a phase's last update
    already sits at its end value). A phase of a single step holds its first value (GluonCV would
    divide by zero there); a phase of no step is left out."""
    from gluoncv.utils import LRScheduler, LRSequential
    if mode not in LR_MODES:
        raise ValueError("lr mode %r: choose one of %s" % (mode, ', '.join(LR_MODES)))
    if isinstance(decay_epochs, str):
        decay_epochs = [int(e) for e in decay_epochs.split(',') if e.strip()]
    iters_per_epoch = max(1, int(iters_per_epoch))
    warmup_epochs = max(0, int(warmup_epochs))   # not capped: a run shorter than its warmup ends in it
    main_epochs = max(0, int(epochs) - warmup_epochs)

    def phase(kind, base, target, n_epochs, **kw):
        if n_epochs * iters_per_epoch == 1:
            kind, target = 'constant', base
        return LRScheduler(kind, base_lr=base, target_lr=target, nepochs=n_epochs,
                           iters_per_epoch=iters_per_epoch, **kw)
    phases = []
    if warmup_epochs:
        phases.append(phase('linear', warmup_lr, lr, warmup_epochs))
    if main_epochs or not phases:
        # 'step': the first update of each decay epoch e (u = e * iters_per_epoch + 1) has the new value
        phases.append(phase(mode, lr, final_lr, max(main_epochs, 1 if not phases else 0),
                            step_iter=[(e - warmup_epochs) * iters_per_epoch + 1 for e in decay_epochs],
                            step_factor=decay, power=2))
    sched = LRSequential(phases)
    sched.base_lr = lr   # what an optimizer given learning_rate=lr as well compares (and else warns about)
    return sched
