"""INT8 post-training quantization with MXNet's oneDNN backend, calibrated on real data.

``quantize_net(net, calib_x)`` makes the INT8 network; ``layer_sqnr(net, images)`` measures each
layer's signal-to-quantization-noise ratio, and the layers too noisy for INT8 stay in fp32
(``min_sqnr``; accuracy-aware with ``quantize_to_target``). ``quantize_report(name)`` is the end-to-end
check behind ``asymmzoo quantize``: train (or load) on the embedded digits, deploy, quantize, compare
top-1 and latency.

Where things are:

* :mod:`.convert` -- ``quantize_net``, the fp32 fallback (``boundary_data_ops``, ``quantize_to_target``)
  and its defaults (``DEFAULT_EXCLUDED_OPERATORS``, ``DEFAULT_MIN_SQNR``, ``DEFAULT_TARGET_SQNR``)
* :mod:`.sqnr`    -- ``layer_sqnr``, ``network_sqnr``
* :mod:`.graph`   -- a network's symbol graph, ``first_last_layers``
* :mod:`.digits`  -- the embedded digits as data (``digits_arrays``), ``train_on_digits``, ``top1_and_labels``
* :mod:`.images`  -- ``calibration_images``: real images prepared with a model's published weights' preprocessing
* :mod:`.save`    -- ``save_quantized`` (INT8 symbol files, checked reloaded), ``check_file_prefix``
* :mod:`.checks`  -- what is refused before any training (``check_quantizable``, sizes, settings)
* :mod:`.report`  -- ``quantize_report``, ``format_report``, ``accuracy_warning``

``asymmzoo.quantize`` is loaded on first use (``import asymmzoo`` stays light).
"""
from .digits import digits_arrays, train_on_digits, top1_and_labels
from .graph import first_last_layers
from .sqnr import layer_sqnr, network_sqnr
from .convert import (quantize_net, quantize_to_target, boundary_data_ops, DEFAULT_EXCLUDED_OPERATORS,
                      DEFAULT_MIN_SQNR, DEFAULT_TARGET_SQNR)
from .save import save_quantized, check_file_prefix
from .images import calibration_images
from .checks import check_quantizable, MIN_SIZE, MAX_SIZE
from .report import quantize_report, format_report, accuracy_warning, WARN_TOP1_DROP

__all__ = ['DEFAULT_EXCLUDED_OPERATORS', 'digits_arrays', 'train_on_digits', 'top1_and_labels',
           'quantize_net', 'quantize_report', 'format_report', 'layer_sqnr', 'DEFAULT_MIN_SQNR',
           'boundary_data_ops', 'network_sqnr', 'quantize_to_target', 'DEFAULT_TARGET_SQNR',
           'check_quantizable', 'save_quantized', 'accuracy_warning', 'WARN_TOP1_DROP',
           'check_file_prefix', 'first_last_layers', 'MIN_SIZE', 'MAX_SIZE', 'calibration_images']
