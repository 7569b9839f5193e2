"""asymmzoo.bench and `asymmzoo bench`: the interleaved table and its JSON, the host-speed probe,
paired ratios, the per-operator profile, the train form and peak memory, --threads."""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import pytest

from asymmzoo import bench as B
from asymmzoo.cli import main

pytest.importorskip('onnx')
pytest.importorskip('onnxruntime')


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
