"""INT8 post-training quantization with MXNet's oneDNN backend, calibrated on real data.

``quantize_net(net, calib_x)`` wraps ``mxnet.contrib.quantization.quantize_net_v2`` (naive min/max
calibration, oneDNN fusion of conv + BN + ReLU). MXNet 1.9.1's quantized element-wise multiply fails on
the h-swish / SE products of MobileNetV3 and AsymmNet (``TBlob.get_with_shape: data type do not
match``: uint8 vs int8), so ``elemwise_mul`` / ``broadcast_mul`` stay in fp32 by default
(:data:`DEFAULT_EXCLUDED_OPERATORS`); convolutions, pooling, concat and the additions are quantized.
:func:`quantize_report` also keeps the stem conv and the classifier in fp32 (``exclude_first_last``):
on a digits-trained MobileNetV3-L x1.0 that took the INT8 loss from 1.0 to 0 points.

``quantize_report(name)`` is the end-to-end check behind ``asymmzoo quantize``: it takes a trained
checkpoint (``params=``) or trains the model briefly on the embedded digits
(:func:`asymmzoo.data.load_digits`, resized and replicated to 3 channels), calibrates on training
images, and reports fp32 vs INT8 top-1 on the held-out digits, their prediction agreement, and the
latency of both (interleaved) at 224x224.
"""
import logging
import time

import mxnet as mx
import numpy as np

__all__ = ['DEFAULT_EXCLUDED_OPERATORS', 'digits_arrays', 'train_on_digits', 'evaluate',
           'quantize_net', 'quantize_report', 'format_report']

DEFAULT_EXCLUDED_OPERATORS = ('elemwise_mul', 'broadcast_mul', '_mul', '_Mul')
DIGITS_MEAN, DIGITS_STD = 0.13, 0.31


def digits_arrays(split='train', size=32, channels=3, limit=None):
    """The embedded digits as float32 NCHW ``(x, y)``: resized to ``size`` (bilinear), normalised,
    replicated to ``channels`` channels."""
    from ..data import load_digits
    imgs, labels = load_digits(split)
    if limit:
        imgs, labels = imgs[:limit], labels[:limit]
    x = mx.nd.array(imgs.astype(np.float32) / 255.0).expand_dims(1)
    if size != imgs.shape[-1]:
        x = mx.nd.contrib.BilinearResize2D(x, height=size, width=size)
    x = (x - DIGITS_MEAN) / DIGITS_STD
    if channels > 1:
        x = x.repeat(channels, axis=1)
    return x.asnumpy().astype(np.float32), labels.astype(np.int32)


def evaluate(net, x, y, batch_size=250):
    """Top-1 accuracy (%) and the predicted labels."""
    preds = []
    with mx.autograd.predict_mode():
        for i in range(0, len(x), batch_size):
            out = net(mx.nd.array(x[i:i + batch_size]))
            out = out[0] if isinstance(out, (list, tuple)) else out
            preds.append(out.argmax(axis=1).asnumpy().astype(np.int32))
    p = np.concatenate(preds)
    return 100.0 * float((p == y).mean()), p


def train_on_digits(net, epochs=2, size=32, batch_size=64, lr=0.05, seed=0, log=None):
    """Quickly train an initialised 10-class network on the embedded training digits (SGD with
    Nesterov momentum, cosine schedule). Returns the validation top-1 (%)."""
    say = log or (lambda m: None)
    x, y = digits_arrays('train', size)
    xv, yv = digits_arrays('val', size)
    rng = np.random.RandomState(seed)
    steps = epochs * (len(x) // batch_size)
    sched = mx.lr_scheduler.CosineScheduler(max(steps, 1), base_lr=lr, final_lr=lr * 0.01)
    trainer = mx.gluon.Trainer(net.collect_params(), 'nag',
                               {'learning_rate': lr, 'momentum': 0.9, 'wd': 1e-4,
                                'lr_scheduler': sched})
    loss_fn = mx.gluon.loss.SoftmaxCrossEntropyLoss()
    net.hybridize(static_alloc=True, static_shape=True)
    for ep in range(epochs):
        idx = rng.permutation(len(x))
        for i in range(0, len(idx) - batch_size + 1, batch_size):
            b = idx[i:i + batch_size]
            xb, yb = mx.nd.array(x[b]), mx.nd.array(y[b])
            with mx.autograd.record():
                out = net(xb)
                loss = loss_fn(out, yb)
            loss.backward()
            trainer.step(batch_size)
        acc, _ = evaluate(net, xv, yv)
        say('epoch %d: val top-1 %.2f%%' % (ep + 1, acc))
    return acc


def first_last_layers(net):
    """Names of the first and last convolution / dense layers of ``net``'s symbol graph."""
    import json
    sym = net(mx.sym.var('data'))
    sym = sym[0] if isinstance(sym, (list, tuple)) else sym
    nodes = json.loads(sym.tojson())['nodes']
    layers = [n['name'] for n in nodes if n['op'] in ('Convolution', 'FullyConnected')]
    return [layers[0], layers[-1]] if layers else []


def quantize_net(net, calib_x, exclude_operators=DEFAULT_EXCLUDED_OPERATORS, exclude_layers_match=None,
                 calib_mode='naive', quantized_dtype='auto', granularity='channel-wise', batch_size=50,
                 exclude_first_last=False, exclude_layers=None):
    """INT8 SymbolBlock of ``net`` (initialised, deployed) calibrated on ``calib_x`` (numpy NCHW).
    ``granularity`` 'channel-wise' (default: per-output-channel weight scales, which depthwise convs
    need) or 'tensor-wise'; ``exclude_first_last`` keeps the stem conv and the classifier in fp32
    (the usual practice: they are the most sensitive and the cheapest layers)."""
    exclude_layers = list(exclude_layers or [])
    if exclude_first_last:
        exclude_layers += first_last_layers(net)
    from mxnet.contrib import quantization as q
    if not isinstance(net, mx.gluon.HybridBlock):
        raise TypeError("quantize_net needs a HybridBlock, got %s" % type(net).__name__)
    it = mx.io.NDArrayIter(mx.nd.array(calib_x), batch_size=min(batch_size, len(calib_x)))
    logger = logging.getLogger('asymmzoo.quantize')
    logger.setLevel(logging.WARNING)
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        try:
            qnet = q.quantize_net_v2(net, quantized_dtype=quantized_dtype, quantize_mode='full',
                                     quantize_granularity=granularity,
                                     exclude_layers=exclude_layers,
                                     exclude_layers_match=list(exclude_layers_match or []),
                                     exclude_operators=list(exclude_operators or []),
                                     calib_data=it, calib_mode=calib_mode,
                                     num_calib_examples=len(calib_x), ctx=mx.cpu(), logger=None)
        except mx.base.MXNetError as e:
            raise RuntimeError("MXNet's INT8 quantization failed (%s). If it names a data type "
                               "mismatch, an operator has no working INT8 kernel: exclude it with "
                               "exclude_operators=[...] (default %s)"
                               % (str(e).strip().splitlines()[-1][:200],
                                  list(DEFAULT_EXCLUDED_OPERATORS))) from e
    qnet.hybridize(static_alloc=True, static_shape=True)
    return qnet


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


def quantize_report(name_or_net, params=None, epochs=6, size=32, calib_examples=500,
                    bench_shape=(3, 224, 224), bench_batches=(1, 32), rounds=8, seed=0, log=None,
                    exclude_operators=DEFAULT_EXCLUDED_OPERATORS, granularity='channel-wise',
                    calib_mode='naive', exclude_first_last=True, save_params=None):
    """Train (or load ``params``), deploy, quantize and compare. Returns a dict report."""
    from ..registry import get_model
    from ..deploy import deploy
    say = log or (lambda m: None)
    mx.random.seed(seed)
    np.random.seed(seed)
    if isinstance(name_or_net, str):
        net = get_model(name_or_net, classes=10)
        name = name_or_net
    else:
        net, name = name_or_net, getattr(name_or_net, 'name_in_zoo', type(name_or_net).__name__)
    if params:
        import os
        if not os.path.isfile(params):
            raise FileNotFoundError("params file %r not found; pass a 10-class checkpoint trained on "
                                    "the digits, or omit --params to train one" % (params,))
        net.load_parameters(params, ctx=mx.cpu())
        trained = 'loaded %s' % params
    else:
        net.initialize(mx.init.MSRAPrelu())
        say('training %s on the embedded digits (%d epochs, %dx%d)' % (name, epochs, size, size))
        t0 = time.time()
        train_on_digits(net, epochs=epochs, size=size, seed=seed, log=say)
        trained = 'trained %d epochs on the embedded digits in %.0f s' % (epochs, time.time() - t0)
        if save_params:
            net.save_parameters(save_params)
    xv, yv = digits_arrays('val', size)
    xc, _ = digits_arrays('train', size, limit=None)
    xc = xc[np.random.RandomState(seed).permutation(len(xc))[:calib_examples]]
    deploy(net, verify=True, probe=mx.nd.array(xv[:4]))
    net.hybridize(static_alloc=True, static_shape=True)
    acc32, p32 = evaluate(net, xv, yv)
    say('quantizing (calibration on %d training digits)' % len(xc))
    qnet = quantize_net(net, xc, exclude_operators=exclude_operators, granularity=granularity,
                        calib_mode=calib_mode, exclude_first_last=exclude_first_last)
    acc8, p8 = evaluate(qnet, xv, yv)
    report = {'model': name, 'weights': trained, 'input_size': size, 'val_images': int(len(yv)),
              'fp32_top1': acc32, 'int8_top1': acc8, 'top1_change': acc8 - acc32,
              'agreement': 100.0 * float((p32 == p8).mean()),
              'excluded_operators': list(exclude_operators), 'calib_examples': int(len(xc)),
              'granularity': granularity, 'calib_mode': calib_mode,
              'fp32_layers': first_last_layers(net) if exclude_first_last else [],
              'latency': {}}
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
    for b, t in sorted(rep['latency'].items(), key=lambda kv: int(kv[0])):
        lines.append('batch %s at 224x224: fp32 %.2f ms, int8 %.2f ms, speed-up %.2fx'
                     % (b, t['fp32_ms'], t['int8_ms'], t['speedup']))
    return '\n'.join(lines)
