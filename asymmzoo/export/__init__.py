"""Exporting zoo models: MXNet symbol files, ONNX (verified in onnxruntime), and the fastest predictor.

The documented deploy path (see README "Performance")::

    net = asymmzoo.get_model('asymmnet_large_1.0', pretrained=...)   # or any trained Gluon net
    predict = asymmzoo.export.fastest_predictor(net)                 # deploy -> ONNX -> onnxruntime
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

Where things are:

* :mod:`.prepare`   -- input shapes, random BN statistics, ``prepare_model`` (build / initialise / deploy)
* :mod:`.symbol`    -- MXNet symbol files (``export_symbol``, ``load_symbol``)
* :mod:`.onnx`      -- ONNX export and its check against MXNet (``export_onnx``, ``verify_onnx``)
* :mod:`.rewrites`  -- the function-preserving ONNX graph rewrites (h-swish fusion, reuse concats, SE)
* :mod:`.nchwc`     -- channel padding to onnxruntime's NCHWc block on this CPU (``pad_channels``)
* :mod:`.runtime`   -- onnxruntime sessions and the static-batch graph (``onnx_session``,
  ``static_batch_model``)
* :mod:`.predictor` -- ``OnnxPredictor`` and ``fastest_predictor``

Nothing here imports onnx / onnxruntime until it is needed: ``import asymmzoo`` stays light (and
``asymmzoo.export`` itself is loaded on first use). Pinned versions: mxnet 1.9.1's exporter needs
``onnx==1.18.0`` (1.19+ fails its import check); any current onnxruntime runs the result.
"""
from ..utils.math import max_abs_diff
from .errors import ExportError
from .prepare import (prepare_model, randomize_bn_stats, default_input_shape, batch_input_shape,
                      is_detector, check_initialized)
from .symbol import export_symbol, load_symbol
from .onnx import export_onnx, verify_onnx, EXPORT_OPSET
from .rewrites import reuse_concat_policy, SPLIT_ALL_FROM_BATCH
from .runtime import onnx_session, static_batch_model
from .predictor import OnnxPredictor, fastest_predictor
from .nchwc import nchwc_block_size, pad_channels

__all__ = ['ExportError', 'prepare_model', 'randomize_bn_stats', 'check_initialized', 'export_symbol',
           'load_symbol', 'export_onnx', 'verify_onnx', 'onnx_session', 'static_batch_model',
           'OnnxPredictor', 'fastest_predictor', 'reuse_concat_policy', 'SPLIT_ALL_FROM_BATCH',
           'default_input_shape', 'batch_input_shape', 'max_abs_diff', 'is_detector', 'FORMATS',
           'EXPORT_OPSET', 'nchwc_block_size', 'pad_channels']

FORMATS = ('symbol', 'onnx')   # what `asymmzoo export --format` writes
