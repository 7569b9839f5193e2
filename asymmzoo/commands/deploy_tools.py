"""`asymmzoo bench`, `asymmzoo export`, `asymmzoo quantize`."""
import math
import os
import subprocess
import sys

_CHILD_FLAG = 'ASYMMZOO_BENCH_CHILD'


from ..utils.argtypes import positive_int as _positive_int, \
    non_negative_int as _non_negative_int, tolerance as _tolerance


def check_output_path(path, flag, force=False):
    """Refuse, before hours of work, an output file that exists (unless --force) or cannot be
    written; nothing is made here (:func:`asymmzoo.io.check_output_file`)."""
    from ..io import check_output_file
    check_output_file(path, flag, force)


def check_output_folder(path, flag):
    """Refuse an output folder that is a file or cannot be made or written, before any work; the
    folder is made when the first file is written, so a failed run leaves nothing."""
    from ..io import check_writable_folder
    if os.path.exists(path) and not os.path.isdir(path):
        raise ValueError('%s %s is a file; give a folder (made if missing)' % (flag, path))
    check_writable_folder(path, '%s %s' % (flag, path))


def _progress(quiet):
    if quiet:
        return None
    return lambda msg: print('[bench] ' + msg, file=sys.stderr, flush=True)


def _bench_argv(args):
    argv = ['bench'] + list(args.patterns) + (['--engines'] + list(args.engines) if args.engines else [])
    argv += ['--batch-sizes'] + [str(b) for b in args.batch_sizes]
    argv += ['--threads', str(args.threads), '--rounds', str(args.rounds), '--warmup', str(args.warmup),
             '--train-batch', str(args.train_batch)]
    for flag in ('train_form', 'train_step', 'memory', 'quiet', 'paired', 'op_profile', 'force'):
        if getattr(args, flag):
            argv.append('--' + flag.replace('_', '-'))
    if args.input_shape:
        argv += ['--input-shape'] + [str(v) for v in args.input_shape]
    if args.json:
        argv += ['--json', args.json]
    return argv


def _bench(args):
    check_output_path(args.json, '--json', args.force)
    if args.threads and os.environ.get(_CHILD_FLAG) != '1' and \
            os.environ.get('OMP_NUM_THREADS') != str(args.threads):
        # MXNet fixes its OpenMP thread count at import: re-run in a fresh process
        env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MXNET_CPU_WORKER_NTHREADS='1')
        env[_CHILD_FLAG] = '1'
        cmd = [sys.executable, '-m', 'asymmzoo.cli'] + _bench_argv(args)
        return subprocess.call(cmd, env=env)
    from ..bench import benchmark, format_table, resolve_names
    if args.paired and args.op_profile:
        raise ValueError("--paired and --op-profile are separate runs: give one of them")
    if args.paired:
        names = []
        for pat in args.patterns:   # in order, duplicates kept: A1 B1 A2 B2 ...
            found = resolve_names([pat])
            if len(found) != 1:
                raise ValueError("--paired needs one model per name (A1 B1 A2 B2 ...); %r matches %d: %s"
                                 % (pat, len(found), ', '.join(found[:8])))
            names += found
    else:
        names = resolve_names(args.patterns)
    forms = ['deployed'] + (['train'] if args.train_form else [])
    if args.input_shape:
        shape = tuple(args.input_shape)
    else:
        shape = None
    if args.paired:
        return _bench_paired(args, names, shape)
    if args.op_profile:
        from ..bench import op_profile, format_op_profile
        other_engine = (args.engines or ['onnxruntime']) != ['onnxruntime']
        if args.train_form or args.train_step or args.memory or other_engine:
            raise ValueError("--op-profile profiles the deployed onnxruntime path only; drop --engines / "
                             "--train-form / --train-step / --memory")
        rows = op_profile(names, batch_sizes=args.batch_sizes, threads=args.threads, rounds=args.rounds,
                          warmup=args.warmup, input_shape=shape, progress=_progress(args.quiet))
        print(format_op_profile(rows))
        _write_json(args.json, rows)
        return 0
    res = benchmark(names, forms=forms, engines=args.engines or ['mxnet'], batch_sizes=args.batch_sizes,
                    rounds=args.rounds, warmup=args.warmup, train_step=args.train_step,
                    train_batch=args.train_batch, threads=args.threads, memory=args.memory,
                    input_shape=shape, progress=_progress(args.quiet))
    print(format_table(res, args.batch_sizes))
    _write_json(args.json, res)
    return 0


def _write_json(path, data):
    if path:
        from ..io import atomic_write_json
        atomic_write_json(data, path, indent=1, sort_keys=False)
        print('wrote %s' % path, file=sys.stderr)


def _bench_paired(args, names, shape):
    from ..bench import paired_ratios, format_ratios
    if len(names) < 2 or len(names) % 2:
        raise ValueError("--paired times the models two by two (A1 B1 A2 B2 ...: ratio A/B); got %d "
                         "model(s): %s" % (len(names), ', '.join(names)))
    if args.train_form or args.train_step or args.memory:
        raise ValueError("--paired compares deployed latency only; drop --train-form / --train-step "
                         "/ --memory")
    pairs = list(zip(names[::2], names[1::2]))
    res = []
    for engine in args.engines or ['mxnet']:
        res += paired_ratios(pairs, engine=engine, batch_sizes=args.batch_sizes, rounds=args.rounds,
                             warmup=args.warmup, threads=args.threads, input_shape=shape,
                             progress=_progress(args.quiet))
    print(format_ratios(res))
    _write_json(args.json, res)
    return 0


def _export(args):
    from ..registry import get_model  # noqa: F401  (unknown names fail before any work)
    from ..export import prepare_model, export_symbol, export_onnx, load_symbol, FORMATS
    if args.format not in FORMATS:
        raise ValueError("unsupported format %r; use one of %s" % (args.format, ', '.join(FORMATS)))
    from ..bench import resolve_names
    name = resolve_names([args.name])[0] if not any(c in args.name for c in '*?[') else None
    if name is None:
        raise ValueError("export takes one model name, not a pattern: %r" % args.name)
    if name.startswith('gluoncv:'):
        raise ValueError("export takes a model of this zoo (see `asymmzoo summary`); %s is a GluonCV "
                         "network for bench comparisons: export it with net.export() and "
                         "mxnet.onnx.export_model" % name)
    check_output_folder(args.out, '--out')
    stem = os.path.join(args.out, name)
    for f in ((stem + '-symbol.json', stem + '-0000.params') if args.format == 'symbol' else (stem + '.onnx',)):
        check_output_path(f, '--out %s:' % args.out, args.force)    # an earlier export stays unless --force
    net, shape = prepare_model(name, deploy=not args.train_form, params=args.params,
                               input_shape=args.input_shape)
    from ..export import batch_input_shape
    shape = batch_input_shape(net, shape, 1)   # N is free; a video model's item is its frames
    weights = '' if args.params else '; random weights (pass --params FILE for trained ones)'
    stem = os.path.join(args.out, name)
    if args.format == 'symbol':
        import mxnet as mx
        import numpy as np
        sym, par = export_symbol(net, stem, shape)
        back = load_symbol(sym, par)
        from ..export import max_abs_diff
        x = mx.nd.array(np.random.RandomState(0).standard_normal(batch_input_shape(net, shape, 2)))
        with mx.autograd.predict_mode():
            diff = max_abs_diff(net(x), back(x))
        if not diff <= args.atol:
            raise ValueError("%s reloaded as a SymbolBlock differs from the network by %.3g (> --atol "
                             "%g): the symbol export does not reproduce it" % (sym, diff, args.atol))
        print("wrote %s and %s (reloaded as SymbolBlock: max abs diff %.2g)%s"
              % (sym, par, diff, weights))
        return 0
    from ..export import ExportError
    try:
        info = export_onnx(net, stem + '.onnx', shape, verify=True, atol=args.atol)
    except ExportError as e:
        raise ValueError(str(e))
    print("wrote %s; onnxruntime vs MXNet on random inputs (batch 1 and 2): max abs diff %.2g "
          "(max |out| %.3g); %d h-swish/h-sigmoid activations fused%s"
          % (info['path'], info['max_abs_diff'], info['max_abs_out'], info['fused_activations'], weights))
    if info['max_abs_out'] < 100 * args.atol:
        print("note: the outputs are tiny (max |out| %.3g against --atol %g), so the check says little "
              "about them: pass --atol %.1g for a check relative to their size"
              % (info['max_abs_out'], args.atol, max(info['max_abs_out'] * 1e-4, 1e-30)), file=sys.stderr)
    return 0


def _sqnr_settings(args):
    """(min_sqnr, target_sqnr) for quantize_report from the CLI flags: by default the accuracy-aware
    fallback (DEFAULT_MIN_SQNR raised until DEFAULT_TARGET_SQNR); ``--target-sqnr 0`` keeps the fixed
    ``--min-sqnr`` threshold, ``--min-sqnr 0`` turns the SQNR fallback off (and the tuning with it);
    entropy calibration has no SQNR model, so both default to off there."""
    from ..quantize import DEFAULT_MIN_SQNR, DEFAULT_TARGET_SQNR
    for flag, v in (('--min-sqnr', args.min_sqnr), ('--target-sqnr', args.target_sqnr)):
        if v is not None and not (math.isfinite(v) and v >= 0):
            raise ValueError("%s %s: give a finite number of dB, or 0 to turn it off" % (flag, v))
    naive = args.calib_mode == 'naive'
    if not naive and args.min_sqnr:
        raise ValueError("--min-sqnr models naive (min/max) calibration; with --calib-mode %s leave it "
                         "out or pass --min-sqnr 0" % args.calib_mode)
    min_sqnr = args.min_sqnr if args.min_sqnr is not None else (DEFAULT_MIN_SQNR if naive else 0)
    target = args.target_sqnr
    if target and min_sqnr <= 0:
        raise ValueError("--target-sqnr raises the per-layer --min-sqnr threshold: give it a start "
                         "above 0 (and naive calibration), or pass --target-sqnr 0")
    if target is None:
        target = DEFAULT_TARGET_SQNR if min_sqnr > 0 else 0
    return (min_sqnr if min_sqnr > 0 else None), (target if target > 0 else None)


def _quantize(args):
    from ..bench import resolve_names
    if any(c in args.name for c in '*?['):
        raise ValueError("quantize takes one model name, not a pattern: %r" % args.name)
    from ..quantize import (quantize_report, format_report, check_quantizable, check_file_prefix,
                            MIN_SIZE, MAX_SIZE)
    name = check_quantizable(resolve_names([args.name])[0])
    if not MIN_SIZE <= args.size <= MAX_SIZE:
        raise ValueError("--size %d: give an image size of %d to %d pixels (the 28x28 digits are "
                         "resized to it)" % (args.size, MIN_SIZE, MAX_SIZE))
    from ..data import load_digits
    n_train = len(load_digits('train')[1])
    if args.calib_examples > n_train:
        raise ValueError("--calib-examples %d: there are %d training digits to calibrate on"
                         % (args.calib_examples, n_train))
    min_sqnr, target_sqnr = _sqnr_settings(args)
    if args.params:
        for flag, given in (('--epochs', args.epochs is not None), ('--save-params', args.save_params)):
            if given:
                raise ValueError("%s is for the model quantize trains when no --params is given; with "
                                 "--params %s the checkpoint is used as it is: drop %s"
                                 % (flag, args.params, flag))
    check_output_path(args.json, '--json', args.force)
    check_output_path(args.save_params, '--save-params', args.force)
    if args.save_int8 is not None:
        prefix = args.save_int8
        check_file_prefix(prefix, '--save-int8 %s' % prefix)
        for f in (prefix + '-symbol.json', prefix + '-0000.params'):
            check_output_path(f, '--save-int8', args.force)
    kw = {} if args.epochs is None else {'epochs': args.epochs}
    quiet_var, old = 'MXNET_SUBGRAPH_VERBOSE', os.environ.get('MXNET_SUBGRAPH_VERBOSE')
    if args.quiet:   # MXNet's C++ "Subgraph backend MKLDNN is activated." lines; MXNet reads the
        os.environ[quiet_var] = '0'   # variable once, at the process's first subgraph build
    try:
        rep = quantize_report(name, params=args.params, size=args.size,
                              calib_examples=args.calib_examples, bench_batches=args.batch_sizes,
                              rounds=args.rounds, calib_mode=args.calib_mode,
                              exclude_first_last=not args.quantize_first_last,
                              min_sqnr=min_sqnr, target_sqnr=target_sqnr,
                              save_params=args.save_params, save_int8=args.save_int8,
                              log=None if args.quiet else (lambda m: print('[quantize] ' + m,
                                                                          file=sys.stderr, flush=True)),
                              **kw)
    finally:
        if args.quiet:
            if old is None:
                os.environ.pop(quiet_var, None)
            else:
                os.environ[quiet_var] = old
    print(format_report(rep))
    _write_json(args.json, rep)
    return 0


def add_commands(sub):
    p = sub.add_parser('bench', help='interleaved latency / throughput benchmark of matching models',
                       description='Latency (median / p90 at each batch size) and throughput of the '
                       'matching models, timed round-robin in one process so that their ratios are '
                       'fair on a noisy machine; optionally train-step time, peak memory, paired '
                       'ratios (--paired) or a per-operator profile (--op-profile).')
    p.add_argument('patterns', nargs='+', help="registry names or fnmatch patterns; "
                   "'gluoncv:NAME' for a GluonCV model (e.g. gluoncv:mobilenetv3_large)")
    p.add_argument('--train-form', action='store_true',
                   help='also time the train form (default: the deployed form only)')
    p.add_argument('--engines', nargs='+', default=None,
                   choices=['mxnet', 'onednn', 'onnxruntime', 'onnxruntime-plain'],
                   help='mxnet (hybridized, static alloc/shape), onednn (optimize_for MKLDNN), '
                        'onnxruntime (exported, verified, graph rewrites: the fastest path), '
                        'onnxruntime-plain (without the rewrites); default mxnet')
    p.add_argument('--batch-sizes', type=_positive_int, nargs='+', default=[1, 32],
                   help='batch sizes timed (default 1 32)')
    p.add_argument('--threads', type=_positive_int, default=None,
                   help='threads (MXNet: OMP_NUM_THREADS in a fresh process; onnxruntime intra-op)')
    p.add_argument('--rounds', type=_positive_int, default=10, help='round-robin rounds (default 10)')
    p.add_argument('--warmup', type=_non_negative_int, default=3,
                   help='untimed calls per model and batch size before the rounds (default 3)')
    p.add_argument('--train-step', action='store_true',
                   help='also time a training step (forward+backward+update)')
    p.add_argument('--train-batch', type=_positive_int, default=32,
                   help='batch size of --train-step (default 32)')
    p.add_argument('--memory', action='store_true',
                   help='peak RSS of each model, measured in a fresh subprocess')
    p.add_argument('--input-shape', type=_positive_int, nargs=4, metavar=('N', 'C', 'H', 'W'),
                   help='input shape (default the model\'s, e.g. 1 3 224 224); N is not used: the '
                        'batch sizes timed are --batch-sizes')
    p.add_argument('--json', metavar='FILE', help='also write the results as JSON')
    p.add_argument('--force', action='store_true', help='replace an existing --json file')
    p.add_argument('--paired', action='store_true',
                   help='latency ratios of consecutive models (A1 B1 A2 B2 ...: A/B), each pair timed '
                        'back to back every round; median per-round ratio with a 95%% interval')
    p.add_argument('--op-profile', action='store_true',
                   help="where the fastest path's time goes: onnxruntime's profiler, time per operator "
                        'type of each model (deployed, static-batch sessions), models side by side')
    p.add_argument('-q', '--quiet', action='store_true', help='no progress lines')
    p.set_defaults(func=_bench)

    p = sub.add_parser('export', help='deploy and export a model (symbol files or verified ONNX)',
                       description='Deploy a model (ACB / RotateConv branches fused into plain convs) '
                       'and export it: MXNet symbol + params, reloaded and checked, or ONNX, run in '
                       'onnxruntime and checked against MXNet on random inputs.')
    p.add_argument('name', help='a registry name (see `asymmzoo summary`)')
    p.add_argument('--format', default='onnx', choices=['onnx', 'symbol'],
                   help='onnx (default; verified in onnxruntime) or symbol (MXNet -symbol.json / '
                        '-0000.params)')
    p.add_argument('--out', default='.', help='output folder (default .)')
    p.add_argument('--params', default=None,
                   help='trained .params to load, saved with net.save_parameters() (the class count is '
                        'read from the file; default: random weights)')
    p.add_argument('--input-shape', type=_positive_int, nargs=4, metavar=('N', 'C', 'H', 'W'),
                   help="input shape (default the model's); H x W is fixed in the exported graph, the "
                        'batch size stays free (the ONNX check runs batches 1 and 2)')
    p.add_argument('--train-form', action='store_true', help='export without deploying first')
    p.add_argument('--force', action='store_true', help='replace the files of an earlier export in --out')
    p.add_argument('--atol', type=_tolerance, default=1e-4,
                   help='tolerance of the check of the written files against the network (ONNX: in '
                        'onnxruntime; symbol: reloaded in MXNet; default 1e-4)')
    p.set_defaults(func=_export)

    p = sub.add_parser('quantize', help='INT8 (oneDNN) quantization with accuracy and speed report',
                       description='INT8 post-training quantization (MXNet oneDNN) of a zoo classifier, '
                                   'calibrated on the embedded digits: trains it briefly (or loads '
                                   '--params), reports the top-1 change and the speed-up, and can write '
                                   'the INT8 network (--save-int8).')
    p.add_argument('name', help='an image-classification network of the zoo, e.g. asymmnet_small_0.35 '
                                '(one name, not a pattern; detection, pose, action and face models '
                                'are refused)')
    p.add_argument('--params', default=None,
                   help='10-class checkpoint trained on the digits (default: train one briefly)')
    p.add_argument('--epochs', type=_positive_int, default=None,
                   help='training epochs when no --params (default 6: after 3 the ~94%% digit models '
                        'have so many borderline predictions that INT8 noise flips 2-4%% of them); '
                        'refused with --params')
    p.add_argument('--size', type=int, default=32,
                   help='side in pixels of the square images the 28x28 digits are resized to, 8 to 224 '
                        '(default 32)')
    p.add_argument('--calib-examples', type=_positive_int, default=500,
                   help='training digits to calibrate on (default 500; at most the 4000 training digits, '
                        'and fewer with --target-sqnr, which tunes on the others)')
    p.add_argument('--calib-mode', default='naive', choices=['naive', 'entropy'],
                   help='min/max (naive, default) or KL-divergence (entropy, slower) thresholds; entropy '
                        'has no SQNR fallback and loses much accuracy on these networks (digit-trained, '
                        '6 epochs: asymmnet_small_0.35 top-1 95.9%% -> 52.8%%, mobilenetv3_small_0.35 '
                        '94.7%% -> 42.3%%; naive with the fallback: 95.9%% -> 95.6%%): naive is the '
                        'recommended default')
    p.add_argument('--quantize-first-last', action='store_true',
                   help='quantize the stem conv and the classifier too (default: kept in fp32)')
    p.add_argument('--min-sqnr', type=float, default=None, metavar='DB',
                   help='per-layer SQNR fallback: layers whose INT8 signal-to-noise ratio, measured on the '
                        'calibration images, is below DB stay in fp32; DB is where the accuracy-aware '
                        'fallback starts (see --target-sqnr), or the fixed threshold with --target-sqnr 0 '
                        '(default: asymmzoo.quantize.DEFAULT_MIN_SQNR = 24 with naive calibration; '
                        '0: no SQNR fallback, which entropy calibration requires)')
    p.add_argument('--target-sqnr', type=float, default=None, metavar='DB',
                   help='accuracy-aware fallback: raise the --min-sqnr threshold 2 dB at a time until '
                        'the int8 logits reach DB of signal-to-noise ratio against fp32 on training '
                        'digits apart from the calibration ones (higher: more layers in fp32, slower, '
                        'closer; default asymmzoo.quantize.DEFAULT_TARGET_SQNR = 25 when the '
                        'SQNR fallback is on; 0: keep the fixed --min-sqnr threshold)')
    p.add_argument('--save-params', default=None, metavar='FILE',
                   help='save the briefly trained fp32 weights here (not with --params)')
    p.add_argument('--save-int8', default=None, metavar='PREFIX',
                   help='write the INT8 network as MXNet symbol files PREFIX-symbol.json and '
                        'PREFIX-0000.params (load with mx.gluon.SymbolBlock.imports(json, [\'data\'], '
                        'params); input: digits normalised as the report says); each file written '
                        'atomically, then reloaded and checked against the INT8 network')
    p.add_argument('--batch-sizes', type=_positive_int, nargs='+', default=[1, 32],
                   help='batch sizes for the fp32 / int8 timing at 224x224 (at --size for a network '
                        'that does not run at 224; default 1 32)')
    p.add_argument('--rounds', type=_positive_int, default=8,
                   help='interleaved fp32 / int8 timing rounds per batch size (default 8)')
    p.add_argument('--force', action='store_true',
                   help='replace existing --json / --save-params / --save-int8 files')
    p.add_argument('--json', metavar='FILE', help='also write the report as JSON')
    p.add_argument('-q', '--quiet', action='store_true',
                   help="no progress lines, and no MXNet 'Subgraph backend MKLDNN is activated' lines "
                        "(MXNet reads that setting once per process: from a Python session that "
                        "quantized before, the lines stay)")
    p.set_defaults(func=_quantize)
