"""Checkpoints and exact resume.

A checkpoint of epoch E is three files written atomically (temporary name, then rename):
``epochEEEE.params`` (parameters incl. BN running statistics, structural names as
``save_parameters``), ``epochEEEE.states`` (trainer / optimizer state: momentum, update count = the
LR-schedule position, the LR scheduler itself) and ``epochEEEE.rng`` (python / numpy RNG states and the
MXNet seed). Then ``resume.json`` is replaced; it names the files with their sha1, the epoch, the global
step, the best metric and the metric history. A run killed at any moment leaves the previous
``resume.json`` pointing at complete files, so ``--resume DIR`` restarts at the last finished epoch;
since every epoch's order, augmentation and dropout depend only on ``(seed, epoch)``, the resumed run
continues the same learning curve.
"""
import json
import os
import pickle
import random

import numpy as np

from ..io import (atomic_save_params, atomic_target, atomic_write_bytes, atomic_write_json, missing_folders,
                  remove_empty_folders, sha1_of)

__all__ = ['CheckpointError', 'net_arrays', 'save_checkpoint', 'load_resume', 'atomic_write_bytes',
           'atomic_write_json', 'RESUME_FILE', 'RunLock', 'LOCK_FILE', 'EARLY_FILES', 'make_run_folder',
           'remove_unused_run_folder']

RESUME_FILE = 'resume.json'


class CheckpointError(ValueError):
    """A checkpoint to resume from is missing, truncated or does not fit."""


def net_arrays(net):
    """``{structural name: NDArray}`` like ``save_parameters`` (multi-device copies reduced)."""
    return {k: p._reduce() for k, p in net._collect_params_with_prefix().items()}


def save_checkpoint(save_dir, epoch, net, trainer, info, keep=0, stem=None, resume_file=None):
    """Write epoch ``epoch``'s checkpoint and point ``resume.json`` at it. ``info`` (a JSON-able dict:
    global_step, best_top1, history, ...) is stored in resume.json. ``keep`` > 0 deletes older
    per-epoch checkpoints beyond the newest ``keep`` (the best checkpoint is a separate file).
    ``stem`` names the three files instead of ``epochEEEE`` (the downstream scripts keep one
    ``{prefix}-last`` checkpoint) and ``resume_file`` the JSON instead of ``resume.json``."""
    base = os.path.join(save_dir, stem or 'epoch%04d' % epoch)
    atomic_save_params(net_arrays(net), base + '.params')
    with atomic_target(base + '.states') as tmp:
        trainer.save_states(tmp)
    import mxnet as mx  # noqa: F401
    rng = dict(python=random.getstate(), numpy=np.random.get_state(), mx_seed=info.get('mx_seed'))
    atomic_write_bytes(pickle.dumps(rng), base + '.rng')
    state = dict(info)
    state.update(epoch=epoch,
                 params=os.path.basename(base + '.params'), params_sha1=sha1_of(base + '.params'),
                 states=os.path.basename(base + '.states'), states_sha1=sha1_of(base + '.states'),
                 rng=os.path.basename(base + '.rng'), rng_sha1=sha1_of(base + '.rng'))
    atomic_write_json(state, os.path.join(save_dir, resume_file or RESUME_FILE))
    if keep and keep > 0 and stem is None:
        for e in range(epoch - keep, -1, -1):
            for ext in ('.params', '.states', '.rng'):
                p = os.path.join(save_dir, 'epoch%04d%s' % (e, ext))
                if os.path.exists(p):
                    os.remove(p)
    return state


def _checked(path, sha1, what, resume_dir, resume_file=None):
    if not os.path.isfile(path):
        raise CheckpointError("cannot resume from %s: its %s file %s is missing. Delete %s to start "
                              "over, or restore the file" % (resume_dir, what, path,
                                                            os.path.join(resume_dir, resume_file or RESUME_FILE)))
    if sha1 and sha1_of(path) != sha1:
        raise CheckpointError("cannot resume from %s: %s is truncated or corrupted (its sha1 does not "
                              "match the one recorded when it was written, size now %d bytes). Restore "
                              "it, or start a fresh run with another --save-dir"
                              % (resume_dir, path, os.path.getsize(path)))
    return path


def load_resume(resume_dir, resume_file=None):
    """Read and check ``resume_dir/resume.json`` (or ``resume_file``): every file it names exists and
    has the sha1 recorded when it was written; returns the state dict with absolute file paths."""
    if not os.path.isdir(resume_dir):
        raise CheckpointError("--resume %s: no such folder" % resume_dir)
    name = resume_file or RESUME_FILE
    path = os.path.join(resume_dir, name)
    if not os.path.isfile(path):
        raise CheckpointError("--resume %s: no %s there, so no finished epoch to resume from (a run "
                              "killed during its first epoch must start over)" % (resume_dir, name))
    try:
        with open(path) as f:
            state = json.load(f)
    except ValueError as e:
        raise CheckpointError("--resume %s: %s is not valid JSON (%s); it is truncated or was edited"
                              % (resume_dir, path, e))
    for key, what in (('params', 'parameters'), ('states', 'trainer state'), ('rng', 'RNG state')):
        state[key] = _checked(os.path.join(resume_dir, state[key]), state.get(key + '_sha1'), what,
                              resume_dir, name)
    return state


def restore(state, net, trainer, ctx):
    """Load parameters, trainer state and RNG states of a checked resume ``state``."""
    restore_params(state, net, ctx)
    restore_trainer(state, trainer)
    restore_rng(state)


def restore_params(state, net, ctx):
    """Load the parameters of a checked resume ``state`` into ``net`` on ``ctx``."""
    import mxnet as mx
    try:
        net.load_parameters(state['params'], ctx=ctx, cast_dtype=True)
    except (mx.base.MXNetError, AssertionError, ValueError) as e:
        raise CheckpointError("cannot load %s into the model: %s" % (state['params'],
                                                                    str(e).strip().splitlines()[0]))


def restore_trainer(state, trainer):
    """Load the trainer / optimizer state of a checked resume ``state``."""
    try:
        trainer.load_states(state['states'])
    except Exception as e:  # pickle / shape errors
        raise CheckpointError("cannot load trainer state %s: %s" % (state['states'], e))


def restore_rng(state):
    """Put back the Python / numpy RNG states (and the MXNet seed) of a checked resume ``state``."""
    import mxnet as mx
    with open(state['rng'], 'rb') as f:
        rng = pickle.load(f)
    random.setstate(rng['python'])
    np.random.set_state(rng['numpy'])
    if rng.get('mx_seed') is not None:
        mx.random.seed(rng['mx_seed'])


LOCK_FILE = '.run.lock'


class RunLock(object):
    """One run at a time in a save folder: an exclusive ``flock`` on ``.run.lock`` (which names the
    owner's pid and host), held for the run. A second run is refused with the owner's name; the
    kernel lets go of the lock of a run that was killed, so nothing stale can block a later run.
    ``release()`` removes the file."""

    def __init__(self, folder):
        import fcntl
        import socket
        self.path = os.path.join(folder, LOCK_FILE)
        self.fd = None
        os.makedirs(folder, exist_ok=True)
        for _ in range(5):
            fd = os.open(self.path, os.O_CREAT | os.O_RDWR, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                owner = os.read(fd, 200).decode('utf8', 'replace').split()
                os.close(fd)
                raise CheckpointError(
                    "%s is in use by another run (%s); wait for it to finish, or choose another "
                    "--save-dir" % (folder, 'pid %s on %s' % tuple(owner[:2]) if len(owner) >= 2
                                    else 'starting up'))
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if not same:   # the previous owner removed the file we opened: lock the new one
                os.close(fd)
                continue
            os.ftruncate(fd, 0)
            os.write(fd, ('%d %s\n' % (os.getpid(), socket.gethostname())).encode('utf8'))
            self.fd = fd
            return
        raise CheckpointError("%s: could not take the run lock %s" % (folder, self.path))

    def release(self):
        if self.fd is None:
            return
        import fcntl
        try:
            os.remove(self.path)   # still ours: we hold the lock
        except FileNotFoundError:
            pass
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)
        self.fd = None


# what a run writes in its save folder before its first checkpoint: a folder holding nothing else
# holds nothing of the user's, so a failed run may take it back. Not the lock file: a run's own lock
# file goes when it lets go of the lock (RunLock.release), so one still there is another run's.
EARLY_FILES = frozenset({'settings.json', 'train.log', 'eval.log'})


def make_run_folder(folder):
    """Make a run's save folder (and missing parents); returns the folders this call made, deepest
    first, for :func:`remove_unused_run_folder`: empty when the folder existed, or when another run
    made it first (the folder itself is made with an exclusive ``mkdir``, so of two runs started on
    one new folder only one counts it as its own)."""
    folder = os.path.abspath(folder)
    made = missing_folders(folder)
    if not made:
        return []
    os.makedirs(os.path.dirname(folder), exist_ok=True)
    try:
        os.mkdir(folder)
    except FileExistsError:
        return []
    return made


def remove_unused_run_folder(made):
    """After a failed run (its lock released, its log closed): remove the folders it made (``made``,
    deepest first) when the save folder holds nothing but :data:`EARLY_FILES`, and the parents made
    with it while they are empty. A folder that existed before the run, or holds anything else (a
    checkpoint, another run's lock, a file of the user's), stays. Never raises: it runs while
    another error is being reported. Returns the folders removed."""
    try:
        if not made or not os.path.isdir(made[0]):
            return []
        names = set(os.listdir(made[0]))
        if not names <= EARLY_FILES:
            return []
        for n in names:
            os.remove(os.path.join(made[0], n))
        return remove_empty_folders(made)
    except OSError:
        return []
