"""The one deploy verb: training-time structures -> plain convolutions, verified.

``deploy(net)`` walks any Gluon network and replaces every train-time block with its inference form:
the blocks of :mod:`asymmzoo.nn` (ACNet's ``ACBlock``, ``RotateConv2D``) convert themselves through
their ``deploy_convert(parent, key)`` method, and other blocks through a registered converter. Converters read BN *running* statistics
whatever mode the net is in, so the deployed network reproduces the inference-mode output of the
original; with ``verify=True`` (the default) this is checked on a probe input and a
:class:`DeployError` names the largest difference if it fails. The deployed network is an
inference graph: its channel concats take the plain 4-D form (``asymmzoo.nn.use_plain_concat``;
call ``use_plain_concat(net, False)`` before training it again).

Plug-ins add converters for their own blocks with::

    @register_converter(MyTrainBlock)
    def _convert(block, parent, key):
        return plain_block              # or {key: block, sibling_key: block2}
"""
import mxnet as mx
import numpy as np

from .utils.blocks import iter_blocks, replace_child, clear_cached_graphs, is_hybridized
from .utils.math import max_abs_diff, max_abs_finite

__all__ = ['deploy', 'register_converter', 'register_post_pass', 'DeployError', 'converters']

_CONVERTERS = {}
_POST_PASSES = []


class DeployError(RuntimeError):
    """Raised when a deployed network's output differs from the original's."""


def register_converter(block_cls):
    """Decorator registering ``fn(block, parent, key)`` as the deploy converter for ``block_cls``."""
    def wrap(fn):
        _CONVERTERS[block_cls] = fn
        return fn
    return wrap


def register_post_pass(fn):
    """Decorator registering ``fn(net, replaced, data_shape)``, run after every converter: it may
    rewrite what the converters produced (``replaced``: the ``(parent, key, new_block)`` slots they
    filled) with knowledge of the whole graph, e.g. fold biases into downstream BNs."""
    _POST_PASSES.append(fn)
    return fn


def _own_converters():
    """The train-time blocks of :mod:`asymmzoo.nn`, each converting itself (``deploy_convert``)."""
    from .nn.acb import ACBlock, ACBAbsorbedBN
    from .nn.rotate import RotateConv2D
    return {cls: cls.deploy_convert for cls in (ACBlock, ACBAbsorbedBN, RotateConv2D)}


def converters():
    """Every block class ``deploy`` converts: the package's own and those registered."""
    return dict(_own_converters(), **_CONVERTERS)


def _converter_for(block):
    for cls in type(block).__mro__:
        if cls in _CONVERTERS:                      # a registered converter wins
            return _CONVERTERS[cls]
        if callable(cls.__dict__.get('deploy_convert')):
            return type(block).deploy_convert
    return None


def _default_shape(net, input_shape):
    if input_shape is None:
        input_shape = getattr(net, 'default_input_shape', None)
    if input_shape is None:
        in_ch = getattr(net, 'in_channels', 3) or 3
        input_shape = (2, in_ch, 224, 224)
    return tuple(input_shape)


def _default_probe(net, input_shape, ctx):
    rng = np.random.RandomState(0)
    return mx.nd.array(rng.standard_normal(_default_shape(net, input_shape)), ctx=ctx)


def _param_ctx(net):
    for p in net.collect_params().values():
        if p._data is not None:
            return p.list_ctx()[0]
    return mx.cpu()


def _outputs(net, x):
    # a net whose plain output is not comparable element-wise (e.g. a detector's NMS reorders near
    # ties) may provide ``deploy_check_outputs(x)``: the outputs to compare instead
    check = getattr(net, 'deploy_check_outputs', None)
    with mx.autograd.predict_mode():
        out = check(x) if callable(check) else net(x)
    outs = out if isinstance(out, (list, tuple)) else [out]
    return [o.asnumpy() for o in outs]


def _guard_forward(net):
    """A deployed network's hybridized graph with plain channel concats cannot be trained on every
    CPU (oneDNN's concat backward, see asymmzoo.nn.concat): its ``forward`` says so under
    ``autograd.record()`` before MXNet fails inside the backward. (A wrapper on the instance, not a
    forward pre-hook: MXNet warns on every ``hybridize()`` of a block that has hooks.)"""
    from .nn.concat import _concat_blocks
    forward = net.forward

    def guarded(*args, **kwargs):
        if mx.autograd.is_recording() and is_hybridized(net) and \
                any(b.plain_concat for b in _concat_blocks(net)):
            raise RuntimeError("this network was deployed for inference (its channel concats are the "
                               "plain form, which oneDNN cannot train at every channel offset); call "
                               "asymmzoo.nn.use_plain_concat(net, False) before training it")
        return forward(*args, **kwargs)
    object.__setattr__(net, 'forward', guarded)
    object.__setattr__(net, '_plain_concat_guard', True)


def _check_bn_statistics(net):
    """Refuse BatchNorm parameters / statistics that are not finite before anything is converted:
    folded into the convolutions they would make every output NaN."""
    for name, p in net.collect_params().items():
        if not name.endswith(('running_mean', 'running_var', 'gamma', 'beta')) or p._data is None:
            continue
        if not np.isfinite(p.data().asnumpy()).all():
            raise ValueError("deploy(): the BatchNorm parameter %s holds values that are not finite "
                             "(NaN or inf): its statistics are broken (a diverged run?); load good "
                             "weights, or re-estimate the BN statistics, before deploying" % name)


def deploy(net, verify=True, probe=None, input_shape=None, rtol=1e-4, atol=1e-5):
    """Convert ``net`` in place to its inference form and return it.

    Parameters
    ----------
    net : Block, any network (initialised)
    verify : bool, compare outputs before / after on ``probe`` and raise DeployError on mismatch
    probe : NDArray input for the check; default: random normal of ``input_shape`` (default the
        model's ``default_input_shape`` or (2, 3, 224, 224))
    rtol, atol : tolerance of the check, relative to the largest output magnitude
    """
    if not isinstance(net, mx.gluon.Block):
        raise TypeError("deploy() takes a Gluon network (e.g. asymmzoo.get_model(name), initialised), "
                        "got %r" % (net,))
    if _converter_for(net) is not None:
        raise TypeError("deploy() converts the blocks inside a network; wrap a bare %s in a "
                        "HybridSequential first" % type(net).__name__)
    _check_bn_statistics(net)
    ctx = _param_ctx(net)
    if verify:
        if probe is None:
            probe = _default_probe(net, input_shape, ctx)
        before = _outputs(net, probe)
    hybridized = is_hybridized(net)
    # convert bottom-up: collect first, so converted subtrees are not walked again
    todo = [(parent, key, child) for _, parent, key, child in iter_blocks(net)
            if _converter_for(child) is not None]
    replaced = []
    for parent, key, child in todo:
        if parent._children.get(str(key)) is not child:
            continue  # replaced together with a sibling
        result = _converter_for(child)(child, parent, key)
        if not isinstance(result, dict):
            result = {str(key): result}
        for k, new in result.items():
            replace_child(parent, k, new)
            replaced.append((parent, str(k), new))
    clear_cached_graphs(net)
    data_shape = tuple(probe.shape) if probe is not None else _default_shape(net, input_shape)
    for post in _POST_PASSES:
        post(net, replaced, data_shape)
        clear_cached_graphs(net)
    # the deployed graph only runs inference: feature concats take the plain 4-D form (faster; the
    # training-safe form is needed only for oneDNN's concat backward, see asymmzoo.nn.concat)
    from .nn.concat import use_plain_concat
    if use_plain_concat(net, True) and not getattr(net, '_plain_concat_guard', False):
        _guard_forward(net)
    if hybridized:
        net.hybridize()
    net.deployed = True
    if verify:
        after = _outputs(net, probe)
        for i, (a, b) in enumerate(zip(before, after)):
            if np.isnan(a).any():
                raise DeployError("output %d of the network itself contains NaN, so its deployed "
                                  "form cannot be checked: are its weights finite (a diverged "
                                  "training run)?" % i)
            scale = max(max_abs_finite(a), 1e-12)
            err = max_abs_diff(a, b)   # equal infinities (a detector's padded boxes) count as 0
            if err > atol + rtol * scale:
                raise DeployError(
                    "deployed output %d differs from the original by %.3g (max |out| = %.3g, allowed "
                    "%.3g). A converter produced wrong weights; please report it with the model name."
                    % (i, err, scale, atol + rtol * scale))
    return net
