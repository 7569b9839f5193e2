"""Latency / throughput benchmarking of zoo models, interleaved in one process.

:func:`benchmark` times every (model, form, engine) round-robin, so that slow minutes of a shared
machine hit all of them alike; :func:`paired_ratios` times two models back to back every round for a
ratio with a confidence interval; :func:`op_profile` runs the fastest path under onnxruntime's
profiler, per operator type. ``asymmzoo bench`` is the command-line front end.

Where things are:

* :mod:`.runners`   -- building a model for an engine (``build_network``, ``BenchRunner``,
  ``resolve_names``, ``ENGINES``, ``FORMS``)
* :mod:`.timing`    -- ``benchmark``, ``paired_ratios``
* :mod:`.profiling` -- ``op_profile``
* :mod:`.host`      -- how fast the machine is right now (``host_gflops``, ``host_note``)
* :mod:`.memory`    -- ``peak_rss_mb``, in a fresh process per model
* :mod:`.report`    -- markdown tables (``format_table``, ``format_ratios``, ``format_op_profile``)

``asymmzoo.bench`` is loaded on first use (``import asymmzoo`` stays light).
"""
from .runners import resolve_names, build_network, BenchRunner, remove_profiles, ENGINES, FORMS
from .host import host_gflops, host_note, HOST_PROBE_SIZE
from .memory import peak_rss_mb
from .timing import benchmark, paired_ratios
from .profiling import op_profile
from .report import format_table, format_ratios, format_op_profile

__all__ = ['benchmark', 'paired_ratios', 'format_ratios', 'format_table', 'op_profile', 'format_op_profile',
           'resolve_names', 'build_network', 'remove_profiles', 'peak_rss_mb', 'host_gflops', 'host_note',
           'HOST_PROBE_SIZE', 'ENGINES', 'FORMS', 'BenchRunner']
