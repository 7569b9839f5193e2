"""ONNX export: mxnet 1.9.1's exporter run for opset 13, its graph cleaned and rewritten
(:mod:`.rewrites`), the file checked in onnxruntime against MXNet (:func:`verify_onnx`) and written
atomically (:func:`export_onnx`)."""
import contextlib
import os
import tempfile
import threading

import mxnet as mx
import numpy as np

from ..utils.math import as_numpy_list, max_abs_diff, max_abs_finite
from ._deps import _import_onnx
from .errors import ExportError
from .prepare import _frames_per_item, batch_input_shape, check_initialized, default_input_shape, is_detector
from .rewrites import (_blocked_se_scaling, _fuse_hard_activations, _name_nodes, _split_reused_concats,
                       _strip_initializer_inputs)
from .runtime import onnx_session
from .symbol import export_symbol

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
    """Export a (deployed, initialised) Gluon network to ONNX at ``path`` (a network whose parameters
    were never initialised is refused before any work).

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
    from ..io import atomic_target
    from ..utils.blocks import check_block, check_input_shape
    check_block(net, 'export_onnx()')
    shape = check_input_shape(input_shape, 'export_onnx()') if input_shape is not None \
        else default_input_shape(net)
    onnx = _import_onnx()
    if is_detector(net):
        raise ValueError("%s is a detector: its output goes through non-maximum suppression, which "
                         "mxnet 1.9.1's ONNX exporter does not translate faithfully (boxes differ "
                         "from MXNet's); export it as symbol files (export_symbol, `asymmzoo export "
                         "--format symbol`)" % getattr(net, 'name_in_zoo', type(net).__name__))
    check_initialized(net, 'export_onnx')
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


def verify_onnx(net, path, input_shape=None, batch_sizes=(1, 2), atol=1e-4, seed=0, session=None):
    """Run the ONNX file in onnxruntime and MXNet on random normal inputs; raise ExportError if the
    max abs difference exceeds ``atol``. Returns ``{'max_abs_diff', 'max_abs_out'}``."""
    from ..utils.blocks import check_input_shape
    shape = check_input_shape(input_shape, 'verify_onnx()') if input_shape is not None \
        else default_input_shape(net)
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
