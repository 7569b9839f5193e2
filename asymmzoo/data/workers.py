"""Clean-up for data-loading worker processes."""
import contextlib

__all__ = ['worker_scratch']


@contextlib.contextmanager
def worker_scratch():
    """Data-loading worker processes (ImageFolder with -j > 0, GluonCV's loaders) each made their
    own multiprocessing temp folder (``pymp-*`` in $TMPDIR, for the sockets that pass shared-memory
    handles) and, terminated with their pool, never removed it. Making the parent's folder before
    the workers fork gives them that one to share, and multiprocessing removes it when the parent
    exits. Yields the folder."""
    from multiprocessing import util
    yield util.get_temp_dir()
