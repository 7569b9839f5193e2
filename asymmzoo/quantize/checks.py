"""What quantize refuses before any training: a network that is not an image classifier of the zoo
(:func:`check_quantizable`), sizes, counts and SQNR settings that would fail (or silently mean less)
later, and input shapes a network does not run on."""
import mxnet as mx

from .convert import DEFAULT_MIN_SQNR
from .digits import _is_int

#: image sizes :func:`quantize_report` accepts (the 28x28 digits are resized to ``size`` x ``size``)
MIN_SIZE, MAX_SIZE = 8, 224
_TASK_WORDS = {'detection': 'an object-detection', 'pose': 'a pose-estimation',
               'action': 'an action-recognition', 'face': 'a face-embedding'}


def _root_spec(spec):
    """The spec a twin's ``base`` chain ends at (an ACNet / RotateConv twin is what its base is)."""
    from ..registry import get_spec, is_registered
    while spec.family in ('acnet', 'rotateconv') and spec.base and is_registered(spec.base) \
            and spec.base != spec.name:
        spec = get_spec(spec.base)
    return spec


def check_quantizable(name):
    """The registry name ``name`` (lowercased) if its spec is an image-classification network of the
    zoo (built by ``asymmzoo.models``: AsymmNet / MobileNetV3, the CIFAR and ImageNet ACNet bases and
    their ``_acb`` twins, the RotateConv models); a ``ValueError`` naming what quantize supports
    otherwise (detection, pose, action and face models: their heads are not 10-class digit classifiers)."""
    from ..registry import get_spec
    supported = ("quantize takes an image-classification network of the zoo (asymmnet_* / mobilenetv3_*, "
                 "cifar_*, resnet18_v1, densenet121, alexnet_bn, rotate_sn and their _acb / _rot forms)")
    if not isinstance(name, str):
        raise TypeError("check_quantizable takes a registry name, got %r" % (name,))
    if name.startswith('gluoncv:'):
        raise ValueError("%s; %s is a GluonCV network for bench comparisons" % (supported, name))
    spec = get_spec(name)          # an unknown name: UnknownModelError listing the closest ones
    root = _root_spec(spec)
    module = getattr(root.builder, '__module__', '') or ''
    if spec.task == 'classification' and module.startswith('asymmzoo.models'):
        return spec.name
    if spec.task != 'classification':
        hint = '; its backbone %s can be quantized' % spec.base if spec.base else ''
        raise ValueError("%s; %s is %s model (task %r)%s" % (supported, spec.name, _TASK_WORDS[spec.task],
                                                              spec.task, hint))
    raise ValueError("%s; %s is not one of them (built by %s.%s)" % (
        supported, spec.name, module, getattr(root.builder, '__name__', root.builder)))


def _check_report_settings(epochs, size, calib_examples, params):
    """Refuse, before any training, sizes and counts that would fail (or silently mean less) later."""
    from ..data import load_digits
    if params is None and (not _is_int(epochs) or epochs < 1):
        raise ValueError("epochs=%r: give a positive number of training epochs (CLI: --epochs)" % (epochs,))
    if not _is_int(size) or not MIN_SIZE <= size <= MAX_SIZE:
        raise ValueError("size=%r: give an image size of %d to %d pixels (CLI: --size; the digits are "
                         "28x28, resized to it)" % (size, MIN_SIZE, MAX_SIZE))
    n_train = len(load_digits('train')[1])
    if not _is_int(calib_examples) or not 1 <= calib_examples <= n_train:
        raise ValueError("calib_examples=%r: give 1 to %d, the number of training digits (CLI: "
                         "--calib-examples)" % (calib_examples, n_train))


def _check_sqnr_settings(min_sqnr, target_sqnr, calib_mode, calib_examples):
    """Refuse, before any training, SQNR settings that would fail after it."""
    import math
    from ..data import load_digits
    for what, v in (('min_sqnr', min_sqnr), ('target_sqnr', target_sqnr)):
        if v is not None and not (math.isfinite(v) and v > 0):
            raise ValueError("%s=%r: give a finite number of dB above 0, or None to turn it off "
                             "(CLI: --%s 0)" % (what, v, what.replace('_', '-')))
    if min_sqnr is not None and calib_mode != 'naive':
        raise ValueError("the SQNR fallback models naive (min/max) calibration; with calib_mode=%r pass "
                         "min_sqnr=None and target_sqnr=None (CLI: --min-sqnr 0)" % (calib_mode,))
    if target_sqnr is not None:
        if min_sqnr is None:
            raise ValueError("target_sqnr=%r raises the per-layer threshold min_sqnr, but min_sqnr is None "
                             "(no SQNR fallback): give min_sqnr a start (default %.0f dB) or pass "
                             "target_sqnr=None (CLI: --target-sqnr 0)" % (target_sqnr, DEFAULT_MIN_SQNR))
        n_train = len(load_digits('train')[1])
        if calib_examples >= n_train:
            raise ValueError("target_sqnr tunes on training digits apart from the %d calibration ones, but "
                             "there are only %d: lower calib_examples (CLI: --calib-examples) or pass "
                             "target_sqnr=None (CLI: --target-sqnr 0)" % (calib_examples, n_train))


def _input_channels(net):
    from ..export import default_input_shape
    return int(default_input_shape(net)[1])


def _runs_on(net, shape):
    """None if ``net`` (initialised, or deferred) runs on zeros of ``shape``, else MXNet's reason."""
    try:
        with mx.autograd.predict_mode():
            out = net(mx.nd.zeros(shape))
            for o in (out if isinstance(out, (list, tuple)) else [out]):
                o.wait_to_read()
    except mx.base.MXNetError as e:
        lines = [l.strip() for l in str(e).strip().splitlines() if l.strip()]
        return (lines[-1] if lines else 'MXNetError')[:200]
    return None
