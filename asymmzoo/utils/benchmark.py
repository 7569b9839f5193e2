"""Latency / throughput benchmarking of zoo models, interleaved in one process.

On a shared or noisy machine, timing model A for a minute and then model B for a minute measures the
machine as much as the models. :func:`benchmark` therefore builds every (model, form, engine) runner
first and then times them **round-robin**: each round runs every runner a few times at every batch
size, so slow minutes of the machine hit all of them alike (slow seconds do not: for ratios between
two models, :func:`paired_ratios` times them back to back every round). Reported per runner:
median and p90 latency at each batch size, throughput (images/s from the median), train-step time
(forward + backward + SGD update, hybridized) for the train form, params and MAdds, and, when asked,
peak resident memory measured in a fresh subprocess per model (a process-wide peak cannot be split
between models that share one process).

:func:`op_profile` runs the fastest path under onnxruntime's profiler (interleaved the same way) and
reports each model's kernel time per operator type, and the time between kernels.

Besides wall-clock latency each entry records ``cpu_median_ms``, the median process CPU time per
call (all threads): with one thread it is a load-robust measure of the work done, while wall time is
what a user waits for; with several threads it includes the runtimes' spin-waiting.

Engines:
  ``mxnet``        Gluon, ``hybridize(static_alloc=True, static_shape=True)``
  ``onednn``       MXNet with oneDNN graph fusion: ``net.optimize_for(x, backend='MKLDNN')``
  ``onnxruntime``  deployed, exported to ONNX (:func:`asymmzoo.utils.export.export_onnx`, verified
                   against MXNet; h-swish fused, AsymmNet's reuse concats split), run in onnxruntime
                   with full graph optimisation and one static-batch session per batch size (SE
                   scaling in the blocked layout): the fastest path, as ``fastest_predictor`` runs it
  ``onnxruntime-plain``  the same without our graph rewrites (MXNet's exporter output, weights
                   moved out of the graph inputs, dynamic batch), to show what the rewrites buy

Thread count: MXNet reads ``OMP_NUM_THREADS`` when it is imported, so a different count needs a fresh
process: ``asymmzoo bench --threads N`` re-runs itself with ``OMP_NUM_THREADS=N`` (and
``MXNET_CPU_WORKER_NTHREADS=1``); onnxruntime gets ``intra_op_num_threads=N``. In library use, set
those variables before ``import mxnet``.

Model names are registry names, or ``gluoncv:NAME`` for a GluonCV model-zoo network built with
``pretrained=False`` (``gluoncv:mobilenetv3_large`` / ``gluoncv:mobilenetv3_small`` use
``gluoncv.model_zoo.mobilenetv3.get_mobilenet_v3``).
"""
import json
import os
import shutil
import subprocess
import sys
import time

import mxnet as mx
import numpy as np

__all__ = ['benchmark', 'paired_ratios', 'format_ratios', 'format_table', 'op_profile', 'format_op_profile',
           'resolve_names', 'build_network', 'remove_profiles',
           'peak_rss_mb',
           'ENGINES', 'FORMS', 'BenchRunner']

ENGINES = ('mxnet', 'onednn', 'onnxruntime', 'onnxruntime-plain')
FORMS = ('deployed', 'train')


def resolve_names(patterns):
    """Expand fnmatch patterns over the registry (keeping ``gluoncv:`` names); error if a pattern
    matches nothing."""
    from ..registry import list_models, _unknown
    names = []
    for pat in patterns:
        if pat.startswith('gluoncv:'):
            found = [pat]
            _check_gluoncv_name(pat.split(':', 1)[1])
        else:
            found = list_models(pat)
            if not found:
                if any(ch in pat for ch in '*?['):
                    raise ValueError("no registered model matches %r; see `asymmzoo summary`" % pat)
                raise _unknown(pat.lower())
        names += [n for n in found if n not in names]
    return names


def _check_gluoncv_name(gname):
    """Refuse a ``gluoncv:NAME`` that GluonCV's model zoo does not have, with its closest names."""
    import difflib
    from gluoncv.model_zoo import get_model_list
    known = get_model_list()
    if gname.lower() in known:
        return
    if any(ch in gname for ch in '*?['):
        raise ValueError("gluoncv:%s: give one GluonCV model name, not a pattern (e.g. "
                         "gluoncv:mobilenetv3_large)" % gname)
    close = difflib.get_close_matches(gname.lower(), known, n=5, cutoff=0.6)
    raise ValueError("unknown GluonCV model %r; %s" % (
        gname, ('closest: ' + ', '.join(close)) if close else
        'see gluoncv.model_zoo.get_model_list() for the %d names' % len(known)))


def build_network(name, form='deployed', seed=0, input_shape=None):
    """Initialised network for ``name`` in ``form`` ('deployed' = asymmzoo.deploy applied, 'train' =
    as built); returns ``(net, input_shape)``."""
    from .export import prepare_model, default_input_shape, batch_input_shape
    if form not in FORMS:
        raise ValueError("form must be one of %s, got %r" % (FORMS, form))
    if name.startswith('gluoncv:'):
        gname = name.split(':', 1)[1]
        import gluoncv
        if gname in ('mobilenetv3_large', 'mobilenetv3_small'):
            from gluoncv.model_zoo.mobilenetv3 import get_mobilenet_v3
            net = get_mobilenet_v3(gname.split('_')[1], pretrained=False)
        else:
            try:
                net = gluoncv.model_zoo.get_model(gname, pretrained=False)
            except ValueError as e:
                raise ValueError("unknown GluonCV model %r (%s)" % (gname, str(e).splitlines()[0]))
        net.name_in_zoo = name
        shape = tuple(input_shape) if input_shape else default_input_shape(net)
        # GluonCV's builder initialises with its own defaults: re-initialise like ours, so that both
        # run on comparable (non-vanishing) activations
        from .export import randomize_bn_stats
        mx.random.seed(seed)
        net.initialize(mx.init.MSRAPrelu(), force_reinit=True)
        rng = np.random.RandomState(seed)
        randomize_bn_stats(net, mx.nd.array(rng.standard_normal(batch_input_shape(net, shape, 2))))
        return prepare_model(net, deploy=False, input_shape=shape, seed=seed)
    return prepare_model(name, deploy=(form == 'deployed'), input_shape=input_shape, seed=seed)


class BenchRunner(object):
    """One (model, form, engine): ``run(batch)`` executes one synchronous forward pass."""

    def __init__(self, name, form, engine, batch_sizes, threads=None, seed=0, input_shape=None,
                 onnx_dir=None, profile=False):
        """``onnx_dir``: where onnxruntime engines write their exported files (kept); default a
        temporary folder, removed once the sessions are loaded. ``profile``: run the static-batch
        sessions under onnxruntime's profiler, writing ``{name}-b{batch}-profile_*.json`` there on
        ``session.end_profiling()`` (:func:`op_profile` reads and removes them)."""
        from .counting import count_params, count_madds
        if engine not in ENGINES:
            raise ValueError("engine must be one of %s, got %r" % (ENGINES, engine))
        if engine.startswith('onnxruntime') and form == 'train':
            raise ValueError("onnxruntime runs the deployed form only; use --form deployed")
        self.name, self.form, self.engine = name, form, engine
        net, shape = build_network(name, form, seed=seed, input_shape=input_shape)
        from .export import batch_input_shape
        self.input_shape = batch_input_shape(net, shape, 1)   # one item (a video: its frames)
        self.params = count_params(net)
        self.madds = count_madds(net, self.input_shape)
        self.net = None  # the MXNet network, for the MXNet engines only
        rng = np.random.RandomState(seed)
        self.inputs = {b: rng.standard_normal(batch_input_shape(net, shape, b)).astype(np.float32)
                       for b in batch_sizes}
        self.check = None
        self._tmp_dir = None
        if engine.startswith('onnxruntime'):
            import tempfile
            d = onnx_dir or tempfile.mkdtemp(prefix='asymmzoo-bench-')
            self._tmp_dir = None if onnx_dir else d
            try:
                self._build_sessions(net, d, batch_sizes, threads, profile)
            except BaseException:
                remove_profiles(getattr(self, 'sessions', {}).values() if profile else ())
                self.close()
                raise
            if not profile:
                self.close()  # the sessions hold the models: the files are not needed
            # not kept: the sessions do not need the network, and its static-shape graph holds
            # buffers for every verified batch size (~1 GB at batch 32; a benchmark of ten models
            # on four engines ran out of 24 GiB while the runners kept them)
        else:
            self.net = net
            self.nd_inputs = {b: mx.nd.array(x) for b, x in self.inputs.items()}
            if engine == 'onednn':
                net.optimize_for(self.nd_inputs[batch_sizes[0]], backend='MKLDNN',
                                 static_alloc=True, static_shape=True)
            else:
                net.hybridize(static_alloc=True, static_shape=True)

    def _build_sessions(self, net, d, batch_sizes, threads, profile):
        from .export import export_onnx, onnx_session, verify_onnx
        name = self.name
        path = os.path.join(d, name.replace(':', '_') + '.onnx')
        plain = self.engine == 'onnxruntime-plain'
        self.check = export_onnx(net, path, self.input_shape, verify=True,
                                 fuse_activations=not plain, split_concats=not plain,
                                 keep_base=True)
        base = self.check.pop('base_model')
        # the fastest path runs one static-shape session per batch size, its rewrites chosen
        # for that size (as fastest_predictor does), each checked against MXNet; the plain
        # export runs as MXNet's exporter wrote it, dynamic batch
        self.sessions = {}
        if plain:
            one = onnx_session(path, threads=threads)
            self.sessions = {b: one for b in batch_sizes}
        else:
            for b in batch_sizes:
                prefix = os.path.join(d, '%s-b%d-profile' % (name.replace(':', '_'), b)) \
                    if profile else None
                rows = self.inputs[b].shape[0]   # a video model's b items are b x its frames
                self.sessions[b] = onnx_session(base, threads=threads, batch_size=rows,
                                                profile_prefix=prefix)
                diff = verify_onnx(net, path, self.input_shape, batch_sizes=(b,),
                                   session=self.sessions[b])['max_abs_diff']
                self.check['max_abs_diff'] = max(self.check['max_abs_diff'], diff)
        self.iname = self.sessions[batch_sizes[0]].get_inputs()[0].name

    def close(self):
        """Remove the temporary folder of the exported files (when no ``onnx_dir`` was given)."""
        if self._tmp_dir:
            shutil.rmtree(self._tmp_dir, ignore_errors=True)
            self._tmp_dir = None

    @property
    def label(self):
        return '%s [%s, %s]' % (self.name, self.form, self.engine)

    def run(self, batch):
        if self.engine.startswith('onnxruntime'):
            self.sessions[batch].run(None, {self.iname: self.inputs[batch]})
        else:
            with mx.autograd.predict_mode():
                out = self.net(self.nd_inputs[batch])
            (out[0] if isinstance(out, (list, tuple)) else out).wait_to_read()


def _train_step_runner(name, batch, seed=0, input_shape=None):
    """Returns ``step()`` doing forward + softmax CE + backward + SGD update on the train form."""
    from .export import batch_input_shape, is_detector
    net, shape = build_network(name, 'train', seed=seed, input_shape=input_shape)
    if is_detector(net):
        raise ValueError("--train-step times a classification step (softmax cross-entropy); %s is a "
                         "detector, whose training step needs its targets: time it with "
                         "downstream/detection/train_yolo3.py" % name)
    if getattr(net, 'embedding_size', None):
        raise ValueError("--train-step times a classification step (softmax cross-entropy over "
                         "classes); %s is an embedding network (its loss is the margin head's): time "
                         "it with downstream/face/train_arcface.py" % name)
    net.hybridize(static_alloc=True, static_shape=True)
    rng = np.random.RandomState(seed)
    x = mx.nd.array(rng.standard_normal(batch_input_shape(net, shape, batch)))
    with mx.autograd.predict_mode():
        out = net(x)
    out = out[0] if isinstance(out, (list, tuple)) else out
    if out.ndim != 2 or out.shape[0] != batch:
        raise ValueError("--train-step times a classification step (softmax cross-entropy over "
                         "(batch, classes) logits); %s outputs %s for a batch of %d" %
                         (name, out.shape, batch))
    y = mx.nd.array(rng.randint(0, out.shape[1], size=batch))
    loss_fn = mx.gluon.loss.SoftmaxCrossEntropyLoss()
    trainer = mx.gluon.Trainer(net.collect_params(), 'sgd', {'learning_rate': 1e-4, 'momentum': 0.9})

    def step():
        with mx.autograd.record():
            out = net(x)
            out = out[0] if isinstance(out, (list, tuple)) else out
            loss = loss_fn(out, y)
        loss.backward()
        trainer.step(batch)
        loss.wait_to_read()
        mx.nd.waitall()
    return step


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


def remove_profiles(sessions):
    """End the profiling of onnxruntime ``sessions`` not yet ended and delete what it writes
    (cleanup on failure: a profiled session left alone writes its file when it is destroyed)."""
    for s in {id(s): s for s in sessions}.values():
        try:
            path = s.end_profiling()
            if path and os.path.exists(path):
                os.remove(path)
        except Exception:  # best effort: never hide the error being handled
            pass


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


def _threads_label(threads):
    return '%d thread%s' % (threads, 's' if threads > 1 else '') if threads else \
        "onnxruntime's default threads (one per core)"


def format_op_profile(rows):
    """Markdown tables of :func:`op_profile` results, one per (batch size, threads), models side by
    side: each operator type's node count and time (µs), then the kernel sum, the time between
    kernels and the run."""
    if not rows:
        return '(no results)'
    tables = []
    groups = []
    for r in rows:
        if (r['batch'], r['threads']) not in groups:
            groups.append((r['batch'], r['threads']))
    for batch, threads in groups:
        part = [r for r in rows if (r['batch'], r['threads']) == (batch, threads)]
        types = sorted({t for r in part for t in r['ops']},
                       key=lambda t: -max(r['ops'].get(t, {'us': 0})['us'] for r in part))
        lines = ['batch %d, %s, onnxruntime profiler (µs, median per node, summed):'
                 % (batch, _threads_label(threads)), '',
                 '| operator | ' + ' | '.join(r['model'] for r in part) + ' |',
                 '|---|' + '---:|' * len(part)]
        for t in types:
            cells = ['%d x %.0f' % (r['ops'][t]['count'], r['ops'][t]['us']) if t in r['ops'] else '-'
                     for r in part]
            lines.append('| %s | %s |' % (t, ' | '.join(cells)))
        for label, key in (('kernels', 'kernel_us'), ('between kernels', 'between_us'),
                           ('run (profiled)', 'run_us')):
            cells = ['%.0f' % r[key] if key != 'kernel_us' else '%d nodes, %.0f' % (r['nodes'], r[key])
                     for r in part]
            lines.append('| %s | %s |' % (label, ' | '.join(cells)))
        tables.append('\n'.join(lines))
    return '\n\n'.join(tables)


_RSS_PROBE = r"""
import json, sys
def vm(key):
    for line in open('/proc/self/status'):
        if line.startswith(key + ':'):
            return int(line.split()[1]) / 1024.0
import mxnet, asymmzoo
from asymmzoo.utils import benchmark as B
base = vm('VmRSS')
open('/proc/self/clear_refs', 'w').write('5')   # reset the high-water mark to the current RSS
name, form, engine, batch, threads = json.loads(sys.argv[1])
r = B.BenchRunner(name, form, engine, (1, batch), threads=threads)
r.run(1); r.run(batch); r.run(batch)
print(json.dumps([base, vm('VmHWM')]))
"""


def peak_rss_mb(name, form='deployed', engine='mxnet', batch=32, threads=None, timeout=600):
    """Peak resident memory (MiB) of building ``name`` and running it at batch 1 and ``batch``, in a
    fresh process (Linux: /proc VmHWM, reset after the imports). Returns ``{'peak', 'after_import'}``
    (``peak`` includes the ~270 MiB of the imported libraries) or None where unmeasurable."""
    if not os.path.exists('/proc/self/clear_refs'):
        return None
    try:
        out = subprocess.run([sys.executable, '-c', _RSS_PROBE,
                              json.dumps([name, form, engine, int(batch), threads])],
                             capture_output=True, text=True, timeout=timeout, env=dict(os.environ))
        base, peak = json.loads(out.stdout.strip().splitlines()[-1])
    except Exception:  # pragma: no cover - no /proc, crash, timeout
        return None
    return {'peak': peak, 'after_import': base}


def format_ratios(rows):
    """Markdown table of :func:`paired_ratios` results."""
    if not rows:
        return '(no results)'
    lines = ['| A | B | engine | batch | A ms | B ms | ratio A/B (median of rounds) | 95% interval '
             '| CPU-time ratio | rounds |', '|---|---|---|---:|---:|---:|---:|---|---:|---:|']
    for r in rows:
        lines.append('| %s | %s | %s | %d | %.2f | %.2f | %.3f | %.3f-%.3f | %.3f | %d |'
                     % (r['a'], r['b'], r['engine'], r['batch'], r['a_ms'], r['b_ms'], r['ratio'],
                        r['ci95'][0], r['ci95'][1], r['cpu_ratio'], r['rounds']))
    runs = {}   # one paired_ratios call each (one per engine in `asymmzoo bench --paired`), in order
    for r in rows:
        note = host_note(r.get('host_gflops'))
        if note:
            runs.setdefault((r['engine'], r.get('threads'), note), r)
    if runs:
        lines += [''] + ['* %s: %s UTC%s' % (engine, r.get('time_utc'), note)
                         for (engine, _, note), r in runs.items()]
    return '\n'.join(lines)


def format_table(results, batch_sizes=None):
    """Markdown table of :func:`benchmark` results."""
    if not results:
        return '(no results)'
    bs = batch_sizes or sorted({int(b) for r in results for b in r['batch']})
    head = ['model', 'form', 'engine', 'params', 'MAdds']
    for b in bs:
        if b == 1:
            head += ['b1 median ms', 'b1 p90 ms']
        else:
            head += ['b%d median ms' % b, 'b%d img/s' % b]
    has_train = any('train_step' in r for r in results)
    has_mem = any(r.get('peak_rss_mb') for r in results)
    has_onnx = any('onnx_max_abs_diff' in r for r in results)
    if has_train:
        head.append('train step ms')
    if has_mem:
        head.append('peak RSS MiB')
    if has_onnx:
        head.append('ONNX max|diff|')
    lines = ['| ' + ' | '.join(head) + ' |',
             '|' + '|'.join(['---'] * 3 + ['---:'] * (len(head) - 3)) + '|']
    for r in results:
        cells = [r['model'], r['form'], r['engine'], '%.2fM' % (r['params'] / 1e6),
                 '%.1fM' % (r['madds'] / 1e6)]
        for b in bs:
            s = r['batch'].get(str(b))
            if s is None:
                cells += ['', '']
            elif b == 1:
                cells += ['%.2f' % s['median_ms'], '%.2f' % s['p90_ms']]
            else:
                cells += ['%.1f' % s['median_ms'], '%.0f' % s['throughput_ips']]
        if has_train:
            t = r.get('train_step')
            cells.append('%.0f (b%d)' % (t['median_ms'], t['batch']) if t else '')
        if has_mem:
            m = r.get('peak_rss_mb')
            cells.append('%.0f' % m['peak'] if m else '')
        if has_onnx:
            d = r.get('onnx_max_abs_diff')
            cells.append('%.1e' % d if d is not None else '')
        lines.append('| ' + ' | '.join(cells) + ' |')
    env = results[0].get('env', {})
    lines.append('')
    lines.append('%s UTC; %s CPUs; OMP_NUM_THREADS=%s; onnxruntime threads=%s; %d rounds '
                 'interleaved; 1-min load average %.2f%s' % (
                     env.get('time_utc'), env.get('cpus'), env.get('OMP_NUM_THREADS') or 'unset',
                     env.get('onnxruntime_threads') or 'default', env.get('rounds', 0),
                     env.get('loadavg_1min') or 0.0,
                     host_note(env.get('host_gflops'))))
    return '\n'.join(lines)
