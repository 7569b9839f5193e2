"""The end-to-end check behind ``asymmzoo quantize``: :func:`quantize_report`.

It takes a trained checkpoint (``params=``) or trains the model briefly on the embedded digits
(:func:`asymmzoo.data.load_digits`, resized and replicated to 3 channels), calibrates on training
images, and reports fp32 vs INT8 top-1 on the held-out digits, their prediction agreement, and the
latency of both (interleaved) at 224x224. It takes the zoo's image-classification networks only
(:func:`asymmzoo.quantize.check_quantizable`), checks sizes, counts and shapes before any training,
warns when INT8 loses more than :data:`WARN_TOP1_DROP` points (:func:`accuracy_warning`; entropy
calibration, which has no SQNR fallback, lost 43 and 52 points on digit-trained asymmnet_small_0.35 /
mobilenetv3_small_0.35, naive with the fallback 0.3), and with ``save_int8=PREFIX`` writes the INT8
network as MXNet symbol files (:func:`asymmzoo.quantize.save_quantized`: ``PREFIX-symbol.json`` /
``PREFIX-0000.params``, checked reloaded; the weights stay float32 on disk, MXNet quantizes them when
it binds the graph). By default the fp32 fallback is accuracy-aware
(:func:`asymmzoo.quantize.quantize_to_target`, ``target_sqnr`` = :data:`DEFAULT_TARGET_SQNR` dB).
"""
import os
import time

import mxnet as mx
import numpy as np

from .checks import _check_report_settings, _check_sqnr_settings, _input_channels, _runs_on, check_quantizable
from .convert import (DEFAULT_EXCLUDED_OPERATORS, DEFAULT_MIN_SQNR, DEFAULT_TARGET_SQNR, quantize_net,
                      quantize_to_target)
from .digits import DIGITS_MEAN, DIGITS_STD, digits_arrays, top1_and_labels, train_on_digits
from .save import check_file_prefix, save_quantized
from .sqnr import network_sqnr

#: :func:`quantize_report` / ``asymmzoo quantize`` warn when INT8 loses more top-1 points than this
WARN_TOP1_DROP = 2.0


def _time_interleaved(nets, x, rounds=10, iters=3, warmup=3):
    xs = mx.nd.array(x)
    for n in nets:
        for _ in range(warmup):
            n(xs).wait_to_read()
    samples = [[] for _ in nets]
    for k in range(rounds):
        order = range(len(nets)) if k % 2 == 0 else reversed(range(len(nets)))
        for i in order:
            for _ in range(iters):
                t0 = time.perf_counter()
                nets[i](xs).wait_to_read()
                samples[i].append(time.perf_counter() - t0)
    return [1e3 * float(np.median(s)) for s in samples]


def accuracy_warning(rep, threshold=WARN_TOP1_DROP):
    """A warning line for a :func:`quantize_report` whose INT8 top-1 is more than ``threshold`` points
    below fp32, with the fix that fits its settings; None otherwise."""
    drop = -float(rep['top1_change'])
    if not drop > threshold:
        return None
    fixes = []
    if rep.get('calib_mode', 'naive') != 'naive':
        fixes.append("use --calib-mode naive (the default: min/max thresholds with the accuracy-aware "
                     "fp32 fallback, which %s calibration does not have)" % rep['calib_mode'])
    else:
        if rep.get('min_sqnr_start_db') is None:
            fixes.append("turn the SQNR fallback back on (leave --min-sqnr / --target-sqnr at their "
                         "defaults)")
        elif rep.get('target_sqnr_db') is None:
            fixes.append("turn the accuracy-aware fallback on (leave --target-sqnr at its default, %.0f dB)"
                         % DEFAULT_TARGET_SQNR)
        else:
            fixes.append("raise --target-sqnr (now %.0f dB; higher keeps more layers in fp32)"
                         % rep['target_sqnr_db'])
        if rep.get('exclude_first_last') is False:
            fixes.append("drop --quantize-first-last (keeps the stem conv and the classifier in fp32)")
        if str(rep.get('weights', '')).startswith('trained'):
            fixes.append("train longer (--epochs): a briefly trained model has many borderline "
                         "predictions")
    return ("warning: INT8 loses %.1f points of top-1 (more than %.0f): %s"
            % (drop, threshold, '; or '.join(fixes)))


def quantize_report(name_or_net, params=None, epochs=6, size=32, calib_examples=500,
                    bench_shape=None, bench_batches=(1, 32), rounds=8, seed=0, log=None,
                    exclude_operators=DEFAULT_EXCLUDED_OPERATORS, granularity='channel-wise',
                    calib_mode='naive', exclude_first_last=True, save_params=None,
                    min_sqnr=DEFAULT_MIN_SQNR, target_sqnr=DEFAULT_TARGET_SQNR, tune_examples=1500,
                    save_int8=None):
    """Train (or load ``params``), deploy, quantize and compare. Returns a dict report.
    ``name_or_net``: an image-classification network of the zoo (:func:`check_quantizable`) or a
    network. ``min_sqnr=None`` quantizes every layer but the first and last (see :func:`quantize_net`;
    pass ``target_sqnr=None`` with it). ``target_sqnr`` (dB; default :data:`DEFAULT_TARGET_SQNR`) tunes
    the fallback threshold up from ``min_sqnr`` until the output SQNR on ``tune_examples`` training
    digits apart from the calibration ones reaches it (:func:`quantize_to_target`); ``None`` keeps the
    fixed ``min_sqnr`` threshold. ``bench_shape`` (C, H, W) of the timing; default the network's
    channels at 224x224, or at ``size`` if it does not run at 224. ``save_int8``: a file prefix; the
    INT8 network is written there as ``PREFIX-symbol.json`` / ``PREFIX-0000.params`` and checked
    reloaded (:func:`save_quantized`; report key ``int8_files``). ``report['warning']`` is set when
    INT8 loses more than :data:`WARN_TOP1_DROP` points of top-1 (:func:`accuracy_warning`).
    Sizes, counts, the model and the shapes are checked before any training. MXNet prints
    "Subgraph backend MKLDNN is activated." at each quantization unless ``MXNET_SUBGRAPH_VERBOSE`` is
    ``'0'`` when the process first builds a subgraph (it reads it once; ``asymmzoo quantize -q`` sets it)."""
    from ..registry import get_model
    from ..deploy import deploy
    _check_sqnr_settings(min_sqnr, target_sqnr, calib_mode, calib_examples)
    _check_report_settings(epochs, size, calib_examples, params)
    if save_int8 is not None:   # before any training; save_quantized writes it at the end
        check_file_prefix(save_int8, 'save_int8=%r (CLI: --save-int8)' % (save_int8,))
    say = log or (lambda m: None)
    mx.random.seed(seed)
    np.random.seed(seed)
    if isinstance(name_or_net, str):
        name = check_quantizable(name_or_net)
        net = get_model(name, classes=10)
    else:
        net, name = name_or_net, getattr(name_or_net, 'name_in_zoo', type(name_or_net).__name__)
    if params:
        if not os.path.isfile(params):
            raise FileNotFoundError("params file %r not found; pass a 10-class checkpoint trained on "
                                    "the digits, or omit --params to train one" % (params,))
        from ..io import load_parameters_checked
        load_parameters_checked(net, params)
        trained = 'loaded %s' % params
    else:
        net.initialize(mx.init.MSRAPrelu(), force_reinit=True)
    channels = _input_channels(net)
    from ..export import default_input_shape
    own = 'x'.join(str(d) for d in default_input_shape(net)[1:])
    why = _runs_on(net, (1, channels, size, size))
    if why:
        raise ValueError("%s does not run on %dx%dx%d inputs (%s); its default input is %s: pick another "
                         "image size (CLI: --size)" % (name, channels, size, size, why, own))
    if bench_shape is None:
        bench_shape = (channels, 224, 224)
        if _runs_on(net, (1,) + bench_shape):
            bench_shape = (channels, size, size)
    else:
        bench_shape = tuple(int(d) for d in bench_shape)
        why = _runs_on(net, (1,) + bench_shape)
        if why:
            raise ValueError("%s does not run on bench_shape %s (%s)" % (name, bench_shape, why))
    if not params:
        say('training %s on the embedded digits (%d epochs, %dx%d)' % (name, epochs, size, size))
        t0 = time.time()
        train_on_digits(net, epochs=epochs, size=size, seed=seed, log=say, channels=channels)
        trained = 'trained %d epochs on the embedded digits in %.0f s' % (epochs, time.time() - t0)
        if save_params:
            from ..io import atomic_save_parameters
            atomic_save_parameters(net, save_params)
    xv, yv = digits_arrays('val', size, channels=channels)
    xc, _ = digits_arrays('train', size, channels=channels, limit=None)
    order = np.random.RandomState(seed).permutation(len(xc))
    xt = xc[order[calib_examples:calib_examples + tune_examples]]
    xc = xc[order[:calib_examples]]
    deploy(net, verify=True, probe=mx.nd.array(xv[:4]))
    net.hybridize(static_alloc=True, static_shape=True)
    acc32, p32 = top1_and_labels(net, xv, yv)
    say('quantizing (calibration on %d training digits)' % len(xc))
    qkw = dict(exclude_operators=exclude_operators, granularity=granularity, calib_mode=calib_mode,
               exclude_first_last=exclude_first_last)
    if target_sqnr is not None:
        if not len(xt):
            raise ValueError("target_sqnr needs tuning digits apart from the %d calibration ones; "
                             "lower calib_examples" % len(xc))
        qnet = quantize_to_target(net, xc, xt, target_sqnr, min_sqnr=min_sqnr, log=say, **qkw)
    else:
        qnet = quantize_net(net, xc, min_sqnr=min_sqnr, **qkw)
    acc8, p8 = top1_and_labels(qnet, xv, yv)
    low = [r for r in (qnet.layer_sqnr or []) if r['name'] in qnet.low_sqnr_layers]
    report = {'model': name, 'weights': trained, 'input_size': size, 'input_channels': channels,
              'val_images': int(len(yv)),
              'fp32_top1': acc32, 'int8_top1': acc8, 'top1_change': acc8 - acc32,
              'agreement': 100.0 * float((p32 == p8).mean()),
              'excluded_operators': list(exclude_operators), 'calib_examples': int(len(xc)),
              'granularity': granularity, 'calib_mode': calib_mode,
              'exclude_first_last': bool(exclude_first_last),
              'fp32_layers': list(qnet.fp32_layers),
              'min_sqnr_db': qnet.tuning[-1]['min_sqnr_db'] if getattr(qnet, 'tuning', None)
              else min_sqnr, 'min_sqnr_start_db': min_sqnr,
              'fp32_boundary_ops': list(qnet.boundary_ops),
              'output_sqnr_db': network_sqnr(net, qnet, xv), 'target_sqnr_db': target_sqnr,
              'tuning': getattr(qnet, 'tuning', None),
              'low_sqnr_layers': [{k: r[k] for k in ('name', 'sqnr_db', 'input_sqnr_db',
                                                     'weight_sqnr_db', 'output_sqnr_db')} for r in low],
              'bench_input': list(bench_shape), 'latency': {}}
    report['warning'] = accuracy_warning(report)
    if save_int8:
        say('writing the INT8 network to %s-symbol.json / -0000.params' % save_int8)
        files = save_quantized(qnet, save_int8, xv[:8])
        files['input'] = {'name': 'data', 'shape': ['N', channels, size, size], 'dtype': 'float32',
                          'preprocessing': '(pixel / 255 - %g) / %g' % (DIGITS_MEAN, DIGITS_STD)}
        report['int8_files'] = files
    for b in bench_batches:
        x = np.random.RandomState(seed).standard_normal((b,) + tuple(bench_shape)).astype(np.float32)
        say('timing fp32 vs int8 at batch %d' % b)
        t32, t8 = _time_interleaved([net, qnet], x, rounds=rounds, iters=3 if b <= 4 else 1)
        report['latency'][str(b)] = {'fp32_ms': t32, 'int8_ms': t8, 'speedup': t32 / t8}
    return report


def format_report(rep):
    lines = ['%s (%s)' % (rep['model'], rep['weights']),
             'top-1 on %d held-out digits at %dx%d: fp32 %.2f%%  int8 %.2f%%  change %+.2f points; '
             'predictions agree on %.1f%%' % (rep['val_images'], rep['input_size'], rep['input_size'],
                                               rep['fp32_top1'], rep['int8_top1'],
                                               rep['top1_change'], rep['agreement']),
             'fp32 operators kept: %s; calibrated on %d training digits'
             % (', '.join(rep['excluded_operators']), rep['calib_examples'])]
    if rep.get('output_sqnr_db') is not None:
        lines.append('output SQNR (int8 vs fp32 logits) on the held-out digits: %.1f dB'
                     % rep['output_sqnr_db'])
    if rep.get('tuning'):
        lines.append('tuned to an output SQNR of %.1f dB on training digits apart from the calibration '
                     'ones: %s' % (rep['target_sqnr_db'], '; '.join(
                         '%.0f dB -> %.1f dB' % (t['min_sqnr_db'], t['output_sqnr_db'])
                         for t in rep['tuning'])))
    if rep.get('min_sqnr_db') is not None:
        low = rep.get('low_sqnr_layers', [])
        lines.append('%d layer(s) kept in fp32 for an INT8 SQNR below %.0f dB%s'
                     % (len(low), rep['min_sqnr_db'],
                        ''.join('\n  %s: %.1f dB (rounding alone: input %.1f, weights %.1f, '
                                'output %.1f dB)' % (r['name'], r['sqnr_db'], r['input_sqnr_db'],
                                                     r['weight_sqnr_db'], r.get('output_sqnr_db', 0))
                                for r in low)))
    if rep.get('fp32_boundary_ops'):
        lines.append('%d concat / pooling / flatten op(s) kept in fp32 next to fp32 neighbours'
                     % len(rep['fp32_boundary_ops']))
    hw = '%dx%d' % tuple(rep.get('bench_input', (3, 224, 224))[1:])
    for b, t in sorted(rep['latency'].items(), key=lambda kv: int(kv[0])):
        lines.append('batch %s at %s: fp32 %.2f ms, int8 %.2f ms, speed-up %.2fx'
                     % (b, hw, t['fp32_ms'], t['int8_ms'], t['speedup']))
    f = rep.get('int8_files')
    if f:
        inp = f.get('input', {})
        lines.append('wrote the INT8 network: %s and %s (reloaded as SymbolBlock: max abs diff %.2g; '
                     'input %r, float32 %s, %s)'
                     % (f['symbol'], f['params'], f['max_abs_diff'], inp.get('name', 'data'),
                        'x'.join(str(d) for d in inp.get('shape', [])), inp.get('preprocessing', '')))
    warning = rep.get('warning', accuracy_warning(rep) if 'top1_change' in rep else None)
    if warning:
        lines.append(warning)
    return '\n'.join(lines)
