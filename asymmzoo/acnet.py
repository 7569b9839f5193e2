"""Moved to :mod:`asymmzoo.transforms.acnet`; this name stays for code that imports it from here."""
from .transforms.acnet import (acnetify, ACBAbsorbedBN, is_acnet_convertible, acb_blocks,  # noqa: F401
                               count_lone_bias)
