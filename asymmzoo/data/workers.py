"""Clean-up for data-loading worker processes."""
import contextlib
import os
import shutil
import tempfile

__all__ = ['worker_scratch', 'SCRATCH_PREFIX']

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
