"""onnxruntime sessions of exported models: :func:`onnx_session` (CPU, full graph optimisation) and
:func:`static_batch_model`, the graph a static-batch session runs (batch size fixed, SE scaling in the
blocked layout, the reuse-concat rewrites chosen for the batch size, channels padded to this CPU's
NCHWc block)."""
import os

from ._deps import _import_onnx, _import_ort
from .rewrites import (_blocked_se_scaling, _name_nodes, _split_reused_concats, _strip_initializer_inputs,
                       reuse_concat_policy)


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
    layout on this CPU (:func:`asymmzoo.export.nchwc.pad_channels`; ``pad_block``: the block, default
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
