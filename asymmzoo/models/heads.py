"""Registers the downstream heads (YOLOv3, SimplePose, ...) that live in the ``downstream`` package.

Heads are registered for every backbone registered *before* this module is imported (so it is
imported last in ``asymmzoo/models/__init__.py``). When asymmzoo is installed without the
``downstream`` package, ``import asymmzoo`` still works and simply has no heads.
"""
try:
    import downstream  # noqa: F401  (importing it registers the heads)
except ModuleNotFoundError as e:  # only a missing package is tolerated, never a broken one
    if e.name != 'downstream':
        raise
