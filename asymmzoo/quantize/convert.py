"""INT8 conversion with MXNet's oneDNN backend, and what stays in fp32.

:func:`quantize_net` wraps ``mxnet.contrib.quantization.quantize_net_v2`` (naive min/max calibration,
oneDNN fusion of conv + BN + ReLU). MXNet 1.9.1's quantized element-wise multiply fails on the h-swish /
SE products of MobileNetV3 and AsymmNet (``TBlob.get_with_shape: data type do not match``: uint8 vs
int8), so ``elemwise_mul`` / ``broadcast_mul`` stay in fp32 by default
(:data:`DEFAULT_EXCLUDED_OPERATORS`); convolutions, pooling, concat and the additions are quantized.
``exclude_first_last`` keeps the stem conv and the classifier in fp32 (on a digits-trained
MobileNetV3-L x1.0 that took the INT8 loss from 1.0 to 0 points).

Layers whose INT8 output would be too noisy stay in fp32 too (``min_sqnr``, default
:data:`DEFAULT_MIN_SQNR` dB, measured by :func:`asymmzoo.quantize.layer_sqnr`), and so do the concats /
poolings next to an fp32 neighbour (:func:`boundary_data_ops`). The default threshold was chosen on
held-out training digits, not on the validation digits the reports use. :func:`quantize_to_target`
makes the fallback accuracy-aware: the threshold rises until the network's output is
:data:`DEFAULT_TARGET_SQNR` dB clean on tuning images apart from the calibration ones.
"""
import logging

import mxnet as mx
import numpy as np

from .graph import _graph, first_last_layers
from .sqnr import layer_sqnr, network_sqnr

DEFAULT_EXCLUDED_OPERATORS = ('elemwise_mul', 'broadcast_mul', '_mul', '_Mul')
DEFAULT_MIN_SQNR = 24.0
#: :func:`quantize_report` / ``asymmzoo quantize`` raise the per-layer threshold from
#: :data:`DEFAULT_MIN_SQNR` until the INT8 logits reach this SQNR against fp32 on training digits apart
#: from the calibration ones (all 30 AsymmNet / MobileNetV3 backbones then lose <= 0.5 point).
DEFAULT_TARGET_SQNR = 25.0

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
