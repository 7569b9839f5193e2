"""Argparse ``type=`` checkers shared by every command line of the project: a bad value is refused by
argparse itself, before any work, with one line naming the flag and what it takes
(``argument --lr: '-0.1' is not a positive number``)."""
import argparse
import math

__all__ = ['checked', 'positive_int', 'non_negative_int', 'positive_float', 'non_negative_float',
           'fraction', 'open_fraction', 'unit_interval', 'odd_kernel', 'tolerance', 'int_list', 'epoch_list', 'width_list']


def checked(convert, ok, what):
    """An argparse ``type``: ``convert(text)``, refused unless ``ok(value)`` ("'-1' is not <what>")."""

    def parse(text):
        try:
            v = convert(text)
        except (ValueError, OverflowError):
            v = None
        if v is None or not ok(v):
            raise argparse.ArgumentTypeError('%r is not %s' % (text, what))
        return v
    parse.__name__ = what   # argparse names the type in some messages
    return parse


def _finite(v):
    return math.isfinite(v)


positive_int = checked(int, lambda v: v >= 1, 'a positive integer')
non_negative_int = checked(int, lambda v: v >= 0, 'a non-negative integer')
positive_float = checked(float, lambda v: _finite(v) and v > 0, 'a positive number')
non_negative_float = checked(float, lambda v: _finite(v) and v >= 0, 'a non-negative number')
fraction = checked(float, lambda v: _finite(v) and 0 <= v < 1, 'a number in [0, 1)')
unit_interval = checked(float, lambda v: _finite(v) and 0 <= v <= 1, 'a number in [0, 1]')
odd_kernel = checked(int, lambda v: v >= 3 and v % 2 == 1, 'an odd kernel size >= 3')
open_fraction = checked(float, lambda v: _finite(v) and 0 < v <= 1, 'a number in (0, 1]')
tolerance = positive_float


def int_list(minimum, what):
    """An argparse ``type`` for comma-separated integers (``'160,180'``), each at least
    ``minimum``; returns the text as given (an empty one too)."""

    def parse(text):
        try:
            ok = all(int(p) >= minimum for p in text.split(',') if p.strip())
        except ValueError:
            ok = False
        if not ok:
            raise argparse.ArgumentTypeError('%r is not a comma-separated list of %s' % (text, what))
        return text
    parse.__name__ = 'list of ' + what
    return parse


epoch_list = int_list(0, 'epochs (integers >= 0)')
width_list = int_list(1, 'channel widths (integers >= 1)')
