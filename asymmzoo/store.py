"""Local pretrained-weight store, GluonCV style.

Files live in ``$MXNET_HOME/models`` (default ``~/.mxnet/models``) or a ``root`` you pass, named
``{model}-{sha1[:8]}.params``; the sha1 prefix in the name is checked against the file's content
before loading, so a truncated or corrupted download is refused instead of half-loaded.
A model with a row in the weights table (``spec.source``) is downloaded when its file is absent
(:func:`asymmzoo.download.fetch_into_store`: verified, converted, written atomically);
``asymmzoo store add FILE --model NAME`` (:func:`asymmzoo.weights.add_to_store`) puts a checked file in
place by hand.
"""
import glob
import os

from .download import fetch_into_store
from .io import WeightsError, load_params_into, sha1_of

__all__ = ['StoreError', 'store_root', 'find_pretrained', 'load_pretrained', 'ensure_pretrained']

StoreError = WeightsError   # the store's files are weights files: one error type for both


def store_root(root=None):
    if root is None:
        root = os.path.join(os.environ.get('MXNET_HOME', os.path.join('~', '.mxnet')), 'models')
    return os.path.expanduser(root)


def find_pretrained(name, root=None):
    """Path of the verified store file for ``name``; a clear StoreError when absent or corrupt."""
    candidates = _stored(name, root)
    root = store_root(root)
    if not candidates:
        raise StoreError(
            "no pretrained weights for %r in %s, and none are published for it: put the file there as "
            "%s-<first 8 hex digits of its sha1>.params, e.g. with `asymmzoo store add FILE --model %s` "
            "(or pass pretrained='/path/to/file.params')." % (name, root, name, name))
    path = candidates[-1]
    expected = os.path.basename(path)[len(name) + 1:len(name) + 9]
    actual = sha1_of(path)
    if not actual.startswith(expected):
        raise StoreError("%s is corrupted: its sha1 is %s but the name says %s...; delete it and put "
                         "a good copy back with `asymmzoo store add`" % (path, actual, expected))
    return path


def _stored(name, root):
    root = store_root(root)
    return [c for c in sorted(glob.glob(os.path.join(root, '%s-*.params' % name)))
            if len(os.path.basename(c)) == len(name) + 1 + 8 + len('.params')]


def ensure_pretrained(name, source=None, root=None, progress=False):
    """The verified store file for ``name``; when absent and ``source`` (its weights-table row) is
    given, downloaded, verified and converted into the store first."""
    if source is not None and not _stored(name, root):
        return fetch_into_store(name, source, store_root(root), progress=progress)
    return find_pretrained(name, root)


def load_pretrained(net, name, pretrained, ctx=None, root=None, source=None):
    """``pretrained=True``: the verified store file for ``name`` (fetched first when the weights table
    has a ``source`` for it); a str: that file."""
    if isinstance(pretrained, str):
        if not os.path.isfile(os.path.expanduser(pretrained)):
            raise StoreError("pretrained file not found: %s" % pretrained)
        path = os.path.expanduser(pretrained)
    else:
        path = ensure_pretrained(name, source, root)
    return load_params_into(net, path, ctx=ctx)
