"""Latency / throughput of zoo models, interleaved in one process.

On a shared or noisy machine, timing model A for a minute and then model B for a minute measures the
machine as much as the models. :func:`benchmark` therefore builds every (model, form, engine) runner
first and then times them **round-robin**: each round runs every runner a few times at every batch
size, so slow minutes of the machine hit all of them alike (slow seconds do not: for ratios between
two models, :func:`paired_ratios` times them back to back every round). Reported per runner:
median and p90 latency at each batch size, throughput (images/s from the median), train-step time
(forward + backward + SGD update, hybridized) for the train form, params and MAdds, and, when asked,
peak resident memory measured in a fresh subprocess per model (:func:`asymmzoo.bench.peak_rss_mb`).

Besides wall-clock latency each entry records ``cpu_median_ms``, the median process CPU time per
call (all threads): with one thread it is a load-robust measure of the work done, while wall time is
what a user waits for; with several threads it includes the runtimes' spin-waiting.

Thread count: MXNet reads ``OMP_NUM_THREADS`` when it is imported, so a different count needs a fresh
process: ``asymmzoo bench --threads N`` re-runs itself with ``OMP_NUM_THREADS=N`` (and
``MXNET_CPU_WORKER_NTHREADS=1``); onnxruntime gets ``intra_op_num_threads=N``. In library use, set
those variables before ``import mxnet``.
"""
import os
import time

import numpy as np

from .host import _probe_host
from .memory import peak_rss_mb
from .runners import BenchRunner, _train_step_runner


def _stats(samples):
    a = np.asarray(samples) * 1e3
    return {'median_ms': float(np.median(a)), 'p90_ms': float(np.percentile(a, 90)),
            'min_ms': float(a.min()), 'n': int(a.size)}


def benchmark(names, forms=('deployed',), engines=('mxnet',), batch_sizes=(1, 32), rounds=10,
              iters_per_round=None, warmup=3, train_step=False, train_batch=32, threads=None,
              memory=False, seed=0, input_shape=None, progress=None, settle=0.05, probe_host=True):
    """Time every (name, form, engine) round-robin; return a list of result dicts (one per runner).

    Parameters
    ----------
    names : registry names (patterns already expanded, see :func:`resolve_names`)
    forms : 'deployed' (asymmzoo.deploy first, the default) and/or 'train'
    engines : subset of :data:`ENGINES`
    batch_sizes : batch sizes timed; the throughput of each is images / median second
    rounds : number of round-robin rounds
    iters_per_round : {batch: timed calls per round}; default 5 for batch 1-4, 1 otherwise
    train_step : also time one training step at ``train_batch`` (train form, MXNet)
    threads : onnxruntime intra-op threads (MXNet's come from OMP_NUM_THREADS, see module doc)
    memory : measure peak RSS of each model in a subprocess (slow: a fresh process per model)
    settle : seconds of idle before each runner's timed calls, so the thread pools of the runner
        before it (onnxruntime and OpenMP spin-wait after a call) have gone to sleep and do not
        steal a core from it
    probe_host : record :func:`host_gflops` just before and after the rounds (``env['host_gflops']``)
    """
    batch_sizes = tuple(int(b) for b in batch_sizes)
    iters = {b: (5 if b <= 4 else 1) for b in batch_sizes}
    iters.update(iters_per_round or {})
    say = progress or (lambda msg: None)
    runners = []
    for name in names:
        for form in forms:
            for engine in engines:
                if engine.startswith('onnxruntime') and form == 'train':
                    say('no %s row for the train form of %s: onnxruntime runs deployed models '
                        '(time the train form with --engines mxnet or onednn)' % (engine, name))
                    continue
                say('building %s [%s, %s]' % (name, form, engine))
                runners.append(BenchRunner(name, form, engine, batch_sizes, threads=threads,
                                           seed=seed, input_shape=input_shape))
    steps = []
    if train_step:
        for name in names:
            say('building train step %s' % name)
            steps.append((name, _train_step_runner(name, train_batch, seed, input_shape)))
    # warm-up (first calls allocate, pick kernels, build static graphs)
    for r in runners:
        for b in batch_sizes:
            for _ in range(warmup):
                r.run(b)
    for _, step in steps:
        for _ in range(2):
            step()
    host = {'before': _probe_host(settle), 'threads': os.cpu_count()} if probe_host else None
    samples = {(i, b): [] for i in range(len(runners)) for b in batch_sizes}
    csamples = {(i, b): [] for i in range(len(runners)) for b in batch_sizes}
    tsamples = {i: [] for i in range(len(steps))}
    timer, cpu = time.perf_counter, time.process_time
    for k in range(rounds):
        say('round %d/%d' % (k + 1, rounds))
        # alternate the order each round so no runner always follows the same neighbour
        order = list(range(len(runners)))
        if k % 2:
            order.reverse()
        for b in batch_sizes:
            for i in order:
                r = runners[i]
                if settle:
                    time.sleep(settle)
                for _ in range(iters[b]):
                    c0, t0 = cpu(), timer()
                    r.run(b)
                    samples[(i, b)].append(timer() - t0)
                    csamples[(i, b)].append(cpu() - c0)
        for i, (_, step) in enumerate(steps):
            t0 = timer()
            step()
            tsamples[i].append(timer() - t0)
    if host:
        host['after'] = _probe_host(settle)
    results = []
    step_of = {name: _stats(tsamples[i]) for i, (name, _) in enumerate(steps)}
    # the step times the train form: its row carries it (the model's first row if it has none)
    step_row = {}
    for name in step_of:
        rows = [i for i, r in enumerate(runners) if r.name == name]
        step_row[name] = ([i for i in rows if runners[i].form == 'train'] or rows or [None])[0]
    for i, r in enumerate(runners):
        row = {'model': r.name, 'form': r.form, 'engine': r.engine, 'params': r.params,
               'madds': r.madds, 'input_shape': list(r.input_shape), 'batch': {}}
        for b in batch_sizes:
            s = _stats(samples[(i, b)])
            s['throughput_ips'] = b / (s['median_ms'] / 1e3)
            s['cpu_median_ms'] = float(np.median(csamples[(i, b)]) * 1e3)
            row['batch'][str(b)] = s
        if r.check is not None:
            row['onnx_max_abs_diff'] = r.check['max_abs_diff']
        if step_row.get(r.name) == i:
            row['train_step'] = dict(step_of[r.name], batch=train_batch)  # once per model
        results.append(row)
    if memory:
        for row in results:
            say('peak RSS of %s [%s, %s]' % (row['model'], row['form'], row['engine']))
            row['peak_rss_mb'] = peak_rss_mb(row['model'], row['form'], row['engine'],
                                             max(batch_sizes), threads=threads)
    env = {'OMP_NUM_THREADS': os.environ.get('OMP_NUM_THREADS'),
           'MXNET_CPU_WORKER_NTHREADS': os.environ.get('MXNET_CPU_WORKER_NTHREADS'),
           'onnxruntime_threads': threads, 'cpus': os.cpu_count(), 'rounds': rounds,
           'iters_per_round': {str(b): n for b, n in iters.items()},
           'time_utc': time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime()),
           'loadavg_1min': os.getloadavg()[0] if hasattr(os, 'getloadavg') else None,
           'host_gflops': host}
    for row in results:
        row['env'] = env
    return results


def _median_ci(values, level=0.95):
    """Distribution-free confidence interval of the median (binomial order statistics); with fewer
    than 6 values the whole range (below 95%: use more rounds)."""
    from scipy.stats import binom
    v = np.sort(np.asarray(values, dtype=float))
    n = v.size
    if n < 6:
        return float(v[0]), float(v[-1])
    lo = int(binom.ppf((1 - level) / 2, n, 0.5))
    hi = int(binom.ppf(1 - (1 - level) / 2, n, 0.5))
    return float(v[max(lo - 1, 0)]), float(v[min(hi, n - 1)])


def paired_ratios(pairs, engine='onnxruntime', batch_sizes=(1, 32), rounds=30, iters_per_round=None,
                  warmup=3, threads=None, seed=0, input_shape=None, progress=None, settle=0.05,
                  probe_host=True):
    """Latency ratio A / B for each ``(A, B)`` of ``pairs``, measured **in pairs**: every round
    times A and B back to back (order alternating, ``settle`` idle before each), one ratio per
    round; the result is the median of the per-round ratios with a 95% confidence interval.

    On a shared machine the load changes from one second to the next; a ratio of two medians
    taken from a long round-robin list (:func:`benchmark`) mixes minutes, while a pair timed in the
    same half second shares its load. Returns one dict per (pair, batch size): ``ratio`` (median),
    ``ci95``, ``cpu_ratio`` (median per-round ratio of process CPU time), ``a_ms`` / ``b_ms``
    (medians), ``rounds`` and ``host_gflops`` (:func:`host_gflops` before and after the rounds,
    ``{'before', 'after', 'threads'}``, when ``probe_host``)."""
    batch_sizes = tuple(int(b) for b in batch_sizes)
    iters = {b: (5 if b <= 4 else 1) for b in batch_sizes}
    iters.update(iters_per_round or {})
    say = progress or (lambda msg: None)
    runners = {}
    for pair in pairs:
        for name in pair:
            if name not in runners:
                say('building %s [deployed, %s]' % (name, engine))
                runners[name] = BenchRunner(name, 'deployed', engine, batch_sizes, threads=threads,
                                            seed=seed, input_shape=input_shape)
    for r in runners.values():
        for b in batch_sizes:
            for _ in range(warmup):
                r.run(b)
    timer, cpu = time.perf_counter, time.process_time

    def timed(r, b):
        if settle:
            time.sleep(settle)
        ts, cs = [], []
        for _ in range(iters[b]):
            c0, t0 = cpu(), timer()
            r.run(b)
            ts.append(timer() - t0)
            cs.append(cpu() - c0)
        return float(np.median(ts)), float(np.median(cs))

    host = {'before': _probe_host(settle), 'threads': os.cpu_count()} if probe_host else None
    samples = {(i, b): [] for i in range(len(pairs)) for b in batch_sizes}
    for k in range(rounds):
        say('paired round %d/%d' % (k + 1, rounds))
        for i, (a, m) in enumerate(pairs):
            for b in batch_sizes:
                first, second = (a, m) if k % 2 == 0 else (m, a)
                t1 = timed(runners[first], b)
                t2 = timed(runners[second], b)
                ta, tm = (t1, t2) if k % 2 == 0 else (t2, t1)
                samples[(i, b)].append((ta[0], tm[0], ta[1], tm[1]))
    if host:
        host['after'] = _probe_host(settle)
    out = []
    for i, (a, m) in enumerate(pairs):
        for b in batch_sizes:
            s = np.asarray(samples[(i, b)])
            ratios = s[:, 0] / s[:, 1]
            out.append({'a': a, 'b': m, 'engine': engine, 'batch': b, 'rounds': rounds,
                        'ratio': float(np.median(ratios)), 'ci95': _median_ci(ratios),
                        'cpu_ratio': float(np.median(s[:, 2] / np.maximum(s[:, 3], 1e-9))),
                        'a_ms': 1e3 * float(np.median(s[:, 0])),
                        'b_ms': 1e3 * float(np.median(s[:, 1])),
                        'threads': threads, 'host_gflops': dict(host) if host else None,
                        'time_utc': time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime())})
    return out
