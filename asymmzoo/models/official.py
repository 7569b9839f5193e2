"""Checkpoints of the AsymmNet authors' code converted into files our models load: the released
AsymmNet-L x1.0 run (``0.7542-imagenet-modifiedv3-358-best.params``) and any file saved from their
published code, AsymmNet-L / -S at every width and their MobileNetV3, in both naming schemes (the
released file's ``conv1`` / ``conv2``, the published code's ``dw_conv`` / ``pw_conv_linear``)."""
import json
import os
import re

from ..io import WeightsError, atomic_save_params, load_named_arrays
from ..registry import get_model
from .asymmnet import MULTIPLIERS

__all__ = ['convert_official', 'expected_official_keys', 'official_models', 'released_key',
           'official_to_ours']

_EXPECTED_KEYS_JSON = 'released_asymmnet_large_1.0_keys.json'
_PUBLISHED_NAMES = {'dw_conv': 'conv1', 'pw_conv_linear': 'conv2'}
_PUBLISHED = re.compile(r'^(features\.\d+\.)(dw_conv|pw_conv_linear)\.(.*)$')


def official_to_ours(key, n_features):
    """Map a released key to ours. Released ``features`` also hold GAP / 1280 conv / act / dropout
    (indices n_features .. n_features+3); ours keep those in ``head``. Block child names
    (expand / conv1 / se / conv2, conv / bn) and the X | Y | X concat order are the same, so the
    depthwise weights map channel for channel."""
    parts = key.split('.')
    if parts[0] == 'features' and int(parts[1]) >= n_features:
        return '.'.join(['head', str(int(parts[1]) - n_features)] + parts[2:])
    return key


def official_models():
    """Our names the authors' checkpoints convert to: AsymmNet-L / -S (r = 1) and MobileNetV3-L / -S
    (their ``mobilenetv3.py``, = r = 0) at every width."""
    return ['%s_%s_%s' % (fam, arch, m) for fam in ('asymmnet', 'mobilenetv3')
            for arch in ('large', 'small') for m in MULTIPLIERS]


def released_key(key):
    """A key of the authors' published code (``features.N.dw_conv.*`` / ``features.N.pw_conv_linear.*``)
    in the released checkpoint's naming (``conv1`` / ``conv2``); other keys unchanged."""
    m = _PUBLISHED.match(key)
    return '%s%s.%s' % (m.group(1), _PUBLISHED_NAMES[m.group(2)], m.group(3)) if m else key


def expected_official_keys(model='asymmnet_large_1.0'):
    """The authors' key -> shape table of ``model`` (released naming), from our structure: the
    ``head`` children sit at the end of their ``features``."""
    net = get_model(model)
    n = len(net.features)
    out = {}
    for k, p in net._collect_params_with_prefix().items():
        parts = k.split('.')
        if parts[0] == 'head':
            k = '.'.join(['features', str(int(parts[1]) + n)] + parts[2:])
        out[k] = tuple(p.shape)
    return out


def _reference_keys():
    """The released checkpoint's key -> shape table (from the project's reference copy)."""
    path = os.path.join(os.path.dirname(os.path.dirname(__file__)), 'data', _EXPECTED_KEYS_JSON)
    with open(path) as f:
        return {k: tuple(v) for k, v in json.load(f).items()}


def convert_official(src, dst, model='asymmnet_large_1.0'):
    """Convert a checkpoint of the AsymmNet authors' code (the released file's naming or their
    published code's ``dw_conv`` / ``pw_conv_linear``) into a file ``get_model(model, pretrained=dst)``
    loads. Every key and shape is checked; unknown, missing or misshaped keys raise WeightsError
    listing them."""
    if model not in official_models():
        raise WeightsError("convert-official converts the authors' AsymmNet-L/S (r=1) and MobileNetV3 "
                           "checkpoints: --model one of asymmnet_{large,small}_W, mobilenetv3_{large,"
                           "small}_W with W in %s; got %r" % ('/'.join(MULTIPLIERS), model))
    if not os.path.isfile(src):
        raise FileNotFoundError("no such file: %s" % src)
    net = get_model(model)
    stem = net.features[0].weight.shape[0]
    if model.startswith('asymmnet_') and model.endswith('_1.25'):
        raise WeightsError(
            "%s has no authors' weights: their AsymmNet code does not build at x1.25 (its depthwise "
            "conv is declared for fewer channels than its concatenation gives); convert-official "
            "takes AsymmNet-L x0.75 / x1.0 and -S x0.35 to x1.0" % model)
    if net.blocks[0].use_residual and stem != 16:
        raise WeightsError(
            "%s cannot take the authors' weights exactly: their code declares block 0 for 16 input "
            "channels at every width, so at this width (a %d-channel stem) their block 0 has no "
            "residual sum and ours has one; convert-official takes the widths whose stem has 16 "
            "channels (-L: 0.75, 1.0; -S: every width but AsymmNet x1.25)" % (model, stem))
    if os.path.isdir(dst):
        raise WeightsError("the output %s is a folder: give the file to write, e.g. %s"
                         % (dst, os.path.join(dst, model + '.params')))
    if os.path.exists(dst) and os.path.samefile(src, dst):
        raise WeightsError("the output %s is the input file: write the converted weights to another "
                         "file (the authors' checkpoint would be lost)" % dst)
    raw = load_named_arrays(src)
    loaded, original = {}, {}
    for k, v in raw.items():
        rk = released_key(k)
        loaded[rk], original[rk] = v, k
    expected = expected_official_keys(model)
    missing = sorted(set(expected) - set(loaded))
    extra = sorted(set(loaded) - set(expected))
    bad = sorted(k for k in set(expected) & set(loaded) if tuple(loaded[k].shape) != expected[k])
    if missing or extra or bad:
        msg = ["%s is not a checkpoint of the authors' %s:" % (src, model)]
        if missing:
            msg.append("missing keys (%d): %s%s" % (len(missing), ", ".join(missing[:10]),
                                                    " ..." if len(missing) > 10 else ""))
        if extra:
            extra = [original[k] for k in extra]
            msg.append("unexpected keys (%d): %s%s" % (len(extra), ", ".join(extra[:10]),
                                                       " ..." if len(extra) > 10 else ""))
        for k in bad[:3]:
            msg.append("shape of %s: %s, expected %s" % (original[k], tuple(loaded[k].shape), expected[k]))
        if len(bad) > 3:
            msg.append("... and %d more arrays of another shape" % (len(bad) - 3))
        raise WeightsError("\n  ".join(msg))
    n_features = len(net.features)
    ours = net._collect_params_with_prefix()
    out = {official_to_ours(k, n_features): v for k, v in loaded.items()}
    left = sorted(set(ours) - set(out))
    if left:   # pragma: no cover - the expected table is built from ours
        raise WeightsError("conversion left parameters unset: %s" % ", ".join(left))
    return atomic_save_params(out, dst)
