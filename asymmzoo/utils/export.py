"""Deprecated location: the export code is the package :mod:`asymmzoo.export` (``asymmzoo.export.
fastest_predictor``, ``asymmzoo.export.OnnxPredictor``, ...). This module only re-exports its public
names, so that ``asymmzoo.utils.export.X`` keeps working; new code imports ``asymmzoo.export``."""
from ..export import (ExportError, FORMATS, EXPORT_OPSET, SPLIT_ALL_FROM_BATCH, prepare_model,  # noqa: F401
                      randomize_bn_stats, default_input_shape, batch_input_shape, is_detector,
                      export_symbol, load_symbol, export_onnx, verify_onnx, onnx_session,
                      static_batch_model, OnnxPredictor, fastest_predictor, reuse_concat_policy)
from ..export.prepare import MIN_STAT_VALUES  # noqa: F401
from .math import as_numpy_list, max_abs_diff, max_abs_finite  # noqa: F401

__all__ = ['ExportError', 'prepare_model', 'randomize_bn_stats', 'export_symbol', 'load_symbol',
           'export_onnx', 'verify_onnx', 'onnx_session', 'static_batch_model', 'OnnxPredictor',
           'fastest_predictor', 'reuse_concat_policy', 'SPLIT_ALL_FROM_BATCH',
           'default_input_shape', 'batch_input_shape', 'max_abs_diff', 'is_detector', 'FORMATS',
           'EXPORT_OPSET']
