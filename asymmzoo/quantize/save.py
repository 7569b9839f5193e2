"""Writing an INT8 network as MXNet symbol files (``PREFIX-symbol.json`` / ``PREFIX-0000.params``),
checked reloaded (:func:`save_quantized`), and the check of such a file prefix."""
import os

import mxnet as mx
import numpy as np


def check_file_prefix(prefix, said):
    """Refuse a ``prefix`` that cannot name ``prefix-symbol.json`` / ``prefix-0000.params`` (empty,
    a folder, ending in a separator); ``said`` names it in the error."""
    if not isinstance(prefix, str) or not prefix or prefix.endswith(('/', os.sep)) or os.path.isdir(prefix):
        raise ValueError("%s is not a file prefix; give one like out/model_int8 (writes "
                         "out/model_int8-symbol.json and out/model_int8-0000.params)" % said)


def save_quantized(qnet, prefix, x, atol=1e-5):
    """Write the INT8 network ``qnet`` (from :func:`quantize_net`) as MXNet symbol files,
    ``prefix-symbol.json`` and ``prefix-0000.params`` (the names ``HybridBlock.export`` gives; each file
    written atomically), then reload them (``mx.gluon.SymbolBlock.imports``, input ``data``) and check
    that they give ``qnet``'s outputs on ``x`` (numpy NCHW, inputs as ``qnet`` takes them) within
    ``atol`` (relative to the largest output); a ``ValueError`` if not. The params file holds the
    float32 weights and the graph the calibrated INT8 ranges (MXNet quantizes the weights when it binds
    the graph), so it is about the fp32 checkpoint's size. Returns
    ``{'symbol', 'params', 'max_abs_diff'}``."""
    from ..io import atomic_export
    from ..export import load_symbol
    check_file_prefix(prefix, 'save_quantized: %r' % (prefix,))
    from ..utils.math import as_numpy_list, max_abs_diff, max_abs_finite
    xb = mx.nd.array(np.asarray(x, dtype=np.float32))
    with mx.autograd.predict_mode():
        ref = as_numpy_list(qnet(xb))   # also gives a hybridized block the graph that export writes
    found = {}

    def check(sym, par):   # on the written files, before they replace anything at prefix
        with mx.autograd.predict_mode():
            got = as_numpy_list(load_symbol(sym, par)(xb))
        try:
            diff = max_abs_diff(ref, got)
        except ValueError:   # another output count or shape
            diff = float('inf')
        scale = max_abs_finite(ref)
        if not diff <= atol * max(1.0, scale):
            raise ValueError("%s-symbol.json reloaded as a SymbolBlock differs from the INT8 network by "
                             "%.3g: the symbol export does not reproduce it (nothing written)"
                             % (prefix, diff))
        found['diff'] = diff

    sym, par = atomic_export(qnet, prefix, check=check)
    return {'symbol': sym, 'params': par, 'max_abs_diff': found['diff']}
