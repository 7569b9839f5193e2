"""The authors' released AsymmNet-L x1.0 checkpoint (``0.7542-imagenet-modifiedv3-358-best.params``):
converted into a file ``get_model('asymmnet_large_1.0', pretrained=FILE)`` loads."""
import json
import os

import mxnet as mx

from ..io import WeightsError, atomic_save_params, _mxnet_reason
from ..registry import get_model

__all__ = ['convert_official', 'expected_official_keys']

_EXPECTED_KEYS_JSON = 'released_asymmnet_large_1.0_keys.json'


def official_to_ours(key, n_features):
    """Map a released key to ours. Released ``features`` also hold GAP / 1280 conv / act / dropout
    (indices n_features .. n_features+3); ours keep those in ``head``. Block child names
    (expand / conv1 / se / conv2, conv / bn) and the X | Y | X concat order are the same, so the
    depthwise weights map channel for channel."""
    parts = key.split('.')
    if parts[0] == 'features' and int(parts[1]) >= n_features:
        return '.'.join(['head', str(int(parts[1]) - n_features)] + parts[2:])
    return key


def expected_official_keys():
    """The released checkpoint's key -> shape table (from the project's reference copy)."""
    path = os.path.join(os.path.dirname(os.path.dirname(__file__)), 'data', _EXPECTED_KEYS_JSON)
    with open(path) as f:
        return {k: tuple(v) for k, v in json.load(f).items()}


def convert_official(src, dst, model='asymmnet_large_1.0'):
    """Convert the authors' released checkpoint into a file ``get_model(model, pretrained=dst)``
    loads. Every key and shape is checked; wrong or missing keys raise WeightsError listing them."""
    if model != 'asymmnet_large_1.0':
        raise WeightsError("only the released asymmnet_large_1.0 checkpoint is known; got %r" % model)
    if not os.path.isfile(src):
        raise FileNotFoundError("no such file: %s" % src)
    if os.path.isdir(dst):
        raise WeightsError("the output %s is a folder: give the file to write, e.g. %s"
                         % (dst, os.path.join(dst, model + '.params')))
    if os.path.exists(dst) and os.path.samefile(src, dst):
        raise WeightsError("the output %s is the input file: write the converted weights to another "
                         "file (the released checkpoint would be lost)" % dst)
    try:
        loaded = mx.nd.load(src)
    except mx.base.MXNetError as e:
        raise WeightsError("%s is not a readable MXNet params file (%s)" % (src, _mxnet_reason(e)))
    expected = expected_official_keys()
    missing = sorted(set(expected) - set(loaded))
    extra = sorted(set(loaded) - set(expected))
    bad = sorted(k for k in set(expected) & set(loaded) if tuple(loaded[k].shape) != expected[k])
    if missing or extra or bad:
        msg = ["%s is not the released asymmnet_large_1.0 checkpoint:" % src]
        if missing:
            msg.append("missing keys (%d): %s%s" % (len(missing), ", ".join(missing[:10]),
                                                    " ..." if len(missing) > 10 else ""))
        if extra:
            msg.append("unexpected keys (%d): %s%s" % (len(extra), ", ".join(extra[:10]),
                                                       " ..." if len(extra) > 10 else ""))
        for k in bad[:3]:
            msg.append("shape of %s: %s, expected %s" % (k, tuple(loaded[k].shape), expected[k]))
        if len(bad) > 3:
            msg.append("... and %d more arrays of another shape" % (len(bad) - 3))
        raise WeightsError("\n  ".join(msg))
    net = get_model(model)
    n_features = len(net.features)
    ours = net._collect_params_with_prefix()
    out = {}
    for k, v in loaded.items():
        nk = official_to_ours(k, n_features)
        if nk not in ours or tuple(ours[nk].shape) != tuple(v.shape):
            raise WeightsError("released key %s maps to %s, which %s does not have with shape %s"
                             % (k, nk, model, tuple(v.shape)))
        out[nk] = v
    left = sorted(set(ours) - set(out))
    if left:
        raise WeightsError("conversion left parameters unset: %s" % ", ".join(left))
    return atomic_save_params(out, dst)
