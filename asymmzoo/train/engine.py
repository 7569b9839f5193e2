"""The training engine of the task scripts (``downstream/*/train_*.py``): the command wrapper (one-line
errors, Ctrl-C), checkpoints in the format of :mod:`asymmzoo.train.checkpoint` with the resume checks,
GluonCV's LR schedules and the per-step bookkeeping. Seeding and devices come from
:mod:`asymmzoo.train.common`, like ``train_imagenet.py``'s."""
import os

import numpy as np
import mxnet as mx
from mxnet import gluon

from ..io import atomic_save_parameters
from .checkpoint import RunLock, load_resume, make_run_folder, remove_unused_run_folder, save_checkpoint
from .common import seed_all, contexts, lr_schedule, check_loss, TrainingDiverged  # noqa: F401  (the scripts import them from here)

__all__ = ['seed_all', 'save_params', 'Checkpoint', 'make_trainer', 'contexts', 'run_cli',
           'settings_of', 'check_resume', 'refuse_to_overwrite', 'StepLog', 'TrainingDiverged']


def run_cli(main, argv, prog, resumable=False, interrupted=None):
    """Run a training script's ``main(argv)`` as a command: a user error (bad value, missing or
    malformed file, a dataset problem) ends with one line and exit code 2, a NaN / infinite loss
    (:class:`TrainingDiverged`) with one line and 3, Ctrl-C with a line and 130
    (``interrupted``: what that line says, for a script without a save folder); ``--debug`` shows
    the traceback instead. A save folder the failed (or interrupted) run created and left without
    a file of its own is removed again (:func:`remove_unused_save_dirs`)."""
    import sys
    argv = list(argv)
    debug = '--debug' in argv
    argv = [a for a in argv if a != '--debug']
    from ..data.workers import worker_scratch
    del _CREATED_DIRS[:], _RUN_LOCKS[:]
    try:
        with worker_scratch():
            rc = main(argv)
    except KeyboardInterrupt:
        removed = remove_unused_save_dirs()
        if removed and not interrupted:
            interrupted = "nothing was saved (no checkpoint yet; the save folder %s it made is removed)" \
                % removed[0]
        print("%s: interrupted; %s" % (prog, interrupted or (
            "what the run saved so far is in its save folder%s" % (
                " (--resume continues from the last checkpoint)" if resumable else ''))),
              file=sys.stderr)
        return 130
    except TrainingDiverged as e:
        remove_unused_save_dirs()
        if debug:
            raise
        print("%s: error: %s" % (prog, e), file=sys.stderr)
        return 3
    except (ValueError, OSError, KeyError, IndexError, TypeError, RuntimeError,
            mx.base.MXNetError) as e:
        remove_unused_save_dirs()
        if debug:
            raise
        lines = [l.strip() for l in str(e).splitlines() if l.strip() and 'Traceback' not in l
                 and not l.strip().startswith('File "')]
        msg = lines[-1] if isinstance(e, mx.base.MXNetError) and lines else \
            (lines[0] if lines else type(e).__name__)
        if isinstance(e, OSError) and e.filename and e.strerror:
            msg = '%s: %s' % (e.filename, e.strerror)
        print("%s: error: %s (--debug shows the traceback)" % (prog, msg), file=sys.stderr)
        return 2
    del _CREATED_DIRS[:], _RUN_LOCKS[:]
    return rc if isinstance(rc, int) else 0


_CREATED_DIRS = []   # per Checkpoint of this run: the folders it made (checkpoint.make_run_folder)
_RUN_LOCKS = []      # the _HELD_LOCKS keys this run took


def remove_unused_save_dirs():
    """Undo the save folders this run created (:class:`Checkpoint`) where the run saved nothing:
    the run lock is released, then each folder goes as ``train_imagenet.py``'s does
    (:func:`asymmzoo.train.checkpoint.remove_unused_run_folder`: only when it holds nothing but what a
    run writes before its first checkpoint; the empty parents made with it go too). A folder that
    existed before the run, or holds a checkpoint or any other file, stays. Returns the folders
    removed."""
    removed = []
    while _RUN_LOCKS:   # the run is over: its locks go (the lock file with them)
        lock = _HELD_LOCKS.pop(_RUN_LOCKS.pop(), None)
        if lock is not None:
            lock.release()
    while _CREATED_DIRS:
        removed += remove_unused_run_folder(_CREATED_DIRS.pop())[:1]
    return removed


def refuse_to_overwrite(paths, force=False, flag='--save-prefix'):
    """Before any training: refuse outputs that would replace a file the user has, unless
    ``force`` (``--force``); a path that is a folder is refused even then."""
    for path in paths:
        if os.path.isdir(path):
            raise ValueError("%s is a folder; choose another %s" % (path, flag))
        if os.path.exists(path) and not force:
            raise ValueError("%s exists; pass --force to replace it, or choose another %s" % (path, flag))


def save_params(net, path):
    """``net.save_parameters`` through a temporary file and an atomic rename."""
    atomic_save_parameters(net, path)


_HELD_LOCKS = {}   # save folders this process owns (RunLock), released at exit


class Checkpoint(object):
    """A task run's checkpoint in ``save_dir``, in the format of :mod:`asymmzoo.train.checkpoint`:
    ``{prefix}-last.params`` / ``.states`` / ``.rng``, each written atomically, then
    ``{prefix}-last.json`` naming them with their sha1 and holding the run's record (epoch, best
    score, history, flags). The json is written last: its presence means a complete checkpoint, and
    :meth:`load_meta` checks every file against its sha1."""

    def __init__(self, save_dir, prefix, resume=None):
        made = make_run_folder(save_dir)
        if made:   # made by this run: removed again if the run fails before using it
            _CREATED_DIRS.append(made)
        self.save_dir, self.prefix = save_dir, prefix
        base = os.path.join(save_dir, prefix)
        self.params, self.states, self.meta = base + '-last.params', base + '-last.states', base + '-last.json'
        self.stem = prefix + '-last'
        if resume is not None:
            self.claim(resume)

    def claim(self, resume):
        """Own the folder for this process (a second run on it is refused: asymmzoo's RunLock) and,
        unless ``resume``, refuse a folder that already holds this prefix's run: nothing is
        overwritten unasked."""
        import atexit
        if not resume and (self.exists() or os.path.exists(self.path('best'))):
            raise ValueError("%s already holds a %s run (%s); pass --resume to continue it, or choose "
                             "another --save-dir / --save-prefix" % (self.save_dir, self.prefix,
                                                                     os.path.basename(self.meta)))
        key = os.path.realpath(self.save_dir)
        if key not in _HELD_LOCKS:   # this process may run main() again (a resume in the same process)
            _HELD_LOCKS[key] = RunLock(self.save_dir)
            _RUN_LOCKS.append(key)
            atexit.register(_HELD_LOCKS[key].release)
        return _HELD_LOCKS[key]

    def path(self, tag):
        return os.path.join(self.save_dir, '%s-%s.params' % (self.prefix, tag))

    def exists(self):
        return os.path.exists(self.meta)

    def save(self, net, trainer, meta):
        """Write the checkpoint of epoch ``meta['epoch']`` (``meta``: the run's JSON-able record)."""
        save_checkpoint(self.save_dir, meta['epoch'], net, trainer, meta, stem=self.stem,
                        resume_file=os.path.basename(self.meta))

    def load_meta(self):
        """The checked record of the last checkpoint (file paths absolute, sha1s verified)."""
        return load_resume(self.save_dir, resume_file=os.path.basename(self.meta))


# On resume, a change of these flags is refused: the saved state would not fit them (the model, its
# classes, the optimizer) or the run would not be the one continued (its data, its batch). Schedule
# flags (RESUME_SCHEDULE) rebuild the LR schedule from the new values at the saved step count
# (make_trainer_from_args); any other change (augmentation, logging, intervals, workers) applies
# from the resumed epoch on. Each change is logged.
RESUME_REFUSED = ('network', 'head', 'filters', 'deconv_filters', 'dataset', 'classes', 'data_shape',
                  'input_size', 'train_split', 'batch_size', 'optimizer', 'no_wd', 'invalid_boxes',
                  'save_prefix')
RESUME_SCHEDULE = ('lr', 'epochs', 'warmup_epochs', 'warmup_lr', 'lr_mode', 'lr_decay', 'lr_decay_epoch',
                   'wd', 'momentum')


def settings_of(args):
    """The run's flags as JSON values (stored in every checkpoint, compared on resume)."""
    out = {}
    for k, v in sorted(vars(args).items()):
        if isinstance(v, tuple):
            v = list(v)
        if v is None or isinstance(v, (bool, int, float, str, list)):
            out[k] = v
    return out


def check_resume(meta, args, log, where):
    """Compare the flags of a resumed run with those its checkpoint ``meta`` was written with: a
    change of the model, the data, the batch or the optimizer is refused with the reason
    (RESUME_REFUSED); any other change is applied and logged, schedule flags by rebuilding the LR
    schedule. A run that has done all its epochs is refused unless ``--epochs`` grows."""
    saved = meta.get('settings')
    if saved is not None:
        now = settings_of(args)
        changed = [(k, saved[k], now[k]) for k in sorted(now) if k in saved and saved[k] != now[k]]
        flag = lambda k: '--' + k.replace('_', '-')
        refused = [c for c in changed if c[0] in RESUME_REFUSED]
        if refused:
            raise ValueError("%s was trained with %s; resuming with %s would not continue that run: pass "
                             "the saved values, or start a new run in another --save-dir" % (
                                 where, ', '.join('%s %s' % (flag(k), a) for k, a, _ in refused),
                                 ', '.join('%s %s' % (flag(k), b) for k, _, b in refused)))
        for k, a, b in changed:
            if k != 'resume':
                log.info('resume: %s %s (was %s)%s', flag(k), b, a,
                         ' -- the LR schedule is rebuilt with it' if k in RESUME_SCHEDULE else '')
    done = int(meta['epoch']) + 1
    if done >= args.epochs:
        raise ValueError("%s has finished all %d epochs of --epochs %d; to train on, resume with a larger "
                         "--epochs" % (where, done, args.epochs))


def make_trainer(net, optimizer, lr, epochs, iters_per_epoch, warmup_epochs=0, warmup_lr=0.0,
                 lr_mode='cosine', lr_decay=0.1, lr_decay_epoch=(), wd=0.0, momentum=0.9):
    """gluon.Trainer of ``net`` (a block, or the ParameterDict of several) on the run's schedule
    (:func:`asymmzoo.train.common.lr_schedule`: linear warmup, then ``lr_mode`` down to 0, or
    ``lr_decay`` at each of ``lr_decay_epoch`` with 'step': epochs, or their comma-separated text)."""
    params = net.collect_params() if hasattr(net, 'collect_params') else net
    opt = {'wd': wd, 'learning_rate': lr,
           'lr_scheduler': lr_schedule(lr, epochs, iters_per_epoch, lr_mode, warmup_epochs, warmup_lr,
                                       0.0, lr_decay, lr_decay_epoch)}
    if optimizer in ('sgd', 'nag'):
        opt['momentum'] = momentum
    return gluon.Trainer(params, optimizer, opt, kvstore='local')


def make_trainer_from_args(net, args, iters_per_epoch, resume=None, ctx=None):
    """``make_trainer`` from the training scripts' shared flags (--optimizer, --lr, --epochs,
    --warmup-epochs, --warmup-lr, --lr-mode, --lr-decay, --lr-decay-epoch, --wd, --momentum); an
    epoch capped by ``--max-iters`` (where a script has it) schedules that many steps. With
    ``resume`` (a loaded :class:`Checkpoint`) the parameters move to ``ctx`` and the optimizer
    state is restored, so the run continues where it stopped."""
    steps = min(iters_per_epoch, getattr(args, 'max_iters', 0) or iters_per_epoch)
    trainer = make_trainer(net, args.optimizer, args.lr, args.epochs, steps, args.warmup_epochs,
                           args.warmup_lr, args.lr_mode, args.lr_decay,
                           args.lr_decay_epoch,
                           args.wd, args.momentum)
    if resume is not None:
        net.collect_params().reset_ctx(ctx)
        opt = trainer._optimizer
        schedule = (opt.lr_scheduler, opt.wd, getattr(opt, 'momentum', None))
        trainer.load_states(resume.states)   # restores the optimizer, its step count and its old schedule
        opt = trainer._optimizer
        opt.lr_scheduler, opt.wd = schedule[:2]   # ... the schedule of this run's flags, at that step count
        if schedule[2] is not None and hasattr(opt, 'momentum'):
            opt.momentum = schedule[2]
    return trainer


class StepLog(object):
    """Per-step bookkeeping of a task script's loop: the stop on a NaN / infinite loss
    (:func:`asymmzoo.train.common.check_loss`, naming ``fix_hint``), the loss history, a log line
    every ``log_interval`` steps (0: none, for a loop that logs its own metrics) and the
    ``max_steps`` limit (0: none).

    ``after_step(loss, epoch, lr)`` (``loss``: an NDArray or a list of them, one per device; ``epoch``
    0-based, named 1-based as ``train_imagenet.py`` does; ``lr`` named too) returns True when the loop
    should stop; ``done`` tells whether the step limit was reached; ``last_epoch(epoch, epochs)``
    whether this epoch is the final one.
    """

    def __init__(self, log, fix_hint='lower --lr', log_interval=0, max_steps=0):
        import time
        self.log, self.fix_hint = log, fix_hint
        self.log_interval, self.max_steps = int(log_interval or 0), int(max_steps or 0)
        self.losses, self.step, self.t0 = [], 0, time.time()

    def after_step(self, loss, epoch, lr=None):
        import time
        parts = loss if isinstance(loss, (list, tuple)) else [loss]
        lv = check_loss(sum(float(p.mean().asscalar()) for p in parts) / len(parts),
                        'epoch %d step %d%s' % (epoch + 1, self.step + 1,
                                                ' (lr %.4g)' % lr if lr is not None else ''),
                        self.fix_hint)
        self.losses.append(lv)
        self.step += 1
        if self.log_interval and self.step % self.log_interval == 0:
            self.log.info('epoch %d step %d loss %.4f (%.1fs)', epoch, self.step, lv,
                          time.time() - self.t0)
        return self.done

    @property
    def done(self):
        return bool(self.max_steps and self.step >= self.max_steps)

    def last_epoch(self, epoch, epochs):
        return bool(epoch == epochs - 1 or self.done)
