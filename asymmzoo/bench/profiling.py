"""Where the time of the fastest path goes, operator by operator: :func:`op_profile` runs the deployed
models in onnxruntime under its profiler, interleaved like :func:`asymmzoo.bench.benchmark`, and
reports each model's kernel time per operator type and the time between kernels."""
import json
import os
import time

import numpy as np

from .runners import BenchRunner, remove_profiles


def _profiled_nodes(session, keep_runs):
    """End ``session``'s onnxruntime profile and read its last ``keep_runs`` runs: ``({node: [µs per
    run]}, {node: op type}, [run µs])``. The profile file is removed."""
    path = session.end_profiling()
    try:
        with open(path) as f:
            events = json.load(f)
    finally:
        os.remove(path)
    runs = sorted((e for e in events if e.get('cat') == 'Session' and e.get('name') == 'model_run'),
                  key=lambda e: e['ts'])
    if len(runs) < keep_runs:
        raise RuntimeError("the profile of %s holds %d runs, %d expected" % (path, len(runs), keep_runs))
    start = runs[-keep_runs]['ts']
    times, ops = {}, {}
    for e in events:
        if e.get('cat') == 'Node' and e['name'].endswith('_kernel_time') and e['ts'] >= start:
            node = e['name'][:-len('_kernel_time')]
            times.setdefault(node, []).append(e['dur'])
            ops[node] = e.get('args', {}).get('op_name', '?')
    return times, ops, [e['dur'] for e in runs[-keep_runs:]]


def op_profile(names, batch_sizes=(1,), threads=None, rounds=10, calls=5, warmup=5, seed=0,
               input_shape=None, progress=None, settle=0.05, onnx_dir=None):
    """Where the time of the fastest path goes, operator by operator: every model of ``names`` runs
    deployed in onnxruntime (static-batch sessions, exactly as :func:`benchmark`'s ``onnxruntime``
    engine and ``fastest_predictor`` run it) with onnxruntime's profiler on, interleaved round-robin
    like :func:`benchmark` (``rounds`` rounds of ``calls`` calls per model and batch size).

    Returns one dict per (model, batch size): ``ops`` ``{op type: {'count': nodes, 'us': sum over
    the nodes of each node's median kernel time}}``, ``kernel_us`` (their sum), ``run_us`` (median
    run as the profiler saw it) and ``between_us`` = run - kernels: dispatch, thread-pool
    synchronisation and memory planning between the kernels. The profiler's own bookkeeping makes
    runs slower than unprofiled ones: compare models within one profile, and take latencies from
    :func:`benchmark`. ``samples_per_node``: the distinct numbers of kernel timings read per node
    (``[runs]`` when every node ran once per kept run). ``onnx_dir``: where the exported files
    and the profiles go (every profile is removed after reading, or on error); default a
    temporary folder, removed at the end."""
    batch_sizes = tuple(int(b) for b in batch_sizes)
    say = progress or (lambda msg: None)
    runners, pending = [], []
    try:
        for name in names:
            say('building %s [deployed, onnxruntime, profiled]' % name)
            runners.append(BenchRunner(name, 'deployed', 'onnxruntime', batch_sizes, threads=threads,
                                       seed=seed, input_shape=input_shape, profile=True,
                                       onnx_dir=onnx_dir))
            pending.extend(runners[-1].sessions.values())
        return _op_profile_runs(runners, pending, batch_sizes, threads, rounds, calls, warmup, say,
                                settle)
    finally:
        remove_profiles(pending)  # what an error or interruption left unread
        for r in runners:
            r.close()


def _op_profile_runs(runners, pending, batch_sizes, threads, rounds, calls, warmup, say, settle):
    for r in runners:
        for b in batch_sizes:
            for _ in range(warmup):
                r.run(b)
    for k in range(rounds):
        say('profiled round %d/%d' % (k + 1, rounds))
        order = runners[::-1] if k % 2 else runners
        for b in batch_sizes:
            for r in order:
                if settle:
                    time.sleep(settle)
                for _ in range(calls):
                    r.run(b)
    out = []
    stamp = time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime())
    for r in runners:
        for b in batch_sizes:
            times, node_ops, runs = _profiled_nodes(r.sessions[b], rounds * calls)
            pending.remove(r.sessions[b])
            ops = {}
            for node, ts in times.items():
                o = ops.setdefault(node_ops[node], {'count': 0, 'us': 0.0})
                o['count'] += 1
                o['us'] += float(np.median(ts))
            kernel = sum(o['us'] for o in ops.values())
            run = float(np.median(runs))
            out.append({'model': r.name, 'batch': b, 'threads': threads, 'runs': len(runs),
                        'nodes': len(times),
                        'samples_per_node': sorted({len(ts) for ts in times.values()}),
                        'run_us': run, 'kernel_us': kernel,
                        'between_us': run - kernel, 'ops': ops, 'time_utc': stamp})
    return out
