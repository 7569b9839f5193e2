"""How much the machine gives this process right now: :func:`host_gflops` (a float32 matrix-product
rate), probed before and after the benchmark rounds, and the line the table footers print from it
(:func:`host_note`)."""
import os
import time

import numpy as np

HOST_PROBE_SIZE = 1024


def host_gflops(size=HOST_PROBE_SIZE, calls=10, repeats=3, threads=None):
    """How much arithmetic the machine gives this process right now: the float32 rate, in GFLOP/s, of
    numpy's ``size x size`` matrix product, best of ``repeats`` timings of ``calls`` products (~0.3 s
    on an idle 2-core box). Its BLAS runs on ``threads`` threads (default: every core,
    ``os.cpu_count()``), whatever ``OMP_NUM_THREADS`` says, so that a one-thread benchmark and an
    all-core one probe the same thing (``threadpoolctl``).

    On a shared virtual machine a neighbour's load does not show in the load average (that is the
    guest's), but it slows every kernel: the benchmarks record this probe before and after their
    rounds (:func:`_probe_host`), so a table measured while the host was busy says so. Compare it
    with the same probe on the idle machine (this project's 2-vCPU box: ~240 GFLOP/s idle, 100-150
    when the host is busy)."""
    from threadpoolctl import threadpool_limits
    threads = int(threads or os.cpu_count() or 1)
    rng = np.random.RandomState(0)
    a = rng.standard_normal((size, size)).astype(np.float32)
    b = rng.standard_normal((size, size)).astype(np.float32)
    best = float('inf')
    with threadpool_limits(limits=threads, user_api='blas'):
        np.dot(a, b)  # first call: BLAS threads start, buffers allocated
        for _ in range(repeats):
            t0 = time.perf_counter()
            for _ in range(calls):
                np.dot(a, b)
            best = min(best, time.perf_counter() - t0)
    return 2.0 * size ** 3 * calls / best / 1e9


def _probe_host(settle):
    """:func:`host_gflops` between two idle spells: the runtimes' worker threads spin-wait for a
    while after a call (they would slow the probe), and so do the BLAS threads after the probe
    (they would slow the next timed call)."""
    time.sleep(max(settle, 0.1))
    g = host_gflops()
    time.sleep(max(settle, 0.1))
    return g


def host_note(host):
    """'; host float32 1024x1024 matmul on N BLAS threads: X GFLOP/s before the rounds, Y after' for a
    table footer, from a ``host_gflops`` record ``{'before': X, 'after': Y, 'threads': N}`` (empty for
    results without one, e.g. files written before the probe existed)."""
    host = host or {}
    if host.get('before') is None or host.get('after') is None:
        return ''
    return '; host float32 %dx%d matmul on %s BLAS thread%s: %.0f GFLOP/s before the rounds, %.0f after' % (
        HOST_PROBE_SIZE, HOST_PROBE_SIZE, host.get('threads', '?'), '' if host.get('threads') == 1 else 's',
        host['before'], host['after'])
