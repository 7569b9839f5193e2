"""Clean-up for data-loading worker processes."""
import contextlib
import os

__all__ = ['worker_scratch']


@contextlib.contextmanager
def worker_scratch():
    """Data-loading worker processes (ImageFolder with -j > 0) leave multiprocessing's ``pymp-*``
    folders in $TMPDIR when they are terminated: give them a scratch folder for the run and remove
    it (and whatever they left) afterwards. Yields the folder, or None where $TMPDIR's path is too
    long for it."""
    import gc
    import multiprocessing
    import shutil
    import tempfile
    scratch = tempfile.mkdtemp(prefix='az-')
    # workers put AF_UNIX sockets in pymp-XXXXXXXX/listener-XXXXXXXX below it: a path Linux limits
    # to 107 bytes; where the scratch folder would push it past that, leave $TMPDIR as it is
    if len(scratch) + len('/pymp-12345678/listener-12345678') > 100:
        os.rmdir(scratch)
        yield None
        return
    saved = tempfile.tempdir
    tempfile.tempdir = scratch
    try:
        yield scratch
    finally:
        tempfile.tempdir = saved
        gc.collect()          # finish the data loaders, whose pools terminate their workers
        own = multiprocessing.current_process()._config.get('tempdir') or ''
        for entry in os.listdir(scratch):
            path = os.path.join(scratch, entry)
            if path != own:
                shutil.rmtree(path, ignore_errors=True)
        if not own.startswith(scratch):
            shutil.rmtree(scratch, ignore_errors=True)
