"""Moved to :mod:`asymmzoo.train.quick`; this name stays for code that imports it from here."""
from ..train.quick import digits_arrays, quick_train, evaluate, predict  # noqa: F401
