"""Measure: run the benchmark parts and save their results as JSON (``benchmarks/results/<part>.json``).

    .venv/bin/python benchmarks/measure.py                       # all parts (~1.5 h on 2 idle cores)
    .venv/bin/python benchmarks/measure.py --parts zoo int8      # some parts

This module only measures; ``benchmarks/report.py`` turns the saved JSON into
docs/performance-measured.md and the plot, and ``benchmarks/run_all.py`` runs both. Each part runs in
a fresh process (bounded memory). What the parts measure, and how, is in docs/performance.md
("Reproducing the measured page").

Parts (each saves benchmarks/results/<part>.json):
  main   one interleaved run (deployed forms) of AsymmNet-L/S 1.0, our MobileNetV3-L/S 1.0, GluonCV's
         MobileNetV3-L/S, asymmnet_{large,small}_1.0_acb (deployed) and a RotateConv model with its
         base, on MXNet, MXNet+oneDNN fusion, onnxruntime on the plain export and onnxruntime on our
         rewritten export (the fastest path), batch 1 and 32
  main1t the same with one thread (OMP_NUM_THREADS=1, onnxruntime 1 intra-op thread), in a subprocess
  train  training-step time (train forms: ACB / RotateConv branches included) and peak memory
  pairs  the ratio targets, measured in pairs (each pair back to back every round, median of the
         per-round ratios with a 95% interval) on MXNet, MXNet+oneDNN and the fastest path
  pairs1t  the same on the fastest path with one thread (phone-like single core)
  ops    onnxruntime's per-operator profile of the fastest path (AsymmNet-L/S and MobileNetV3-L/S 1.0,
         batch 1 and 32, all cores and one thread)
  zoo    every AsymmNet / MobileNetV3 backbone (all widths, pruned too) at batch 1, MXNet vs onnxruntime,
         each ONNX export verified to 1e-4 at 224x224
  int8   oneDNN INT8 of every AsymmNet / MobileNetV3 backbone (30), each trained briefly on the
         embedded digits (weights cached), with the fixed 24 dB per-layer threshold only
         (--target-sqnr 0); INT8 latency for the four x1.0 models
  int8tuned  the same 30 as asymmzoo quantize does by default: the accuracy-aware fallback
         (--int8-target-sqnr, default 25 dB)
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

MAIN = ['asymmnet_large_1.0', 'mobilenetv3_large_1.0', 'gluoncv:mobilenetv3_large',
        'asymmnet_large_1.0_acb', 'asymmnet_small_1.0', 'mobilenetv3_small_1.0',
        'gluoncv:mobilenetv3_small', 'asymmnet_small_1.0_acb', 'cifar_resnet20_v1',
        'cifar_resnet20_v1_rot4']
if os.environ.get('RUN_ALL_MAIN'):  # smoke runs: RUN_ALL_MAIN="name1,name2"
    MAIN = os.environ['RUN_ALL_MAIN'].split(',')
TRAIN = ['asymmnet_large_1.0', 'mobilenetv3_large_1.0', 'asymmnet_large_1.0_acb']
INT8 = ['asymmnet_large_1.0', 'mobilenetv3_large_1.0', 'asymmnet_small_1.0', 'mobilenetv3_small_1.0']


def log(msg):
    print('[measure %s] %s' % (time.strftime('%H:%M:%S'), msg), file=sys.stderr, flush=True)


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
    from asymmzoo.io import atomic_write_json
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
    """Every ratio target timed in pairs (:func:`asymmzoo.bench.paired_ratios`)."""
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
                           '--save-as', 'pairs1t'], env=env)
    return _load('pairs1t')


def part_main1t(args):
    """The main comparison with one thread (MXNet's OMP_NUM_THREADS needs a fresh process)."""
    import subprocess
    env = dict(os.environ, OMP_NUM_THREADS='1', MXNET_CPU_WORKER_NTHREADS='1')
    subprocess.check_call([sys.executable, os.path.abspath(__file__), '--parts', 'main', '--threads',
                           '1', '--rounds', str(args.rounds), '--save-as', 'main1t'], env=env)
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
    MobileNetV3-L/S 1.0 (:func:`asymmzoo.bench.op_profile`), batch 1 and 32, with all cores
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


def add_arguments(p):
    """The measuring flags (``benchmarks/run_all.py`` takes the same ones)."""
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
    p.add_argument('--save-as', default=None, help=argparse.SUPPRESS)
    return p


def parser(description=None):
    # no abbreviations: _without_parts must see every --parts to drop it from the children's argv
    return add_arguments(argparse.ArgumentParser(
        description=description or __doc__.split('\n\n')[0].replace('\n', ' '), allow_abbrev=False))


def run(args, argv):
    """Measure ``args.parts``: several parts run one fresh process each (this script with the same
    ``argv`` and one ``--parts``); a single part runs here and saves its JSON."""
    if args.save_as and len(args.parts) > 1:
        raise SystemExit('--save-as names the results of one part; got --parts %s' % ' '.join(args.parts))
    if len(args.parts) > 1:
        # one fresh process per part: MXNet keeps the memory of every model a part builds (all parts in
        # one process grew past 17 GB and were OOM-killed)
        import subprocess
        rest = _without_parts(list(argv))
        for part in args.parts:
            subprocess.check_call([sys.executable, os.path.abspath(__file__), '--parts', part] + rest)
        return
    for part in args.parts:
        log('part %s' % part)
        t0 = time.time()
        _save(args.save_as or part, PARTS[part](args))
        log('part %s done in %.0f s' % (part, time.time() - t0))


def check_args(p, args):
    """Refuse, through the parser ``p``, measuring flags that contradict each other."""
    if args.save_as and len(args.parts) > 1:
        p.error('--save-as names the results of one part; got --parts %s' % ' '.join(args.parts))


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    p = parser()
    args = p.parse_args(argv)
    check_args(p, args)
    run(args, argv)
    return 0


if __name__ == '__main__':
    sys.exit(main())
