"""The benchmark scripts: measuring (benchmarks/measure.py) and reporting (benchmarks/report.py) are
apart, run_all.py runs both with the same flags, and the generated page's numbers come from the stored
results, never typed in. No script rewrites the README or the hand-written docs."""
import copy
import importlib.util
import json
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAGE = os.path.join(ROOT, 'docs', 'performance-measured.md')
HAND_WRITTEN = os.path.join(ROOT, 'docs', 'performance.md')


@pytest.fixture(scope='module')
def run_all():
    spec = importlib.util.spec_from_file_location('run_all', os.path.join(ROOT, 'benchmarks', 'run_all.py'))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope='module')
def report(run_all):
    return run_all.report


@pytest.fixture(scope='module')
def measure(run_all):
    return run_all.measure


def _results(name):
    path = os.path.join(ROOT, 'benchmarks', 'results', name + '.json')
    if not os.path.exists(path):
        pytest.skip('no stored %s results' % name)
    with open(path) as f:
        return json.load(f)


def _read(path):
    with open(path, encoding='utf-8') as f:
        return f.read()


# --------------------------------------------------------------------------------------------------
# report: numbers from the stored results

def test_summary_matches_results(report):
    main, pairs = _results('main'), _results('pairs')
    lines = report.summary_section(main, pairs, None, None, None)
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
    # the summary's rows follow the measured models (the CIFAR pair is left out of this table)
    models = [l.split(' | ')[0][2:] for l in lines if l.startswith('| ') and not l.startswith('| model')]
    assert models == [m for m in dict.fromkeys(r['model'] for r in main) if not m.startswith('cifar')]


def test_summary_names_the_host_speed(report):
    """Runs with the host probe say how fast the host was; files from before it say nothing of it."""
    main, pairs = copy.deepcopy(_results('main')), copy.deepcopy(_results('pairs'))
    for r in main:
        r['env'].pop('host_gflops', None)
    for r in pairs:
        r.pop('host_gflops', None)
    text = '\n'.join(report.summary_section(main, pairs, None, None, None))
    assert 'GFLOP/s' not in text and 'paired run at ' in text
    for r in main:
        r['env']['host_gflops'] = {'before': 241.0, 'after': 236.0, 'threads': 2}
    for r in pairs:   # the targets' run is the onnxruntime one; MXNet's pairs run apart
        r['host_gflops'] = {'before': 131.0, 'after': 128.0, 'threads': 2} if r['engine'] == 'onnxruntime' \
            else {'before': 99.0, 'after': 98.0, 'threads': 2}
        r['time_utc'] = '2026-11-23 02:00:00' if r['engine'] == 'onnxruntime' else '2026-11-23 03:00:00'
    text = '\n'.join(report.summary_section(main, pairs, None, None, None))
    assert '1-min load average %.1f; host float32 1024x1024 matmul on 2 BLAS threads: 241 GFLOP/s before ' \
           'the rounds, 236 after). A table' % (main[0]['env'].get('loadavg_1min') or 0) in text
    assert 'paired run at 2026-11-23 02:00:00 UTC; host float32 1024x1024 matmul on 2 BLAS threads: 131 ' \
           'GFLOP/s before the rounds, 128 after -- both models' in text
    assert ' 99 GFLOP/s' not in text


def test_committed_page_is_the_generated_one(report):
    """The committed docs/performance-measured.md is exactly what the stored results give (nothing
    typed in, nothing stale): re-run ``benchmarks/run_all.py --report-only`` after new results."""
    _results('main')
    text, zoo = report.render()
    assert _read(PAGE) == text
    assert text.startswith(report.TITLE + '\n\n' + report.GENERATED + '\n')
    for heading in ('## Summary', '## Targets', '## Interleaved comparison, 2 threads',
                    '## The zoo at batch 1', '## INT8', '## Per-operator profile of the fastest path'):
        assert '\n%s' % heading in text, heading
    summary = text.split('## Summary', 1)[1].split('\n## ', 1)[0]
    assert '* INT8' in summary and 'ONNX export of all' in summary
    assert zoo == _results('zoo')


def test_render_leaves_out_what_was_not_measured(report, tmp_path):
    """A results folder with one part gives that part's section only (and the Targets it feeds)."""
    (tmp_path / 'zoo.json').write_text(json.dumps(_results('zoo')))
    text, zoo = report.render(str(tmp_path))
    assert '## The zoo at batch 1' in text and '## Targets' in text and 'ONNX vs MXNet max abs diff' in text
    for absent in ('## Summary', '## Interleaved comparison', '## INT8', '## Per-operator'):
        assert absent not in text
    empty = tmp_path / 'empty'
    empty.mkdir()
    text, zoo = report.render(str(empty))
    assert zoo is None and '## Targets' not in text and text.startswith(report.TITLE)


def test_ops_section_is_computed_from_the_profile(report):
    ops = _results('ops')
    lines = report.ops_section(ops)
    assert lines[0] == '## Per-operator profile of the fastest path'
    by = {(r['model'], r['batch'], r['threads']): r for r in ops}
    a, m = by[('asymmnet_large_1.0', 1, 1)], by[('mobilenetv3_large_1.0', 1, 1)]
    line = next(l for l in lines if l.startswith('* asymmnet_large_1.0 over mobilenetv3_large_1.0, batch 1, 1 thread:'))
    assert '%+.0f µs per run (%.2fx as profiled; %d vs %d nodes)' % (
        a['run_us'] - m['run_us'], a['run_us'] / m['run_us'], a['nodes'], m['nodes']) in line
    assert 'Concat %+.0f' % a['ops']['Concat']['us'] in line   # MobileNetV3 has no concat
    assert report.ops_section(None) == []
    assert '\n'.join(lines) in _read(PAGE)   # the page holds what the stored profile gives


def test_report_writes_its_page_and_plot_only(report, tmp_path):
    """report.py writes the page and the plot it is given, and no other file: README.md and the
    hand-written performance page stay as they are."""
    _results('zoo')
    before = {p: _read(p) for p in (os.path.join(ROOT, 'README.md'), HAND_WRITTEN, PAGE)}
    page, plot = tmp_path / 'page.md', tmp_path / 'plot.png'
    assert report.main(['--page', str(page), '--plot', str(plot)]) == 0
    assert page.read_text(encoding='utf-8') == report.render()[0]
    assert plot.stat().st_size > 10000
    assert sorted(os.listdir(tmp_path)) == ['page.md', 'plot.png']
    assert {p: _read(p) for p in before} == before


def test_no_benchmark_script_writes_the_readme_or_the_hand_written_page():
    bench = os.path.join(ROOT, 'benchmarks')
    for name in sorted(os.listdir(bench)):
        if name.endswith('.py'):
            src = _read(os.path.join(bench, name))
            assert 'README' not in src, name
            assert "'performance.md'" not in src, name


def test_docs_link_the_two_pages():
    hand, page = _read(HAND_WRITTEN), _read(PAGE)
    assert '(performance-measured.md)' in hand and '(performance.md)' in page
    assert '<!-- Generated' not in hand      # the hand-written page is nobody's output
    readme = _read(os.path.join(ROOT, 'README.md'))
    assert '(docs/performance.md)' in readme and 'performance:begin' not in readme


# --------------------------------------------------------------------------------------------------
# run_all: the same flags, the two steps apart

def _record(monkeypatch, run_all):
    calls = []
    monkeypatch.setattr(run_all.measure, 'run', lambda args, argv: calls.append(('measure', args.parts, argv)))
    monkeypatch.setattr(run_all.report, 'write', lambda *a, **k: calls.append(('report',)))
    return calls


def test_run_all_measures_then_reports(run_all, monkeypatch):
    calls = _record(monkeypatch, run_all)
    assert run_all.main(['--parts', 'zoo', 'int8', '--rounds', '3', '--int8-epochs', '2']) == 0
    assert calls == [('measure', ['zoo', 'int8'], ['--parts', 'zoo', 'int8', '--rounds', '3', '--int8-epochs', '2']),
                     ('report',)]


def test_run_all_report_only_and_no_report(run_all, monkeypatch):
    calls = _record(monkeypatch, run_all)
    run_all.main(['--report-only'])
    assert calls == [('report',)]
    del calls[:]
    run_all.main(['--parts', 'zoo', '--no-report', '--quick'])
    assert calls == [('measure', ['zoo'], ['--parts', 'zoo', '--quick'])]   # measure.py gets no report flag
    del calls[:]
    with pytest.raises(SystemExit):
        run_all.main(['--report-only', '--no-report'])
    with pytest.raises(SystemExit):
        run_all.main(['--parts', 'zoo', 'int8', '--save-as', 'x'])
    assert calls == []


def test_run_all_takes_every_measuring_flag(run_all, measure):
    """run_all.py's parser is measure.py's plus --report-only / --no-report."""
    flags = lambda p: {s for a in p._actions for s in a.option_strings}
    assert flags(run_all.parser()) == flags(measure.parser()) | {'--report-only', '--no-report'}
    args = run_all.parser().parse_args([])
    assert args.parts == list(measure.PARTS) and not args.report_only


# --------------------------------------------------------------------------------------------------
# measure: one fresh process per part, results saved as JSON

def test_measure_runs_one_process_per_part(measure, monkeypatch):
    import subprocess
    calls = []
    monkeypatch.setattr(subprocess, 'check_call', lambda cmd, **kw: calls.append(cmd))
    argv = ['--rounds', '3', '--parts', 'zoo', 'ops', '--quick']
    measure.main(argv)
    script = os.path.join(ROOT, 'benchmarks', 'measure.py')
    assert calls == [[sys.executable, script, '--parts', part, '--rounds', '3', '--quick'] for part in ('zoo', 'ops')]


def test_measure_saves_one_part_as_json(measure, monkeypatch):
    saved = []
    monkeypatch.setitem(measure.PARTS, 'zoo', lambda args: [{'model': 'm', 'quick': args.quick}])
    monkeypatch.setattr(measure, '_save', lambda part, data: saved.append((part, data)))
    measure.main(['--parts', 'zoo', '--quick'])
    measure.main(['--parts', 'zoo', '--save-as', 'zoo_quick'])
    assert saved == [('zoo', [{'model': 'm', 'quick': True}]), ('zoo_quick', [{'model': 'm', 'quick': False}])]


def test_without_parts(measure):
    assert measure._without_parts(['--parts', 'a', 'b', '--rounds', '3', '--parts=c', '--quick']) == \
        ['--rounds', '3', '--quick']
