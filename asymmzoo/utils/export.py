"""Exporting zoo models: MXNet symbol files, ONNX (verified in onnxruntime), and the fastest predictor.

The documented deploy path (see README "Performance")::

    net = asymmzoo.get_model('asymmnet_large_1.0', pretrained=...)   # or any trained Gluon net
    predict = asymmzoo.utils.export.fastest_predictor(net)           # deploy -> ONNX -> onnxruntime
    probs = predict(batch_nchw_float32)                              # numpy in, numpy out

``fastest_predictor`` runs ``asymmzoo.deploy`` (ACB / RotateConv -> plain convs), exports with MXNet's
ONNX exporter, cleans the graph so onnxruntime can constant-fold it (weights are moved out of the
graph inputs; BN folds into the convs), rewrites MobileNetV3's four-op h-swish / h-sigmoid into ONNX's
``HardSwish`` / ``HardSigmoid`` (the same function, one kernel instead of four), checks the result
against MXNet and returns an onnxruntime session wrapped as a callable. On the 2-core box of this
project this is 3-4x faster than MXNet's own executor at batch 1; see docs/performance.md.

Nothing here imports onnx / onnxruntime until it is needed: ``import asymmzoo`` stays light.
Pinned versions: mxnet 1.9.1's exporter needs ``onnx==1.18.0`` (1.19+ fails its import check);
any current onnxruntime runs the result.
"""
import os
import tempfile

import mxnet as mx
import numpy as np

__all__ = ['ExportError', 'prepare_model', 'randomize_bn_stats', 'export_symbol', 'load_symbol',
           'export_onnx', 'verify_onnx', 'onnx_session', 'OnnxPredictor', 'fastest_predictor',
           'default_input_shape', 'FORMATS']

FORMATS = ('symbol', 'onnx')


class ExportError(RuntimeError):
    """An export failed or the exported model does not reproduce MXNet's output."""


# --------------------------------------------------------------------------------------------------
# model preparation
# --------------------------------------------------------------------------------------------------

def default_input_shape(net, batch_size=1):
    shape = getattr(net, 'default_input_shape', None) or (1, 3, 224, 224)
    return (batch_size,) + tuple(shape[1:])


def _iter_bns(block):
    if isinstance(block, mx.gluon.nn.BatchNorm):
        yield block
    for child in block._children.values():
        for bn in _iter_bns(child):
            yield bn


def randomize_bn_stats(net, x):
    """Set every BatchNorm's running statistics to the batch statistics of ``x`` (one train-mode
    forward pass with momentum 0), and perturb gamma/beta, so that a freshly initialised network
    produces O(1) outputs in inference mode and export checks compare meaningful numbers instead of
    values near 1e-9. Only for randomly initialised networks: it overwrites BN statistics."""
    from .blocks import clear_cached_graphs
    rng = np.random.RandomState(1)
    bns = list(_iter_bns(net))
    saved = [bn._kwargs.get('momentum', 0.9) for bn in bns]
    for bn in bns:
        bn._kwargs['momentum'] = 0.0
        for pname in ('gamma', 'beta'):
            p = getattr(bn, pname, None)
            if p is not None and p._data is not None:
                base = 1.0 if pname == 'gamma' else 0.0
                p.set_data(mx.nd.array(base + 0.1 * rng.standard_normal(p.shape)))
    clear_cached_graphs(net)
    with mx.autograd.record(train_mode=True):
        net(x)
    for bn, m in zip(bns, saved):
        bn._kwargs['momentum'] = m
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
    mx.random.seed(seed)
    if isinstance(name_or_net, str):
        kw = {} if classes is None else {'classes': classes}
        net = get_model(name_or_net, **kw)
    else:
        net = name_or_net
    shape = tuple(input_shape) if input_shape else default_input_shape(net)
    fresh = any(p._data is None for p in net.collect_params().values())
    if fresh:
        net.initialize(mx.init.MSRAPrelu(), force_reinit=False)
    if params:
        if not os.path.isfile(params):
            raise FileNotFoundError("params file %r not found; pass the .params file saved with "
                                    "net.save_parameters()" % (params,))
        net.load_parameters(params, ctx=mx.cpu(), allow_missing=False, ignore_extra=False)
    elif fresh and realistic_stats:
        rng = np.random.RandomState(seed)
        randomize_bn_stats(net, mx.nd.array(rng.standard_normal((max(2, shape[0]),) + shape[1:])))
    with mx.autograd.predict_mode():
        net(mx.nd.zeros((1,) + shape[1:]))  # finish deferred init
    if deploy and not getattr(net, 'deployed', False):
        probe = mx.nd.array(np.random.RandomState(seed + 1).standard_normal((2,) + shape[1:]))
        deploy_net(net, verify=True, probe=probe)
    return net, shape


def _hybrid_forward_once(net, shape):
    if not isinstance(net, mx.gluon.HybridBlock):
        raise ExportError("%s is not a HybridBlock; only hybridizable networks can be exported"
                          % type(net).__name__)
    net.hybridize(static_alloc=True, static_shape=True)
    with mx.autograd.predict_mode():
        return net(mx.nd.zeros(shape))


def _as_numpy_list(out):
    outs = out if isinstance(out, (list, tuple)) else [out]
    return [o.asnumpy() for o in outs]


# --------------------------------------------------------------------------------------------------
# symbol export
# --------------------------------------------------------------------------------------------------

def export_symbol(net, prefix, input_shape=None, epoch=0):
    """Hybridize, run once and write ``prefix-symbol.json`` / ``prefix-%04d.params``.
    Returns the two paths."""
    shape = tuple(input_shape) if input_shape else default_input_shape(net)
    d = os.path.dirname(os.path.abspath(prefix))
    os.makedirs(d, exist_ok=True)
    _hybrid_forward_once(net, shape)
    net.export(prefix, epoch=epoch)
    return prefix + '-symbol.json', '%s-%04d.params' % (prefix, epoch)


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


def _fuse_hard_activations(model):
    """Rewrite ``Div(Clip(Add(x, 3), 0, 6), 6)`` -> ``HardSigmoid(x; alpha=1/6, beta=1/2)`` and
    ``Mul(x, HardSigmoid(x))`` -> ``HardSwish(x)`` (opset >= 14): the same function in one kernel
    instead of four. Returns the number of rewritten activations."""
    from onnx import helper, numpy_helper
    g = model.graph
    opset = max([o.version for o in model.opset_import if o.domain in ('', 'ai.onnx')] or [0])
    seen = set()
    for k, n in enumerate(g.node):  # the exporter leaves some nodes unnamed: name them uniquely
        if not n.name or n.name in seen:
            n.name = '%s_%s_%d' % (n.name or 'node', n.op_type, k)
        seen.add(n.name)
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
    if opset >= 14:
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
    new_nodes = [replace.get(n.name, n) for n in g.node if n.name not in remove]
    del g.node[:]
    g.node.extend(new_nodes)
    used = {i for n in g.node for i in n.input} | {o.name for o in g.output}
    keep = [i for i in g.initializer if i.name in used]
    del g.initializer[:]
    g.initializer.extend(keep)
    return len(replace)


_UNSUPPORTED_HINT = ("mxnet 1.9.1's ONNX exporter has no converter for MXNet op %r (used by this "
                     "network). Deploy the network first (asymmzoo.deploy turns training-time blocks "
                     "into plain convolutions), rewrite that layer with ops ONNX supports, or export "
                     "with --format symbol instead.")


def export_onnx(net, path, input_shape=None, dynamic_batch=True, fuse_activations=True,
                verify=True, atol=1e-4, batch_sizes=(1, 2)):
    """Export a (deployed, initialised) Gluon network to ONNX at ``path``.

    With ``verify`` the file is run in onnxruntime against MXNet on random inputs and
    :class:`ExportError` raised if the max abs difference exceeds ``atol``. Returns a dict with the
    path, the number of fused activations and (if verified) ``max_abs_diff`` / ``max_abs_out``.
    """
    onnx = _import_onnx()
    shape = tuple(input_shape) if input_shape else default_input_shape(net)
    tmp = tempfile.mkdtemp(prefix='asymmzoo-onnx-')
    sym_file, par_file = export_symbol(net, os.path.join(tmp, 'net'), (1,) + shape[1:])
    kw = dict(dynamic=bool(dynamic_batch))
    if dynamic_batch:
        kw['dynamic_input_shapes'] = [(None,) + shape[1:]]
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    import logging
    logger = logging.getLogger()
    level = logger.level
    logger.setLevel(logging.WARNING)  # the exporter logs every node at INFO
    try:
        mx.onnx.export_model(sym_file, par_file, [(1,) + shape[1:]], [np.float32], path, **kw)
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
    model = onnx.load(path)
    _strip_initializer_inputs(model)
    fused = _fuse_hard_activations(model) if fuse_activations else 0
    onnx.checker.check_model(model)
    onnx.save(model, path)
    info = {'path': path, 'fused_activations': fused, 'input_shape': shape}
    if verify:
        info.update(verify_onnx(net, path, shape, batch_sizes=batch_sizes, atol=atol))
    return info


def onnx_session(path, threads=None, optimization='all'):
    """An onnxruntime CPU session with full graph optimisation and ``threads`` intra-op threads
    (default: onnxruntime's choice = the number of physical cores)."""
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
        x = rng.standard_normal((bs,) + shape[1:]).astype(np.float32)
        with mx.autograd.predict_mode():
            ref = _as_numpy_list(net(mx.nd.array(x)))
        got = sess.run(None, {iname: x})
        if len(got) != len(ref):
            raise ExportError("ONNX model has %d outputs, MXNet %d" % (len(got), len(ref)))
        for r, o in zip(ref, got):
            if r.shape != o.shape:
                raise ExportError("ONNX output shape %s differs from MXNet's %s" % (o.shape, r.shape))
            worst = max(worst, float(np.abs(r - o).max()))
            scale = max(scale, float(np.abs(r).max()))
    if not worst <= atol:
        raise ExportError("onnxruntime output differs from MXNet by %.3g (> %.1g; max |out| = %.3g) "
                          "for %s" % (worst, atol, scale, path))
    return {'max_abs_diff': worst, 'max_abs_out': scale}


class OnnxPredictor(object):
    """Callable wrapper of an onnxruntime session: ``predict(x)`` with x a numpy / NDArray batch
    (N, C, H, W) returns a numpy array (or a list for multi-output nets)."""

    def __init__(self, path, threads=None, info=None):
        self.path = path
        self.session = onnx_session(path, threads=threads)
        self.input_name = self.session.get_inputs()[0].name
        self.info = dict(info or {})

    def __call__(self, x):
        if isinstance(x, mx.nd.NDArray):
            x = x.asnumpy()
        x = np.ascontiguousarray(x, dtype=np.float32)
        out = self.session.run(None, {self.input_name: x})
        return out[0] if len(out) == 1 else out

    def __repr__(self):
        return 'OnnxPredictor(%r)' % self.path


def fastest_predictor(net, input_shape=None, path=None, threads=None, verify=True, atol=1e-4):
    """The project's fastest CPU inference path: deploy -> ONNX (cleaned, h-swish fused) ->
    onnxruntime. ``net`` is an initialised (trained) network or a registry name (then random
    weights, for benchmarking). Returns an :class:`OnnxPredictor`; its ``info`` holds the export
    check (``max_abs_diff`` against MXNet)."""
    net, shape = prepare_model(net, deploy=True, input_shape=input_shape)
    if path is None:
        name = getattr(net, 'name_in_zoo', type(net).__name__.lower())
        path = os.path.join(tempfile.mkdtemp(prefix='asymmzoo-fast-'), name + '.onnx')
    info = export_onnx(net, path, shape, verify=verify, atol=atol)
    return OnnxPredictor(path, threads=threads, info=info)
