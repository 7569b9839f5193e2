"""Data-loading worker processes: a DataLoader whose forking does not lose a Ctrl-C
(:func:`data_loader`), and the clean-up of their temporary folders (:func:`worker_scratch`)."""
import contextlib
import os
import shutil
import signal
import tempfile
import threading

__all__ = ['worker_scratch', 'SCRATCH_PREFIX', 'data_loader']

SCRATCH_PREFIX = 'asymmzoo-pymp-'   # + the owner's pid: a folder whose owner is gone can be removed


def _remove_stale(tmp):
    """Remove the scratch folders of runs that are gone (killed with SIGKILL: nothing ran their
    clean-up). Only this package's folders, and only when their owner's pid no longer exists."""
    try:
        names = os.listdir(tmp)
    except OSError:
        return
    for name in names:
        if not name.startswith(SCRATCH_PREFIX):
            continue
        try:
            pid = int(name[len(SCRATCH_PREFIX):].split('-', 1)[0])
        except ValueError:
            continue
        if pid == os.getpid():
            continue
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            shutil.rmtree(os.path.join(tmp, name), ignore_errors=True)
        except OSError:   # alive (another user's process): not ours to touch
            pass


@contextlib.contextmanager
def worker_scratch():
    """Data-loading worker processes (ImageFolder with -j > 0, GluonCV's loaders) each made their
    own multiprocessing temp folder (``pymp-*`` in $TMPDIR, for the sockets that pass shared-memory
    handles) and, terminated with their pool, never removed it. Making the parent's folder before
    the workers fork gives them that one to share, and multiprocessing removes it when the parent
    exits. The folder is named after this process (``asymmzoo-pymp-<pid>-*``), so that the next run
    removes it if this one is killed before it can. Yields the folder."""
    from multiprocessing import process, util
    tmp = tempfile.gettempdir()
    _remove_stale(tmp)
    config = process.current_process()._config
    if config.get('tempdir') is None:
        folder = tempfile.mkdtemp(prefix='%s%d-' % (SCRATCH_PREFIX, os.getpid()), dir=tmp)
        util.Finalize(None, util._remove_temp_dir, args=(shutil.rmtree, folder), exitpriority=-100)
        config['tempdir'] = folder
    yield util.get_temp_dir()


class _DeferredInterrupt(object):
    """Stands in for the ``signal`` module inside MXNet's DataLoader while it forks its workers. MXNet
    sets SIGINT to SIG_IGN for that moment (so the workers ignore Ctrl-C) and restores the handler
    afterwards; a Ctrl-C in between was lost, and the run went on. Here the moment's handler only
    remembers the interrupt (the workers inherit it, so they still ignore Ctrl-C), and
    :func:`data_loader` raises it once the loader is built."""

    def __init__(self):
        self.hit = False

    def __getattr__(self, name):
        return getattr(signal, name)

    def _remember(self, signum, frame):
        self.hit = True

    def signal(self, signum, handler):
        if signum == signal.SIGINT and handler == signal.SIG_IGN:
            handler = self._remember
        return signal.signal(signum, handler)


def data_loader(*args, **kwargs):
    """``mxnet.gluon.data.DataLoader(*args, **kwargs)``, except that a Ctrl-C while it forks its worker
    processes (``num_workers > 0``) interrupts the run instead of being lost: the loader is dropped
    (its pool terminated) and ``KeyboardInterrupt`` raised."""
    from mxnet.gluon.data import dataloader as dl
    if not kwargs.get('num_workers') or kwargs.get('thread_pool') \
            or threading.current_thread() is not threading.main_thread():
        return dl.DataLoader(*args, **kwargs)
    real, deferred = dl.signal, _DeferredInterrupt()
    dl.signal = deferred
    try:
        loader = dl.DataLoader(*args, **kwargs)
    finally:
        dl.signal = real
    if deferred.hit:
        del loader   # its __del__ terminates the worker pool
        raise KeyboardInterrupt
    return loader
