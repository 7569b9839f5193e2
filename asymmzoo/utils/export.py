"""Exporting zoo models: MXNet symbol files, ONNX (verified in onnxruntime), and the fastest predictor.

The documented deploy path (docs/performance.md, "The fastest way to deploy")::

    net = asymmzoo.get_model('asymmnet_large_1.0', pretrained=...)   # or any trained Gluon net
    predict = asymmzoo.utils.export.fastest_predictor(net)           # deploy -> ONNX -> onnxruntime
    probs = predict(batch_nchw_float32)                              # numpy in, numpy out

``fastest_predictor`` runs ``asymmzoo.deploy`` (ACB / RotateConv -> plain convs), exports with MXNet's
ONNX exporter, cleans the graph so onnxruntime can constant-fold it (weights are moved out of the
graph inputs; BN folds into the convs), rewrites MobileNetV3's four-op h-swish / h-sigmoid into ONNX's
``HardSwish`` / ``HardSigmoid`` (the same function, one kernel instead of four), rewrites AsymmNet's
feature-reuse concats (moved after the depthwise conv, or the projection split into partial sums),
checks the result against MXNet and returns a callable that runs one static-batch onnxruntime session
per batch size (SE scaling and residual sums then stay in onnxruntime's blocked layout; the concat
rewrites are chosen for the batch size). On the 2-core box of this project this is 4-5x faster than
MXNet's own executor; see docs/performance.md.

Nothing here imports onnx / onnxruntime until it is needed: ``import asymmzoo`` stays light.
Pinned versions: mxnet 1.9.1's exporter needs ``onnx==1.18.0`` (1.19+ fails its import check);
any current onnxruntime runs the result.
"""
import collections
import contextlib
import os
import shutil
import tempfile
import threading

import mxnet as mx
import numpy as np

from .math import as_numpy_list, max_abs_diff, max_abs_finite

__all__ = ['ExportError', 'prepare_model', 'randomize_bn_stats', 'export_symbol', 'load_symbol',
           'export_onnx', 'verify_onnx', 'onnx_session', 'static_batch_model', 'OnnxPredictor',
           'fastest_predictor', 'reuse_concat_policy', 'SPLIT_ALL_FROM_BATCH',
           'default_input_shape', 'batch_input_shape', 'max_abs_diff', 'is_detector', 'FORMATS',
           'EXPORT_OPSET']

FORMATS = ('symbol', 'onnx')


class ExportError(RuntimeError):
    """An export failed or the exported model does not reproduce MXNet's output."""


# --------------------------------------------------------------------------------------------------
# model preparation
# --------------------------------------------------------------------------------------------------

def _frames_per_item(net):
    """Input rows per batch item: 1 for image models, ``num_segments * num_crop`` frames for the
    video models (``net.frames_per_video``), whose input rows are frames."""
    return int(getattr(net, 'frames_per_video', 1) or 1)


def batch_input_shape(net, shape, batch_size):
    """``shape`` with room for ``batch_size`` items of ``net`` (frames for a video model)."""
    return (int(batch_size) * _frames_per_item(net),) + tuple(shape[1:])


def default_input_shape(net, batch_size=1):
    """The input shape of ``batch_size`` items of ``net``: its ``default_input_shape`` (C, H, W;
    3x224x224 if it has none); a video model's batch items are ``frames_per_video`` frames each."""
    shape = getattr(net, 'default_input_shape', None) or (1, 3, 224, 224)
    return batch_input_shape(net, shape, batch_size)


def is_detector(net):
    """True for GluonCV-style YOLOv3 detectors (their outputs pass through non-maximum suppression)."""
    try:
        from gluoncv.model_zoo.yolo.yolo3 import YOLOV3
    except ImportError:  # pragma: no cover
        return False
    return isinstance(net, YOLOV3)


def _iter_bns(block):
    if isinstance(block, mx.gluon.nn.BatchNorm):
        yield block
    for child in block._children.values():
        for bn in _iter_bns(child):
            yield bn


MIN_STAT_VALUES = 16   # randomize_bn_stats leaves a BN whose channels see fewer values as it is


def randomize_bn_stats(net, x):
    """Set every BatchNorm's running statistics to the statistics of its own input when ``x`` runs
    through the network, and perturb gamma/beta, so that a freshly initialised network produces
    O(1) outputs in inference mode and export checks compare meaningful numbers instead of values
    near 1e-9. The pass runs in inference mode, BN by BN (a forward pre-hook sets each BN's
    statistics from the input it is about to normalise), so it works for networks whose training
    forward needs more than images (YOLOv3's targets) and no dropout disturbs it. A BN whose
    channels see fewer than :data:`MIN_STAT_VALUES` values in ``x`` (an embedding head's 1x1 map)
    keeps its statistics. Only for randomly initialised networks: it overwrites BN statistics."""
    from .blocks import clear_cached_graphs, iter_blocks
    rng = np.random.RandomState(1)
    with mx.autograd.predict_mode():
        net(x)  # finish deferred initialisation first
    bns = list(_iter_bns(net))
    for bn in bns:
        for pname in ('gamma', 'beta'):
            p = getattr(bn, pname, None)
            if p is not None and p._data is not None:
                base = 1.0 if pname == 'gamma' else 0.0
                p.set_data(mx.nd.array(base + 0.1 * rng.standard_normal(p.shape)))

    def set_stats(bn, inputs):
        data = inputs[0]
        axis = bn._kwargs.get('axis', 1) % data.ndim
        reduce = tuple(a for a in range(data.ndim) if a != axis)
        if data.size // data.shape[axis] < MIN_STAT_VALUES:
            return   # a variance of a few values (a 1x1 map of a small batch) is noise: keep 0 / 1
        mean = data.mean(axis=reduce)
        shape = [1] * data.ndim
        shape[axis] = -1
        var = ((data - mean.reshape(shape)) ** 2).mean(axis=reduce)
        bn.running_mean.set_data(mean)
        bn.running_var.set_data(var)

    blocks = [net] + [child for _, _, _, child in iter_blocks(net)]
    active = {id(b): b._active for b in blocks if isinstance(b, mx.gluon.HybridBlock)}
    for b in blocks:   # the hooks see NDArrays only when every block runs imperatively; not
        if id(b) in active:   # hybridize(False), which would also drop static_alloc / a backend
            b._active = False
    hooks = [bn.register_forward_pre_hook(set_stats) for bn in bns]
    try:
        with mx.autograd.predict_mode():
            net(x)
    finally:
        for h in hooks:
            h.detach()
        for b in blocks:
            if id(b) in active:
                b._active = active[id(b)]
        clear_cached_graphs(net)
    return net


def prepare_model(name_or_net, deploy=True, params=None, input_shape=None, classes=None,
                  realistic_stats=True, seed=0):
    """Build (by registry name) or take a network, initialise it, optionally load ``params`` and
    deploy it (``asymmzoo.deploy``, verified). Returns ``(net, input_shape)``.

    A freshly initialised net (no ``params``) gets MSRA-initialised weights and, with
    ``realistic_stats``, BN statistics taken from a random batch (see :func:`randomize_bn_stats`).
    """
    from ..registry import get_model
    from ..deploy import deploy as deploy_net
    from ..store import classes_in_params, load_parameters_checked
    if isinstance(name_or_net, str):
        if classes is None and params:
            classes = classes_in_params(params)   # build the model the checkpoint was trained as
        kw = {} if classes is None else {'classes': classes}
        net = get_model(name_or_net, **kw)
    else:
        net = name_or_net
    shape = tuple(input_shape) if input_shape else default_input_shape(net)
    # built here (some builders return their network initialised, as GluonCV's action builders
    # do) or not initialised yet: reproducible random weights; a trained net passed in: untouched
    fresh = isinstance(name_or_net, str) or any(p._data is None for p in net.collect_params().values())
    if fresh:
        mx.random.seed(seed)
        net.initialize(mx.init.MSRAPrelu(), force_reinit=isinstance(name_or_net, str))
    if params:
        load_parameters_checked(net, params)
    elif fresh and realistic_stats:
        rng = np.random.RandomState(seed)
        randomize_bn_stats(net, mx.nd.array(rng.standard_normal(
            batch_input_shape(net, shape, max(2, shape[0] // _frames_per_item(net))))))
    with mx.autograd.predict_mode():
        net(mx.nd.zeros(batch_input_shape(net, shape, 1)))  # finish deferred init
    if deploy and not getattr(net, 'deployed', False):
        probe = mx.nd.array(np.random.RandomState(seed + 1).standard_normal(
            batch_input_shape(net, shape, 2)))
        deploy_net(net, verify=True, probe=probe)
    return net, shape


def _hybrid_forward_once(net, shape):
    if not isinstance(net, mx.gluon.HybridBlock):
        raise ExportError("%s is not a HybridBlock; only hybridizable networks can be exported"
                          % type(net).__name__)
    net.hybridize(static_alloc=True, static_shape=True)
    with mx.autograd.predict_mode():
        return net(mx.nd.zeros(shape))


# --------------------------------------------------------------------------------------------------
# symbol export
# --------------------------------------------------------------------------------------------------

def export_symbol(net, prefix, input_shape=None, epoch=0):
    """Hybridize, run once and write ``prefix-symbol.json`` / ``prefix-%04d.params``.
    Returns the two paths."""
    from ..store import atomic_export
    from ..nn.concat import plain_concat
    shape = tuple(input_shape) if input_shape else default_input_shape(net)
    with plain_concat(net):   # an exported graph runs inference only (see asymmzoo.nn.concat)
        _hybrid_forward_once(net, shape)
        return tuple(atomic_export(net, prefix, epoch=epoch))


def load_symbol(symbol_file, params_file, ctx=None):
    """Load exported symbol files back as a Gluon ``SymbolBlock`` (input name ``data``)."""
    ctx = ctx or mx.cpu()
    with_warnings = __import__('warnings')
    with with_warnings.catch_warnings():
        with_warnings.simplefilter('ignore')
        return mx.gluon.SymbolBlock.imports(symbol_file, ['data'], params_file, ctx=ctx)


# --------------------------------------------------------------------------------------------------
# ONNX export
# --------------------------------------------------------------------------------------------------

def _import_onnx():
    try:
        import onnx  # noqa: F401
    except ImportError as e:
        raise ImportError("ONNX export needs the onnx package pinned for mxnet 1.9.1: "
                          "pip install 'onnx==1.18.0' onnxruntime") from e
    return onnx


def _import_ort():
    try:
        import onnxruntime  # noqa: F401
    except ImportError as e:
        raise ImportError("running ONNX models needs onnxruntime: pip install onnxruntime") from e
    return onnxruntime


def _strip_initializer_inputs(model):
    """MXNet's exporter lists every weight as a graph input too, which stops onnxruntime from
    constant-folding them (no BN folding); drop those inputs."""
    inits = {i.name for i in model.graph.initializer}
    keep = [i for i in model.graph.input if i.name not in inits]
    del model.graph.input[:]
    model.graph.input.extend(keep)
    return model


def _name_nodes(model):
    """The exporter leaves some nodes unnamed: give every node a unique name (rewrites use them)."""
    seen = set()
    for k, n in enumerate(model.graph.node):
        if not n.name or n.name in seen:
            n.name = '%s_%s_%d' % (n.name or 'node', n.op_type, k)
        seen.add(n.name)


def _fuse_hard_activations(model):
    """Rewrite ``Div(Clip(Add(x, 3), 0, 6), 6)`` -> ``HardSigmoid(x; alpha=1/6, beta=1/2)`` and
    ``Mul(x, HardSigmoid(x))`` -> ``HardSwish(x)``: the same function in one kernel instead of four.
    ``HardSwish`` needs opset 14: a graph exported at opset 13 (:data:`EXPORT_OPSET`) is declared
    14 when one is made (no operator of these graphs changes meaning between 13 and 14). Returns
    the number of rewritten activations."""
    from onnx import helper, numpy_helper
    g = model.graph
    opset = max([o.version for o in model.opset_import if o.domain in ('', 'ai.onnx')] or [0])
    _name_nodes(model)
    consts = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    for n in g.node:
        if n.op_type == 'Constant':
            for a in n.attribute:
                if a.name == 'value':
                    consts[n.output[0]] = numpy_helper.to_array(a.t)
    producer = {o: n for n in g.node for o in n.output}
    n_users = {}
    for n in g.node:
        for i in n.input:
            n_users[i] = n_users.get(i, 0) + 1
    for o in g.output:
        n_users[o.name] = n_users.get(o.name, 0) + 1

    def scalar(name, value):
        v = consts.get(name)
        return v is not None and v.size == 1 and abs(float(v.reshape(-1)[0]) - value) < 1e-7

    def clip_0_6(clip):
        if len(clip.input) >= 3:
            return scalar(clip.input[1], 0.0) and scalar(clip.input[2], 6.0)
        attrs = {a.name: a.f for a in clip.attribute}
        return abs(attrs.get('min', -1) - 0.0) < 1e-7 and abs(attrs.get('max', -1) - 6.0) < 1e-7

    replace, remove = {}, set()   # node name -> new node ; names of nodes to drop
    hsig = {}                     # HardSigmoid output -> (its x, name of the Div it replaces)
    for div in g.node:
        if div.op_type != 'Div' or not scalar(div.input[1], 6.0):
            continue
        clip = producer.get(div.input[0])
        if clip is None or clip.op_type != 'Clip' or not clip_0_6(clip) or n_users[clip.output[0]] != 1:
            continue
        addn = producer.get(clip.input[0])
        if addn is None or addn.op_type != 'Add' or n_users[addn.output[0]] != 1:
            continue
        if scalar(addn.input[1], 3.0):
            x = addn.input[0]
        elif scalar(addn.input[0], 3.0):
            x = addn.input[1]
        else:
            continue
        replace[div.name] = helper.make_node('HardSigmoid', [x], [div.output[0]], alpha=1.0 / 6,
                                             beta=0.5, name=div.name + '_hsigmoid')
        remove.update([clip.name, addn.name])
        hsig[div.output[0]] = (x, div.name)
    bumpable = opset == 13 and not any(  # BN-14 allows its statistics outputs only in training
        n.op_type == 'BatchNormalization' and len([o for o in n.output if o]) > 1 for n in g.node)
    if opset >= 14 or bumpable:
        for mul in g.node:
            if mul.op_type != 'Mul':
                continue
            a, b = mul.input[0], mul.input[1]
            for h, x in ((b, a), (a, b)):
                if h in hsig and hsig[h][0] == x and n_users[h] == 1:
                    div_name = hsig.pop(h)[1]
                    del replace[div_name]
                    remove.add(div_name)
                    replace[mul.name] = helper.make_node('HardSwish', [x], [mul.output[0]],
                                                         name=mul.name + '_hswish')
                    break
    if not replace:
        return 0
    if opset < 14 and any(n.op_type == 'HardSwish' for n in replace.values()):
        for o in model.opset_import:
            if o.domain in ('', 'ai.onnx'):
                o.version = 14
    new_nodes = [replace.get(n.name, n) for n in g.node if n.name not in remove]
    del g.node[:]
    g.node.extend(new_nodes)
    used = {i for n in g.node for i in n.input} | {o.name for o in g.output}
    keep = [i for i in g.initializer if i.name in used]
    del g.initializer[:]
    g.initializer.extend(keep)
    return len(replace)


SPLIT_ALL_FROM_BATCH = 16


def reuse_concat_policy(strides, shape, has_se):
    """Default choice, per AsymmNet feature-reuse concat, of :func:`_split_concats`' rewrite.

    ``shape`` is the depthwise output's inferred shape (N, C, H, W); N is known when the batch size
    is fixed (:func:`static_batch_model`, ``export_onnx(dynamic_batch=False)``), else None.
    ``has_se`` is kept in the signature for policies of your own (the default no longer needs it).

    * N >= ``SPLIT_ALL_FROM_BATCH`` (16) -> ``'split'`` everywhere: at large batches the copies
      cost more than the extra partial convs (per-node kernel time of asymmnet_large_1.0 at batch
      32, static shapes: 131 ms split vs 144 ms with the small-batch rule; 61 vs 65 ms at 16;
      equal at 4 and 8);
    * otherwise (batch 1 to 15, or a symbolic batch), per block:

      * strided depthwise -> ``'late'``: the concat moves after the depthwise conv, onto maps 4x
        smaller (most of the copy's cost is the 112x112 / 56x56 block inputs);
      * stride 1 -> ``'keep'``: one copy, and the projection stays one conv that onnxruntime fuses
        with the residual sum. Splitting (no copy, the projection summed from its parts) costs
        four more nodes per block and a separate residual ``Add``; in the static-shape sessions
        that is more than the copy it saves (asymmnet_large_1.0, batch 1, 2 threads, profiled
        kernel time of the three 14x14 stride-1 blocks without SE: 198-213 us kept in 4 nodes vs
        221-235 us split in 8; the whole network was 2-3% faster in paired runs at batch 1, 4
        and 8, asymmnet_small_1.0 5-10%, equal with one thread).
    """
    if shape and shape[0] and shape[0] >= SPLIT_ALL_FROM_BATCH:
        return 'split'
    return 'late' if list(strides or [1, 1]) != [1, 1] else 'keep'


def _split_reused_concats(model, policy=reuse_concat_policy):
    """See :func:`_split_concats`. Returns the number of concats rewritten."""
    _name_nodes(model)
    return _split_concats(model, policy)


def _split_concats(model, policy=reuse_concat_policy):
    """AsymmNet's rewrites of the feature-reuse concat ``[X]*r | Y | [X]*r`` (same function).

    A depthwise conv, its BN and activation act channel by channel, so the concat can move after
    them (``'late'``)::

        Concat(X, Y, X) -> DWConv -> BN -> act  =  Concat(act(BN_i(DWConv_i(part_i))))

    which copies the (strided, smaller) depthwise outputs instead of the block input. And a 1x1
    projection of a concatenation is the sum of the projections of its parts (``'split'``)::

        Concat(X, Y, X) -> DWConv -> BN -> act [-> SE] -> Conv1x1 -> BN
      = sum_i Conv1x1_i(act(BN_i(DWConv_i(part_i)))) [SE: pooled parts concatenated, scale split]

    with the projection's BN folded into the partial 1x1 convs: no copy at all. ``policy(strides,
    shape, has_se)`` picks ``'late'``, ``'split'`` or ``'keep'`` per concat (default
    :func:`reuse_concat_policy`). Float summation order aside the function is unchanged; the export
    check compares with MXNet. Returns the number of rewrites.
    """
    from onnx import helper, numpy_helper
    g = model.graph
    shapes = _inferred_shapes(model)
    inits = {i.name: i for i in g.initializer}

    def arr(name):
        return numpy_helper.to_array(inits[name]) if name in inits else None

    users = {}
    for n in g.node:
        for i in n.input:
            users.setdefault(i, []).append(n)
    for o in g.output:
        users.setdefault(o.name, []).append(None)

    def only_user(name, op=None):
        u = users.get(name, [])
        if len(u) != 1 or u[0] is None or (op and u[0].op_type != op):
            return None
        return u[0]

    def attr(node, key, default=None):
        for a in node.attribute:
            if a.name == key:
                return helper.get_attribute_value(a)
        return default

    new_inits, count = [], 0
    remove, insert_at = set(), {}   # node names to drop; name of the node after which to insert

    def add_init(name, value):
        new_inits.append(numpy_helper.from_array(np.ascontiguousarray(value, dtype=np.float32), name))
        return name

    def dw_parts(tag, cat, chans, dw, bn, act):
        """Per concat part: its slice of the depthwise conv, BN and activation (node list, parts)."""
        wdw = arr(dw.input[1])
        gamma, beta, mean, var = [arr(i) for i in bn.input[1:5]]
        eps = attr(bn, 'epsilon', 1e-5)
        d_attrs = {a.name: helper.get_attribute_value(a) for a in dw.attribute}
        a_attrs = {a.name: helper.get_attribute_value(a) for a in act.attribute}
        nodes, parts, start = [], [], 0
        for k, (src, c) in enumerate(zip(cat.input, chans)):
            sl = np.arange(start, start + c)
            start += c
            p = '%s_part%d' % (tag, k)
            nodes.append(helper.make_node('Conv', [src, add_init(p + '_dw_w', wdw[sl])], [p + '_dw'],
                                          name=p + '_dw', **dict(d_attrs, group=c)))
            nodes.append(helper.make_node(
                'BatchNormalization', [p + '_dw', add_init(p + '_bn_g', gamma[sl]),
                                       add_init(p + '_bn_b', beta[sl]), add_init(p + '_bn_m', mean[sl]),
                                       add_init(p + '_bn_v', var[sl])],
                [p + '_bn'], name=p + '_bn', epsilon=eps))
            nodes.append(helper.make_node(act.op_type, [p + '_bn'] + list(act.input[1:]), [p + '_act'],
                                          name=p + '_act', **a_attrs))
            parts.append((p, sl))
        return nodes, parts

    for cat in list(g.node):
        if cat.op_type != 'Concat' or attr(cat, 'axis') != 1 or len(cat.input) < 2:
            continue
        chans = [shapes.get(i, [None, None])[1] for i in cat.input]
        if any(c is None for c in chans):
            continue
        dw = only_user(cat.output[0], 'Conv')
        if dw is None or len(dw.input) != 2 or arr(dw.input[1]) is None:
            continue
        total = sum(chans)
        wdw = arr(dw.input[1])
        if attr(dw, 'group', 1) != total or wdw.shape[0] != total:
            continue
        bn = only_user(dw.output[0], 'BatchNormalization')
        if bn is None or any(arr(i) is None for i in bn.input[1:5]):
            continue
        act = only_user(bn.output[0])
        if act is None or act.op_type not in ('Relu', 'HardSwish', 'HardSigmoid', 'Clip', 'Sigmoid'):
            continue
        if act.op_type == 'Clip' and any(arr(i) is None for i in act.input[1:] if i):
            continue
        strides = attr(dw, 'strides', [1, 1])
        has_se = {n.op_type for n in users.get(act.output[0], []) if n is not None} == \
            {'GlobalAveragePool', 'Mul'}
        choice = policy(strides, shapes.get(act.output[0]), has_se)
        if choice not in ('late', 'split', 'keep'):
            raise ValueError("reuse-concat policy returned %r; expected 'late', 'split' or 'keep'"
                             % (choice,))
        if choice == 'keep':
            continue
        if choice == 'late':
            # depthwise / BN / activation per part, the concat moved after them (on the strided,
            # smaller maps); SE and projection untouched
            tag = cat.name
            nodes, _ = dw_parts(tag, cat, chans, dw, bn, act)
            nodes.append(helper.make_node('Concat', ['%s_part%d_act' % (tag, k)
                                                     for k in range(len(chans))],
                                          [act.output[0]], name=tag + '_late', axis=1))
            remove.update(n.name for n in (cat, dw, bn, act))
            insert_at[act.name] = nodes
            count += 1
            continue
        se = None
        u = users.get(act.output[0], [])
        if len(u) == 1 and u[0] is not None and u[0].op_type == 'Conv':
            proj = u[0]
        elif len(u) == 2 and {n.op_type for n in u if n is not None} == {'GlobalAveragePool', 'Mul'}:
            gap = [n for n in u if n.op_type == 'GlobalAveragePool'][0]
            mul = [n for n in u if n.op_type == 'Mul'][0]
            fc1 = only_user(gap.output[0], 'Conv')
            relu = fc1 is not None and only_user(fc1.output[0])
            fc2 = relu is not None and relu is not False and only_user(relu.output[0], 'Conv')
            hs = fc2 is not None and fc2 is not False and only_user(fc2.output[0])
            if not hs or hs.op_type not in ('HardSigmoid', 'Sigmoid') or mul.input[1] != hs.output[0] \
                    or mul.input[0] != act.output[0] or relu.op_type != 'Relu' or \
                    arr(fc2.input[1]) is None or len(fc2.input) < 3 or arr(fc2.input[2]) is None:
                continue
            proj = only_user(mul.output[0], 'Conv')
            se = (gap, fc1, relu, fc2, hs, mul)
        else:
            continue
        if proj is None or len(proj.input) != 2 or arr(proj.input[1]) is None or \
                tuple(arr(proj.input[1]).shape[2:]) != (1, 1) or attr(proj, 'group', 1) != 1:
            continue
        pbn = only_user(proj.output[0], 'BatchNormalization')
        if pbn is None or any(arr(i) is None for i in pbn.input[1:5]):
            continue
        # ---- rewrite ----
        tag = cat.name
        pg, pb_, pm, pv = [arr(i) for i in pbn.input[1:5]]
        peps = attr(pbn, 'epsilon', 1e-5)
        pscale = pg / np.sqrt(pv + peps)
        pbias = pb_ - pm * pscale
        wproj = arr(proj.input[1]) * pscale[:, None, None, None]
        nodes, parts = dw_parts(tag, cat, chans, dw, bn, act)
        feats = [p + '_act' for p, _ in parts]
        if se is not None:
            gap, fc1, relu, fc2, hs, mul = se
            for p, _ in parts:
                nodes.append(helper.make_node('GlobalAveragePool', [p + '_act'], [p + '_gap'],
                                              name=p + '_gap'))
            nodes.append(helper.make_node('Concat', [p + '_gap' for p, _ in parts], [tag + '_se_in'],
                                          name=tag + '_se_in', axis=1))
            nodes.append(helper.make_node('Conv', [tag + '_se_in'] + list(fc1.input[1:]),
                                          [fc1.output[0]], name=fc1.name + '_split',
                                          **{a.name: helper.get_attribute_value(a) for a in fc1.attribute}))
            nodes.append(relu)
            w2, b2 = arr(fc2.input[1]), arr(fc2.input[2])
            hs_attrs = {a.name: helper.get_attribute_value(a) for a in hs.attribute}
            feats = []
            for p, sl in parts:
                nodes.append(helper.make_node('Conv', [relu.output[0], add_init(p + '_fc2_w', w2[sl]),
                                                       add_init(p + '_fc2_b', b2[sl])],
                                              [p + '_fc2'], name=p + '_fc2',
                                              **{a.name: helper.get_attribute_value(a)
                                                 for a in fc2.attribute}))
                nodes.append(helper.make_node(hs.op_type, [p + '_fc2'], [p + '_gate'], name=p + '_gate',
                                              **hs_attrs))
                nodes.append(helper.make_node('Mul', [p + '_act', p + '_gate'], [p + '_se'],
                                              name=p + '_se'))
                feats.append(p + '_se')
            remove.update(n.name for n in (gap, fc1, relu, fc2, hs, mul))
        acc = None
        pr_attrs = {a.name: helper.get_attribute_value(a) for a in proj.attribute}
        for k, ((p, sl), f) in enumerate(zip(parts, feats)):
            ins = [f, add_init(p + '_proj_w', wproj[:, sl])]
            if k == 0:
                ins.append(add_init(p + '_proj_b', pbias))
            last = k == len(parts) - 1
            out = p + '_proj'
            nodes.append(helper.make_node('Conv', ins, [out], name=out, **pr_attrs))
            if acc is None:
                acc = out
            else:
                s_out = pbn.output[0] if last else p + '_sum'
                nodes.append(helper.make_node('Add', [acc, out], [s_out], name=p + '_sum'))
                acc = s_out
        remove.update(n.name for n in (cat, dw, bn, act, proj, pbn))
        insert_at[pbn.name] = nodes
        count += 1
    if not count:
        return 0
    new_nodes = []
    for n in g.node:
        if n.name in insert_at:
            new_nodes.extend(insert_at[n.name])
        elif n.name not in remove:
            new_nodes.append(n)
    del g.node[:]
    g.node.extend(new_nodes)
    g.initializer.extend(new_inits)
    used = {i for n in g.node for i in n.input} | {o.name for o in g.output}
    keep = [i for i in g.initializer if i.name in used]
    del g.initializer[:]
    g.initializer.extend(keep)
    return count


def _inferred_shapes(model):
    """``{tensor name: [dim or None, ...]}`` from ONNX shape inference (empty if it fails)."""
    import onnx
    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    except Exception:  # pragma: no cover - exotic graphs
        return {}
    shapes = {}
    for vi in list(inferred.graph.value_info) + list(inferred.graph.input) + list(inferred.graph.output):
        dims = vi.type.tensor_type.shape.dim
        shapes[vi.name] = [d.dim_value if d.HasField('dim_value') else None for d in dims]
    return shapes


def _blocked_se_scaling(model):
    """SE scaling ``Mul(X, s)`` with ``s`` of shape (N, C, 1, 1) broadcast over X's known (H, W)
    becomes ``Mul(X, Resize(s -> H x W, nearest))``: the same numbers (nearest upsampling of a 1x1
    map replicates it), but onnxruntime then keeps the scaling in its blocked NCHWc layout -- the
    Resize runs as its NCHWc ``Upsample`` and the Mul sees two equal blocked shapes -- instead of
    reordering X to NCHW and back around a broadcasting Mul (two full copies of the map per SE
    block). onnxruntime proves the shapes equal only when the batch size is fixed; with a symbolic
    batch the extra op costs ~2%, so :func:`static_batch_model` applies this, not the dynamic
    export. Returns the number of rewritten Muls."""
    from onnx import helper, numpy_helper
    g = model.graph
    if not any(o.domain in ('', 'ai.onnx') and o.version >= 13 for o in model.opset_import):
        return 0   # Resize without a roi input needs opset 13
    shapes = _inferred_shapes(model)
    new_nodes, new_inits, count = [], [], 0
    for n in g.node:
        if n.op_type == 'Mul' and len(n.input) == 2:
            x, s = (shapes.get(i) for i in n.input)
            if x and s and len(x) == 4 and len(s) == 4 and s[2:] == [1, 1] and \
                    None not in x[1:] and x[2:] != [1, 1] and s[1] == x[1]:
                base = n.name or n.output[0]
                scales = base + '_se_scales'
                new_inits.append(numpy_helper.from_array(
                    np.array([1, 1, x[2], x[3]], dtype=np.float32), scales))
                full = base + '_se_full'
                new_nodes.append(helper.make_node(
                    'Resize', [n.input[1], '', scales], [full], name=base + '_se_resize',
                    mode='nearest', coordinate_transformation_mode='asymmetric', nearest_mode='floor'))
                n.input[1] = full
                count += 1
        new_nodes.append(n)
    if count:
        del g.node[:]
        g.node.extend(new_nodes)
        g.initializer.extend(new_inits)
    return count


def _set_batch(model, batch_size):
    """Fix the symbolic batch dimension of the graph's data inputs to ``batch_size`` rows (a file
    exported with a fixed batch must be asked for that batch). The outputs' batch follows by shape
    inference (a video model's is rows / frames per video, so it is not set here)."""
    inits = {i.name for i in model.graph.initializer}
    for vi in [v for v in model.graph.input if v.name not in inits]:
        dims = vi.type.tensor_type.shape.dim
        if not len(dims):
            continue
        if dims[0].HasField('dim_value'):
            if dims[0].dim_value != int(batch_size):
                raise ValueError("%r has a fixed batch size of %d, not %d: export with a dynamic batch "
                                 "(export_onnx's default) to run other batch sizes"
                                 % (vi.name, dims[0].dim_value, batch_size))
            continue
        dims[0].Clear()
        dims[0].dim_value = int(batch_size)
    del model.graph.value_info[:]  # re-inferred by onnxruntime for the fixed batch
    return model


def static_batch_model(path_or_model, batch_size, split_concats=True, pad_block=None):
    """The exported (dynamic-batch) ONNX model with its batch size fixed to ``batch_size`` and the
    SE scaling rewritten for the blocked layout (:func:`_blocked_se_scaling`): with static shapes
    onnxruntime's NCHWc transformer can prove the residual sums' and SE scalings' operands equal in
    shape and keeps the whole network in its blocked layout (one reorder at the output).
    AsymmNet's reuse concats still in the graph are rewritten for this batch size
    (``split_concats``: True = :func:`reuse_concat_policy`, or a policy callable; concats the
    export already rewrote stay as they are, so pass the graph exported with
    ``split_concats=False`` -- ``export_onnx(keep_base=True)['base_model']`` -- to let the batch
    size choose every rewrite). Channels are then padded to whole blocks of onnxruntime's NCHWc
    layout on this CPU (:func:`asymmzoo.utils.nchwc.pad_channels`; ``pad_block``: the block, default
    the one onnxruntime uses here, 0 = no padding), so the graph stays blocked on AVX-512 hosts
    (16 channels a block) as on AVX2 ones (8). Returns an ``onnx.ModelProto``; the function is
    unchanged."""
    if batch_size is None or int(batch_size) < 1:
        raise ValueError("batch_size must be a positive integer, got %r" % (batch_size,))
    onnx = _import_onnx()
    if isinstance(path_or_model, (str, os.PathLike)):
        model = onnx.load(str(path_or_model))
    else:
        model = onnx.ModelProto()
        model.CopyFrom(path_or_model)
    _set_batch(model, batch_size)
    _name_nodes(model)
    if split_concats:
        _split_reused_concats(model, policy=split_concats if callable(split_concats)
                              else reuse_concat_policy)
    _blocked_se_scaling(model)
    if pad_block is None or pad_block:
        from .nchwc import pad_channels
        _strip_initializer_inputs(model)   # weights also listed as inputs would keep their old shapes
        pad_channels(model, block=pad_block)
    return model


_UNSUPPORTED_HINT = ("mxnet 1.9.1's ONNX exporter has no converter for MXNet op %r (used by this "
                     "network). Deploy the network first (asymmzoo.deploy turns training-time blocks "
                     "into plain convolutions), rewrite that layer with ops ONNX supports, or export "
                     "with --format symbol instead.")


EXPORT_OPSET = 13
"""The ONNX opset mxnet 1.9.1's exporter writes for: its newest converters are opset 13's (with no
``opset_version`` it declares the installed onnx's newest opset, 23 for onnx 1.18, over the same
opset-13 nodes, and e.g. ``ReduceMean`` with an ``axes`` attribute is then invalid). The graph is
declared opset 14 once h-swish is fused into ``HardSwish`` (see :func:`_fuse_hard_activations`)."""


_EXPORTER_LOCK = threading.Lock()


@contextlib.contextmanager
def _exporter_opset(version):
    """Make mxnet's ``export_model`` write (and check) for opset ``version``: it has no argument for
    it and reads ``onnx.defs.onnx_opset_version()`` for its converters and the model's declared
    opset, and its graph check uses ``onnx.checker.DEFAULT_CONTEXT``."""
    import onnx
    import onnx.checker
    import onnx.defs
    with _EXPORTER_LOCK:   # process-wide state: one export at a time
        newest, ctx = onnx.defs.onnx_opset_version, onnx.checker.DEFAULT_CONTEXT
        imports = dict(ctx.opset_imports)
        try:
            onnx.defs.onnx_opset_version = lambda: version
            ctx.opset_imports = {'': version}
            yield
        finally:
            onnx.defs.onnx_opset_version = newest
            ctx.opset_imports = imports


def _run_exporter(sym_file, par_file, shape, path, dynamic_batch):
    kw = dict(dynamic=bool(dynamic_batch))
    if dynamic_batch:
        kw['dynamic_input_shapes'] = [(None,) + shape[1:]]
    import logging
    logger = logging.getLogger()
    level = logger.level
    logger.setLevel(logging.WARNING)  # the exporter logs every node at INFO
    try:
        with _exporter_opset(EXPORT_OPSET):
            mx.onnx.export_model(sym_file, par_file, [tuple(shape)], [np.float32], path, **kw)
    except AttributeError as e:
        msg = str(e)
        if 'No conversion function registered for op type' in msg:
            op = msg.split('op type')[-1].strip().split(' ')[0].rstrip('.')
            raise ExportError(_UNSUPPORTED_HINT % op) from e
        raise
    except NotImplementedError as e:
        raise ExportError("ONNX cannot express a layer of this network: %s. Export with --format "
                          "symbol instead." % e) from e
    finally:
        logger.setLevel(level)


def export_onnx(net, path, input_shape=None, dynamic_batch=True, fuse_activations=True,
                split_concats=True, verify=True, atol=1e-4, batch_sizes=(1, 2), keep_base=False):
    """Export a (deployed, initialised) Gluon network to ONNX at ``path``.

    The exporter's graph is cleaned (weights out of the graph inputs, so onnxruntime folds BN into
    the convs) and, by default, rewritten without changing its function: ``fuse_activations``
    turns the four-op h-swish / h-sigmoid into ONNX ``HardSwish`` / ``HardSigmoid``;
    ``split_concats`` moves or removes AsymmNet's feature-reuse concats (see :func:`_split_concats`;
    True: :func:`reuse_concat_policy`, or a policy callable of your own).
    ``dynamic_batch=False`` fixes the batch size to ``input_shape[0]`` and also rewrites the SE
    scaling for onnxruntime's blocked layout (:func:`_blocked_se_scaling`); the dynamic file gets
    the same at load time from ``onnx_session(path, batch_size=N)`` / :class:`OnnxPredictor`.
    With ``verify`` the file is run in onnxruntime against MXNet on random inputs and
    :class:`ExportError` raised if the max abs difference exceeds ``atol`` (``path`` is then left
    as it was: the file is written atomically, after it passed). Returns a dict with the
    path, the rewrite counts and (if verified) ``max_abs_diff`` / ``max_abs_out``; with
    ``keep_base`` also ``base_model``, the cleaned and fused graph before the concat and SE
    rewrites (an ``onnx.ModelProto``, for :func:`static_batch_model`).
    """
    from ..store import atomic_target
    onnx = _import_onnx()
    shape = tuple(input_shape) if input_shape else default_input_shape(net)
    if is_detector(net):
        raise ValueError("%s is a detector: its output goes through non-maximum suppression, which "
                         "mxnet 1.9.1's ONNX exporter does not translate faithfully (boxes differ "
                         "from MXNet's); export it as symbol files (export_symbol, `asymmzoo export "
                         "--format symbol`)" % getattr(net, 'name_in_zoo', type(net).__name__))
    frames = _frames_per_item(net)
    if not dynamic_batch and shape[0] % frames:
        raise ValueError("input_shape %s: a fixed batch of this video model is a multiple of its %d "
                         "frames per video" % (shape, frames))
    with tempfile.TemporaryDirectory(prefix='asymmzoo-onnx-') as tmp:
        one = batch_input_shape(net, shape, 1)
        sym_file, par_file = export_symbol(net, os.path.join(tmp, 'net'), one)
        _run_exporter(sym_file, par_file, shape if not dynamic_batch else one,
                      os.path.join(tmp, 'net.onnx'), dynamic_batch)
        model = onnx.load(os.path.join(tmp, 'net.onnx'))
    _strip_initializer_inputs(model)
    _name_nodes(model)
    fused = _fuse_hard_activations(model) if fuse_activations else 0
    base = None
    if keep_base:
        base = onnx.ModelProto()
        base.CopyFrom(model)
    if callable(split_concats):
        split = _split_reused_concats(model, policy=split_concats)
    else:
        split = _split_reused_concats(model) if split_concats else 0
    blocked_se = 0 if dynamic_batch else _blocked_se_scaling(model)
    onnx.checker.check_model(model)
    info = {'path': path, 'fused_activations': fused, 'split_concats': split, 'input_shape': shape,
            'blocked_se': blocked_se}
    with atomic_target(path) as tmp_path:  # a file that fails verification replaces nothing
        onnx.save(model, tmp_path)
        if verify:
            info.update(verify_onnx(net, path, shape, atol=atol, session=onnx_session(tmp_path),
                                    batch_sizes=batch_sizes if dynamic_batch
                                    else (max(1, shape[0] // _frames_per_item(net)),)))
    if keep_base:
        info['base_model'] = base
    return info


def onnx_session(path, threads=None, optimization='all', batch_size=None, profile_prefix=None):
    """An onnxruntime CPU session with full graph optimisation and ``threads`` intra-op threads
    (default: onnxruntime's choice = the number of physical cores). ``path``: a file or an
    ``onnx.ModelProto``. With ``batch_size`` the session runs :func:`static_batch_model` (that
    batch size only, fully in the blocked layout, concat rewrites chosen for the batch size). With
    ``profile_prefix`` onnxruntime's profiler records every run (``session.end_profiling()`` writes
    ``{profile_prefix}_{date}.json``)."""
    ort = _import_ort()
    so = ort.SessionOptions()
    so.graph_optimization_level = {
        'all': ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
        'extended': ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        'basic': ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        'none': ort.GraphOptimizationLevel.ORT_DISABLE_ALL}[optimization]
    so.log_severity_level = 3
    if threads:
        so.intra_op_num_threads = int(threads)
        so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    if profile_prefix:
        so.enable_profiling = True
        so.profile_file_prefix = str(profile_prefix)
    if batch_size is not None:
        # the channel padding only pays where onnxruntime's layout transformer runs (level 'all')
        path = static_batch_model(path, batch_size, pad_block=None if optimization == 'all' else 0)
    if not isinstance(path, (str, os.PathLike)):
        path = path.SerializeToString()
    return ort.InferenceSession(path, so, providers=['CPUExecutionProvider'])


def verify_onnx(net, path, input_shape=None, batch_sizes=(1, 2), atol=1e-4, seed=0, session=None):
    """Run the ONNX file in onnxruntime and MXNet on random normal inputs; raise ExportError if the
    max abs difference exceeds ``atol``. Returns ``{'max_abs_diff', 'max_abs_out'}``."""
    shape = tuple(input_shape) if input_shape else default_input_shape(net)
    sess = session or onnx_session(path)
    iname = sess.get_inputs()[0].name
    rng = np.random.RandomState(seed)
    worst, scale = 0.0, 0.0
    for bs in batch_sizes:
        x = rng.standard_normal(batch_input_shape(net, shape, bs)).astype(np.float32)
        with mx.autograd.predict_mode():
            ref = as_numpy_list(net(mx.nd.array(x)))
        got = sess.run(None, {iname: x})
        if len(got) != len(ref):
            raise ExportError("ONNX model has %d outputs, MXNet %d" % (len(got), len(ref)))
        for r, o in zip(ref, got):
            if r.shape != o.shape:
                raise ExportError("ONNX output shape %s differs from MXNet's %s" % (o.shape, r.shape))
        worst = max(worst, max_abs_diff(ref, got))   # a NaN output counts as infinitely off
        scale = max(scale, max_abs_finite(ref))
    if not worst <= atol:
        raise ExportError("onnxruntime output differs from MXNet by %.3g (> %.1g; max |out| = %.3g) "
                          "for %s" % (worst, atol, scale, path))
    return {'max_abs_diff': worst, 'max_abs_out': scale}


class OnnxPredictor(object):
    """Callable wrapper of onnxruntime: ``predict(x)`` with x a numpy / NDArray batch (N, C, H, W)
    returns a numpy array (or a list for multi-output nets).

    With ``static_batch`` (default) each batch size gets its own session of
    :func:`static_batch_model`, created on first use: static shapes let onnxruntime run the whole
    network in its blocked layout, like MXNet's ``hybridize(static_shape=True)``, and AsymmNet's
    reuse-concat rewrites are chosen for the batch size. They are built from ``source`` (default: the
    file; :func:`fastest_predictor` passes the graph before the rewrites). Building one takes
    onnxruntime's full optimisation (a second or two); the ``max_sessions`` most recently used are
    kept. With ``check`` (default) each new session is compared, on a random batch of its size, with
    the file at ``path`` (which :func:`export_onnx` verified against MXNet): :class:`ExportError` if
    they differ by more than ``atol``. ``static_batch=False`` runs the file as exported (any batch
    size, one session: ``self.session``). Not thread-safe: give each thread its own predictor."""

    def __init__(self, path, threads=None, info=None, static_batch=True, max_sessions=4, source=None,
                 check=True, atol=1e-4):
        self.path = path
        self.source = path if source is None else source  # what static sessions are built from
        self.threads = threads
        self.static_batch = bool(static_batch)
        self.max_sessions = max(1, int(max_sessions))
        self.check, self.atol = bool(check), float(atol)
        self.info = dict(info or {})
        self._sessions = collections.OrderedDict()
        self.session = None if self.static_batch else onnx_session(path, threads=threads)
        self._reference = self.session
        model = _import_onnx().load(path, load_external_data=False)
        inits = {i.name for i in model.graph.initializer}
        data = [i for i in model.graph.input if i.name not in inits][0]
        self.input_name = data.name
        # (None, C, H, W): every dimension but the batch is fixed in the exported graph
        self.input_shape = tuple([None] + [d.dim_value if d.HasField('dim_value') else None
                                           for d in data.type.tensor_type.shape.dim[1:]])
        self._tmpdir = None   # a folder of fastest_predictor's own, removed by close()
        self.closed = False

    def close(self):
        """Drop the sessions and remove the temporary folder :func:`fastest_predictor` exported to
        (when it chose the path). Also done when the predictor is garbage-collected."""
        self._sessions.clear()
        self.session = self._reference = None
        self.closed = True
        tmp, self._tmpdir = getattr(self, '_tmpdir', None), None
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)

    def __del__(self):
        try:
            self.close()
        except Exception:  # pragma: no cover - interpreter shutdown
            pass

    def _check(self, sess, batch_size):
        if self._reference is None:
            self._reference = onnx_session(self.path, threads=self.threads)
        shape = [batch_size] + [d if isinstance(d, int) else 1 for d in sess.get_inputs()[0].shape[1:]]
        x = np.random.RandomState(batch_size).standard_normal(shape).astype(np.float32)
        got = sess.run(None, {self.input_name: x})
        ref = self._reference.run(None, {self.input_name: x})
        worst = max_abs_diff(got, ref)
        if not worst <= self.atol:
            raise ExportError("the batch-%d session of %s differs from the verified file by %.3g "
                              "(> %.1g)" % (batch_size, self.path, worst, self.atol))

    def session_for(self, batch_size):
        """The onnxruntime session that runs batches of ``batch_size``."""
        if self.closed:
            raise ValueError("this predictor of %s is closed (close() dropped its sessions): make "
                             "a new one" % self.path)
        if not self.static_batch:
            return self.session
        sess = self._sessions.pop(batch_size, None)
        if sess is None:
            sess = onnx_session(self.source, threads=self.threads, batch_size=batch_size)
            if self.check:
                self._check(sess, batch_size)
        self._sessions[batch_size] = sess
        while len(self._sessions) > self.max_sessions:
            self._sessions.popitem(last=False)
        return sess

    def __call__(self, x):
        if isinstance(x, mx.nd.NDArray):
            x = x.asnumpy()
        if np.asarray(x).dtype.kind in 'biu':
            raise ValueError("got a %s batch: give the preprocessed float batch the network was trained "
                             "on (e.g. ToTensor + Normalize of gluoncv's presets), not raw pixels"
                             % np.asarray(x).dtype)
        x = np.ascontiguousarray(x, dtype=np.float32)
        want = self.input_shape
        if x.ndim != len(want) or x.shape[0] < 1 or \
                any(w is not None and w != g for w, g in zip(want[1:], x.shape[1:])):
            raise ValueError("expected a non-empty batch of shape (N, %s) (the shape %s was exported "
                             "with; export again for another size), got %s"
                             % (', '.join('?' if w is None else str(w) for w in want[1:]), self.path,
                                x.shape))
        out = self.session_for(x.shape[0]).run(None, {self.input_name: x})
        return out[0] if len(out) == 1 else out

    def __repr__(self):
        return 'OnnxPredictor(%r, static_batch=%s)' % (self.path, self.static_batch)


def fastest_predictor(net, input_shape=None, path=None, threads=None, verify=True, atol=1e-4,
                      static_batch=True):
    """The project's fastest CPU inference path: deploy -> ONNX (cleaned, h-swish fused, AsymmNet's
    reuse concats moved or split) -> onnxruntime, with one static-shape session per batch size (see
    :class:`OnnxPredictor`). ``net`` is an initialised (trained) network or a registry name (then
    random weights, for benchmarking). A network passed in is deployed **in place**
    (:func:`asymmzoo.deploy`: ACB / RotateConv branches fused, hybridized), as for ``export``: keep
    training a copy, not this one. Returns an :class:`OnnxPredictor`; its ``info`` holds the export
    check (``max_abs_diff`` against MXNet). Without ``path`` the file goes to a temporary folder
    that the predictor removes when it is closed or garbage-collected."""
    net, shape = prepare_model(net, deploy=True, input_shape=input_shape)
    tmp = None
    if path is None:
        name = getattr(net, 'name_in_zoo', type(net).__name__.lower())
        tmp = tempfile.mkdtemp(prefix='asymmzoo-fast-')
        path = os.path.join(tmp, name + '.onnx')
    try:
        info = export_onnx(net, path, shape, verify=verify, atol=atol, keep_base=True)
        base = info.pop('base_model')
        pred = OnnxPredictor(path, threads=threads, info=info, static_batch=static_batch, source=base)
    except BaseException:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
        raise
    pred._tmpdir = tmp
    return pred
