"""bench / export / quantize: the tools behind `asymmzoo bench|export|quantize` (issue 8)."""
import json
import os
import re
import subprocess
import sys
import tempfile
from unittest import mock

import mxnet as mx
import numpy as np
import pytest

import asymmzoo
from asymmzoo.cli import main
from asymmzoo import bench as B
from asymmzoo import export as E

pytest.importorskip('onnx')
pytest.importorskip('onnxruntime')

# a representative set, resolved against the registry at collection time: every family that exists
ONNX_PATTERNS = ['asymmnet_small_1.0', 'asymmnet_large_1.0', 'mobilenetv3_large_1.0',
                 'mobilenetv3_small_0.75', 'asymmnet_large_0.5_pruned', '*_acb', '*_rot4']
ONNX_SHAPE = (1, 3, 64, 64)   # the check is about operators, not resolution: keep it fast


def _onnx_cases():
    names = []
    for pat in ONNX_PATTERNS:
        found = asymmzoo.list_models(pat)
        if '*' in pat:
            # one per family: prefer a small AsymmNet-family backbone, else a small CIFAR net
            for prefix in ('asymmnet_small', 'mobilenetv3_small', 'cifar_resnet20', 'cifar_quick', ''):
                pref = [n for n in found if n.startswith(prefix)]
                if pref:
                    found = pref[:1]
                    break
        names += [n for n in found if n not in names]
    return names


def _shape_for(name):
    net = asymmzoo.get_model(name)
    shape = getattr(net, 'default_input_shape', None)
    if shape and tuple(shape[2:]) != (224, 224):
        return (1,) + tuple(shape[1:])
    return ONNX_SHAPE


@pytest.mark.parametrize('name', _onnx_cases())
def test_onnx_export_matches_mxnet(tmp_path, name):
    net, shape = E.prepare_model(name, deploy=True, input_shape=_shape_for(name))
    info = E.export_onnx(net, str(tmp_path / 'm.onnx'), shape, verify=True, atol=1e-4)
    assert info['max_abs_diff'] <= 1e-4
    assert info['max_abs_out'] > 1e-3, "outputs too small for the check to mean anything"
    # the predictor wrapper gives the same numbers on a fresh input
    pred = E.OnnxPredictor(info['path'])
    x = np.random.RandomState(3).standard_normal((3,) + shape[1:]).astype(np.float32)
    with mx.autograd.predict_mode():
        ref = net(mx.nd.array(x)).asnumpy()
    assert np.abs(pred(x) - ref).max() <= 1e-4


@pytest.mark.parametrize('name', ['asymmnet_large_0.35', 'asymmnet_small_0.5_pruned'])
def test_graph_rewrites_keep_function(tmp_path, name):
    """h-swish fusion and the reuse-concat rewrites (late concat, split projection, the default
    policy mixing them) change the graph, not the function."""
    import onnx
    shape = (1, 3, 224, 224)
    net, shape = E.prepare_model(name, input_shape=shape)
    plain = E.export_onnx(net, str(tmp_path / 'a.onnx'), shape, fuse_activations=False,
                          split_concats=False)
    plain_ops = [n.op_type for n in onnx.load(plain['path']).graph.node]
    assert plain['fused_activations'] == 0 and plain['split_concats'] == 0
    n_reuse = plain_ops.count('Concat')       # every concat of these nets is a feature-reuse one
    x = np.random.RandomState(0).standard_normal((2,) + shape[1:]).astype(np.float32)
    a = E.OnnxPredictor(plain['path'], static_batch=False)(x)   # the exporter's graph as is
    assert np.abs(a).max() > 1e-3
    policies = {'default': True, 'late': lambda *_: 'late', 'split': lambda *_: 'split'}
    for tag, policy in policies.items():
        fast = E.export_onnx(net, str(tmp_path / ('%s.onnx' % tag)), shape, split_concats=policy)
        ops = [n.op_type for n in onnx.load(fast['path']).graph.node]
        assert fast['fused_activations'] > 0 and 'HardSwish' in ops and 'Div' not in ops
        if tag == 'late':    # every concat moved after its depthwise conv: as many concats
            assert fast['split_concats'] == n_reuse and ops.count('Concat') == n_reuse
            assert ops.count('Conv') == plain_ops.count('Conv') + 2 * n_reuse - sum(
                1 for n in onnx.load(plain['path']).graph.node
                if n.op_type == 'Concat' and len(n.input) == 2)
        elif tag == 'split':  # no feature-reuse concat left (SE inputs are re-joined, tiny)
            assert fast['split_concats'] == n_reuse
        else:                # strided blocks: late concat; stride-1 blocks keep theirs
            assert 0 < fast['split_concats'] < n_reuse and ops.count('Concat') == n_reuse
            assert 0 < sum(n.name.endswith('_late') for n in onnx.load(fast['path']).graph.node) \
                == fast['split_concats']
        b = E.OnnxPredictor(fast['path'], static_batch=False)(x)
        assert np.abs(a - b).max() <= 1e-5, tag
        c = E.OnnxPredictor(fast['path'])(x)      # static batch: SE blocked, remaining concats rewritten
        # (and channels padded to this CPU's blocks): float summation order only
        assert np.abs(a - c).max() <= 1e-5 * max(1.0, np.abs(a).max()), tag
        assert fast['max_abs_diff'] <= 1e-4


def _optimized_ops(model_or_path, tmp_path, tag):
    """onnxruntime's optimised graph ops (full optimisation, as the sessions run it)."""
    import onnx
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.log_severity_level = 3
    so.optimized_model_filepath = str(tmp_path / ('%s_opt.onnx' % tag))
    src = model_or_path if isinstance(model_or_path, str) else model_or_path.SerializeToString()
    ort.InferenceSession(src, so, providers=['CPUExecutionProvider'])
    return [(n.op_type, n.domain) for n in onnx.load(so.optimized_model_filepath).graph.node]


def test_static_batch_sessions_keep_the_blocked_layout(tmp_path):
    """A static batch size lets onnxruntime keep the SE scaling and the residual sums in its blocked
    layout (our Resize rewrite of the SE's broadcast Mul); same numbers as the dynamic file."""
    import onnx
    shape = (1, 3, 96, 96)
    net, shape = E.prepare_model('asymmnet_large_0.5', input_shape=shape)
    E.randomize_bn_stats(net, mx.nd.random.normal(shape=(2,) + shape[1:]))
    info = E.export_onnx(net, str(tmp_path / 'm.onnx'), shape)
    assert info['blocked_se'] == 0            # the dynamic file is left as exported
    n_se = sum(1 for b in net.blocks if b.use_se)
    static = E.static_batch_model(info['path'], 3)
    assert [d.dim_value for d in static.graph.input[0].type.tensor_type.shape.dim] == [3, 3, 96, 96]
    assert [n.op_type for n in static.graph.node].count('Resize') == n_se
    dyn_ops = _optimized_ops(info['path'], tmp_path, 'dyn')
    if not any(d == 'com.microsoft.nchwc' for _, d in dyn_ops):
        pytest.skip("onnxruntime's NCHWc layout is not used on this CPU (no AVX2)")
    st_ops = _optimized_ops(static, tmp_path, 'static')
    # dynamic batch: every SE block reorders its map to NCHW and back
    assert sum(op == 'ReorderInput' for op, _ in dyn_ops) >= n_se
    # static batch: blocked from the first conv to the classifier (one reorder in, one out)
    assert sum(op == 'ReorderInput' for op, _ in st_ops) <= 1
    assert sum(op == 'ReorderOutput' for op, _ in st_ops) <= 1
    x = np.random.RandomState(0).standard_normal((3,) + shape[1:]).astype(np.float32)
    with mx.autograd.predict_mode():
        ref = net(mx.nd.array(x)).asnumpy()
    fast = E.OnnxPredictor(info['path'])             # static sessions, one per batch size
    slow = E.OnnxPredictor(info['path'], static_batch=False)
    assert np.abs(ref).max() > 1e-2
    # float summation order only (the padded static graph runs other kernels): 1e-5 of the output scale
    assert np.abs(fast(x) - slow(x)).max() <= 1e-5 * max(1.0, np.abs(ref).max())
    assert np.abs(fast(x) - ref).max() <= 1e-4
    assert np.abs(fast(x[:1]) - ref[:1]).max() <= 1e-4
    assert list(fast._sessions) == [3, 1]
    with pytest.raises(ValueError, match='non-empty batch'):
        fast(x[:0])
    with pytest.raises(ValueError, match='positive integer'):
        E.static_batch_model(info['path'], 0)
    # from the graph before the concat rewrites, a large batch splits every reuse concat (the
    # only concats left join the SE's pooled parts, 1x1) with the same numbers
    base = E.export_onnx(net, str(tmp_path / 'base.onnx'), shape, keep_base=True)['base_model']
    n_cat = [n.op_type for n in base.graph.node].count('Concat')
    big = E.static_batch_model(base, E.SPLIT_ALL_FROM_BATCH)
    small = E.static_batch_model(base, 1)
    file_ops = [n.op_type for n in onnx.load(info['path']).graph.node]
    # batch 1 takes the per-block choice, like the dynamic file: the strided blocks' concats move
    # after the depthwise conv, the stride-1 blocks keep theirs
    small_cats = [n.name for n in small.graph.node if n.op_type == 'Concat']
    assert len(small_cats) == file_ops.count('Concat') == n_cat
    assert 0 < sum(c.endswith('_late') for c in small_cats) < n_cat
    from asymmzoo.export.rewrites import _inferred_shapes
    big_shapes = _inferred_shapes(big)
    cats = [n for n in big.graph.node if n.op_type == 'Concat']
    assert cats and all(big_shapes[c.output[0]][2:] == [1, 1] for c in cats)
    xb = np.random.RandomState(1).standard_normal((E.SPLIT_ALL_FROM_BATCH,) + shape[1:])
    xb = xb.astype(np.float32)
    with mx.autograd.predict_mode():
        refb = net(mx.nd.array(xb)).asnumpy()
    pb = E.OnnxPredictor(info['path'], source=base)
    assert np.abs(pb(xb) - refb).max() <= 1e-4
    # each new static session is checked against the verified file
    other, _ = E.prepare_model('asymmnet_large_0.5', input_shape=shape, seed=1)
    wrong = E.export_onnx(other, str(tmp_path / 'other.onnx'), shape, keep_base=True)['base_model']
    with pytest.raises(E.ExportError, match='differs from the verified file'):
        E.OnnxPredictor(info['path'], source=wrong)(x)
    # a fixed-batch export carries the rewrite in the file and checks it against MXNet
    fixed = E.export_onnx(net, str(tmp_path / 'b2.onnx'), (2,) + shape[1:], dynamic_batch=False)
    assert fixed['blocked_se'] == n_se and fixed['max_abs_diff'] <= 1e-4
    dims = onnx.load(fixed['path']).graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_value for d in dims] == [2, 3, 96, 96]
    with pytest.raises(ValueError, match='fixed batch size of 2'):
        E.OnnxPredictor(fixed['path'])(x)


def test_reuse_concat_policy():
    for n in (None, 1, 8):   # symbolic or small batch: chosen per block
        assert E.reuse_concat_policy([2, 2], [n, 96, 28, 28], True) == 'late'
        assert E.reuse_concat_policy([1, 1], [n, 96, 56, 56], False) == 'keep'
        assert E.reuse_concat_policy([2, 2], [n, 96, 28, 28], False) == 'late'
        assert E.reuse_concat_policy([1, 1], [n, 160, 28, 28], True) == 'keep'
    assert E.reuse_concat_policy([1, 1], None, True) == 'keep'
    for strides, se in (([2, 2], True), ([1, 1], True), ([1, 1], False)):   # large batch: no copy
        assert E.reuse_concat_policy(strides, [E.SPLIT_ALL_FROM_BATCH, 96, 28, 28], se) == 'split'


def test_onnx_unsupported_op_is_named(tmp_path):
    class Odd(mx.gluon.HybridBlock):
        def hybrid_forward(self, F, x):
            return F.erfinv(F.tanh(x))
    net = Odd()
    net.initialize()
    with pytest.raises(E.ExportError, match="erfinv"):
        E.export_onnx(net, str(tmp_path / 'odd.onnx'), (1, 3, 8, 8))
    assert os.listdir(str(tmp_path)) == []


def test_onnx_file_failing_verification_replaces_nothing(tmp_path):
    net, shape = E.prepare_model('mobilenetv3_small_0.35', input_shape=(1, 3, 32, 32))
    path = str(tmp_path / 'm.onnx')
    E.export_onnx(net, path, shape)
    before = open(path, 'rb').read()
    # a tolerance nothing can meet: the verification fails, the verified file stays as it was
    with pytest.raises(E.ExportError, match=r"differs from MXNet by .* for %s" % re.escape(path)):
        E.export_onnx(net, path, shape, fuse_activations=False, atol=-1.0)
    assert open(path, 'rb').read() == before
    assert os.listdir(str(tmp_path)) == ['m.onnx']


def test_symbol_export_round_trip(tmp_path, capsys):
    rc = main(['export', 'mobilenetv3_small_0.35', '--format', 'symbol', '--out', str(tmp_path),
               '--input-shape', '1', '3', '64', '64'])
    assert rc == 0
    sym = tmp_path / 'mobilenetv3_small_0.35-symbol.json'
    par = tmp_path / 'mobilenetv3_small_0.35-0000.params'
    assert sym.exists() and par.exists()
    assert 'max abs diff' in capsys.readouterr().out
    back = E.load_symbol(str(sym), str(par))
    net, shape = E.prepare_model('mobilenetv3_small_0.35', input_shape=(1, 3, 64, 64))
    x = mx.nd.array(np.random.RandomState(1).standard_normal((2, 3, 64, 64)))
    with mx.autograd.predict_mode():
        assert np.abs(net(x).asnumpy() - back(x).asnumpy()).max() <= 1e-5  # same seed, same weights


def test_export_onnx_cli(tmp_path, capsys):
    rc = main(['export', 'asymmnet_small_0.35', '--format', 'onnx', '--out', str(tmp_path),
               '--input-shape', '1', '3', '64', '64'])
    assert rc == 0
    assert (tmp_path / 'asymmnet_small_0.35.onnx').exists()
    assert 'max abs diff' in capsys.readouterr().out


@pytest.mark.parametrize('argv,needle', [
    (['export', 'asymmnet_large_9.0', '--format', 'onnx'], 'unknown model'),
    (['export', 'asymmnet_small_0.35', '--format', 'tflite'], "invalid choice: 'tflite'"),
    (['export', 'asymmnet_small_0.35', '--atol', '-1'], "'-1' is not a positive number"),
    (['bench', 'asymmnet_small_0.35', '--warmup', '-1'], "'-1' is not a non-negative integer"),
    (['bench', 'gluoncv:mobilenetv3_smal'], "unknown GluonCV model 'mobilenetv3_smal'; closest: "
                                            "mobilenetv3_small"),
    (['bench', 'gluoncv:mobilenetv3_*'], 'give one GluonCV model name, not a pattern'),
    (['bench', 'no_such_net_*'], 'no registered model matches'),
    (['quantize', 'mobilenetv3_small_0.35', '--params', '/nonexistent.params'], 'nonexistent'),
])
def test_clear_errors(tmp_path, capsys, argv, needle):
    if argv[0] == 'export':
        argv = argv + ['--out', str(tmp_path)]
    try:
        rc = main(argv)
    except SystemExit as e:   # argparse's own refusals
        rc = e.code
    err = capsys.readouterr().err
    assert rc == 2 and needle in err, err


def test_bench_two_tiny_models_table_and_json(tmp_path, capsys):
    out = tmp_path / 'b.json'
    rc = main(['bench', 'mobilenetv3_small_0.35', 'asymmnet_small_0.35', '--engines', 'mxnet',
               'onnxruntime', '--batch-sizes', '1', '8', '--rounds', '2', '--warmup', '1',
               '--input-shape', '1', '3', '32', '32', '--train-step', '--train-batch', '4',
               '--json', str(out), '-q'])
    assert rc == 0
    table = capsys.readouterr().out
    assert table.count('\n| ') >= 4 and 'b1 median ms' in table and 'b8 img/s' in table
    rows = json.loads(out.read_text())
    assert len(rows) == 4
    assert {(r['model'], r['engine']) for r in rows} == {
        (m, e) for m in ('mobilenetv3_small_0.35', 'asymmnet_small_0.35') for e in ('mxnet', 'onnxruntime')}
    for r in rows:
        assert r['params'] > 1e5 and r['madds'] > 1e5
        for b in ('1', '8'):
            s = r['batch'][b]
            assert 0 < s['min_ms'] <= s['median_ms'] <= s['p90_ms']
            assert s['throughput_ips'] == pytest.approx(int(b) * 1e3 / s['median_ms'])
        assert r['batch']['1']['n'] == 2 * 5 and r['batch']['8']['n'] == 2
        assert r['env']['host_gflops']['before'] > 1 and r['env']['host_gflops']['after'] > 1
        if r['engine'] == 'onnxruntime':
            assert r['onnx_max_abs_diff'] <= 1e-4
    # asymmnet has more MAdds than mobilenetv3 at the same width (the reused features)
    madds = {r['model']: r['madds'] for r in rows}
    assert madds['asymmnet_small_0.35'] > madds['mobilenetv3_small_0.35']
    assert sum('train_step' in r for r in rows) == 2


def test_host_probe_and_its_note(monkeypatch):
    # a rate in GFLOP/s, measured (bounds wide enough for any machine this runs on)
    g = B.host_gflops(size=128, calls=3, repeats=2)
    assert 0.1 < g < 1e5
    # results without a probe (files from before it existed, probe_host=False) get no note
    assert B.host_note(None) == '' and B.host_note({}) == '' and B.host_note({'before': 3.0}) == ''
    note = B.host_note({'before': 150.4, 'after': 131.2, 'threads': 2})
    assert note == '; host float32 1024x1024 matmul on 2 BLAS threads: 150 GFLOP/s before the rounds, 131 after'
    assert 'on 1 BLAS thread:' in B.host_note({'before': 1, 'after': 1, 'threads': 1})
    # the paired table: one line per paired run (engine), each with its own probe
    row = {'a': 'x', 'b': 'y', 'batch': 1, 'a_ms': 2.0, 'b_ms': 1.0, 'ratio': 2.0, 'ci95': (1.9, 2.1),
           'cpu_ratio': 2.0, 'rounds': 5, 'threads': None, 'time_utc': '2026-11-23 01:00:00'}
    rows = [dict(row, engine='onnxruntime', host_gflops={'before': 240, 'after': 235, 'threads': 2}),
            dict(row, engine='onnxruntime', batch=32, host_gflops={'before': 240, 'after': 235, 'threads': 2}),
            dict(row, engine='mxnet', host_gflops={'before': 130, 'after': 120, 'threads': 2}),
            dict(row, engine='onednn')]
    table = B.format_ratios(rows)
    assert table.count('GFLOP/s') == 2
    assert '* onnxruntime: 2026-11-23 01:00:00 UTC; host float32 1024x1024 matmul on 2 BLAS threads: 240 ' \
           'GFLOP/s before the rounds, 235 after' in table
    assert '* mxnet: 2026-11-23 01:00:00 UTC; host float32 1024x1024 matmul on 2 BLAS threads: 130 GFLOP/s ' \
           'before the rounds, 120 after' in table
    assert 'GFLOP/s' not in B.format_ratios(rows[3:])
    # the probe runs its BLAS on every core even where OMP_NUM_THREADS=1 (bench --threads 1)
    code = ('import os, numpy; from threadpoolctl import threadpool_info; from asymmzoo import '
            'bench as B; seen = []; import threadpoolctl as T; orig = T.threadpool_limits\n'
            'def spy(*a, **k):\n    seen.append(k.get("limits")); return orig(*a, **k)\n'
            'T.threadpool_limits = spy; B.host_gflops(size=64, calls=1, repeats=1); print(seen[0])')
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=300,
                         env=dict(os.environ, OMP_NUM_THREADS='1'), cwd=os.path.dirname(os.path.dirname(
                             os.path.abspath(__file__))))
    assert out.returncode == 0, out.stderr[-2000:]
    assert int(out.stdout.split()[-1]) == os.cpu_count()
    # benchmark(): the probe is taken before and after the rounds (after the train steps, before the
    # memory subprocesses), and printed under the table
    calls = []
    from asymmzoo.bench import host, timing
    monkeypatch.setattr(host, 'host_gflops', lambda *a, **k: calls.append(1) or 100.0 + len(calls))
    monkeypatch.setattr(timing.time, 'sleep', lambda s: None)
    monkeypatch.setattr(timing, 'peak_rss_mb', lambda *a, **k: calls.append('mem') or None)
    rows = B.benchmark(['mobilenetv3_small_0.35'], batch_sizes=(1,), rounds=1, warmup=1,
                       input_shape=(1, 3, 32, 32), memory=True)
    assert calls == [1, 1, 'mem']
    assert rows[0]['env']['host_gflops'] == {'before': 101.0, 'after': 102.0, 'threads': os.cpu_count()}
    assert '101 GFLOP/s before the rounds, 102 after' in B.format_table(rows)
    rows = B.benchmark(['mobilenetv3_small_0.35'], batch_sizes=(1,), rounds=1, warmup=1,
                       input_shape=(1, 3, 32, 32), probe_host=False)
    assert rows[0]['env']['host_gflops'] is None and 'GFLOP/s' not in B.format_table(rows)


def test_paired_bench_ratios(tmp_path, capsys):
    """--paired: one ratio per round of a pair timed back to back; median with a 95% interval."""
    out = tmp_path / 'p.json'
    rc = main(['bench', 'asymmnet_small_0.35', 'mobilenetv3_large_1.25', '--paired', '--engines',
               'onnxruntime', '--batch-sizes', '1', '4', '--rounds', '7', '--warmup', '1',
               '--input-shape', '1', '3', '64', '64', '--json', str(out), '-q'])
    assert rc == 0
    printed = capsys.readouterr().out
    assert 'ratio A/B' in printed and 'GFLOP/s' in printed
    rows = json.loads(out.read_text())
    assert [(r['a'], r['b'], r['batch']) for r in rows] == [
        ('asymmnet_small_0.35', 'mobilenetv3_large_1.25', 1), ('asymmnet_small_0.35', 'mobilenetv3_large_1.25', 4)]
    for r in rows:
        assert r['rounds'] == 7 and r['ci95'][0] <= r['ratio'] <= r['ci95'][1]
        assert r['a_ms'] > 0 and r['b_ms'] > 0 and r['cpu_ratio'] > 0
        h = r['host_gflops']  # probed before and after the rounds, BLAS on every core
        assert h['before'] > 1 and h['after'] > 1 and h['threads'] == os.cpu_count()
    # the interval of the median: order statistics 10 and 21 of 30 (binomial, 95%)
    from asymmzoo.bench.timing import _median_ci
    assert _median_ci(np.arange(1, 31)) == (10.0, 21.0)
    capsys.readouterr()
    assert main(['bench', 'asymmnet_small_0.35', '--paired']) == 2
    assert 'two by two' in capsys.readouterr().err
    # a pattern must name one model: pairs are formed in the order given
    assert main(['bench', 'asymmnet_small_*', 'mobilenetv3_small_0.35', '--paired']) == 2
    assert 'one model per name' in capsys.readouterr().err


def test_op_profile_per_operator(tmp_path, capfd, monkeypatch):
    """--op-profile: onnxruntime's profiler on the fastest path, per operator type, models side by side
    (with --threads the command re-runs itself in a fresh process: capfd sees the child's output)."""
    out = tmp_path / 'ops.json'
    rc = main(['bench', 'asymmnet_small_0.35', 'mobilenetv3_small_0.35', '--op-profile', '--batch-sizes', '1',
               '2', '--rounds', '2', '--warmup', '1', '--threads', '1', '--input-shape', '1', '3', '64', '64',
               '--json', str(out), '-q'])
    assert rc == 0
    text = capfd.readouterr().out
    assert 'between kernels' in text and '| asymmnet_small_0.35 | mobilenetv3_small_0.35 |' in text
    rows = json.loads(out.read_text())
    assert [(r['model'], r['batch']) for r in rows] == [
        ('asymmnet_small_0.35', 1), ('asymmnet_small_0.35', 2), ('mobilenetv3_small_0.35', 1),
        ('mobilenetv3_small_0.35', 2)]
    for r in rows:
        assert r['runs'] == 2 * 5 and r['threads'] == 1
        assert r['samples_per_node'] == [r['runs']]   # warm-up and verification runs left out
        assert sum(o['count'] for o in r['ops'].values()) == r['nodes']
        assert abs(sum(o['us'] for o in r['ops'].values()) - r['kernel_us']) < 1e-6
        assert abs(r['run_us'] - r['kernel_us'] - r['between_us']) < 1e-6
        assert r['ops']['Conv']['count'] >= 20 and r['kernel_us'] > 0
        # onnxruntime folded every BatchNorm and fused every activation into the convs
        assert not set(r['ops']) & {'BatchNormalization', 'HardSwish', 'Relu'}
    by = {(r['model'], r['batch']): r for r in rows}
    # AsymmNet keeps its reuse concats in the stride-1 SE blocks at small batches; MobileNetV3 has none
    assert by[('asymmnet_small_0.35', 1)]['ops']['Concat']['count'] > 0
    assert 'Concat' not in by[('mobilenetv3_small_0.35', 1)]['ops']
    assert by[('asymmnet_small_0.35', 1)]['nodes'] > by[('mobilenetv3_small_0.35', 1)]['nodes']
    # the library call: profiles are read and removed, only the exported files stay
    one = B.op_profile(['mobilenetv3_small_0.35'], rounds=1, calls=3, warmup=1, input_shape=(1, 3, 32, 32),
                       onnx_dir=str(tmp_path / 'onnx'))
    assert one[0]['runs'] == 3 and one[0]['threads'] is None and one[0]['samples_per_node'] == [3]
    assert sorted(os.listdir(str(tmp_path / 'onnx'))) == ['mobilenetv3_small_0.35.onnx']
    # a run that fails half-way leaves no profile behind either
    with pytest.raises(ValueError):
        B.op_profile(['mobilenetv3_small_0.35', 'no_such_model'], rounds=1, calls=1, warmup=1,
                     input_shape=(1, 3, 32, 32), onnx_dir=str(tmp_path / 'onnx2'))
    assert sorted(os.listdir(str(tmp_path / 'onnx2'))) == ['mobilenetv3_small_0.35.onnx']
    assert main(['bench', 'asymmnet_small_0.35', 'mobilenetv3_small_0.35', '--op-profile', '--paired']) == 2
    assert '--paired and --op-profile' in capfd.readouterr().err
    assert main(['bench', 'mobilenetv3_small_0.35', '--op-profile', '--engines', 'mxnet']) == 2
    assert 'deployed onnxruntime path only' in capfd.readouterr().err
    # without onnx_dir the exported files live in a temporary folder that is removed
    tmp = tmp_path / 'tmp'
    tmp.mkdir()
    monkeypatch.setattr(tempfile, 'tempdir', str(tmp))
    B.op_profile(['mobilenetv3_small_0.35'], rounds=1, calls=1, warmup=1, input_shape=(1, 3, 32, 32))
    runner = B.BenchRunner('mobilenetv3_small_0.35', 'deployed', 'onnxruntime', (1,),
                           input_shape=(1, 3, 32, 32))
    runner.run(1)
    assert os.listdir(str(tmp)) == []


def test_bench_train_form_and_memory():
    said = []
    rows = B.benchmark(['mobilenetv3_small_0.35'], forms=('deployed', 'train'), batch_sizes=(1,),
                       engines=('mxnet', 'onnxruntime'), rounds=1, warmup=1, train_step=True,
                       train_batch=2, input_shape=(1, 3, 32, 32), progress=said.append)
    assert [(r['form'], r['engine']) for r in rows] == [('deployed', 'mxnet'), ('deployed', 'onnxruntime'),
                                                      ('train', 'mxnet')]
    assert any('no onnxruntime row for the train form' in m for m in said)   # not dropped silently
    # the step times the train form: its row carries it
    assert ['train_step' in r for r in rows] == [False, False, True]
    assert 'b1 median ms' in B.format_table(rows)
    m = B.peak_rss_mb('mobilenetv3_small_0.35', batch=2)
    if m is not None:  # Linux
        assert m['peak'] >= m['after_import'] > 50


def test_fastest_predictor_on_a_name():
    pred = E.fastest_predictor('mobilenetv3_small_0.35', input_shape=(1, 3, 64, 64))
    out = pred(np.zeros((2, 3, 64, 64), np.float32))
    assert out.shape == (2, 1000) and pred.info['max_abs_diff'] <= 1e-4
    # a wrong input is refused before a session is built for it, naming the exported shape
    assert pred.input_shape == (None, 3, 64, 64)
    for bad in (np.zeros((3, 64, 64)), np.zeros((2, 1, 64, 64)), np.zeros((1, 3, 32, 32)), np.zeros((0, 3, 64, 64))):
        with pytest.raises(ValueError, match=r'\(N, 3, 64, 64\)'):
            pred(bad)
    with pytest.raises(ValueError, match='uint8 batch: give the preprocessed float batch'):
        pred(np.zeros((2, 3, 64, 64), np.uint8))
    assert pred(np.zeros((2, 3, 64, 64), np.float64)).shape == (2, 1000)   # floats are cast
    assert list(pred._sessions) == [2]
    # its temporary folder goes with it
    folder = os.path.dirname(pred.path)
    assert os.path.isdir(folder) and os.path.basename(folder).startswith('asymmzoo-fast-')
    pred.close()
    assert not os.path.exists(folder)
    with pytest.raises(ValueError, match='is closed'):
        pred(np.zeros((2, 3, 64, 64), np.float32))


def test_export_params_and_output_paths(tmp_path, capsys):
    """What a user can get wrong in export / bench / quantize is one clear line, before any work."""
    shape = ['--input-shape', '1', '3', '32', '32']
    # a 10-class checkpoint (quantize --save-params) exports: the class count comes from the file
    net = asymmzoo.get_model('mobilenetv3_small_0.35', classes=10)
    net.initialize(mx.init.MSRAPrelu())
    net(mx.nd.zeros((1, 3, 32, 32)))
    net.save_parameters(str(tmp_path / 'm10.params'))
    assert main(['export', 'mobilenetv3_small_0.35', '--params', str(tmp_path / 'm10.params'),
                 '--out', str(tmp_path / 'o')] + shape) == 0
    assert 'random weights' not in capsys.readouterr().out
    sess = E.onnx_session(str(tmp_path / 'o' / 'mobilenetv3_small_0.35.onnx'))
    x = np.random.RandomState(0).standard_normal((1, 3, 32, 32)).astype(np.float32)
    with mx.autograd.predict_mode():
        ref = net(mx.nd.array(x)).asnumpy()
    got = sess.run(None, {sess.get_inputs()[0].name: x})[0]
    assert got.shape == (1, 10) and np.abs(got - ref).max() <= 1e-4 * max(1, np.abs(ref).max())
    # ... and its weights are the file's: loading them into a 1000-class model names the class count
    from asymmzoo.store import load_parameters_checked, StoreError
    with pytest.raises(StoreError, match='classifier has 10 classes, the model 1000: build it with classes=10'):
        load_parameters_checked(asymmzoo.get_model('mobilenetv3_small_0.35'), str(tmp_path / 'm10.params'))
    other = asymmzoo.get_model('cifar_resnet20_v1')
    other.initialize()
    other(mx.nd.zeros((1, 3, 32, 32)))
    other.save_parameters(str(tmp_path / 'r20.params'))
    (tmp_path / 'junk.params').write_bytes(b'junk')
    assert main(['export', 'mobilenetv3_small_0.35', '--format', 'symbol', '--out', str(tmp_path / 's')] + shape) == 0
    assert 'random weights (pass --params FILE' in capsys.readouterr().out
    # the symbol files are checked too: a reload that differs fails the export
    with mock.patch('asymmzoo.export.max_abs_diff', return_value=0.5):
        assert main(['export', 'mobilenetv3_small_0.35', '--format', 'symbol', '--out',
                     str(tmp_path / 's2')] + shape) == 2
    assert 'differs from the network by 0.5 (> --atol 0.0001)' in capsys.readouterr().err
    (tmp_path / 'afile').write_text('x')
    for argv, needle in [
        (['--params', str(tmp_path / 'r20.params')], 'r20.params does not fit mobilenetv3_small_0.35'),
        (['--params', str(tmp_path / 'junk.params')], 'not a readable MXNet params file (MXNetError: Check failed'),
        (['--params', str(tmp_path / 's' / 'mobilenetv3_small_0.35-0000.params')], 'is a symbol export'),
        (['--out', str(tmp_path / 'afile')], 'is a file; give a folder'),
        (['--out', str(tmp_path / 'afile' / 'sub')], 'cannot make the folder'),
    ]:
        if '--out' not in argv:
            argv = argv + ['--out', str(tmp_path / 'o2')]
        assert main(['export', 'mobilenetv3_small_0.35'] + argv + shape) == 2, argv
        err = capsys.readouterr().err
        assert needle in err and 'Traceback' not in err and 'allow_missing' not in err, err
    assert main(['export', 'gluoncv:mobilenetv3_small']) == 2
    assert 'bench comparisons' in capsys.readouterr().err
    # output files that cannot be written are refused before the benchmark / training runs
    assert main(['bench', 'mobilenetv3_small_0.35', '--json', str(tmp_path / 'afile' / 'r.json')] + shape) == 2
    assert 'cannot make its folder' in capsys.readouterr().err
    assert main(['quantize', 'mobilenetv3_small_0.35', '--json', str(tmp_path)]) == 2
    assert 'is a folder; give a file name' in capsys.readouterr().err
    assert main(['quantize', 'mobilenetv3_small_0.35', '--save-params', str(tmp_path / 'afile' / 'w.params')]) == 2
    assert 'cannot make its folder' in capsys.readouterr().err
    for argv in (['--batch-sizes', '0'], ['--rounds', '0'], ['--threads', '-1'], ['--batch-sizes', 'x']):
        with pytest.raises(SystemExit):
            main(['bench', 'mobilenetv3_small_0.35'] + argv)
        assert 'is not a positive integer' in capsys.readouterr().err


def test_quantize_net_agrees_with_fp32():
    from asymmzoo.quantize import quantize_net, digits_arrays, evaluate, first_last_layers
    mx.random.seed(0)
    net = asymmzoo.get_model('mobilenetv3_small_0.35', classes=10)
    net.initialize(mx.init.MSRAPrelu())
    x, y = digits_arrays('train', size=32, limit=600)
    # a short fit so that the logits are not a coin toss; the check is fp32 vs int8 agreement
    trainer = mx.gluon.Trainer(net.collect_params(), 'adam', {'learning_rate': 3e-3})
    loss_fn = mx.gluon.loss.SoftmaxCrossEntropyLoss()
    net.hybridize()
    for ep in range(2):
        for i in range(0, 600, 50):
            with mx.autograd.record():
                loss = loss_fn(net(mx.nd.array(x[i:i + 50])), mx.nd.array(y[i:i + 50]))
            loss.backward()
            trainer.step(50)
    xv, yv = digits_arrays('val', size=32, limit=300)
    acc32, p32 = evaluate(net, xv, yv)
    first, last = first_last_layers(net)
    assert first != last and 'output' in last
    qnet = quantize_net(net, x[:200], exclude_first_last=True)
    acc8, p8 = evaluate(qnet, xv, yv)
    assert (p32 == p8).mean() >= 0.8, (acc32, acc8, (p32 == p8).mean())
    assert isinstance(qnet, mx.gluon.SymbolBlock)
    ops = {n['op'] for n in json.loads(qnet._cached_graph[1].tojson())['nodes']} \
        if getattr(qnet, '_cached_graph', None) else set()
    assert not ops or any('quantize' in o for o in ops)


@pytest.mark.slow
def test_quantize_cli_end_to_end(tmp_path, capsys):
    out = tmp_path / 'q.json'
    rc = main(['quantize', 'mobilenetv3_small_0.35', '--epochs', '1', '--batch-sizes', '1',
               '--rounds', '2', '--calib-examples', '200', '--min-sqnr', '40', '--target-sqnr', '0',
               '--json', str(out), '-q'])
    assert rc == 0
    rep = json.loads(out.read_text())
    assert rep['agreement'] >= 80 and abs(rep['top1_change']) <= 10
    assert rep['latency']['1']['int8_ms'] > 0
    # 40 dB is above what most INT8 layers reach: a fallback list to check, stem and classifier apart
    low = rep['low_sqnr_layers']
    assert rep['min_sqnr_db'] == 40 and 0 < len(low) < len(rep['fp32_layers'])
    assert all(r['sqnr_db'] < 40 and r['name'] in rep['fp32_layers'] for r in low)
    assert not {r['name'] for r in low} & set(rep['fp32_layers'][:2])  # stem and classifier
    assert len(rep['fp32_layers']) == len(low) + 2
    assert 'speed-up' in capsys.readouterr().out
    assert rep['output_sqnr_db'] > 0 and rep['tuning'] is None


def test_quantize_cli_sqnr_defaults():
    """The CLI's default is the accuracy-aware fallback; each flag turns its part off with 0."""
    import argparse
    from asymmzoo.commands.deploy_tools import _sqnr_settings
    from asymmzoo.quantize import DEFAULT_MIN_SQNR, DEFAULT_TARGET_SQNR

    def settings(min_sqnr=None, target_sqnr=None, calib_mode='naive'):
        return _sqnr_settings(argparse.Namespace(min_sqnr=min_sqnr, target_sqnr=target_sqnr,
                                                 calib_mode=calib_mode))
    assert settings() == (DEFAULT_MIN_SQNR, DEFAULT_TARGET_SQNR)
    assert settings(target_sqnr=0) == (DEFAULT_MIN_SQNR, None)
    assert settings(min_sqnr=30) == (30, DEFAULT_TARGET_SQNR)
    assert settings(min_sqnr=0) == (None, None)
    assert settings(calib_mode='entropy') == (None, None)
    assert settings(target_sqnr=31) == (DEFAULT_MIN_SQNR, 31)
    with pytest.raises(ValueError, match='--target-sqnr 0'):
        settings(min_sqnr=0, target_sqnr=30)
    with pytest.raises(ValueError, match='--min-sqnr 0'):
        settings(min_sqnr=24, calib_mode='entropy')
    for bad in (-5.0, float('nan'), float('inf')):
        with pytest.raises(ValueError, match='finite number of dB'):
            settings(target_sqnr=bad)
        with pytest.raises(ValueError, match='finite number of dB'):
            settings(min_sqnr=bad)


@pytest.mark.parametrize('kwargs,match', [
    (dict(min_sqnr=None), 'target_sqnr=None'),
    (dict(calib_mode='entropy'), 'naive'),
    (dict(calib_examples=4000), 'lower calib_examples'),
    (dict(target_sqnr=float('inf')), 'finite'),
    (dict(min_sqnr=-1.0), 'finite'),
])
def test_quantize_report_refuses_bad_sqnr_settings_before_training(kwargs, match, monkeypatch):
    import asymmzoo.quantize.report as q
    monkeypatch.setattr(q, 'train_on_digits', lambda *a, **k: pytest.fail('trained before refusing'))
    with pytest.raises(ValueError, match=match):
        q.quantize_report('mobilenetv3_small_0.35', **kwargs)


@pytest.mark.slow
def test_quantize_cli_target_sqnr(tmp_path, capsys):
    out = tmp_path / 'q.json'
    rc = main(['quantize', 'mobilenetv3_small_0.35', '--epochs', '1', '--batch-sizes', '1',
               '--rounds', '1', '--calib-examples', '200', '--target-sqnr', '80', '--json', str(out),
               '-q'])
    assert rc == 0
    rep = json.loads(out.read_text())
    # 80 dB of output SQNR is out of INT8's reach: the threshold climbs 2 dB a step until (nearly)
    # every layer is in fp32 and the outputs match, or to its cap
    steps = rep['tuning']
    assert len(steps) > 1 and rep['target_sqnr_db'] == 80
    assert [t['min_sqnr_db'] for t in steps] == [24.0 + 2 * k for k in range(len(steps))]
    assert all(t['output_sqnr_db'] < 80 for t in steps[:-1])
    assert steps[-1]['output_sqnr_db'] >= 80 or steps[-1]['min_sqnr_db'] + 2 > 60
    assert len(rep['low_sqnr_layers']) == steps[-1]['low_sqnr_layers']
    assert rep['min_sqnr_db'] == steps[-1]['min_sqnr_db'] and rep['min_sqnr_start_db'] == 24
    assert 'tuned to an output SQNR of 80.0 dB' in capsys.readouterr().out
    assert main(['quantize', 'mobilenetv3_small_0.35', '--min-sqnr', '0', '--target-sqnr', '30']) == 2
    assert '--target-sqnr raises the per-layer --min-sqnr' in capsys.readouterr().err


@pytest.mark.slow
def test_bench_threads_reexec(tmp_path):
    import subprocess
    import sys
    out = tmp_path / 't.json'
    env = dict(os.environ)
    env.pop('OMP_NUM_THREADS', None)
    subprocess.check_call([sys.executable, '-m', 'asymmzoo.cli', 'bench', 'mobilenetv3_small_0.35',
                           '--threads', '1', '--batch-sizes', '1', '--rounds', '1',
                           '--input-shape', '1', '3', '32', '32', '--json', str(out), '-q'], env=env)
    rows = json.loads(out.read_text())
    assert rows[0]['env']['OMP_NUM_THREADS'] == '1'


def test_max_abs_diff_counts_equal_infinities_as_equal():
    from asymmzoo.utils.math import max_abs_diff
    a = np.array([1.0, np.inf, -np.inf, np.nan, -1.0], np.float32)
    assert max_abs_diff(a[:3], a[:3].copy()) == 0.0   # equal infinities are equal
    assert max_abs_diff([a[:3], mx.nd.array(a[:2])], [a[:3] + np.float32(0.5), mx.nd.array(a[:2])]) == 0.5
    assert max_abs_diff(a, np.where(np.isinf(a), 0, a)) == np.inf
    assert max_abs_diff(a, np.where(np.isnan(a), 0, a)) == np.inf
    assert max_abs_diff(a, a.copy(), equal_nan=False) == np.inf   # the default: NaN never passes
    assert max_abs_diff(a, a.copy(), equal_nan=True) == 0.0
    with pytest.raises(ValueError, match='2 outputs against 1'):
        max_abs_diff([a, a], a)
    from asymmzoo.utils.math import max_abs_finite
    assert max_abs_finite([a, mx.nd.array([-3.0, 2.0])]) == 3.0 and max_abs_finite(a[1:4]) == 0.0


def test_export_and_bench_detector_and_video_heads(tmp_path, capsys):
    """The heads in the registry go through the same verbs: a YOLOv3 detector exports as symbol files
    (ONNX refused: its NMS does not translate) and benchmarks in MXNet; a TSN video model's batch
    items are its frames (num_segments each), in export, its ONNX check and the benchmark."""
    import onnx
    yolo = ['yolo3_asymmnet_small_0.35_voc', '--input-shape', '1', '3', '64', '64', '--out', str(tmp_path)]
    assert main(['export'] + yolo[:1] + ['--format', 'symbol'] + yolo[1:]) == 0
    assert 'reloaded as SymbolBlock: max abs diff 0' in capsys.readouterr().out
    assert main(['export'] + yolo) == 2
    assert 'is a detector' in capsys.readouterr().err
    tsn = 'tsn_asymmnet_small_0.35_ucf101'
    assert main(['export', tsn, '--input-shape', '1', '3', '64', '64', '--out', str(tmp_path)]) == 0
    assert 'max abs diff' in capsys.readouterr().out
    m = onnx.load(str(tmp_path / (tsn + '.onnx')))
    onnx.checker.check_model(m, full_check=True)   # the declared opset is the one written for
    assert [o.version for o in m.opset_import if o.domain in ('', 'ai.onnx')] == [14]
    rows = B.benchmark(['yolo3_asymmnet_small_0.35_voc', tsn], batch_sizes=(1, 2), rounds=1, warmup=1,
                       input_shape=(1, 3, 64, 64))
    assert [r['input_shape'] for r in rows] == [[1, 3, 64, 64], [3, 3, 64, 64]]
    rows = B.benchmark([tsn], engines=('onnxruntime',), batch_sizes=(1, 2), rounds=1, warmup=1,
                       input_shape=(1, 3, 64, 64))   # static sessions of 3 and 6 frames
    assert rows[0]['onnx_max_abs_diff'] <= 1e-4
    with pytest.raises(ValueError, match='is a detector'):
        B.benchmark(['yolo3_asymmnet_small_0.35_voc'], engines=('onnxruntime',), batch_sizes=(1,),
                    rounds=1, warmup=0, input_shape=(1, 3, 64, 64))
    with pytest.raises(ValueError, match='a fixed batch of this video model is a multiple of its 3'):
        net, _ = E.prepare_model(tsn, input_shape=(1, 3, 64, 64))
        E.export_onnx(net, str(tmp_path / 'v.onnx'), (2, 3, 64, 64), dynamic_batch=False)
    with pytest.raises(ValueError, match='is a detector, whose training step needs its targets'):
        B.benchmark(['yolo3_asymmnet_small_0.35_voc'], batch_sizes=(1,), rounds=1, warmup=0,
                    train_step=True, train_batch=2, input_shape=(1, 3, 64, 64))
    with pytest.raises(ValueError, match='is an embedding network'):
        B.benchmark(['arcface_asymmnet_small_0.35'], batch_sizes=(1,), rounds=1, warmup=0,
                    train_step=True, train_batch=2)


def test_export_opset():
    """mxnet's exporter writes opset-13 nodes: the file says 13 (14 once h-swish is fused)."""
    import onnx
    for name, want in (('cifar_resnet20_v1', 13), ('mobilenetv3_small_0.35', 14)):
        net, shape = E.prepare_model(name, input_shape=(1, 3, 32, 32))
        with tempfile.TemporaryDirectory() as d:
            E.export_onnx(net, os.path.join(d, 'm.onnx'), shape)
            m = onnx.load(os.path.join(d, 'm.onnx'))
        assert [o.version for o in m.opset_import if o.domain in ('', 'ai.onnx')] == [want], name
        onnx.checker.check_model(m, full_check=True)


def test_export_notes_tiny_outputs(tmp_path, capsys):
    """An absolute tolerance says little about outputs far smaller than it: export says so."""
    info = {'path': str(tmp_path / 'm.onnx'), 'max_abs_diff': 1e-19, 'max_abs_out': 7e-13,
            'fused_activations': 0}
    with mock.patch('asymmzoo.export.export_onnx', return_value=info):
        assert main(['export', 'mobilenetv3_small_0.35', '--input-shape', '1', '3', '32', '32',
                     '--out', str(tmp_path)]) == 0
    assert 'the outputs are tiny (max |out| 7e-13 against --atol 0.0001)' in capsys.readouterr().err


def test_random_bn_stats_keep_hybridization_and_nan_weights_are_named():
    """randomize_bn_stats runs the net imperatively for its hooks and gives back the hybridization it
    found (static_alloc / static_shape included); a network whose own outputs are NaN is not passed
    off as deployed."""
    from asymmzoo.deploy import deploy, DeployError
    net, shape = E.prepare_model('mobilenetv3_small_0.35', deploy=False, input_shape=(1, 3, 32, 32))
    net.hybridize(static_alloc=True, static_shape=True)
    flags = dict(net._flags)
    E.randomize_bn_stats(net, mx.nd.random.normal(shape=(4, 3, 32, 32)))
    assert net._active and dict(net._flags) == flags
    w = [p for n, p in net.collect_params().items() if n.endswith('weight')][-1]   # the classifier's
    w.set_data(w.data() * np.nan)
    with pytest.raises(DeployError, match='contains NaN'):
        deploy(net, verify=True, probe=mx.nd.random.normal(shape=(2, 3, 32, 32)))
