"""Deprecated location: the INT8 quantization code is the package :mod:`asymmzoo.quantize`
(``asymmzoo.quantize.layer_sqnr``, ``asymmzoo.quantize.quantize_net``, ...). This module only
re-exports its public names, so that ``asymmzoo.utils.quantize.X`` keeps working; new code imports
``asymmzoo.quantize``."""
from ..quantize import (DEFAULT_EXCLUDED_OPERATORS, DEFAULT_MIN_SQNR, DEFAULT_TARGET_SQNR,  # noqa: F401
                        WARN_TOP1_DROP, MIN_SIZE, MAX_SIZE, digits_arrays, train_on_digits, top1_and_labels,
                        first_last_layers, layer_sqnr, network_sqnr, boundary_data_ops, quantize_net,
                        quantize_to_target, save_quantized, check_file_prefix, check_quantizable,
                        quantize_report, format_report, accuracy_warning)
from ..quantize.digits import DIGITS_MEAN, DIGITS_STD  # noqa: F401

evaluate = top1_and_labels   # its name here before: (top-1 in percent, predicted labels)

__all__ = ['DEFAULT_EXCLUDED_OPERATORS', 'digits_arrays', 'train_on_digits', 'evaluate',
           'quantize_net', 'quantize_report', 'format_report', 'layer_sqnr', 'DEFAULT_MIN_SQNR',
           'boundary_data_ops', 'network_sqnr', 'quantize_to_target', 'DEFAULT_TARGET_SQNR',
           'check_quantizable', 'save_quantized', 'accuracy_warning', 'WARN_TOP1_DROP',
           'check_file_prefix']
