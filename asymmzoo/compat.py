"""Lets mxnet 1.9.1 run on the numpy and Python of Python 3.12 machines. It only puts back what
they removed and changes nothing on numpy 1.23 / Python 3.11.

* numpy 1.24 removed the type aliases ``np.bool``, ``np.int``, ``np.float``, ``np.complex``,
  ``np.object`` and ``np.str`` (deprecated since numpy 1.20: each was the Python builtin of that
  name). mxnet 1.9.1 reads them when it is imported. :func:`apply` sets each one that numpy lacks to
  that builtin, which is exactly what it was.
* Python 3.12 removed ``distutils``, which mxnet and gluoncv import. setuptools (installed with
  asymmzoo on 3.12) provides it. :func:`apply` imports setuptools when the standard library lacks
  it.

``import asymmzoo`` runs :func:`apply` before it imports mxnet. Installing asymmzoo also installs a
start-up hook (``asymmzoo-mxnet-compat.pth``, which imports ``asymmzoo_mxnet_hook``) that runs this
module on a plain ``import mxnet``, so import order does not matter.
"""
import sys
import warnings

__all__ = ['apply', 'removed_numpy_aliases']

_ALIASES = (('bool', bool), ('int', int), ('float', float), ('complex', complex),
            ('object', object), ('str', str))


def removed_numpy_aliases():
    """Names of the aliases this numpy no longer has."""
    import numpy
    missing = []
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')   # numpy 1.20-1.23 still answer, with a DeprecationWarning
        for name, _ in _ALIASES:
            try:
                getattr(numpy, name)
            except AttributeError:
                missing.append(name)
    return missing


def apply():
    """Restore what mxnet needs (see the module text). Returns the aliases it set."""
    import numpy
    missing = removed_numpy_aliases()
    for name, builtin in _ALIASES:
        if name in missing:
            setattr(numpy, name, builtin)
    try:
        import distutils.version  # noqa: F401
    except ImportError:
        try:
            import setuptools  # noqa: F401  (its distutils shim)
        except ImportError:
            raise ImportError("Python %d.%d has no distutils, which mxnet imports: install setuptools "
                              "(pip install setuptools)" % sys.version_info[:2]) from None
    return missing
