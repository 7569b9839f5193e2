"""Deprecated location: the NCHWc channel padding is :mod:`asymmzoo.export.nchwc`
(``asymmzoo.export.pad_channels``, ``asymmzoo.export.nchwc_block_size``). This module only re-exports
them, so that ``asymmzoo.utils.nchwc.pad_channels`` keeps working."""
from ..export.nchwc import nchwc_block_size, pad_channels  # noqa: F401

__all__ = ['nchwc_block_size', 'pad_channels']
