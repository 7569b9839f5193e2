"""Getting a network ready to export: its input shapes (a video model's batch items are its frames),
whether it is a detector, realistic BatchNorm statistics for a randomly initialised network
(:func:`randomize_bn_stats`), the refusal of a network that was never initialised
(:func:`check_initialized`) and :func:`prepare_model` (build or take a network, initialise it, load
weights, deploy it)."""
import mxnet as mx
import numpy as np
from ..utils.blocks import check_block, check_input_shape


def _frames_per_item(net):
    """Input rows per batch item: 1 for image models, ``num_segments * num_crop`` frames for the
    video models (``net.frames_per_video``), whose input rows are frames."""
    return int(getattr(net, 'frames_per_video', 1) or 1)


def batch_input_shape(net, shape, batch_size):
    """``shape`` with room for ``batch_size`` items of ``net`` (frames for a video model)."""
    return (int(batch_size) * _frames_per_item(net),) + tuple(shape[1:])


def default_input_shape(net, batch_size=1):
    """The input shape of ``batch_size`` items of ``net``: its ``default_input_shape`` (C, H, W;
    3x224x224 if it has none); a video model's batch items are ``frames_per_video`` frames each."""
    shape = getattr(net, 'default_input_shape', None) or (1, 3, 224, 224)
    return batch_input_shape(net, shape, batch_size)


def is_detector(net):
    """True for GluonCV-style YOLOv3 detectors (their outputs pass through non-maximum suppression)."""
    try:
        from gluoncv.model_zoo.yolo.yolo3 import YOLOV3
    except ImportError:  # pragma: no cover
        return False
    return isinstance(net, YOLOV3)


def _iter_bns(block):
    if isinstance(block, mx.gluon.nn.BatchNorm):
        yield block
    for child in block._children.values():
        for bn in _iter_bns(child):
            yield bn


MIN_STAT_VALUES = 16   # randomize_bn_stats leaves a BN whose channels see fewer values as it is


def randomize_bn_stats(net, x):
    """Set every BatchNorm's running statistics to the statistics of its own input when ``x`` runs
    through the network, and perturb gamma/beta, so that a freshly initialised network produces
    O(1) outputs in inference mode and export checks compare meaningful numbers instead of values
    near 1e-9. The pass runs in inference mode, BN by BN (a forward pre-hook sets each BN's
    statistics from the input it is about to normalise), so it works for networks whose training
    forward needs more than images (YOLOv3's targets) and no dropout disturbs it. A BN whose
    channels see fewer than :data:`MIN_STAT_VALUES` values in ``x`` (an embedding head's 1x1 map)
    keeps its statistics. Only for randomly initialised networks: it overwrites BN statistics."""
    from ..utils.blocks import clear_cached_graphs, iter_blocks
    rng = np.random.RandomState(1)
    with mx.autograd.predict_mode():
        net(x)  # finish deferred initialisation first
    bns = list(_iter_bns(net))
    for bn in bns:
        for pname in ('gamma', 'beta'):
            p = getattr(bn, pname, None)
            if p is not None and p._data is not None:
                base = 1.0 if pname == 'gamma' else 0.0
                p.set_data(mx.nd.array(base + 0.1 * rng.standard_normal(p.shape)))

    def set_stats(bn, inputs):
        data = inputs[0]
        axis = bn._kwargs.get('axis', 1) % data.ndim
        reduce = tuple(a for a in range(data.ndim) if a != axis)
        if data.size // data.shape[axis] < MIN_STAT_VALUES:
            return   # a variance of a few values (a 1x1 map of a small batch) is noise: keep 0 / 1
        mean = data.mean(axis=reduce)
        shape = [1] * data.ndim
        shape[axis] = -1
        var = ((data - mean.reshape(shape)) ** 2).mean(axis=reduce)
        bn.running_mean.set_data(mean)
        bn.running_var.set_data(var)

    blocks = [net] + [child for _, _, _, child in iter_blocks(net)]
    active = {id(b): b._active for b in blocks if isinstance(b, mx.gluon.HybridBlock)}
    for b in blocks:   # the hooks see NDArrays only when every block runs imperatively; not
        if id(b) in active:   # hybridize(False), which would also drop static_alloc / a backend
            b._active = False
    hooks = [bn.register_forward_pre_hook(set_stats) for bn in bns]
    try:
        with mx.autograd.predict_mode():
            net(x)
    finally:
        for h in hooks:
            h.detach()
        for b in blocks:
            if id(b) in active:
                b._active = active[id(b)]
        clear_cached_graphs(net)
    return net


def check_initialized(net, what):
    """Refuse a network with parameters that were never initialised (neither ``initialize()`` nor
    loaded weights) before any work: a one-line ``ValueError`` naming the network, for ``what`` (the
    function refusing it). Deferred initialisation (``initialize()`` before the first forward pass)
    counts as initialised. :func:`prepare_model` initialises such a network itself (random weights,
    for benchmarks); the functions that promise to export or run *your* weights call this instead."""
    if not isinstance(net, mx.gluon.Block):
        return
    missing = [p.name for p in net.collect_params().values()
               if p._data is None and not p._deferred_init]
    if missing:
        raise ValueError("%s: %s has %d parameter(s) that were never initialised (%s%s): initialize it "
                         "(net.initialize()) or load its weights (net.load_parameters(FILE)) first"
                         % (what, getattr(net, 'name_in_zoo', type(net).__name__), len(missing),
                            missing[0], ', ...' if len(missing) > 1 else ''))


def prepare_model(name_or_net, deploy=True, params=None, input_shape=None, classes=None,
                  realistic_stats=True, seed=0):
    """Build (by registry name) or take a network, initialise it, optionally load ``params`` and
    deploy it (``asymmzoo.deploy``, verified). Returns ``(net, input_shape)``.

    A freshly initialised net (no ``params``) gets MSRA-initialised weights and, with
    ``realistic_stats``, BN statistics taken from a random batch (see :func:`randomize_bn_stats`).
    """
    from ..registry import get_model
    from ..deploy import deploy as deploy_net
    from ..io import classes_in_params, load_parameters_checked
    if isinstance(name_or_net, str):
        if classes is None and params:
            classes = classes_in_params(params)   # build the model the checkpoint was trained as
        kw = {} if classes is None else {'classes': classes}
        net = get_model(name_or_net, **kw)
    else:
        check_block(name_or_net, 'prepare_model()', 'a Gluon network or a registry name')
        net = name_or_net
    shape = check_input_shape(input_shape, 'prepare_model()') if input_shape is not None \
        else default_input_shape(net)
    # built here (some builders return their network initialised, as GluonCV's action builders
    # do) or not initialised yet: reproducible random weights; a trained net passed in: untouched
    fresh = isinstance(name_or_net, str) or any(p._data is None for p in net.collect_params().values())
    if fresh:
        mx.random.seed(seed)
        net.initialize(mx.init.MSRAPrelu(), force_reinit=isinstance(name_or_net, str))
    if params:
        load_parameters_checked(net, params)
    elif fresh and realistic_stats:
        rng = np.random.RandomState(seed)
        randomize_bn_stats(net, mx.nd.array(rng.standard_normal(
            batch_input_shape(net, shape, max(2, shape[0] // _frames_per_item(net))))))
    with mx.autograd.predict_mode():
        net(mx.nd.zeros(batch_input_shape(net, shape, 1)))  # finish deferred init
    if deploy and not getattr(net, 'deployed', False):
        probe = mx.nd.array(np.random.RandomState(seed + 1).standard_normal(
            batch_input_shape(net, shape, 2)))
        deploy_net(net, verify=True, probe=probe)
    return net, shape
