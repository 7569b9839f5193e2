"""INT8 post-training quantization with MXNet's oneDNN backend, calibrated on real data.

``quantize_net(net, calib_x)`` wraps ``mxnet.contrib.quantization.quantize_net_v2`` (naive min/max
calibration, oneDNN fusion of conv + BN + ReLU). MXNet 1.9.1's quantized element-wise multiply fails on
the h-swish / SE products of MobileNetV3 and AsymmNet (``TBlob.get_with_shape: data type do not
match``: uint8 vs int8), so ``elemwise_mul`` / ``broadcast_mul`` stay in fp32 by default
(:data:`DEFAULT_EXCLUDED_OPERATORS`); convolutions, pooling, concat and the additions are quantized.
:func:`quantize_report` also keeps the stem conv and the classifier in fp32 (``exclude_first_last``):
on a digits-trained MobileNetV3-L x1.0 that took the INT8 loss from 1.0 to 0 points.

Layers whose INT8 output would be too noisy stay in fp32 too (``min_sqnr``, default
:data:`DEFAULT_MIN_SQNR` dB). :func:`layer_sqnr` measures, on the calibration images, each layer's
signal-to-quantization-noise ratio with the rounding the quantizer will apply: input per tensor over
its calibrated range, weights per output channel, and the output of what oneDNN fuses into the conv
(BatchNorm, ReLU or residual sum), which MXNet requantizes per tensor. MXNet's quantizer has one
activation scale per tensor; a depthwise conv whose input channels differ in spread (a nearly constant
channel that BatchNorm then scales up by 100x or more) loses its small channels to the rounding, and
layers like these are where whole networks broke (MobileNetV3-L x0.5 and x1.0 on the digits: -7.5 points
with every conv quantized). The default threshold was chosen on held-out training digits, not on the
validation digits the reports use. :func:`quantize_report` then makes the fallback accuracy-aware by
default (:func:`quantize_to_target`, ``target_sqnr`` = :data:`DEFAULT_TARGET_SQNR` dB): the threshold
rises until the network's output is that clean on training digits apart from the calibration ones.

``quantize_report(name)`` is the end-to-end check behind ``asymmzoo quantize``: it takes a trained
checkpoint (``params=``) or trains the model briefly on the embedded digits
(:func:`asymmzoo.data.load_digits`, resized and replicated to 3 channels), calibrates on training
images, and reports fp32 vs INT8 top-1 on the held-out digits, their prediction agreement, and the
latency of both (interleaved) at 224x224. It takes the zoo's image-classification networks only
(:func:`check_quantizable`), checks sizes, counts and shapes before any training, warns when INT8 loses
more than :data:`WARN_TOP1_DROP` points (:func:`accuracy_warning`; entropy calibration, which has no
SQNR fallback, lost 43 and 52 points on digit-trained asymmnet_small_0.35 / mobilenetv3_small_0.35,
naive with the fallback 0.3), and with ``save_int8=PREFIX`` writes the INT8 network as MXNet symbol
files (:func:`save_quantized`: ``PREFIX-symbol.json`` / ``PREFIX-0000.params``, checked reloaded; the
weights stay float32 on disk, MXNet quantizes them when it binds the graph).
"""
import logging
import os
import time

import mxnet as mx
import numpy as np

__all__ = ['DEFAULT_EXCLUDED_OPERATORS', 'digits_arrays', 'train_on_digits', 'evaluate',
           'quantize_net', 'quantize_report', 'format_report', 'layer_sqnr', 'DEFAULT_MIN_SQNR',
           'boundary_data_ops', 'network_sqnr', 'quantize_to_target', 'DEFAULT_TARGET_SQNR',
           'check_quantizable', 'save_quantized', 'accuracy_warning', 'WARN_TOP1_DROP',
           'check_file_prefix']

DEFAULT_EXCLUDED_OPERATORS = ('elemwise_mul', 'broadcast_mul', '_mul', '_Mul')
DEFAULT_MIN_SQNR = 24.0
#: :func:`quantize_report` / ``asymmzoo quantize`` raise the per-layer threshold from
#: :data:`DEFAULT_MIN_SQNR` until the INT8 logits reach this SQNR against fp32 on training digits apart
#: from the calibration ones (all 30 AsymmNet / MobileNetV3 backbones then lose <= 0.5 point).
DEFAULT_TARGET_SQNR = 25.0
DIGITS_MEAN, DIGITS_STD = 0.13, 0.31
#: :func:`quantize_report` / ``asymmzoo quantize`` warn when INT8 loses more top-1 points than this
WARN_TOP1_DROP = 2.0
#: image sizes :func:`quantize_report` accepts (the 28x28 digits are resized to ``size`` x ``size``)
MIN_SIZE, MAX_SIZE = 8, 224
_DOWNSTREAM_TASKS = {'downstream.detection': 'an object-detection', 'downstream.pose': 'a pose-estimation',
                     'downstream.action': 'an action-recognition', 'downstream.face': 'a face-embedding'}


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


def train_on_digits(net, epochs=2, size=32, batch_size=64, lr=0.05, seed=0, log=None, channels=3):
    """Quickly train an initialised 10-class network on the embedded training digits (SGD with
    Nesterov momentum, cosine schedule; ``channels``: the network's input channels). Returns the
    validation top-1 (%)."""
    if not _is_int(epochs) or epochs < 1:
        raise ValueError("epochs=%r: give a positive number of training epochs (CLI: --epochs)" % (epochs,))
    say = log or (lambda m: None)
    x, y = digits_arrays('train', size, channels=channels)
    xv, yv = digits_arrays('val', size, channels=channels)
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


def _is_int(v):
    import numbers
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def _graph(net):
    import json
    sym = net(mx.sym.var('data'))
    sym = sym[0] if isinstance(sym, (list, tuple)) else sym
    return sym, json.loads(sym.tojson())['nodes']


def first_last_layers(net):
    """Names of the first and last convolution / dense layers of ``net``'s symbol graph."""
    nodes = _graph(net)[1]
    layers = [n['name'] for n in nodes if n['op'] in ('Convolution', 'FullyConnected')]
    return [layers[0], layers[-1]] if layers else []


def _fake_quant_activation(x, lo, hi):
    """``x`` rounded as MXNet's oneDNN quantize does over the calibrated range [lo, hi]: uint8 when the
    tensor is never negative, symmetric int8 otherwise."""
    if lo >= 0:
        s = 255.0 / max(hi, 1e-12)
        return mx.nd.clip(mx.nd.round(x * s), 0, 255) / s
    s = 127.0 / max(-lo, hi, 1e-12)
    return mx.nd.clip(mx.nd.round(x * s), -127, 127) / s


def _fake_quant_weight(w):
    """Symmetric int8 per output channel (``quantize_granularity='channel-wise'``)."""
    m = mx.nd.max(mx.nd.abs(w.reshape((w.shape[0], -1))), axis=1)
    s = (127.0 / mx.nd.maximum(m, 1e-12)).reshape((-1,) + (1,) * (w.ndim - 1))
    return mx.nd.round(w * s) / s


def layer_sqnr(net, calib_x, batch_size=100):
    """Signal-to-quantization-noise ratio (dB) of every convolution / dense layer of ``net`` under INT8,
    measured on ``calib_x`` (numpy NCHW, the calibration images).

    Each layer is run on its real fp32 input, once exactly and once with the rounding that
    :func:`quantize_net` gets from MXNet's oneDNN quantization (naive min/max calibration on
    ``calib_x``): the input rounded per tensor over its range (uint8 if never negative, else int8), the
    weights per output channel (int8), and the output -- taken after what oneDNN fuses into the conv: a
    sole following BatchNorm, then a ReLU or a residual sum -- rounded per tensor over its range, as
    MXNet requantizes every quantized conv's output. The noise is measured on that fused output (the
    sum, for a residual branch), so a BatchNorm's per-channel gains count (a gain of 300 turns a
    rounding step into a large error), and compared with the output's variance:
    ``sqnr_db = 10 log10(sum_c var(z_c) / sum_c mean((z'_c - z_c)^2))``. ``input_sqnr_db``,
    ``weight_sqnr_db`` and ``output_sqnr_db`` apply one of the three roundings alone, to tell the
    causes apart. Returns one dict per layer, in graph order."""
    calib_x = np.asarray(calib_x, dtype=np.float32)
    if calib_x.ndim < 2 or len(calib_x) == 0:
        raise ValueError("layer_sqnr needs a non-empty batch of calibration inputs (N, C, H, W), got "
                         "shape %s" % (calib_x.shape,))
    sym, nodes = _graph(net)
    consumers = {}
    for i, n in enumerate(nodes):
        for j, k, _ in n['inputs']:
            consumers.setdefault((j, k), []).append(i)
    params = {k: v.data() for k, v in net.collect_params().items()}
    internals = sym.get_internals()
    outputs = set(internals.list_outputs())

    def entry(j, k=0):
        name = nodes[j]['name']
        if nodes[j]['op'] == 'null':
            return name
        return name + '_output' if name + '_output' in outputs else '%s_output%d' % (name, k)

    def sole_consumer(i):
        cons = consumers.get((i, 0), [])
        return cons[0] if len(cons) == 1 else None

    def is_relu(c):
        # oneDNN fuses Activation(relu) into a conv; MXNet leaves a bare `relu` op outside the fusion
        return c is not None and nodes[c]['op'] == 'Activation' and \
            nodes[c].get('attrs', {}).get('act_type') == 'relu'

    layers, summed = [], set()
    for i, n in enumerate(nodes):
        if n['op'] not in ('Convolution', 'FullyConnected'):
            continue
        ins = n['inputs']
        attrs = {k: v for k, v in n.get('attrs', {}).items() if not k.startswith('__')}
        w = nodes[ins[1][0]]
        b = nodes[ins[2][0]] if len(ins) > 2 else None
        for p_ in (w, b):
            if p_ is not None and (p_['op'] != 'null' or p_['name'] not in params):
                raise ValueError("layer_sqnr: the weights of %s are computed in the graph (by %s), not "
                                 "stored; deploy the network first (asymmzoo.deploy(net))"
                                 % (n['name'], p_['name']))
        l = dict(name=n['name'], op=n['op'], attrs=attrs, x=entry(*ins[0][:2]), w=w['name'],
                 b=b['name'] if b is not None else None, bn=None, relu=False, residual=None,
                 round_output=True)
        last = i
        c = sole_consumer(i)
        if n['op'] == 'FullyConnected':
            # not fused with a BatchNorm; before a dequantize its output stays float
            # (enable_float_output), so only the input and the weights are rounded
            l['round_output'] = False
        elif c is not None and nodes[c]['op'] == 'BatchNorm' and \
                int(nodes[c].get('attrs', {}).get('axis', 1)) == 1:
            bn = nodes[c]
            ba = bn.get('attrs', {})
            names = [nodes[e[0]]['name'] for e in bn['inputs']]
            fixed = ba.get('fix_gamma', 'True') not in ('False', 'false', '0')
            gamma = mx.nd.ones_like(params[names[1]]) if fixed else params[names[1]]
            gain = gamma / mx.nd.sqrt(params[names[4]] + float(ba.get('eps', 1e-3)))
            l['bn'] = (gain, params[names[2]] - params[names[3]] * gain)
            last = c
            c = sole_consumer(c)
        if n['op'] == 'FullyConnected':
            pass
        elif is_relu(c):
            l['relu'], last = True, c
        elif c is not None and c not in summed and nodes[c]['op'] in ('elemwise_add', '_plus', '_Plus'):
            other = [e for e in nodes[c]['inputs'] if e[0] != last]
            if len(other) == 1:  # oneDNN fuses the sum (with_sum), into one of its two inputs
                summed.add(c)
                l['residual'], last = entry(*other[0][:2]), c
                c = sole_consumer(c)
                if is_relu(c):  # with_postsum_act
                    l['relu'], last = True, c
        l['z'] = entry(last)
        layers.append(l)
    if not layers:
        return []
    taps = sorted({t for l in layers for t in (l['x'], l['z'], l['residual']) if t} - {'data'})
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # "cannot decide type for data": it is float32
        tap = mx.gluon.SymbolBlock([internals[t] for t in taps], mx.sym.var('data'))
    for k, v in tap.collect_params().items():
        v._load_init(params[k], mx.cpu())

    def batches():
        for s in range(0, len(calib_x), batch_size):
            xb = mx.nd.array(calib_x[s:s + batch_size])
            outs = tap(xb)
            feats = dict(zip(taps, list(outs) if isinstance(outs, (list, tuple)) else [outs]))
            feats['data'] = xb
            yield feats

    ranges = {}
    with mx.autograd.predict_mode():
        for feats in batches():
            for t, v in feats.items():
                lo, hi = float(v.min().asscalar()), float(v.max().asscalar())
                old = ranges.get(t, (lo, hi))
                ranges[t] = (min(old[0], lo), max(old[1], hi))

    def fused(l, feats, x, w):
        """The layer and what oneDNN fuses into it, in fp32."""
        bias = params[l['b']] if l['b'] else None
        op = mx.nd.Convolution if l['op'] == 'Convolution' else mx.nd.FullyConnected
        z = op(x, w, bias, **l['attrs']) if bias is not None else op(x, w, **l['attrs'])
        if l['bn'] is not None:
            shape = (1, -1) + (1,) * (z.ndim - 2)
            z = mx.nd.broadcast_add(mx.nd.broadcast_mul(z, l['bn'][0].reshape(shape)),
                                    l['bn'][1].reshape(shape))
        if l['residual'] is not None:
            z = z + feats[l['residual']]
        if l['relu']:  # after the sum, if there is one (with_postsum_act)
            z = mx.nd.relu(z)
        return z

    def requantized(l, z):
        return _fake_quant_activation(z, *ranges[l['z']]) if l['round_output'] else z

    kinds = ('all', 'input', 'weight', 'output')
    acc = {l['name']: None for l in layers}  # count, mean, centred sum of squares, 4 noise sums
    with mx.autograd.predict_mode():
        for feats in batches():
            for l in layers:
                x, w = feats[l['x']], params[l['w']]
                xq, wq = _fake_quant_activation(x, *ranges[l['x']]), _fake_quant_weight(w)
                z = fused(l, feats, x, w)
                # channels: axis 1 of a conv output, the last axis of a dense one
                axes = tuple(range(z.ndim - 1)) if l['op'] == 'FullyConnected' \
                    else (0,) + tuple(range(2, z.ndim))
                n = z.size // z.shape[-1 if l['op'] == 'FullyConnected' else 1]
                mean = z.mean(axis=axes, keepdims=True)
                rows = [mean.reshape((-1,)), ((z - mean) ** 2).sum(axis=axes)]  # centred: no cancellation
                for v in (requantized(l, fused(l, feats, xq, wq)), fused(l, feats, xq, w),
                          fused(l, feats, x, wq), requantized(l, z)):
                    rows.append(((v - z) ** 2).sum(axis=axes))
                rows = mx.nd.stack(*rows).asnumpy().astype(np.float64)
                old = acc[l['name']]
                if old is None:
                    acc[l['name']] = [n] + list(rows)
                    continue
                n0, m0, q0 = old[:3]
                d = rows[0] - m0  # Chan et al.'s merge of means and centred sums of squares
                acc[l['name']] = [n0 + n, m0 + d * n / (n0 + n), q0 + rows[1] + d * d * n0 * n / (n0 + n)] + \
                    [a_ + b_ for a_, b_ in zip(old[3:], rows[2:])]
    out = []
    for l in layers:
        cnt, _, m2 = acc[l['name']][:3]
        signal = float(m2.sum() / cnt)
        rec = {'name': l['name'], 'op': l['op']}
        for kind, e in zip(kinds, acc[l['name']][3:]):
            noise = float(e.sum() / cnt)
            rec[('sqnr_db' if kind == 'all' else kind + '_sqnr_db')] = (
                float('inf') if noise <= 0 else 10.0 * np.log10(max(signal, 1e-30) / noise))
        out.append(rec)
    return out


_DATA_OPS = ('Concat', 'concat', 'Pooling', 'Flatten', 'flatten')


def boundary_data_ops(net, fp32_layers, exclude_operators=DEFAULT_EXCLUDED_OPERATORS):
    """Names of the data-movement ops (concat, pooling, flatten) of ``net`` that would sit on the
    edge of an fp32 region if ``fp32_layers`` (conv / dense names) and ``exclude_operators`` stay
    in fp32.

    MXNet quantizes such an op whatever its neighbours: with an fp32 input it quantizes it first,
    with an fp32 consumer it dequantizes after -- one more rounding and no int8 arithmetic saved.
    A quantized concat is worse still: its inputs are rescaled to the widest input's range, so the
    narrow ones (AsymmNet's reused features next to a wide expansion) lose their low bits. Only
    ops whose producers and consumers all run in int8 stay quantized (a fixpoint over the graph;
    oneDNN's conv fusion -- BatchNorm, ReLU, residual sum -- is looked through)."""
    nodes = _graph(net)[1]
    fp32_layers, excluded_ops = set(fp32_layers or ()), set(exclude_operators or ())
    consumers = {}
    for i, n in enumerate(nodes):
        for j, _, _ in n['inputs']:
            consumers.setdefault(j, []).append(i)
    int8 = {}
    for i, n in enumerate(nodes):
        if n['op'] in ('Convolution', 'FullyConnected'):
            int8[i] = n['name'] not in fp32_layers and n['op'] not in excluded_ops
        elif n['op'] in _DATA_OPS:
            int8[i] = n['op'] not in excluded_ops

    def fused(i):
        a = nodes[i].get('attrs', {})
        return nodes[i]['op'] == 'BatchNorm' or nodes[i]['op'] in ('elemwise_add', '_Plus', '_plus') \
            or (nodes[i]['op'] == 'Activation' and a.get('act_type') == 'relu')

    def source(j):
        """The op whose int8 / fp32 output reaches an input, through what oneDNN fuses."""
        while fused(j):
            j = nodes[j]['inputs'][0][0]
        return int8.get(j, False)

    def users(i):
        out = []
        for c in consumers.get(i, []):
            if fused(c) and c not in int8:
                out += users(c)
            else:
                out.append(int8.get(c, False))
        return out or [False]   # a graph output is fp32

    changed = True
    while changed:
        changed = False
        for i, n in enumerate(nodes):
            if n['op'] in _DATA_OPS and int8.get(i):
                if not all(source(j) for j, _, _ in n['inputs']) or not all(users(i)):
                    int8[i] = False
                    changed = True
    return [nodes[i]['name'] for i, v in int8.items() if nodes[i]['op'] in _DATA_OPS and not v
            and nodes[i]['op'] not in excluded_ops]


def quantize_net(net, calib_x, exclude_operators=DEFAULT_EXCLUDED_OPERATORS, exclude_layers_match=None,
                 calib_mode='naive', quantized_dtype='auto', granularity='channel-wise', batch_size=50,
                 exclude_first_last=False, exclude_layers=None, min_sqnr=None, fp32_boundary=True,
                 sqnr=None):
    """INT8 SymbolBlock of ``net`` (initialised, deployed) calibrated on ``calib_x`` (numpy NCHW).
    ``granularity`` 'channel-wise' (default: per-output-channel weight scales, which depthwise convs
    need) or 'tensor-wise'; ``exclude_first_last`` keeps the stem conv and the classifier in fp32
    (the usual practice: they are the most sensitive and the cheapest layers); ``min_sqnr`` (dB) keeps
    in fp32 every layer whose :func:`layer_sqnr` on ``calib_x`` is below it; ``fp32_boundary`` also
    keeps in fp32 the concats / poolings / flattens next to an fp32 neighbour
    (:func:`boundary_data_ops`: quantized, they only add a rounding).

    The returned block carries ``fp32_layers`` (the layer names kept in fp32), ``low_sqnr_layers``
    (those of them kept for their SQNR alone), ``boundary_ops`` (the data ops kept in fp32 for an
    fp32 neighbour) and, with ``min_sqnr``, ``layer_sqnr`` (the measurement; pass a previous one as
    ``sqnr`` to skip measuring again)."""
    if not isinstance(net, mx.gluon.HybridBlock):
        raise TypeError("quantize_net needs a HybridBlock, got %s" % type(net).__name__)
    exclude_layers = list(exclude_layers or [])
    if exclude_first_last:
        exclude_layers += [n for n in first_last_layers(net) if n not in exclude_layers]
    low = []
    if min_sqnr is not None:
        if calib_mode != 'naive' or granularity != 'channel-wise' or quantized_dtype != 'auto':
            raise ValueError("min_sqnr measures the rounding of naive min/max calibration with "
                             "channel-wise weights and quantized_dtype='auto'; got calib_mode=%r, "
                             "granularity=%r, quantized_dtype=%r: pass min_sqnr=None (CLI: --min-sqnr 0) "
                             "with these" % (calib_mode, granularity, quantized_dtype))
        if sqnr is None:
            sqnr = layer_sqnr(net, calib_x, batch_size=max(batch_size, 1))
        low = [r['name'] for r in sqnr if r['sqnr_db'] < min_sqnr and r['name'] not in exclude_layers]
        exclude_layers += low
    matched = []
    if exclude_layers_match:
        matched = [n['name'] for n in _graph(net)[1] if n['op'] in ('Convolution', 'FullyConnected')
                   and any(m in n['name'] for m in exclude_layers_match)]
    boundary = boundary_data_ops(net, exclude_layers + matched, exclude_operators) \
        if fp32_boundary else []
    boundary = [b for b in boundary if b not in exclude_layers]
    from mxnet.contrib import quantization as q
    it = mx.io.NDArrayIter(mx.nd.array(calib_x), batch_size=min(batch_size, len(calib_x)))
    logger = logging.getLogger('asymmzoo.quantize')
    logger.setLevel(logging.WARNING)
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        try:
            qnet = q.quantize_net_v2(net, quantized_dtype=quantized_dtype, quantize_mode='full',
                                     quantize_granularity=granularity,
                                     exclude_layers=exclude_layers + boundary,
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
    qnet.fp32_layers = exclude_layers
    qnet.low_sqnr_layers = low
    qnet.boundary_ops = boundary
    qnet.layer_sqnr = sqnr if min_sqnr is not None else None
    return qnet


def network_sqnr(net, qnet, x, batch_size=250):
    """Signal-to-noise ratio (dB) of ``qnet``'s outputs against ``net``'s on images ``x``: the
    outputs centred per image (a softmax ignores a common shift), noise = their difference."""
    if len(x) == 0:
        raise ValueError("network_sqnr needs a non-empty batch of images")
    sig = err = 0.0
    with mx.autograd.predict_mode():
        for i in range(0, len(x), batch_size):
            xb = mx.nd.array(x[i:i + batch_size])
            a, b = net(xb), qnet(xb)
            a = (a[0] if isinstance(a, (list, tuple)) else a).asnumpy().astype(np.float64)
            b = (b[0] if isinstance(b, (list, tuple)) else b).asnumpy().astype(np.float64)
            a -= a.mean(axis=1, keepdims=True)
            b -= b.mean(axis=1, keepdims=True)
            sig += float((a ** 2).sum())
            err += float(((a - b) ** 2).sum())
    if sig == 0:
        raise ValueError("network_sqnr: the reference outputs are constant over these images")
    return 10.0 * np.log10(sig / max(err, 1e-30))


def quantize_to_target(net, calib_x, tune_x, target_db, min_sqnr=DEFAULT_MIN_SQNR, step_db=2.0,
                       max_db=60.0, log=None, **kwargs):
    """Accuracy-aware fallback: quantize with ``min_sqnr``; while the network's output SQNR on the
    tuning images ``tune_x`` (:func:`network_sqnr`; use images apart from ``calib_x``) is below
    ``target_db``, raise the per-layer threshold by ``step_db`` (more of the noisiest layers stay
    fp32) and quantize again, up to ``max_db``. Trades INT8 speed for fidelity with one
    network-level number. Returns the first block that meets the target (else the last one tried);
    it carries ``tuning``: ``[{'min_sqnr_db', 'low_sqnr_layers', 'output_sqnr_db'}, ...]`` (the
    threshold, how many layers it kept in fp32, the output SQNR reached).
    ``kwargs`` go to :func:`quantize_net`."""
    say = log or (lambda m: None)
    if target_db is None or not np.isfinite(target_db):
        raise ValueError("target_db must be a number of dB, got %r" % (target_db,))
    if min_sqnr is None:
        raise ValueError("quantize_to_target raises the per-layer threshold min_sqnr; it needs a "
                         "starting value (default DEFAULT_MIN_SQNR = %.0f dB)" % DEFAULT_MIN_SQNR)
    sqnr, trace, t = None, [], float(min_sqnr)
    while True:
        qnet = quantize_net(net, calib_x, min_sqnr=t, sqnr=sqnr, **kwargs)
        sqnr = qnet.layer_sqnr
        out_db = network_sqnr(net, qnet, tune_x)
        trace.append({'min_sqnr_db': t, 'low_sqnr_layers': len(qnet.low_sqnr_layers),
                      'output_sqnr_db': out_db})
        say('layers under %.0f dB in fp32 (%d): output SQNR %.1f dB (target %.1f)'
            % (t, len(qnet.low_sqnr_layers), out_db, target_db))
        if out_db >= target_db or t + step_db > max_db:
            break
        t += step_db
    qnet.tuning = trace
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


def _builder(key):
    """The registry builder of ``key`` and the model its ``base=`` names (an ACNet / RotateConv twin is
    what its base is), as ``(function, fixed keyword arguments)``."""
    from ..registry import _REGISTRY
    fn = _REGISTRY[key]
    kw = dict(getattr(fn, 'keywords', None) or {})
    base = kw.get('base')
    if isinstance(base, str) and base.lower() in _REGISTRY and base.lower() != key:
        return _builder(base.lower())
    return getattr(fn, 'func', fn), kw


def check_quantizable(name):
    """The registry name ``name`` (lowercased) if it is an image-classification network of the zoo
    (built by ``asymmzoo.models``: AsymmNet / MobileNetV3, the CIFAR and ImageNet ACNet bases and their
    ``_acb`` twins, the RotateConv models); a ``ValueError`` naming what quantize supports otherwise
    (detection, pose, action and face models: their heads are not 10-class digit classifiers)."""
    from ..registry import is_registered, _unknown
    supported = ("quantize takes an image-classification network of the zoo (asymmnet_* / mobilenetv3_*, "
                 "cifar_*, resnet18_v1, densenet121, alexnet_bn, rotate_sn and their _acb / _rot forms)")
    if not isinstance(name, str):
        raise TypeError("check_quantizable takes a registry name, got %r" % (name,))
    if name.startswith('gluoncv:'):
        raise ValueError("%s; %s is a GluonCV network for bench comparisons" % (supported, name))
    key = name.lower()
    if not is_registered(key):
        raise _unknown(key)
    fn, kw = _builder(key)
    module = getattr(fn, '__module__', '') or ''
    if module == 'asymmzoo.models' or module.startswith('asymmzoo.models.'):
        return key
    task = next((t for m, t in _DOWNSTREAM_TASKS.items() if module == m or module.startswith(m + '.')), None)
    what = ('%s model (%s)' % (task, module)) if task else 'not one of them (built by %s.%s)' \
        % (module, getattr(fn, '__name__', fn))
    hint = '; its backbone %s can be quantized' % kw['backbone'] \
        if task and isinstance(kw.get('backbone'), str) else ''
    raise ValueError("%s; %s is %s%s" % (supported, key, what, hint))


def _check_report_settings(epochs, size, calib_examples, params):
    """Refuse, before any training, sizes and counts that would fail (or silently mean less) later."""
    from ..data import load_digits
    if params is None and (not _is_int(epochs) or epochs < 1):
        raise ValueError("epochs=%r: give a positive number of training epochs (CLI: --epochs)" % (epochs,))
    if not _is_int(size) or not MIN_SIZE <= size <= MAX_SIZE:
        raise ValueError("size=%r: give an image size of %d to %d pixels (CLI: --size; the digits are "
                         "28x28, resized to it)" % (size, MIN_SIZE, MAX_SIZE))
    n_train = len(load_digits('train')[1])
    if not _is_int(calib_examples) or not 1 <= calib_examples <= n_train:
        raise ValueError("calib_examples=%r: give 1 to %d, the number of training digits (CLI: "
                         "--calib-examples)" % (calib_examples, n_train))


def _input_channels(net):
    from .export import default_input_shape
    return int(default_input_shape(net)[1])


def _runs_on(net, shape):
    """None if ``net`` (initialised, or deferred) runs on zeros of ``shape``, else MXNet's reason."""
    try:
        with mx.autograd.predict_mode():
            out = net(mx.nd.zeros(shape))
            for o in (out if isinstance(out, (list, tuple)) else [out]):
                o.wait_to_read()
    except mx.base.MXNetError as e:
        lines = [l.strip() for l in str(e).strip().splitlines() if l.strip()]
        return (lines[-1] if lines else 'MXNetError')[:200]
    return None


def check_file_prefix(prefix, said):
    """Refuse a ``prefix`` that cannot name ``prefix-symbol.json`` / ``prefix-0000.params`` (empty,
    a folder, ending in a separator); ``said`` names it in the error."""
    if not isinstance(prefix, str) or not prefix or prefix.endswith(('/', os.sep)) or os.path.isdir(prefix):
        raise ValueError("%s is not a file prefix; give one like out/model_int8 (writes "
                         "out/model_int8-symbol.json and out/model_int8-0000.params)" % said)


def save_quantized(qnet, prefix, x, atol=1e-5):
    """Write the INT8 network ``qnet`` (from :func:`quantize_net`) as MXNet symbol files,
    ``prefix-symbol.json`` and ``prefix-0000.params`` (the names ``HybridBlock.export`` gives; each file
    written atomically), then reload them (``mx.gluon.SymbolBlock.imports``, input ``data``) and check
    that they give ``qnet``'s outputs on ``x`` (numpy NCHW, inputs as ``qnet`` takes them) within
    ``atol`` (relative to the largest output); a ``ValueError`` if not. The params file holds the
    float32 weights and the graph the calibrated INT8 ranges (MXNet quantizes the weights when it binds
    the graph), so it is about the fp32 checkpoint's size. Returns
    ``{'symbol', 'params', 'max_abs_diff'}``."""
    from ..store import atomic_export
    from .export import load_symbol
    check_file_prefix(prefix, 'save_quantized: %r' % (prefix,))
    from .math import as_numpy_list, max_abs_diff, max_abs_finite
    xb = mx.nd.array(np.asarray(x, dtype=np.float32))
    with mx.autograd.predict_mode():
        ref = as_numpy_list(qnet(xb))   # also gives a hybridized block the graph that export writes
    found = {}

    def check(sym, par):   # on the written files, before they replace anything at prefix
        with mx.autograd.predict_mode():
            got = as_numpy_list(load_symbol(sym, par)(xb))
        try:
            diff = max_abs_diff(ref, got)
        except ValueError:   # another output count or shape
            diff = float('inf')
        scale = max_abs_finite(ref)
        if not diff <= atol * max(1.0, scale):
            raise ValueError("%s-symbol.json reloaded as a SymbolBlock differs from the INT8 network by "
                             "%.3g: the symbol export does not reproduce it (nothing written)"
                             % (prefix, diff))
        found['diff'] = diff

    sym, par = atomic_export(qnet, prefix, check=check)
    return {'symbol': sym, 'params': par, 'max_abs_diff': found['diff']}


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


def _check_sqnr_settings(min_sqnr, target_sqnr, calib_mode, calib_examples):
    """Refuse, before any training, SQNR settings that would fail after it."""
    import math
    from ..data import load_digits
    for what, v in (('min_sqnr', min_sqnr), ('target_sqnr', target_sqnr)):
        if v is not None and not (math.isfinite(v) and v > 0):
            raise ValueError("%s=%r: give a finite number of dB above 0, or None to turn it off "
                             "(CLI: --%s 0)" % (what, v, what.replace('_', '-')))
    if min_sqnr is not None and calib_mode != 'naive':
        raise ValueError("the SQNR fallback models naive (min/max) calibration; with calib_mode=%r pass "
                         "min_sqnr=None and target_sqnr=None (CLI: --min-sqnr 0)" % (calib_mode,))
    if target_sqnr is not None:
        if min_sqnr is None:
            raise ValueError("target_sqnr=%r raises the per-layer threshold min_sqnr, but min_sqnr is None "
                             "(no SQNR fallback): give min_sqnr a start (default %.0f dB) or pass "
                             "target_sqnr=None (CLI: --target-sqnr 0)" % (target_sqnr, DEFAULT_MIN_SQNR))
        n_train = len(load_digits('train')[1])
        if calib_examples >= n_train:
            raise ValueError("target_sqnr tunes on training digits apart from the %d calibration ones, but "
                             "there are only %d: lower calib_examples (CLI: --calib-examples) or pass "
                             "target_sqnr=None (CLI: --target-sqnr 0)" % (calib_examples, n_train))


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
        from ..store import load_parameters_checked
        load_parameters_checked(net, params)
        trained = 'loaded %s' % params
    else:
        net.initialize(mx.init.MSRAPrelu(), force_reinit=True)
    channels = _input_channels(net)
    from .export import default_input_shape
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
            from ..store import atomic_save_parameters
            atomic_save_parameters(net, save_params)
    xv, yv = digits_arrays('val', size, channels=channels)
    xc, _ = digits_arrays('train', size, channels=channels, limit=None)
    order = np.random.RandomState(seed).permutation(len(xc))
    xt = xc[order[calib_examples:calib_examples + tune_examples]]
    xc = xc[order[:calib_examples]]
    deploy(net, verify=True, probe=mx.nd.array(xv[:4]))
    net.hybridize(static_alloc=True, static_shape=True)
    acc32, p32 = evaluate(net, xv, yv)
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
    acc8, p8 = evaluate(qnet, xv, yv)
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
