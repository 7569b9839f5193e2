"""Counting, export and benchmarking helpers."""
from .math import make_divisible
from .counting import count_params, count_buffers, count_madds, layer_madds
