"""Channel padding for onnxruntime's blocked layout, and the training-safe concat, measured in pairs.

    .venv/bin/python benchmarks/bench_nchwc.py                 # 2 threads, batch 1 and 32
    .venv/bin/python benchmarks/bench_nchwc.py --threads 1 --rounds 40

Fastest path (onnxruntime, static batch): each model's session without channel padding and with
padding to this CPU's NCHWc block (``asymmzoo.export.nchwc``), reorder nodes counted in the optimised
graph, timed back to back every round (median ms; ratio padded / plain). On an AVX2 host (block 8)
the AsymmNet / MobileNetV3 widths are already whole blocks and both sessions are the same graph.

MXNet engine: the deployed network (plain 4-D concats) against the same network with the
training-safe 5-D concat views (``asymmzoo.nn.channel_concat``), hybridized with static shapes.

Prints a Markdown table; ``--json FILE`` also saves the numbers.
"""
import argparse
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

MODELS = ('asymmnet_large_1.0', 'mobilenetv3_large_1.0', 'asymmnet_small_1.0', 'mobilenetv3_small_1.0')


def _session(model, threads):
    import onnx
    import onnxruntime as ort
    import tempfile
    so = ort.SessionOptions()
    so.log_severity_level = 3
    so.intra_op_num_threads = threads
    with tempfile.TemporaryDirectory(prefix='asymmzoo-bench-nchwc-') as tmp:
        so.optimized_model_filepath = os.path.join(tmp, 'opt.onnx')
        sess = ort.InferenceSession(model.SerializeToString(), so, providers=['CPUExecutionProvider'])
        ops = [n.op_type for n in onnx.load(so.optimized_model_filepath).graph.node]
    so.optimized_model_filepath = ''
    return sess, ops.count('ReorderInput') + ops.count('ReorderOutput')


def _time(fn, reps):
    t = time.perf_counter()
    for _ in range(reps):
        fn()
    return (time.perf_counter() - t) / reps * 1e3


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--models', nargs='+', default=list(MODELS))
    ap.add_argument('--batch-sizes', type=int, nargs='+', default=[1, 32])
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--rounds', type=int, default=20)
    ap.add_argument('--no-mxnet', action='store_true', help='skip the MXNet-engine pairs')
    ap.add_argument('--json', help='also save the numbers here')
    args = ap.parse_args(argv)
    os.environ.setdefault('OMP_NUM_THREADS', str(args.threads))
    import numpy as np
    import mxnet as mx
    import asymmzoo
    from asymmzoo import export as E
    from asymmzoo.export.nchwc import nchwc_block_size
    from asymmzoo.commands.doctor import cpu_info
    block = nchwc_block_size()
    rows = []
    for name in args.models:
        net, shape = E.prepare_model(name, input_shape=(1, 3, 224, 224))
        import tempfile
        with tempfile.TemporaryDirectory(prefix='asymmzoo-bench-nchwc-') as tmp:
            info = E.export_onnx(net, os.path.join(tmp, 'm.onnx'), shape)
            for bs in args.batch_sizes:
                x = np.random.RandomState(0).standard_normal((bs,) + shape[1:]).astype(np.float32)
                plain, n_plain = _session(E.static_batch_model(info['path'], bs, pad_block=0), args.threads)
                padded, n_pad = _session(E.static_batch_model(info['path'], bs), args.threads)
                feeds = {plain.get_inputs()[0].name: x}
                a, b = plain.run(None, feeds)[0], padded.run(None, feeds)[0]
                diff = float(np.abs(a - b).max())
                reps = 10 if bs == 1 else 1
                ta, tb = [], []
                for _ in range(args.rounds):
                    ta.append(_time(lambda: plain.run(None, feeds), reps))
                    tb.append(_time(lambda: padded.run(None, feeds), reps))
                row = dict(model=name, batch=bs, engine='onnxruntime', plain_ms=float(np.median(ta)),
                           variant_ms=float(np.median(tb)),
                           ratio=float(np.median(np.array(tb) / np.array(ta))),
                           reorders_plain=n_plain, reorders_variant=n_pad, max_abs_diff=diff)
                rows.append(row)
                print('%(model)s b%(batch)d onnxruntime: plain %(plain_ms).2f ms (%(reorders_plain)d '
                      'reorders), padded %(variant_ms).2f ms (%(reorders_variant)d), ratio %(ratio).3f'
                      % row, file=sys.stderr)
                del plain, padded
        if args.no_mxnet:
            continue
        from asymmzoo.nn import use_plain_concat
        for bs in args.batch_sizes:
            x = mx.nd.array(np.random.RandomState(0).standard_normal((bs,) + shape[1:]))
            t = {True: [], False: []}
            reps = 10 if bs == 1 else 1
            for r in range(args.rounds + 1):
                for plain_mode in (True, False):
                    use_plain_concat(net, plain_mode)
                    net.hybridize(static_alloc=True, static_shape=True)
                    with mx.autograd.predict_mode():
                        for _ in range(2):
                            net(x).wait_to_read()
                        ms = _time(lambda: net(x).wait_to_read(), reps)
                    if r:
                        t[plain_mode].append(ms)
            use_plain_concat(net, True)
            row = dict(model=name, batch=bs, engine='mxnet', plain_ms=float(np.median(t[True])),
                       variant_ms=float(np.median(t[False])),
                       ratio=float(np.median(np.array(t[False]) / np.array(t[True]))))
            rows.append(row)
            print('%(model)s b%(batch)d mxnet: deployed (plain concat) %(plain_ms).2f ms, training-safe '
                  'concat %(variant_ms).2f ms, ratio %(ratio).3f' % row, file=sys.stderr)
    cpu, flags = cpu_info()
    print('\nMeasured %s on %s (%s), onnxruntime NCHWc block %d, %d thread(s).\n'
          % (time.strftime('%Y-%m-%d'), cpu, ' '.join(f for f in flags if f.startswith(('avx', 'amx'))),
             block, args.threads))
    print('| model | batch | engine | baseline ms | variant ms | variant / baseline | reorders |')
    print('|---|---:|---|---:|---:|---:|---|')
    for r in rows:
        what = ('%d -> %d' % (r['reorders_plain'], r['reorders_variant'])) if 'reorders_plain' in r else ''
        print('| %s | %d | %s | %.2f | %.2f | %.3f | %s |' % (
            r['model'], r['batch'], 'onnxruntime (unpadded -> padded)' if r['engine'] == 'onnxruntime'
            else 'MXNet (deployed -> training-safe concat)', r['plain_ms'], r['variant_ms'], r['ratio'], what))
    ratios = {}
    for r in rows:
        ratios[(r['model'], r['batch'], r['engine'])] = r
    for arch in ('large', 'small'):
        for bs in args.batch_sizes:
            a, m = ratios.get(('asymmnet_%s_1.0' % arch, bs, 'onnxruntime')), \
                ratios.get(('mobilenetv3_%s_1.0' % arch, bs, 'onnxruntime'))
            if a and m:
                print('AsymmNet-%s / MobileNetV3-%s, batch %d, onnxruntime: unpadded %.3fx, padded %.3fx'
                      % (arch[0].upper(), arch[0].upper(), bs, a['plain_ms'] / m['plain_ms'],
                         a['variant_ms'] / m['variant_ms']))
    if args.json:
        from asymmzoo.io import atomic_write_json
        atomic_write_json(dict(block=block, threads=args.threads, cpu=cpu, flags=flags, rows=rows,
                               date=time.strftime('%Y-%m-%dT%H:%M')), args.json)
    return 0


if __name__ == '__main__':
    sys.exit(main())
