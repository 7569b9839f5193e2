"""The benchmark report writer: README numbers come from the stored results, never typed in."""
import importlib.util
import json
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope='module')
def run_all():
    spec = importlib.util.spec_from_file_location('run_all', os.path.join(ROOT, 'benchmarks', 'run_all.py'))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _results(name):
    path = os.path.join(ROOT, 'benchmarks', 'results', name + '.json')
    if not os.path.exists(path):
        pytest.skip('no stored %s results' % name)
    with open(path) as f:
        return json.load(f)


def test_readme_section_matches_results(run_all):
    main, pairs = _results('main'), _results('pairs')
    lines = run_all._readme_section(main, pairs, None, None, None)
    mx = next(r for r in main if r['model'] == 'asymmnet_large_1.0' and r['engine'] == 'mxnet')
    ort = next(r for r in main if r['model'] == 'asymmnet_large_1.0' and r['engine'] == 'onnxruntime')
    row = next(l for l in lines if l.startswith('| asymmnet_large_1.0 |'))
    assert row.split(' | ')[2] == '%.1f' % mx['batch']['1']['median_ms']
    assert row.split(' | ')[3] == '%.2f' % ort['batch']['1']['median_ms']
    pair = next(p for p in pairs if p['a'] == 'asymmnet_large_1.0' and p['engine'] == 'onnxruntime'
                and p['batch'] == 1)
    text = '\n'.join(lines)
    verdict = 'met' if pair['ratio'] <= 1.10 else '**missed**'
    assert 'asymmnet_large_1.0 / mobilenetv3_large_1.0, batch 1: %.3fx [%.3f-%.3f] %s' % (
        pair['ratio'], pair['ci95'][0], pair['ci95'][1], verdict) in text


def test_readme_section_names_the_host_speed(run_all):
    """Runs with the host probe say how fast the host was; files from before it say nothing of it."""
    import copy
    main, pairs = copy.deepcopy(_results('main')), copy.deepcopy(_results('pairs'))
    for r in main:
        r['env'].pop('host_gflops', None)
    for r in pairs:
        r.pop('host_gflops', None)
    text = '\n'.join(run_all._readme_section(main, pairs, None, None, None))
    assert 'GFLOP/s' not in text and 'paired run at ' in text
    for r in main:
        r['env']['host_gflops'] = {'before': 241.0, 'after': 236.0, 'threads': 2}
    for r in pairs:   # the targets' run is the onnxruntime one; MXNet's pairs run apart
        r['host_gflops'] = {'before': 131.0, 'after': 128.0, 'threads': 2} if r['engine'] == 'onnxruntime' \
            else {'before': 99.0, 'after': 98.0, 'threads': 2}
        r['time_utc'] = '2026-11-23 02:00:00' if r['engine'] == 'onnxruntime' else '2026-11-23 03:00:00'
    text = '\n'.join(run_all._readme_section(main, pairs, None, None, None))
    assert '1-min load average %.1f; host float32 1024x1024 matmul on 2 BLAS threads: 241 GFLOP/s before ' \
           'the rounds, 236 after). A table' % (main[0]['env'].get('loadavg_1min') or 0) in text
    assert 'paired run at 2026-11-23 02:00:00 UTC; host float32 1024x1024 matmul on 2 BLAS threads: 131 ' \
           'GFLOP/s before the rounds, 128 after -- both models' in text
    assert ' 99 GFLOP/s' not in text


def test_write_readme_replaces_only_the_marked_block(run_all, tmp_path, monkeypatch):
    readme = tmp_path / 'README.md'
    readme.write_text('# head\n%s\nold numbers\n%s\n## tail\n' % (run_all.README_BEGIN, run_all.README_END))
    monkeypatch.setattr(run_all, 'README', str(readme))
    run_all._write_readme(['| new | table |'])
    assert readme.read_text() == '# head\n%s\n| new | table |\n%s\n## tail\n' % (run_all.README_BEGIN,
                                                                                 run_all.README_END)
    unmarked = tmp_path / 'plain.md'
    unmarked.write_text('# no markers\n')
    monkeypatch.setattr(run_all, 'README', str(unmarked))
    run_all._write_readme(['x'])
    assert unmarked.read_text() == '# no markers\n'


def test_repo_readme_block_is_the_generated_one(run_all):
    """The committed README block is exactly what the stored results give (nothing typed in, nothing
    stale): re-run ``benchmarks/run_all.py --report-only`` after new results."""
    with open(os.path.join(ROOT, 'README.md')) as f:
        text = f.read()
    assert text.count(run_all.README_BEGIN) == 1 and text.count(run_all.README_END) == 1
    block = text.split(run_all.README_BEGIN, 1)[1].split(run_all.README_END, 1)[0].strip('\n')
    load = run_all._load
    expected = run_all._readme_section(_results('main'), load('pairs') or [], load('zoo'), load('int8'),
                                       load('int8tuned'), load('pairs1t'))
    assert block == '\n'.join(expected)
    assert any(l.startswith('* INT8') for l in expected) and any('ONNX export' in l for l in expected)


def test_write_readme_needs_the_markers_in_order(run_all, tmp_path, monkeypatch):
    readme = tmp_path / 'README.md'
    original = '%s\nx\n%s\n' % (run_all.README_END, run_all.README_BEGIN)
    readme.write_text(original)
    monkeypatch.setattr(run_all, 'README', str(readme))
    run_all._write_readme(['y'])
    assert readme.read_text() == original


def test_ops_section_is_computed_from_the_profile(run_all):
    ops = _results('ops')
    lines = run_all._ops_section(ops)
    assert lines[0] == '### Per-operator profile of the fastest path'
    by = {(r['model'], r['batch'], r['threads']): r for r in ops}
    a, m = by[('asymmnet_large_1.0', 1, 1)], by[('mobilenetv3_large_1.0', 1, 1)]
    line = next(l for l in lines if l.startswith('* asymmnet_large_1.0 over mobilenetv3_large_1.0, batch 1, 1 thread:'))
    assert '%+.0f µs per run (%.2fx as profiled; %d vs %d nodes)' % (
        a['run_us'] - m['run_us'], a['run_us'] / m['run_us'], a['nodes'], m['nodes']) in line
    assert 'Concat %+.0f' % a['ops']['Concat']['us'] in line   # MobileNetV3 has no concat
    assert run_all._ops_section(None) == []
    with open(os.path.join(ROOT, 'docs', 'performance.md')) as f:
        doc = f.read()
    assert '\n'.join(lines) in doc   # the page holds what the stored profile gives
