"""Signal-to-quantization-noise ratios: per layer (:func:`layer_sqnr`) and of the whole network's output
(:func:`network_sqnr`).

:func:`layer_sqnr` measures, on the calibration images, each layer's SQNR with the rounding the
quantizer will apply: input per tensor over its calibrated range, weights per output channel, and the
output of what oneDNN fuses into the conv (BatchNorm, ReLU or residual sum), which MXNet requantizes
per tensor. MXNet's quantizer has one activation scale per tensor; a depthwise conv whose input
channels differ in spread (a nearly constant channel that BatchNorm then scales up by 100x or more)
loses its small channels to the rounding, and layers like these are where whole networks broke
(MobileNetV3-L x0.5 and x1.0 on the digits: -7.5 points with every conv quantized). The fp32 fallback
of :func:`asymmzoo.quantize.quantize_net` keeps such layers in fp32.
"""
import mxnet as mx
import numpy as np

from .graph import _graph


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
