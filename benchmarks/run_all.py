"""Reproduce every number of docs/performance.md (issue 8's targets); rewrite that page and the
README's Performance block (between its performance:begin / performance:end markers).

    .venv/bin/python benchmarks/run_all.py                  # all parts (~1.5 h on 2 idle cores)
    .venv/bin/python benchmarks/run_all.py --parts zoo int8    # some parts
    .venv/bin/python benchmarks/run_all.py --report-only    # rebuild the page and README block from saved JSON

Several parts run one after the other, each in a fresh process (bounded memory).

Parts (each saves benchmarks/results/<part>.json; the page is built from whatever is saved):
  main   one interleaved run (deployed forms) of AsymmNet-L/S 1.0, our MobileNetV3-L/S 1.0, GluonCV's
         MobileNetV3-L/S, asymmnet_{large,small}_1.0_acb (deployed) and a RotateConv model with its
         base, on MXNet, MXNet+oneDNN fusion, onnxruntime on the plain export and onnxruntime on our
         rewritten export (the fastest path), batch 1 and 32  -> ratio targets, 8 ms target
  main1t the same with one thread (OMP_NUM_THREADS=1, onnxruntime 1 intra-op thread), in a subprocess
  train  training-step time (train forms: ACB / RotateConv branches included) and peak memory
  pairs  the ratio targets, measured in pairs (each pair back to back every round, median of the
         per-round ratios with a 95% interval) on MXNet, MXNet+oneDNN and the fastest path
  pairs1t  the same on the fastest path with one thread (phone-like single core)
  ops    onnxruntime's per-operator profile of the fastest path (AsymmNet-L/S and MobileNetV3-L/S 1.0,
         batch 1 and 32, all cores and one thread): where the time goes
  zoo    every AsymmNet / MobileNetV3 backbone (all widths, pruned too) at batch 1, MXNet vs onnxruntime,
         each ONNX export verified to 1e-4 at 224x224 -> the latency-vs-MAdds plot
  int8   oneDNN INT8 of every AsymmNet / MobileNetV3 backbone (30), each trained briefly on the
         embedded digits (weights cached), with the fixed 24 dB per-layer threshold only
         (--target-sqnr 0); INT8 latency for the four x1.0 models
  int8tuned  the same 30 as asymmzoo quantize does by default: the accuracy-aware fallback
         (--int8-target-sqnr, default 25 dB)
Timings are medians of round-robin repetitions in one process; the ratio targets come from pairs timed
back to back every round; absolute figures depend on the host's speed, printed with each table.
"""
import argparse
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)
RESULTS = os.path.join(HERE, 'results')
DOC = os.path.join(ROOT, 'docs', 'performance.md')
PLOT = os.path.join(ROOT, 'docs', 'performance_latency_vs_madds.png')
README = os.path.join(ROOT, 'README.md')
README_BEGIN = '<!-- performance:begin (written by benchmarks/run_all.py from benchmarks/results; do not edit) -->'
README_END = '<!-- performance:end -->'

MAIN = ['asymmnet_large_1.0', 'mobilenetv3_large_1.0', 'gluoncv:mobilenetv3_large',
        'asymmnet_large_1.0_acb', 'asymmnet_small_1.0', 'mobilenetv3_small_1.0',
        'gluoncv:mobilenetv3_small', 'asymmnet_small_1.0_acb', 'cifar_resnet20_v1',
        'cifar_resnet20_v1_rot4']
if os.environ.get('RUN_ALL_MAIN'):  # smoke runs: RUN_ALL_MAIN="name1,name2"
    MAIN = os.environ['RUN_ALL_MAIN'].split(',')
TRAIN = ['asymmnet_large_1.0', 'mobilenetv3_large_1.0', 'asymmnet_large_1.0_acb']
INT8 = ['asymmnet_large_1.0', 'mobilenetv3_large_1.0', 'asymmnet_small_1.0', 'mobilenetv3_small_1.0']


def log(msg):
    print('[run_all %s] %s' % (time.strftime('%H:%M:%S'), msg), file=sys.stderr, flush=True)


def _existing(names):
    import asymmzoo
    out = []
    for n in names:
        if n.startswith('gluoncv:') or asymmzoo.is_registered(n):
            out.append(n)
        else:
            log('skipping %s: not registered' % n)
    return out


def _save(part, data):
    from asymmzoo.store import atomic_write_json
    atomic_write_json(data, os.path.join(RESULTS, part + '.json'), indent=1, sort_keys=False)


def _load(part):
    p = os.path.join(RESULTS, part + '.json')
    if not os.path.exists(p):
        return None
    with open(p) as f:
        return json.load(f)


def part_main(args):
    from asymmzoo.bench import benchmark
    return benchmark(_existing(MAIN), forms=('deployed',),
                     engines=('mxnet', 'onednn', 'onnxruntime-plain', 'onnxruntime'),
                     batch_sizes=(1, 32), rounds=args.rounds, threads=args.threads, progress=log)


PAIRS = [('asymmnet_large_1.0', 'mobilenetv3_large_1.0'), ('asymmnet_small_1.0', 'mobilenetv3_small_1.0'),
         ('mobilenetv3_large_1.0', 'gluoncv:mobilenetv3_large'),
         ('mobilenetv3_small_1.0', 'gluoncv:mobilenetv3_small'),
         ('asymmnet_large_1.0_acb', 'asymmnet_large_1.0'), ('asymmnet_small_1.0_acb', 'asymmnet_small_1.0'),
         ('cifar_resnet20_v1_rot4', 'cifar_resnet20_v1')]


def part_pairs(args):
    """Every ratio target timed in pairs (:func:`asymmzoo.utils.benchmark.paired_ratios`)."""
    from asymmzoo.bench import paired_ratios
    pairs = [p for p in PAIRS if len(_existing(p)) == 2]
    rows = []
    for engine, rounds in (('onnxruntime', args.pair_rounds), ('onednn', max(10, args.pair_rounds // 2)),
                           ('mxnet', max(10, args.pair_rounds // 2))):
        if engine not in args.pair_engines:
            continue
        log('pairs on %s (%d rounds)' % (engine, rounds))
        rows += paired_ratios(pairs, engine=engine, batch_sizes=(1, 32), rounds=rounds,
                              threads=args.threads, progress=log)
        _save((args.save_as or 'pairs') + '.partial', rows)
    _drop_partial(args.save_as or 'pairs')
    return rows


def part_pairs1t(args):
    """The ratio targets in pairs on the fastest path with one thread (a phone-like single-core setting;
    the paper measured on a phone)."""
    import subprocess
    env = dict(os.environ, OMP_NUM_THREADS='1', MXNET_CPU_WORKER_NTHREADS='1')
    subprocess.check_call([sys.executable, os.path.abspath(__file__), '--parts', 'pairs', '--threads', '1',
                           '--pair-rounds', str(args.pair_rounds), '--pair-engines', 'onnxruntime',
                           '--save-as', 'pairs1t', '--no-report'], env=env)
    return _load('pairs1t')


def part_main1t(args):
    """The main comparison with one thread (MXNet's OMP_NUM_THREADS needs a fresh process)."""
    import subprocess
    env = dict(os.environ, OMP_NUM_THREADS='1', MXNET_CPU_WORKER_NTHREADS='1')
    subprocess.check_call([sys.executable, os.path.abspath(__file__), '--parts', 'main', '--threads',
                           '1', '--rounds', str(args.rounds), '--save-as', 'main1t', '--no-report'],
                          env=env)
    return _load('main1t')


def part_train(args):
    from asymmzoo.bench import benchmark
    names = _existing(TRAIN)
    rows = benchmark(names, forms=('train',), engines=('mxnet',), batch_sizes=(1,),
                     rounds=max(3, args.rounds // 2), train_step=True, train_batch=32,
                     threads=args.threads, progress=log)
    for row in rows:
        log('peak memory of %s' % row['model'])
        from asymmzoo.bench import peak_rss_mb
        row['peak_rss_mb'] = {e: peak_rss_mb(row['model'], 'deployed', e, 32, threads=args.threads)
                              for e in ('mxnet', 'onnxruntime')}
    return rows


def part_zoo(args):
    import asymmzoo
    from asymmzoo.bench import benchmark
    names = [n for n in asymmzoo.list_models('*') if n.split('_')[0] in ('asymmnet', 'mobilenetv3')
             and not n.endswith(('_acb', '_rot4', '_rot2'))]
    if args.quick:
        names = [n for n in names if '_1.0' in n or '_0.5' in n]
    return benchmark(names, forms=('deployed',), engines=('mxnet', 'onnxruntime'), batch_sizes=(1,),
                     rounds=max(3, args.rounds // 2), threads=args.threads, progress=log)


def _int8_models(args):
    import fnmatch
    import asymmzoo
    names = [n for n in asymmzoo.list_models('*') if n.split('_')[0] in ('asymmnet', 'mobilenetv3')
             and not n.endswith(('_acb', '_rot4', '_rot2'))]
    if args.int8_models:
        names = [n for n in names if any(fnmatch.fnmatch(n, p) for p in args.int8_models)]
    return names


def _int8_run(args, names, part, **kw):
    import tempfile
    from asymmzoo.quantize import quantize_report
    cache = args.int8_cache or os.path.join(tempfile.gettempdir(), 'asymmzoo-int8-weights')
    os.makedirs(cache, exist_ok=True)
    reps = []
    for n in names:
        f = os.path.join(cache, '%s_digits_e%d_s32_seed0.params' % (n, args.int8_epochs))
        have = os.path.isfile(f)
        log('int8 %s (%s)' % (n, 'cached weights' if have else 'training'))
        rep = quantize_report(n, params=f if have else None, save_params=None if have else f,
                              epochs=args.int8_epochs, rounds=max(3, args.rounds // 2),
                              bench_batches=(1, 32) if n in INT8 and not args.int8_no_bench else (),
                              log=log, **kw)
        rep['epochs'] = args.int8_epochs
        if have:
            rep['weights'] = 'trained %d epochs on the embedded digits (cached)' % args.int8_epochs
        reps.append(rep)
        _save(part + '.partial', reps)
        log('int8 %s: fp32 %.2f%% int8 %.2f%% (%+.2f)' % (n, rep['fp32_top1'], rep['int8_top1'],
                                                         rep['top1_change']))
    _drop_partial(part)   # complete: the caller saves the whole list
    return reps


def _drop_partial(part):
    partial = os.path.join(RESULTS, part + '.partial.json')
    if os.path.exists(partial):
        os.remove(partial)


def part_int8tuned(args):
    """The accuracy-aware fallback (``--target-sqnr``) on every backbone of the int8 part."""
    return _int8_run(args, _int8_models(args), args.save_as or 'int8tuned', target_sqnr=args.int8_target_sqnr)


def part_int8(args):
    """INT8 of every AsymmNet / MobileNetV3 backbone with the fixed per-layer threshold only (no tuning):
    accuracy for all, latency for the x1.0 four.
    Trained weights are cached (``--int8-cache``) so a rerun only re-quantizes; progress is saved
    after every model (``results/int8.partial.json``)."""
    return _int8_run(args, _int8_models(args), args.save_as or 'int8', target_sqnr=None)


OPS = ['asymmnet_large_1.0', 'mobilenetv3_large_1.0', 'asymmnet_small_1.0', 'mobilenetv3_small_1.0']


def part_ops(args):
    """Where the fastest path's time goes: onnxruntime's per-operator profile of AsymmNet-L/S 1.0 and
    MobileNetV3-L/S 1.0 (:func:`asymmzoo.utils.benchmark.op_profile`), batch 1 and 32, with all cores
    and with one thread (onnxruntime's thread count is per session: one process does both)."""
    from asymmzoo.bench import op_profile
    rows = []
    for threads in (args.threads, 1):
        log('operator profile, %s thread(s)' % (threads or 'all'))
        rows += op_profile(_existing(OPS), batch_sizes=(1, 32), threads=threads, rounds=args.rounds,
                           progress=log)
    return rows


PARTS = {'main': part_main, 'pairs': part_pairs, 'pairs1t': part_pairs1t, 'main1t': part_main1t,
         'train': part_train, 'zoo': part_zoo, 'ops': part_ops, 'int8': part_int8, 'int8tuned': part_int8tuned}


# --------------------------------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------------------------------

def _row(rows, model, engine, form='deployed'):
    for r in rows or []:
        if r['model'] == model and r['engine'] == engine and r['form'] == form:
            return r
    return None


def _ms(r, b):
    return r['batch'][str(b)]['median_ms'] if r and str(b) in r['batch'] else float('nan')


def _verdict(ok):
    return 'met' if ok else '**missed**'


def _cpu(r, b):
    return r['batch'][str(b)].get('cpu_median_ms', float('nan')) if r and str(b) in r['batch'] \
        else float('nan')


def _main_targets(main, tag):
    """Target lines from one interleaved run; ratios of wall-clock medians (CPU-time ratio beside)."""
    out = []

    def ratio_line(label, a, m, b, goal, ok):
        r, rc = _ms(a, b) / _ms(m, b), _cpu(a, b) / _cpu(m, b)
        out.append(('%s, batch %d, %s, %s' % (label, b, a['engine'], tag),
                    '%.3fx (cpu %.3fx)' % (r, rc), goal, _verdict(ok(r))))

    for eng in ('mxnet', 'onednn', 'onnxruntime'):
        for arch in ('large', 'small'):
            a, m = _row(main, 'asymmnet_%s_1.0' % arch, eng), _row(main, 'mobilenetv3_%s_1.0' % arch, eng)
            if a and m:
                for b in (1, 32):
                    ratio_line('asymmnet_%s_1.0 / mobilenetv3_%s_1.0' % (arch, arch), a, m, b,
                               '<= 1.10x', lambda r: r <= 1.10)
    for eng in ('mxnet', 'onednn', 'onnxruntime'):
        for arch in ('large', 'small'):
            ours, gcv = _row(main, 'mobilenetv3_%s_1.0' % arch, eng), \
                _row(main, 'gluoncv:mobilenetv3_%s' % arch, eng)
            if ours and gcv:
                for b in (1, 32):
                    ratio_line('our mobilenetv3_%s_1.0 / GluonCV mobilenetv3_%s' % (arch, arch), ours,
                               gcv, b, '<= 1.00x (no slower)',
                               lambda r: r <= 1.0)
    for eng in ('mxnet', 'onednn', 'onnxruntime'):
        for acb, base in (('asymmnet_large_1.0_acb', 'asymmnet_large_1.0'),
                          ('asymmnet_small_1.0_acb', 'asymmnet_small_1.0'),
                          ('cifar_resnet20_v1_rot4', 'cifar_resnet20_v1')):
            a, m = _row(main, acb, eng), _row(main, base, eng)
            if a and m:
                for b in (1, 32):
                    ratio_line('deployed %s / %s' % (acb, base), a, m, b, 'within 0.97-1.03x',
                               lambda r: abs(r - 1) <= 0.03)
    for m in ('asymmnet_large_1.0', 'mobilenetv3_large_1.0', 'asymmnet_small_1.0'):
        a, p = _row(main, m, 'onnxruntime'), _row(main, m, 'onnxruntime-plain')
        mx_ = _row(main, m, 'mxnet')
        if a and p and mx_:
            for b in (1, 32):
                out.append(('%s batch %d, %s: MXNet -> onnxruntime (plain export) -> onnxruntime (our '
                            'rewrites)' % (m, b, tag), '%.2f -> %.2f -> %.2f ms (cpu %.2f -> %.2f -> %.2f)'
                            % (_ms(mx_, b), _ms(p, b), _ms(a, b), _cpu(mx_, b), _cpu(p, b), _cpu(a, b)),
                            'information', '%.1fx faster than MXNet' % (_ms(mx_, b) / _ms(a, b))))
    fast = _row(main, 'asymmnet_large_1.0', 'onnxruntime')
    if fast:
        t = _ms(fast, 1)
        out.append(('fastest path (onnxruntime) asymmnet_large_1.0, batch 1, %s' % tag,
                    '%.2f ms (cpu %.2f)' % (t, _cpu(fast, 1)), '<= 8 ms', _verdict(t <= 8.0)))
    return out


_PAIR_GOALS = {'mobilenetv3': ('<= 1.10x', lambda r, lo, hi: r <= 1.10),
               # the same graph as GluonCV's: "no slower" = not measurably slower (interval reaches 1)
               'gluoncv': ('no slower (95% interval reaches 1.00x)', lambda r, lo, hi: lo <= 1.0),
               'deployed': ('within 0.97-1.03x', lambda r, lo, hi: abs(r - 1) <= 0.03)}


def _spans(ok, lo, hi, med_ok):
    """Whether some ratio in [lo, hi] gets the other verdict than the median (an interval can reach
    past both ends of a band)."""
    return any(ok(v, v, v) != med_ok for v in (lo + (hi - lo) * k / 200.0 for k in range(201)))


def _pair_goal(r):
    """(label, goal, ok) of one paired row: the target it is held to."""
    if r['b'].startswith('gluoncv:'):
        return ('our %s / GluonCV %s' % (r['a'], r['b'][8:]),) + _PAIR_GOALS['gluoncv']
    if r['a'].startswith('asymmnet') and r['b'].startswith('mobilenetv3'):
        return ('%s / %s' % (r['a'], r['b']),) + _PAIR_GOALS['mobilenetv3']
    return ('deployed %s / %s' % (r['a'], r['b']),) + _PAIR_GOALS['deployed']


def _pair_met(r):
    """Whether a paired row meets its goal (judged on the median ratio, as in the tables)."""
    return _pair_goal(r)[2](r['ratio'], *r['ci95'])


def _pair_item(r, engine=False):
    """'A / B, batch N[, engine]: ratio [lo-hi]' for the README's one-line lists."""
    return '%s / %s, batch %d%s: %.3fx [%.3f-%.3f]' % (r['a'], r['b'], r['batch'],
                                                      ', %s' % r['engine'] if engine else '', r['ratio'],
                                                      r['ci95'][0], r['ci95'][1])


def _pair_targets(pairs):
    """Target lines from the paired run: median per-round ratio, its 95% interval, CPU ratio."""
    out = []
    for r in pairs:
        label, goal, ok = _pair_goal(r)
        lo, hi = r['ci95']
        med_ok = ok(r['ratio'], lo, hi)
        verdict = _verdict(med_ok)
        if not r['b'].startswith('gluoncv:') and _spans(ok, lo, hi, med_ok):
            verdict += ' (the 95% interval spans the goal)'
        out.append(('%s, batch %d, %s%s%s' % (label, r['batch'], r['engine'],
                                             ' (fastest path)' if r['engine'] == 'onnxruntime' else '',
                                             ', 1 thread' if r.get('threads') == 1 else ''),
                    '%.3fx [%.3f-%.3f] (cpu %.3fx)' % (r['ratio'], lo, hi, r['cpu_ratio']), goal, verdict))
    return out


def _is_default_target(db):
    from asymmzoo.quantize import DEFAULT_TARGET_SQNR
    return db == DEFAULT_TARGET_SQNR


def _pairs_when(pairs):
    """' at <time> UTC; host float32 matmul ...' for the paired run of the targets (its onnxruntime
    rows; the table and the pairs can be measured apart; files written before the host probe existed
    give the time only)."""
    from asymmzoo.bench import host_note
    rows = [r for r in pairs or [] if r.get('engine') == 'onnxruntime'] or list(pairs or [])
    rows = [r for r in rows if r.get('time_utc')]
    if not rows:
        return ''
    last = max(rows, key=lambda r: r['time_utc'])
    return ' at %s UTC%s' % (last['time_utc'], host_note(last.get('host_gflops')))


def _readme_section(main, pairs, zoo, int8, tuned, pairs1=None):
    """The README's Performance table and target summary, computed from the results files."""
    from asymmzoo.bench import host_note
    env = main[0]['env']
    threads = env.get('onnxruntime_threads') or env.get('cpus')
    L = ['| model (deployed, 224x224, %s thread%s) | MAdds | MXNet b1 ms | onnxruntime b1 ms | MXNet b32 img/s '
         '| onnxruntime b32 img/s |' % (threads, '' if threads == 1 else 's'), '|---|---:|---:|---:|---:|---:|']
    for m in [m for m in MAIN if not m.startswith('cifar')]:
        mx_, ort = _row(main, m, 'mxnet'), _row(main, m, 'onnxruntime')
        if mx_ and ort:
            L.append('| %s | %.0fM | %.1f | %.2f | %.0f | %.0f |' % (
                m, mx_['madds'] / 1e6, _ms(mx_, 1), _ms(ort, 1),
                mx_['batch']['32']['throughput_ips'], ort['batch']['32']['throughput_ips']))
    L += ['', 'Measured %s UTC in one interleaved run (%d rounds; 1-min load average %.1f%s). A table like this '
          'mixes the load of different seconds on a shared machine: rows that run the same graph (a deployed '
          '`_acb` model and its base) can differ by a quarter or more (0.75x-1.16x in one 40-runner list). Against issue 8\'s '
          'targets (ratios from the paired run%s -- both models back to back every round, median of the '
          'per-round ratios and its 95%% interval):' % (env['time_utc'], env['rounds'], env.get('loadavg_1min') or 0,
                                              host_note(env.get('host_gflops')),
                                              _pairs_when(pairs)), '']
    fast = _row(main, 'asymmnet_large_1.0', 'onnxruntime')
    mx_ = _row(main, 'asymmnet_large_1.0', 'mxnet')
    if fast and mx_:
        L.append('* fastest path, `asymmnet_large_1.0` at batch 1: **%.2f ms** (target 8 ms; MXNet %.1f ms) -- %s;'
                 % (_ms(fast, 1), _ms(mx_, 1), _verdict(_ms(fast, 1) <= 8.0)))
    if zoo:
        worst = max(r.get('onnx_max_abs_diff', 0) for r in zoo if r['engine'] == 'onnxruntime')
        L.append('* ONNX export of all %d backbones matches MXNet to %.1e (target 1e-4) -- %s;'
                 % (len({r['model'] for r in zoo}), worst, _verdict(worst <= 1e-4)))
    by_goal = {}
    for label, measured, goal, verdict in _pair_targets([r for r in pairs if r['engine'] == 'onnxruntime']):
        by_goal.setdefault(goal, []).append('%s: %s %s' % (label.split(', onnxruntime')[0], measured.split(' (cpu')[0],
                                                         verdict))
    for goal, items in by_goal.items():
        L.append('* fastest path, goal %s: %s;' % (goal, '; '.join(items)))
    slow = [r for r in pairs if r['engine'] != 'onnxruntime' and not _pair_met(r)]
    if slow:   # the same targets on MXNet's own engines: reported in full on the performance page
        L.append('* the same pairs on MXNet and MXNet + oneDNN (not the deploy path; every row on the performance '
                 'page), missed: %s;' % '; '.join(_pair_item(r, engine=True) for r in slow))
    one = [r for r in (pairs1 or []) if r['a'].startswith('asymmnet') and r['b'].startswith('mobilenetv3')]
    if one:
        L.append('* the same AsymmNet / MobileNetV3 ratios with one thread (phone-like single core; information): %s;'
                 % '; '.join(_pair_item(r) for r in one))
    if tuned:
        n_ok = sum(r['top1_change'] >= -0.5 for r in tuned)
        sp = [t['speedup'] for r in tuned for t in (r.get('latency') or {}).values()]
        L.append('* INT8 (`asymmzoo quantize`, oneDNN, %s accuracy-aware fallback to %.0f dB of output SQNR): '
                 '%d of %d backbones within 0.5 point on the held-out digits (mean change %+.2f, worst %+.2f, lowest agreement %.1f%%) -- %s%s'
                 % ('default' if _is_default_target(tuned[0]['target_sqnr_db']) else 'non-default',
                    tuned[0]['target_sqnr_db'], n_ok, len(tuned), sum(r['top1_change'] for r in tuned) / len(tuned),
                    min(r['top1_change'] for r in tuned), min(r['agreement'] for r in tuned),
                    _verdict(n_ok == len(tuned)),
                    '; speed-up %.2f-%.2fx' % (min(sp), max(sp)) if sp else '') + ';')
    if int8:
        n_ok = sum(r['top1_change'] >= -0.5 for r in int8)
        sp = [t['speedup'] for r in int8 for t in r['latency'].values()]
        L.append('* INT8 with the fixed %.0f dB per-layer threshold only (`--target-sqnr 0`): %d of %d backbones '
                 'within 0.5 point (mean change %+.2f, worst %+.2f)%s.'
                 % (int8[0]['min_sqnr_db'], n_ok, len(int8), sum(r['top1_change'] for r in int8) / len(int8),
                    min(r['top1_change'] for r in int8), '; speed-up %.2f-%.2fx' % (min(sp), max(sp)) if sp else ''))
    return L


def _write_readme(lines):
    with open(README) as f:
        text = f.read()
    if README_BEGIN not in text or README_END not in text:
        log('README.md has no performance markers; not updated')
        return
    head, rest = text.split(README_BEGIN, 1)
    if README_END not in rest:
        log('README.md: the performance end marker comes before the begin marker; not updated')
        return
    tail = rest.split(README_END, 1)[1]
    from asymmzoo.store import atomic_write_text
    atomic_write_text(head + README_BEGIN + '\n' + '\n'.join(lines) + '\n' + README_END + tail, README)
    log('wrote the Performance numbers of %s' % README)


def build_report():
    from asymmzoo.bench import format_table
    main, train, zoo, int8 = _load('main'), _load('train'), _load('zoo'), _load('int8')
    main1, pairs, pairs1, tuned = _load('main1t'), _load('pairs'), _load('pairs1t'), _load('int8tuned')
    os.makedirs(os.path.dirname(DOC), exist_ok=True)
    L = ['# Performance', '',
         'Reproduce with `.venv/bin/python benchmarks/run_all.py` (writes this page and the plot; raw '
         'numbers in `benchmarks/results/*.json`). All timings: median of round-robin repetitions of all '
         'compared models **in one process**, so the figures of one table share the same hours of a loaded '
         'machine (ratios between them still mix the load of different seconds: the ratio targets come '
         'from the paired runs below); absolute numbers depend on the host speed printed under each table. Models have random weights '
         '(latency does not depend on them); ACB / RotateConv models are timed in their deployed form.',
         '',
         '**The fastest deploy path** is ONNX + onnxruntime:',
         '', '```python', 'predict = asymmzoo.utils.export.fastest_predictor(net)   # deploy -> ONNX -> onnxruntime, verified',
         'probs = predict(batch)                                   # numpy NCHW float32 in, numpy out',
         '```', 'or `asymmzoo export NAME --format onnx --params FILE`, then '
         '`asymmzoo.utils.export.OnnxPredictor(path)` on the file: the same static-batch sessions, with '
         'the file\'s reuse-concat rewrites (those of batches below 16) at every batch size, where '
         '`fastest_predictor` re-chooses them per batch size; a plain `onnxruntime.InferenceSession` of '
         'the file runs the dynamic-batch graph, without the static-batch rewrites below (~5% slower).', '']
    targets = []
    if pairs:   # order: two-thread pairs (the targets), two-thread table, one-thread pairs, one-thread table
        targets.append(('(ratio targets: timed in pairs, back to back every round; median of the '
                        'per-round ratios, in square brackets its 95%% interval, in round brackets the '
                        'CPU-time ratio; %d rounds on onnxruntime, %d on MXNet / oneDNN; 2 threads; '
                        'onnxruntime run%s)'
                        % (max(r['rounds'] for r in pairs), min(r['rounds'] for r in pairs), _pairs_when(pairs)),
                        '', '', ''))
        targets += _pair_targets(pairs)
        if main:
            targets += [t for t in _main_targets(main, '2 threads') if t[2] in ('information', '<= 8 ms')]
        if pairs1:
            targets.append(('(the same in pairs with one thread, %d rounds: a phone-like single core, as in '
                            'the paper\'s measurement; the two-thread lines above are the targets)'
                            % max(r['rounds'] for r in pairs1), '', '', ''))
            targets += [(t[0], t[1], 'information (goal %s)' % t[2], t[3].replace('**', ''))
                        for t in _pair_targets(pairs1)]
        if main1:   # ratios from a long list: information beside the paired 2-thread targets
            targets += [(t[0], t[1], t[2] if t[2] == 'information' else
                         'information (list-based; goal %s)' % t[2], '')
                        for t in _main_targets(main1, '1 thread')]
    for tag, rows in (('2 threads', main), ('1 thread', main1)):
        if rows:
            L += ['## Interleaved comparison, %s (batch 1 latency, batch 32 throughput)' % tag, '',
                  format_table(rows, [1, 32]), '']
            if pairs:   # ratios from the long round-robin list: information only
                L += ['Ratios from this table mix the load of different seconds (a model and its partner '
                      'sit up to %d runners apart); the targets use the paired run above.' % (len(rows) - 1), '']
            else:
                targets += _main_targets(rows, tag)
    if zoo:
        worst = max(r.get('onnx_max_abs_diff', 0) for r in zoo if r['engine'] == 'onnxruntime')
        n = len({r['model'] for r in zoo})
        targets.append(('ONNX vs MXNet max abs diff over %d backbones (224x224, batch 1 and 2)' % n,
                        '%.1e' % worst, '<= 1e-4', _verdict(worst <= 1e-4)))
    if tuned:
        worst = min(tuned, key=lambda r: r['top1_change'])
        n_ok = sum(r['top1_change'] >= -0.5 for r in tuned)
        targets.append(('INT8 top-1 change on the held-out digits, `asymmzoo quantize` %s (accuracy-aware '
                        'fallback, output SQNR target %.0f dB), %d AsymmNet / MobileNetV3 backbones (%d within '
                        '0.5 points; worst %s)' % ('default' if _is_default_target(tuned[0]['target_sqnr_db'])
                                                   else '--target-sqnr', tuned[0]['target_sqnr_db'],
                                                   len(tuned), n_ok, worst['model']),
                        '%+.2f points worst, %+.2f mean' % (worst['top1_change'], sum(
                            r['top1_change'] for r in tuned) / len(tuned)),
                        '>= -0.5 points', _verdict(n_ok == len(tuned))))
        for rep in tuned:
            for b, t in sorted(rep['latency'].items()):
                targets.append(('INT8 speed-up (default), %s, batch %s (MXNet oneDNN, 224x224)' % (rep['model'], b),
                                '%.2fx (%.1f -> %.1f ms)' % (t['speedup'], t['fp32_ms'], t['int8_ms']),
                                'reported', ''))
    if int8:
        worst = min(int8, key=lambda r: r['top1_change'])
        n_ok = sum(r['top1_change'] >= -0.5 for r in int8)
        targets.append(('INT8 top-1 change with the fixed %.0f dB threshold only (`--target-sqnr 0`), %d '
                        'backbones (%d within 0.5 points; worst %s)'
                        % (int8[0]['min_sqnr_db'], len(int8), n_ok, worst['model']),
                        '%+.2f points worst, %+.2f mean' % (worst['top1_change'], sum(
                            r['top1_change'] for r in int8) / len(int8)),
                        'information (goal >= -0.5 points)', ''))
        for rep in int8:
            for b, t in sorted(rep['latency'].items()):
                targets.append(('INT8 speed-up with the fixed %.0f dB threshold, %s, batch %s'
                                % (rep['min_sqnr_db'], rep['model'], b),
                                '%.2fx (%.1f -> %.1f ms)' % (t['speedup'], t['fp32_ms'], t['int8_ms']),
                                'reported', ''))
    if targets and not pairs:
        targets.insert(0, ('(each line: wall-clock median; in brackets the CPU-time median, robust to '
                           'the machine\'s load)', '', '', ''))
    if targets:
        L[L.index('**The fastest deploy path** is ONNX + onnxruntime:'):
          L.index('**The fastest deploy path** is ONNX + onnxruntime:')] = \
            ['## Targets (issue 8)', '', '| target | measured | goal | |', '|---|---:|---|---|'] + \
            ['| %s | %s | %s | %s |' % t for t in targets] + ['']
    if zoo:
        L += ['## The zoo at batch 1: MXNet vs onnxruntime (ONNX verified against MXNet)', '',
              '![latency vs MAdds](performance_latency_vs_madds.png)', '',
              'The plot shows the best of the interleaved runs (the machine was shared with other jobs, '
              'which inflates medians unevenly); the table the medians.', '', format_table(zoo, [1]), '']
        _plot(zoo)
    if train:
        L += ['## Training step (train forms, batch 32, forward + backward + SGD) and peak memory', '',
              '| model | train step ms (b32) | peak RSS MiB, deployed b32, MXNet | peak RSS MiB, deployed b32, onnxruntime |',
              '|---|---:|---:|---:|']
        for r in train:
            mem = r.get('peak_rss_mb') or {}
            t = r.get('train_step')
            L.append('| %s | %s | %s | %s |' % (
                r['model'], '%.0f' % t['median_ms'] if t else '',
                '%.0f' % mem['mxnet']['peak'] if mem.get('mxnet') else 'n/a',
                '%.0f' % mem['onnxruntime']['peak'] if mem.get('onnxruntime') else 'n/a'))
        env = train[0].get('env', {})
        L += ['', 'Measured %s UTC (1-min load average %.1f: the train-step times are inflated by the '
              'other jobs on the machine then; compare the rows, not the absolute values).'
              % (env.get('time_utc'), env.get('loadavg_1min') or 0.0)]
        L += ['', 'Peak RSS: a fresh process per model (Linux VmHWM reset after the imports, which '
              'take ~%.0f MiB), building the model and running batch 1 and 32.'
              % next((m['after_import'] for r in train for m in (r.get('peak_rss_mb') or {}).values()
                      if m), 0), '']
    if int8:
        L += ['## INT8 (MXNet oneDNN quantization, calibrated on the embedded digits)', '',
              '`asymmzoo quantize` uses the accuracy-aware fallback by default (next section); this table '
              'shows the fixed threshold alone (`--target-sqnr 0`), the measurement it starts from.', '',
              'Each of the %d models is trained for %s epochs on the embedded '
              'real digits (32x32, 3 channels), deployed, ' % (len(int8), int8[0].get('epochs', '?')),
              'quantized (channel-wise weights) with naive min/max calibration on 500 training digits, '
              'with `elemwise_mul` / `broadcast_mul` (MXNet 1.9.1\'s quantized multiply fails on h-swish / '
              'SE) and the stem conv and classifier kept in fp32, '
              + ('as are the layers whose INT8 signal-to-noise ratio on the calibration digits '
                 '(`asymmzoo.utils.quantize.layer_sqnr`) is below %.0f dB (column "SQNR fallback"; in '
                 'brackets the lowest measured SQNR), ' % int8[0]['min_sqnr_db']
                 if int8[0].get('min_sqnr_db') is not None else '')
              + ('and the concats / poolings next to an fp32 neighbour (`boundary_data_ops`: '
                 'quantized, they would only add a rounding; "+N ops" in that column), '
                 if any('fp32_boundary_ops' in r for r in int8) else '')
              + 'and evaluated on the 1000 held-out digits. Latency at 224x224, interleaved.', '',
              '| model | fp32 top-1 | int8 top-1 | change | agreement | SQNR fallback | b1 fp32 / int8 ms '
              '| b32 fp32 / int8 ms |',
              '|---|---:|---:|---:|---:|---:|---:|---:|']
        for rep in int8:
            lat = rep['latency']
            cell = lambda b: ('%.1f / %.1f (%.2fx)' % (lat[b]['fp32_ms'], lat[b]['int8_ms'],
                                                     lat[b]['speedup'])) if b in lat else ''
            low = rep.get('low_sqnr_layers')
            fallback = '' if low is None else '%d layer%s' % (len(low), '' if len(low) == 1 else 's') + (
                ' (%.1f dB)' % min(r['sqnr_db'] for r in low) if low else '')
            if rep.get('fp32_boundary_ops'):
                fallback += ' +%d ops' % len(rep['fp32_boundary_ops'])
            L.append('| %s | %.2f%% | %.2f%% | %+.2f | %.1f%% | %s | %s | %s |' % (
                rep['model'], rep['fp32_top1'], rep['int8_top1'], rep['top1_change'],
                rep['agreement'], fallback, cell('1'), cell('32')))
        L.append('')
        bad = [r for r in int8 if r['top1_change'] < -0.5]
        if bad:
            z = [-r['top1_change'] / (100 * ((1 - r['agreement'] / 100) / r['val_images']) ** 0.5)
                 for r in bad]
            L += ['Beyond 0.5 points: %s. ' % ', '.join('%s (%+.1f, agreement %.1f%%)' % (
                r['model'], r['top1_change'], r['agreement']) for r in bad) +
                'With %d held-out digits one image is %.1f point. When an INT8 model disagrees with its '
                'fp32 original on a fraction d of the images, the accuracy change it shows has a spread '
                'of about sqrt(d/%d) -- %.2f point at 98.5%% agreement. These misses lie %.1f-%.1f such '
                'spreads out: partly chance (the best model here gains %+.1f), partly a real small loss '
                '(mean change %+.2f over the %d). Passing 0.5 point on every one of %d models with '
                'confidence takes ~99.5%% agreement everywhere: the accuracy-aware fallback below.'
                % (bad[0]['val_images'], 100.0 / bad[0]['val_images'], bad[0]['val_images'],
                   100 * (0.015 / bad[0]['val_images']) ** 0.5, min(z), max(z),
                   max(r['top1_change'] for r in int8), sum(r['top1_change'] for r in int8) / len(int8),
                   len(int8), len(int8)),
                '', INT8_NOTES, '']
        if tuned:
            base = {r['model']: r for r in int8}

            def speed(r):
                lat = r.get('latency') or {}
                return ' / '.join('%.2fx' % lat[b]['speedup'] for b in ('1', '32') if b in lat) or 'n/a'
            t0 = tuned[0]
            steps = [x['min_sqnr_db'] for x in max((r['tuning'] for r in tuned), key=len)]
            L += ['### Accuracy-aware fallback%s (`asymmzoo quantize --target-sqnr %.0f`)'
                  % (': the default' if _is_default_target(t0['target_sqnr_db']) else '', t0['target_sqnr_db']),
                  '', 'The per-layer threshold rises %.0f dB at a time from %.0f dB until the INT8 logits reach '
                  '%.0f dB of SQNR against fp32 on training digits apart from the calibration ones '
                  '(`tune_examples`; never on the validation digits), for all %d backbones: %d within 0.5 '
                  'point, mean change %+.2f, lowest agreement %.1f%%. The "output SQNR" columns are measured '
                  'on the validation digits; the target is met on the tuning digits (column "tuned: '
                  'threshold / tuning SQNR"). The speed-ups of the two runs each have their own fp32 '
                  'baseline, timed minutes apart on a shared machine: compare within a run.' % (
                      steps[1] - steps[0] if len(steps) > 1 else 0, t0['min_sqnr_start_db'],
                      t0['target_sqnr_db'], len(tuned), sum(r['top1_change'] >= -0.5 for r in tuned),
                      sum(r['top1_change'] for r in tuned) / len(tuned), min(r['agreement'] for r in tuned)), '',
                  '| model | fixed %.0f dB: change / agreement / fp32 layers / output SQNR (val) | tuned: '
                  'threshold / tuning SQNR | tuned: change / agreement / fp32 layers / output SQNR (val) | '
                  'speed-up b1 / b32: fixed -> tuned |' % t0['min_sqnr_start_db'],
                  '|---|---|---:|---|---|']
            for r in tuned:
                b = base.get(r['model'], {})
                L.append('| %s | %s | %.0f dB / %.1f dB | %+.2f / %.1f%% / %d / %.1f dB | %s |' % (
                    r['model'],
                    '%+.2f / %.1f%% / %d / %s' % (b['top1_change'], b['agreement'], len(b['low_sqnr_layers']),
                                                  '%.1f dB' % b['output_sqnr_db'] if 'output_sqnr_db' in b
                                                  else 'n/a') if b else '',
                    r['tuning'][-1]['min_sqnr_db'], r['tuning'][-1]['output_sqnr_db'], r['top1_change'], r['agreement'],
                    len(r['low_sqnr_layers']), r['output_sqnr_db'],
                    ('%s -> %s' % (speed(b), speed(r))) if r['latency'] else ''))
            L.append('')
        alt = _load('int8_all_layers')
        if alt:
            L += ['An earlier run with the stem conv and classifier quantized too (`--quantize-first-last`; '
                  'separately trained weights, %s; kept in `benchmarks/results/int8_all_layers.json`, '
                  'which no part of `run_all.py` re-makes): ' % alt[0].get('weights', 'weights of their own') + '; '.join(
                      '%s %+.2f points (%.2f%% -> %.2f%%)' % (r['model'], r['top1_change'], r['fp32_top1'],
                                                              r['int8_top1']) for r in alt) + '.',
                  'With 1000 validation digits one image is 0.1 point, and a few epochs of training leave '
                  'many predictions near a decision boundary: the change varies by a few tenths between '
                  'training runs.', '']
    L += ['## Where the time goes', '', WHERE_TIME_GOES, '']
    L += _ops_section(_load('ops'))
    from asymmzoo.store import atomic_write_text
    atomic_write_text('\n'.join(L), DOC)
    log('wrote %s' % DOC)
    if main:
        _write_readme(_readme_section(main, pairs or [], zoo, int8, tuned, pairs1))


INT8_NOTES = """\

Why MobileNetV3-L broke (-7.5 / -7.6 points at x0.5 / x1.0 with every conv quantized; agreement 89-90%),
measured with `layer_sqnr`: at 32x32 input the last stages see 1x1 and 2x2 maps, and their depthwise convs
have BatchNorm gains up to ~300 -- an input channel almost constant over the data, whose small variation
the BatchNorm scales back up. With one activation scale per tensor the rounding wipes that variation out:
block 13's depthwise conv of x1.0 has an SQNR of 12.6 dB from its input rounding (61.5 dB from its weights).
The second source is MXNet's requantization: every quantized conv's output (after the BatchNorm, ReLU or
residual sum fused into it) is rounded to int8 over its calibrated range, and dequantized again for h-swish
(MXNet 1.9.1's quantized conv has no float output). On x1.0, simulating only the input and weight rounding
costs 1.5 points (97.2% agreement), adding the output rounding 3.9 (93.8%); MXNet measures 7.6 (89.3%).
The head conv (960 -> 1280 on the pooled features) and the SE convs lose most to the output rounding.

`layer_sqnr` models all three roundings; the layers under 24 dB stay in fp32. The threshold was chosen on
2000 held-out training images (not the validation digits) of the 8 models that had missed: x1.0 lost
2.1 / 1.1 / 0.9 / 0.2 points there at 18 / 20 / 22 / 24 dB, x0.5 2.1 / 0.8 / 0.3 / 0.1. An earlier version
that modelled only the input and weight rounding picked the wrong layers (x1.0: -13.7 at 20 dB, -3.8 at
25 dB). In the run that introduced it (before the tables above, with other trained weights), the
fallback took the mean change over the 30 backbones from -0.72 to -0.12 points and the lowest agreement
from 89.3% to 97.7%; the tables above give today's figures. It costs speed where many layers stay in
fp32 (MobileNetV3-L x0.5: 40 of 64, x1.0: 27); in that run AsymmNet-L x1.0's batch-1 speed-up went from
1.82x (no fallback) to 1.50x. `--min-sqnr` trades
the two. Per-channel activation scales or quantization-aware fine-tuning would do better; MXNet 1.9.1's
quantizer has neither.

MXNet also quantizes every concat, pooling and flatten it can, whatever its neighbours: next to an fp32
layer (or h-swish's fp32 multiply) that only adds a quantize / dequantize and a rounding, and a quantized
concat rescales all its inputs to the widest one's range -- AsymmNet's reused features, narrow next to a
wide expansion, lose their low bits. `boundary_data_ops` keeps those in fp32 (an op stays int8 only when
all its producers and consumers do): over the 30 backbones the fp32 / INT8 disagreements fell from 386 to
324 images of 30,000 and the lowest agreement rose from 97.7% to 98.1%; with every conv in fp32 the pruned
AsymmNets had still lost 0.4-0.7 points to those ops alone."""


def _ops_section(ops):
    """The per-operator profile tables and, per (batch, threads), what AsymmNet adds over MobileNetV3."""
    if not ops:
        return []
    from asymmzoo.bench import format_op_profile
    L = ['### Per-operator profile of the fastest path', '',
         'onnxruntime\'s profiler, deployed models, static-batch sessions as `fastest_predictor` runs them '
         '(`asymmzoo bench NAMES --op-profile`; run part `ops`, %s UTC, with the reuse-concat rule of the '
         'other runs but before the host probe existed). Each cell: nodes x summed median '
         'kernel time in µs. *Between kernels* is the rest of a run: dispatch, thread-pool '
         'synchronisation, memory planning and the profiler\'s own bookkeeping for each node (unprofiled, '
         'onnxruntime dispatches a node in ~0.3 µs). Profiling slows every run a little: compare within a '
         'table.'
         % ops[0]['time_utc'], '', format_op_profile(ops), '']
    by = {(r['model'], r['batch'], r['threads']): r for r in ops}
    for fam in ('large', 'small'):
        for (m, b, t), a in sorted(by.items(), key=lambda kv: (kv[0][1], kv[0][2] or 0)):
            ref = by.get(('mobilenetv3_%s_1.0' % fam, b, t))
            if m != 'asymmnet_%s_1.0' % fam or ref is None:
                continue
            extra = {op: a['ops'].get(op, {'us': 0})['us'] - ref['ops'].get(op, {'us': 0})['us']
                     for op in set(a['ops']) | set(ref['ops'])}
            big = sorted(extra.items(), key=lambda kv: (-abs(kv[1]), kv[0]))[:3]  # ties: by name
            L.append('* %s over %s, batch %d, %s: %+.0f µs per run (%.2fx as profiled; %d vs %d '
                     'nodes): %s, between kernels %+.0f.'
                     % (m, ref['model'], b, 'all cores' if not t else '%d thread%s' % (t, 's' * (t > 1)),
                        a['run_us'] - ref['run_us'],
                        a['run_us'] / ref['run_us'], a['nodes'], ref['nodes'],
                        ', '.join('%s %+.0f' % kv for kv in big), a['between_us'] - ref['between_us']))
    L.append('')
    return L


WHERE_TIME_GOES = """\
Profiled at batch 1, 224x224 (MXNet profiler with bulk execution off; onnxruntime's profiler):

* **MXNet executes op by op.** AsymmNet-L is ~280 operators; h-swish alone is four (`_plus_scalar`,
  `clip`, `_div_scalar`, `elemwise_mul`) x 29 and took ~30% of MXNet's time, BatchNorm another ~6-15%,
  the 14 `Concat`s of reused features ~30% (MXNet's concat reorders oneDNN's blocked layouts back to
  plain NCHW), convolutions only ~22-34%. `optimize_for(backend='MKLDNN')` fuses conv+BN(+ReLU) but
  not h-swish or the concat. The arithmetic (217M MAdds, the same for AsymmNet-L and MobileNetV3-L)
  would take under 2 ms at this box's peak.
* **onnxruntime** folds BN into the convolutions, fuses the activations into the conv kernels (after our
  exporter rewrites the four-op h-swish / h-sigmoid into ONNX `HardSwish` / `HardSigmoid` -- the same
  function, verified to ~1e-7), and runs in a blocked (NCHWc) layout: the optimized graph is only
  convolutions, the concats, the SE pooling / scaling and the residual adds. What was left of AsymmNet's
  extra cost over MobileNetV3 (equal MAdds) was the feature-reuse concat (~12% of onnxruntime's kernel time:
  a full copy of an (E + C)-channel map at the block's input resolution, E the expansion width of the
  layout table and C the block's input channels) and the wider depthwise convs.
* **Reuse-concat rewrites.** A depthwise conv, its BN and activation work channel by channel, so the
  concat can move after them (*late concat*: it then copies the depthwise outputs, 4x smaller in a strided
  block); and a 1x1 projection of a concatenation is the sum of the projections of its parts (*split*: no
  copy; onnxruntime fuses each partial projection with the running sum). Per-operator profiles (onnxruntime,
  2 threads, minimum per node over 60-80 calls) showed: the concat is AsymmNet-L's whole extra cost at
  batch 32 (12.7 ms of 151 ms with late concats; without it the two nets are within 1%: AsymmNet's 1x1
  convs are 5% cheaper, its wider depthwise convs 15% dearer); splitting an SE block costs more than it
  saves, because onnxruntime scales each part outside its blocked layout (two reorders per part).
  Hence the first `reuse_concat_policy`: late concat in strided blocks, split in stride-1 blocks without
  SE, concat kept in stride-1 SE blocks. In paired runs (40 alternating rounds, 2 threads, batch 1) it took
  asymmnet_large_1.0 / mobilenetv3_large_1.0 from 1.16-1.17x (the previous split-everything-but-small-SE
  rule) and 1.18-1.19x (no rewrite) to 1.09-1.10x -- measured then with a symbolic batch size; the
  static-shape sessions below made both nets faster and the paired ratio is now the one in the targets.
* **Static shapes.** With a symbolic batch size onnxruntime's NCHWc transformer cannot prove that the
  operands of the SE scaling `Mul(X, s)` (s broadcast over X's H x W) and of the residual sums have equal
  shapes: it reorders X to plain NCHW and back around every SE scaling (16 full-map reorders in
  MobileNetV3-L and AsymmNet-L alike) and runs the residual adds unfused. The predictor therefore runs
  one session per batch size with the batch fixed (like MXNet's `static_shape`), and the SE scale goes
  through a nearest `Resize` to H x W first (the same numbers), which onnxruntime runs as its blocked
  `Upsample`: the whole network then stays in the blocked layout, one reorder in, one out, ~5% faster for
  both families. The static graph also changed which concat rewrite wins, and the answer depends on the
  batch (per-node kernel time, asymmnet_large_1.0, 2 threads): at batch 1 the per-block rule above
  (5.6 ms; splitting everything: 6.3 ms, more nodes), at 4 and 8 all rules within 1%, at 16 splitting
  everything (61 vs 65 ms) and at 32 too (131 vs 144 ms; MobileNetV3-L 124 ms): the copies then cost more
  than the extra partial convs, and with the SE scaling blocked, splitting an SE block no longer costs
  reorders. `reuse_concat_policy` splits every reuse concat from batch 16 on; the static sessions are built
  from the graph before the rewrites so that each batch size gets its own.
* **Per-block choice, static shapes.** Below batch 16 the rewrite was then chosen again block by block:
  asymmnet_large_1.0 with every concat moved, every concat split and every concat kept, profiled
  interleaved (2 threads, batch 1, 25th percentile of 150 calls per node, summed per block). Strided blocks
  are cheapest moved (late), SE blocks kept, and now the stride-1 blocks without SE too: kept, the
  projection is one conv that onnxruntime fuses with the residual sum, where split it is three partial
  convs and a separate `Add` (14x14 blocks: 198-213 us in 4 nodes kept vs 221-235 us in 8 split; the
  56x56 block 433 vs 438 us, 4 vs 8 nodes). So `reuse_concat_policy` is now: late in strided blocks, keep
  in stride-1 blocks, split everything from batch 16. In paired runs (2 threads, 60-100 alternating
  rounds, a busy hour of this box) it took asymmnet_large_1.0 / mobilenetv3_large_1.0 at batch 1 from
  1.17-1.20x to 1.13x and asymmnet_small_1.0 / mobilenetv3_small_1.0 from 1.27-1.31x to 1.14-1.15x
  (paired medians; the 10th percentiles 1.13-1.27x -> 1.11x and 1.17-1.19x -> 1.09-1.12x); at batch 4
  1.11x -> 1.09x (L), at batch 8 1.13x -> 1.04x (S) and 1.10x either way (L); with the symbolic batch
  1.13x -> 1.11x (L) and 1.20x -> 1.04x (S); with one thread both rules are equal (1.07-1.09x).
  The paired run of the targets was made four times with this rule, AsymmNet over MobileNetV3 at
  batch 1 with two threads: 1.119x [1.097-1.137] (L) and 1.133x [1.031-1.189] (S) at 00:13 UTC on
  2026-11-23 (host not yet probed); 1.111x [1.091-1.143] and 1.168x [1.125-1.236] at 02:36 (host
  155-168 GFLOP/s); 1.148x [1.096-1.168] and 1.133x [1.088-1.159] at 04:02 (30 rounds, host 145-181;
  its file is `benchmarks/results/history/pairs_2026-11-23T0402_30rounds.json`; that hour's
  equal-graph pairs show its noise: the deployed asymmnet_small_1.0_acb over its base, the same graph,
  came out 1.032x); and 1.128x [1.111-1.149] and 1.139x [1.102-1.163] at 04:33
  (40 rounds, host 178: the targets above). AsymmNet stays 1-5% (L) and 3-7% (S) above the goal
  there; at batch 32 all four runs met it (1.045-1.076x), and with one thread the batch-1 ratios are
  1.089x [1.086-1.097] (L) and 1.103x [1.067-1.129] (S) (04:10 UTC). The latency tables of parts
  main / main1t / zoo were re-measured with this rule at 04:10-04:21 UTC, with the host at 144-179
  GFLOP/s against ~240 idle (each table prints its probe). Against the run of 2026-11-22 11:50-12:05
  UTC (no host probe) the two-thread table came out ~10% slower (the median per engine and batch size
  1.06-1.15x; asymmnet_large_1.0 on the fastest path at batch 1: 4.87 against 4.65 ms), the
  one-thread table 0-3% and the zoo 2-5%. A run at midnight, with
  the host at 100-140 GFLOP/s, had come out 1.4-1.8x slower, MXNet and MobileNetV3 alike, and was
  not kept.
* **What remains** of AsymmNet's extra time is in its mathematics: equal MAdds, but the depthwise convs,
  the SE convs and the projection see E + C channels instead of E (+17% to +43% per block; in the
  batch-32 profile the depthwise convs took ~15% longer), which the narrower expansion (E - C
  channels; its 1x1 convs ~5% shorter) does not fully pay back; and the copy of the reused features
  itself. The extra nodes and the `Concat` kernel are not slow: onnxruntime dispatches a node in
  ~0.3 us (a chain of 101 `Relu`s on 8 values ran in 40 us and a single `Relu` in 8 us, with one or
  two threads alike; a node that small never reaches the second thread, so this does not measure
  thread synchronisation), and its concat runs at memory speed -- alone in a session, `[24|48|24]x56x56` (1.2 MB out) took 54 us on one thread
  and 49 on two, `[40|80|40]x28x28` 31 / 31 us and `[112|560|112]x14x14` 35 / 32 us, of which ~8 us
  is the session's own run overhead (numpy's one-thread `concatenate`: 20-24 us for the two smaller).
  Two threads do not shorten a copy (in the profile below the concats even took longer with two
  threads: 519 vs 437 us for AsymmNet-L, 233 vs 181 us for AsymmNet-S at batch 1), while the
  convolutions take a fifth to a third less at batch 1 and about a third less at batch 32: the
  share of the copies grows with the thread count.
  Also tried and dropped (paired against the current path, 2 threads, batch 1): onnxruntime 1.32.0
  (the same ratio, 1.14x either version that hour); OpenVINO 2026.4 again, this time with the latency
  hint, one stream, 2 threads and a reused infer request (it concatenates in place): 1.20x (MobileNetV3-L)
  and 1.30x (AsymmNet-L) slower than onnxruntime, and a worse ratio for L (1.18x; for S about the same, 1.14x); moving the
  concat only in the strided blocks with large outputs (>= 14, 28 or 56 pixels): within 1% of the
  current rule for L (keeping every concat: 2% slower); the S runs of that hour were too noisy to rank
  the variants.
  Two more rewrites were timed and dropped: splitting the strided blocks without SE instead of moving
  their concat (no gain, 1.18-1.21x against 1.17x in one paired run) and starting a split block's running
  sum with its residual, so that onnxruntime fuses that Add too (the separate `Add`s of the profile below
  disappear, but the convs that then take the residual as their sum input get slower by as much: 0.97-1.03x
  of the current rewrite at batch 1 and 32, one and two threads, in paired runs). The first OpenVINO
  trial, before that one: OpenVINO 2026.4's CPU plugin ran the same static files, interleaved with
  onnxruntime, 55-60% slower for both networks on this box (8.4 vs 5.4 ms for AsymmNet-L at batch 1);
  it is not a dependency. onnxruntime's own knobs, paired on asymmnet_large_1.0 / mobilenetv3_large_1.0
  at batch 1 in one run (2026-11-23 03:52 UTC, host ~176 GFLOP/s): default 1.115x (4.90 / 4.38 ms);
  parallel execution mode with two inter-op threads and one intra-op thread, so the split parts could
  run side by side, 1.066x but both networks ~1.7x slower (8.0 / 7.5 ms); worker spinning off 1.122x
  and both ~14% slower; `session.dynamic_block_base=4` 1.105x, by slowing MobileNetV3 (4.45 ms) more
  than AsymmNet (4.94 ms). None is kept. The paper measured 1.16x on a phone, with MNN on one core;
  MNN 3.6.1 (`pip install MNN`; its `mnnconvert` reads the same static ONNX files) ran here,
  interleaved with onnxruntime (2 threads, batch 1, 12 rounds, 2026-11-23 09:10 UTC, host busy:
  115-150 GFLOP/s; outputs within 2e-7 of onnxruntime's), 35-40% slower than onnxruntime for both
  networks (AsymmNet-L 9.22 ms, MobileNetV3-L 8.12 ms; onnxruntime 6.69 / 6.11 ms) and with no better
  ratio: 1.134x (1.126x on our rewritten export) against onnxruntime's 1.112x in the same run. It is
  not a dependency.
* **Measuring on this box.** The 2 vCPUs are shared: medians of the same graph vary by 20-50% between
  minutes. onnxruntime's and OpenMP's worker threads spin for a while after each call and steal a core from
  whatever runs next in the same process, so the benchmark idles 50 ms before each model's timed calls
  (`settle`), alternates the order every round, and the ratio targets come from pairs timed back to
  back (`asymmzoo bench --paired`, `paired_ratios`: median of the per-round ratios with a 95% interval),
  not from long lists, where a model and its partner run seconds apart (in a list the two ends also run
  twice in a row at each round boundary and get warm caches). A deployed `_acb` model and its base are the
  same graph: in a 40-runner list their ratio came out anywhere between 0.75x and 1.16x. The load
  that matters most comes from the other guests of the host and does not show in this machine's load
  average, so every benchmark also probes the float32 rate of a 1024x1024 matrix product before and after
  its rounds (`host_gflops`, on all cores whatever the benchmark's thread count; ~240 GFLOP/s idle here,
  100-150 when the host is busy) and prints it under its table: figures measured at 130 GFLOP/s are not
  comparable with figures measured at 240. AsymmNet's ratio at batch 1 with two
  threads also moves between hours (paired runs: 1.11-1.15x for L, 1.13-1.17x for S), with no clear
  relation to the probe in these runs (the 04:33 UTC run, host 178 GFLOP/s, gave L 1.128x; the 02:36
  one, host 155-168, 1.111x); with one thread the paired ratios are steadier (1.09x (L) and 1.10x (S),
  intervals 1.086-1.097x and 1.067-1.129x).
* Hence the deploy path: `asymmzoo.deploy` (ACB / RotateConv -> plain convs) -> ONNX (weights moved out of
  the graph inputs so onnxruntime can constant-fold them; h-swish fused; reuse concats rewritten) ->
  onnxruntime with one static-batch session per batch size (SE scaling blocked, rewrites chosen for the
  batch), wrapped by `asymmzoo.utils.export.fastest_predictor`. The model mathematics are unchanged (every export is checked
  against MXNet on random inputs)."""


def _plot(zoo):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    from asymmzoo.store import atomic_savefig
    fig, ax = plt.subplots(figsize=(7.5, 5))
    style = {'asymmnet': 'o', 'mobilenetv3': 's'}
    colors = {'mxnet': 'tab:blue', 'onnxruntime': 'tab:red'}
    for eng in ('mxnet', 'onnxruntime'):
        for fam in ('asymmnet', 'mobilenetv3'):
            for pruned in (False, True):
                pts = [(r['madds'] / 1e6, r['batch']['1']['min_ms']) for r in zoo if r['engine'] == eng
                       and r['model'].startswith(fam) and r['model'].endswith('_pruned') == pruned]
                if not pts:
                    continue
                xs, ys = zip(*sorted(pts))
                ax.plot(xs, ys, marker=style[fam], linestyle='-' if not pruned else ':',
                        color=colors[eng], fillstyle='full' if fam == 'asymmnet' else 'none',
                        label='%s%s (%s)' % (fam, ' pruned' if pruned else '', eng))
    ax.set_xlabel('MAdds (M), 224x224')
    ax.set_ylabel('batch-1 latency (ms, best of %d interleaved runs)' % zoo[0]['batch']['1']['n'])
    from matplotlib.ticker import ScalarFormatter
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_formatter(ScalarFormatter())
        axis.set_minor_formatter(ScalarFormatter())
    ax.tick_params(axis='both', which='minor', labelsize=7)
    ax.set_xscale('log')
    ax.set_yscale('log')
    ax.grid(True, which='both', alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title('asymmzoo on %d CPU cores: latency vs MAdds' % (os.cpu_count() or 0))
    fig.tight_layout()
    atomic_savefig(fig, PLOT, dpi=110)
    log('wrote %s' % PLOT)


def _without_parts(argv):
    """``argv`` without ``--parts`` and its values."""
    out, skipping = [], False
    for a in argv:
        if a == '--parts' or a.startswith('--parts='):
            skipping = a == '--parts'
            continue
        if skipping and not a.startswith('-'):
            continue
        skipping = False
        out.append(a)
    return out


def main(argv=None):
    # no abbreviations: _without_parts must see every --parts to drop it from the children's argv
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0].replace('\n', ' '),
                                allow_abbrev=False)
    p.add_argument('--parts', nargs='+', default=list(PARTS), choices=list(PARTS))
    p.add_argument('--rounds', type=int, default=10)
    p.add_argument('--pair-rounds', type=int, default=40,
                   help='pairs part: rounds on onnxruntime (half as many on MXNet / oneDNN)')
    p.add_argument('--pair-engines', nargs='+', default=['onnxruntime', 'onednn', 'mxnet'],
                   choices=['onnxruntime', 'onednn', 'mxnet'], help='pairs part: the engines')
    p.add_argument('--threads', type=int, default=None, help='onnxruntime intra-op threads')
    p.add_argument('--int8-epochs', type=int, default=6)
    p.add_argument('--int8-models', nargs='+', default=None,
                   help='int8 part: fnmatch patterns (default: every AsymmNet / MobileNetV3 backbone)')
    p.add_argument('--int8-cache', default=None, help='int8 part: folder caching the digit-trained '
                   'weights (default: <tmp>/asymmzoo-int8-weights)')
    from asymmzoo.quantize import DEFAULT_TARGET_SQNR
    p.add_argument('--int8-target-sqnr', type=float, default=DEFAULT_TARGET_SQNR,
                   help='int8tuned part: the output SQNR target of the accuracy-aware fallback')
    p.add_argument('--int8-no-bench', action='store_true', help='int8 part: accuracy only')
    p.add_argument('--quick', action='store_true', help='zoo part: widths 0.5 and 1.0 only')
    p.add_argument('--report-only', action='store_true')
    p.add_argument('--no-report', action='store_true', help=argparse.SUPPRESS)
    p.add_argument('--save-as', default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.save_as and len(args.parts) > 1:
        p.error('--save-as names the results of one part; got --parts %s' % ' '.join(args.parts))
    if not args.report_only and len(args.parts) > 1:
        # one fresh process per part: MXNet keeps the memory of every model a part builds (all parts in
        # one process grew past 17 GB and were OOM-killed)
        import subprocess
        rest = _without_parts(sys.argv[1:] if argv is None else list(argv))
        for part in args.parts:
            subprocess.check_call([sys.executable, os.path.abspath(__file__), '--parts', part,
                                   '--no-report'] + rest)
    elif not args.report_only:
        for part in args.parts:
            log('part %s' % part)
            t0 = time.time()
            _save(args.save_as or part, PARTS[part](args))
            log('part %s done in %.0f s' % (part, time.time() - t0))
    if not args.no_report:
        build_report()
    return 0


if __name__ == '__main__':
    sys.exit(main())
