"""Deprecated location: the benchmarking code is the package :mod:`asymmzoo.bench`
(``asymmzoo.bench.benchmark``, ``asymmzoo.bench.paired_ratios``, ...). This module only re-exports its
public names, so that ``asymmzoo.utils.benchmark.X`` keeps working; new code imports
``asymmzoo.bench``."""
from ..bench import (benchmark, paired_ratios, op_profile, format_table, format_ratios,  # noqa: F401
                     format_op_profile, resolve_names, build_network, remove_profiles, peak_rss_mb,
                     host_gflops, host_note, HOST_PROBE_SIZE, ENGINES, FORMS, BenchRunner)

__all__ = ['benchmark', 'paired_ratios', 'format_ratios', 'format_table', 'op_profile', 'format_op_profile',
           'resolve_names', 'build_network', 'remove_profiles',
           'peak_rss_mb',
           'ENGINES', 'FORMS', 'BenchRunner']
