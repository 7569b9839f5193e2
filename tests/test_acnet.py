"""ACNet: ACBlock vs an independent numpy reference, acnetify / deploy on the registry and on GluonCV's
own models, the paper's analyses, and (slow) a short real training run."""
import os
import tempfile

import mxnet as mx
import numpy as np
import pytest
from mxnet.gluon import nn

import asymmzoo
from asymmzoo.nn import ACBAbsorbedBN
from asymmzoo.transforms.acnet import acb_blocks, count_lone_bias, is_acnet_convertible
from asymmzoo.nn import ACBlock
from asymmzoo.utils import count_params

EPS = 1e-5


# ----------------------------------------------------------------------------- numpy reference
def np_conv(x, w, stride, pad, groups):
    """Direct grouped 2-D cross-correlation, float64."""
    n, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    sh, sw = stride
    xp = np.pad(x, ((0, 0), (0, 0), (pad[0], pad[0]), (pad[1], pad[1])))
    ho = (h + 2 * pad[0] - kh) // sh + 1
    wo = (wd + 2 * pad[1] - kw) // sw + 1
    out = np.zeros((n, o, ho, wo))
    og = o // groups
    for g in range(groups):
        xs = xp[:, g * cg:(g + 1) * cg]
        ws = w[g * og:(g + 1) * og]
        for i in range(kh):
            for j in range(kw):
                patch = xs[:, :, i:i + sh * (ho - 1) + 1:sh, j:j + sw * (wo - 1) + 1:sw]
                out[:, g * og:(g + 1) * og] += np.einsum('nchw,oc->nohw', patch, ws[:, :, i, j])
    return out


def np_bn(y, gamma, beta, mean, var, train):
    if train:
        mean = y.mean(axis=(0, 2, 3))
        var = y.var(axis=(0, 2, 3))
    r = lambda v: v.reshape(1, -1, 1, 1)
    return r(gamma) * (y - r(mean)) / np.sqrt(r(var) + EPS) + r(beta)


def np_acb(block, x, train):
    """ACB by its definition (paper Fig. 2): the 1xk / kx1 kernels sit on the centre row / column of
    the kxk sliding window; every branch is a kxk conv with the square padding, then its BN."""
    k, p, g, s = block.kernel_size, block.padding, block.groups, block.strides
    m, a = k // 2, block.asym_kernel_size
    lo, hi = m - a // 2, m + a // 2 + 1
    out = 0
    for conv, bn, place in [(block.square_conv, block.square_bn, None),
                            (block.ver_conv, block.ver_bn, 'ver'),
                            (block.hor_conv, block.hor_bn, 'hor')]:
        w = conv.weight.data().asnumpy().astype(np.float64)
        full = np.zeros(w.shape[:2] + (k, k))
        if place is None:
            full[:] = w
        elif place == 'ver':
            full[:, :, lo:hi, m] = w[:, :, :, 0]
        else:
            full[:, :, m, lo:hi] = w[:, :, 0, :]
        y = np_conv(x, full, s, (p, p), g)
        stats = [getattr(bn, a).data().asnumpy().astype(np.float64)
                 for a in ('gamma', 'beta', 'running_mean', 'running_var')]
        out = out + np_bn(y, *stats, train=train)
    return out


def _randomize(net, seed=1):
    """Random BN affine parameters and running statistics everywhere."""
    rng = np.random.RandomState(seed)
    for name, p in net.collect_params().items():
        if name.endswith('gamma'):
            p.set_data(mx.nd.array(rng.uniform(0.5, 1.5, p.shape)))
        elif name.endswith(('beta', 'running_mean')):
            p.set_data(mx.nd.array(rng.uniform(-0.5, 0.5, p.shape)))
        elif name.endswith('running_var'):
            p.set_data(mx.nd.array(rng.uniform(0.5, 2.0, p.shape)))


def _rel(a, b):
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-12))


# (kernel, stride, padding, groups[, asym])   C = 8 channels, input 9 x 11 (non-square on purpose)
ACB_CASES = [
    (3, 1, 1, 1),   # the common case
    (3, 2, 1, 1),   # stride 2
    (3, 1, 1, 8),   # depthwise
    (3, 2, 1, 8),   # depthwise, stride 2
    (5, 1, 2, 1),   # k = 5
    (3, 1, 0, 1),   # p = 0: crop by 1
    (5, 2, 0, 2),   # p = 0, k = 5: crop by 2, stride 2, grouped
    (5, 1, 1, 8),   # partial crop (p < k//2), depthwise
    (3, (2, 1), 2, 1),  # p > k//2 and unequal strides
    (5, 1, 2, 1, 3),    # 1x3 / 3x1 branches on a 5x5 kernel (the paper's AlexNet choice)
    (7, 2, 1, 2, 3),    # short branches, crop along both axes
    (9, 3, 4, 8, 5),    # depthwise, 1x5 on 9x9, stride 3
]


@pytest.mark.parametrize('k,s,p,g,a', [c + (None,) * (5 - len(c)) for c in ACB_CASES])
def test_acblock_matches_numpy_reference(k, s, p, g, a):
    rng = np.random.RandomState(k * 100 + p * 10 + g)
    blk = ACBlock(8, k, strides=s, padding=p, groups=g, in_channels=8, asym_kernel_size=a)
    blk.initialize(mx.init.Normal(0.5))
    _randomize(blk, seed=k + g)
    x = rng.standard_normal((2, 8, 9, 11))
    xn = mx.nd.array(x)
    with mx.autograd.predict_mode():
        y_inf = blk(xn).asnumpy()
    ref = np_acb(blk, x, train=False)
    assert y_inf.shape == ref.shape
    assert _rel(y_inf, ref) < 1e-5
    # training mode: every branch BN normalises with its own batch statistics
    with mx.autograd.record(train_mode=True):
        y_train = blk(xn)
    assert _rel(y_train.asnumpy(), np_acb(blk, x, train=True)) < 1e-4
    # same output shape as the Conv2D it replaces
    conv = nn.Conv2D(8, k, strides=s, padding=p, groups=g, in_channels=8)
    conv.initialize()
    assert conv(xn).shape == y_inf.shape
    # fused kernel / bias: the equivalent conv reproduces the inference output
    kernel, bias = blk.get_equivalent_kernel_bias(as_numpy=True)
    assert kernel.shape == (8, 8 // g, k, k) and bias.shape == (8,)
    fused = np_conv(x, kernel, blk.strides, (p, p), g) + bias.reshape(1, -1, 1, 1)
    assert _rel(fused, ref) < 1e-5
    # after running statistics moved (they were updated by the training pass) it still fuses exactly
    with mx.autograd.predict_mode():
        y2 = blk(xn).asnumpy()
    assert _rel(blk.to_conv()(xn).asnumpy(), y2) < 1e-5


def test_acblock_hybridized_and_gamma_init():
    blk = ACBlock(4, 3, padding=0, in_channels=3, gamma_init=1.0 / 3)
    blk.initialize()
    x = mx.nd.random.normal(shape=(2, 3, 8, 8))
    y = blk(x).asnumpy()
    blk.hybridize()
    assert _rel(blk(x).asnumpy(), y) < 1e-6
    for bn in (blk.square_bn, blk.ver_bn, blk.hor_bn):
        assert np.allclose(bn.gamma.data().asnumpy(), 1.0 / 3)
    names = set(blk._collect_params_with_prefix())
    assert {'square_conv.weight', 'square_bn.gamma', 'ver_conv.weight', 'ver_bn.running_var',
            'hor_conv.weight', 'hor_bn.beta'} <= names
    assert blk.ver_conv.weight.shape == (4, 3, 3, 1) and blk.hor_conv.weight.shape == (4, 3, 1, 3)


@pytest.mark.parametrize('kwargs,match', [
    (dict(kernel_size=3, dilation=2), 'dilation'),
    (dict(kernel_size=4), 'odd kernel'),
    (dict(kernel_size=1), 'odd kernel'),
    (dict(kernel_size=(3, 5)), 'square kernel'),
    (dict(kernel_size=3, padding=(1, 0)), 'square padding'),
    (dict(kernel_size=5, asym_kernel_size=7), 'asym_kernel_size'),
    (dict(kernel_size=5, asym_kernel_size=2), 'asym_kernel_size'),
])
def test_acblock_refuses(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ACBlock(8, **kwargs)


def test_acnetify_leaves_unsupported_convs_and_refuses_bare_conv():
    net = nn.HybridSequential()
    net.add(nn.Conv2D(4, 3, padding=2, dilation=2, in_channels=3),   # dilated: stays
            nn.Conv2D(4, 2, in_channels=4),                           # even: stays
            nn.Conv2D(4, 1, in_channels=4),                           # 1x1: stays
            nn.Conv2D(4, 3, padding=1, in_channels=4, use_bias=False), nn.BatchNorm(in_channels=4),
            nn.Conv2D(4, 3, padding=1, in_channels=4, activation='relu'))  # lone, keeps its act
    asymmzoo.acnetify(net)
    kinds = [type(b).__name__ for b in net]
    assert kinds == ['Conv2D', 'Conv2D', 'Conv2D', 'ACBlock', 'ACBAbsorbedBN', 'ACBlock']
    net.initialize()
    x = mx.nd.random.normal(shape=(2, 3, 10, 10))
    net(x)
    _randomize(net)
    asymmzoo.deploy(net, probe=x)
    kinds = [type(b).__name__ for b in net]
    assert kinds == ['Conv2D'] * 4 + ['BatchNorm', 'Conv2D']
    assert net[5].act is not None and net[5].bias is not None and net[3].bias is None
    with pytest.raises(TypeError, match='wrap'):
        asymmzoo.acnetify(nn.Conv2D(4, 3))
    assert not is_acnet_convertible(nn.Conv2D(4, 3, layout='NHWC'))


def test_traced_pairs_absorb_attribute_bn():
    """A BN called in the forward code (not a container sibling) is absorbed via the traced graph;
    trace=False leaves the conv lone."""
    class Unit(nn.HybridBlock):
        def __init__(self, **kw):
            super(Unit, self).__init__(**kw)
            with self.name_scope():
                self.bn = nn.BatchNorm(in_channels=4)   # registered first, called second
                self.conv = nn.Conv2D(4, 3, padding=1, use_bias=False, in_channels=3)
                self.conv2 = nn.Conv2D(4, 3, padding=1, use_bias=False, in_channels=4)
                self.bn2 = nn.BatchNorm(in_channels=4)

        def hybrid_forward(self, F, x):
            y = self.conv2(F.relu(self.bn(self.conv(x))))
            return self.bn2(y) + y   # conv2's output has two consumers: not absorbable

    for trace, lone in ((True, 4), (False, 8)):
        net = nn.HybridSequential()
        net.add(Unit())
        asymmzoo.acnetify(net, trace=trace)
        unit = net[0]
        assert isinstance(unit.conv, ACBlock) and isinstance(unit.conv2, ACBlock)
        assert isinstance(unit.bn, ACBAbsorbedBN) == trace and isinstance(unit.bn2, nn.BatchNorm)
        assert count_lone_bias(net) == lone
        net.initialize()
        x = mx.nd.random.normal(shape=(2, 3, 8, 8))
        net(x)
        _randomize(net)
        asymmzoo.deploy(net, probe=x)
        # conv's output reaches only bn: absorbed (trace) or its bias folded into bn's running mean
        # (no trace); conv2's reaches the output through the sum, so its bias has to stay
        assert type(unit.bn) is nn.BatchNorm and unit.conv.bias is None
        assert unit.conv2.bias is not None
        assert count_params(net) == 4 * 3 * 9 + 4 * 4 * 9 + 2 * (4 + 4) + 4


def test_acnetify_initialised_hybridized_net():
    net = asymmzoo.get_model('cifar_quick')
    net.initialize()
    net.hybridize()
    x = mx.nd.random.normal(shape=(2, 3, 32, 32))
    net(x)
    asymmzoo.acnetify(net, gamma_init=1.0 / 3)
    assert len(acb_blocks(net)) == 3
    y = net(x)  # new blocks were initialised, the net was re-hybridized
    assert y.shape == (2, 10) and net._active
    assert np.allclose(acb_blocks(net)[0].hor_bn.gamma.data().asnumpy(), 1.0 / 3)
    asymmzoo.deploy(net, probe=x)
    assert not acb_blocks(net) and net._active


# ---------------------------------------------------------------- every _acb model in the registry
# the ACNet twins, selected by their spec (heads built on an _acb backbone are covered by their own tests)
ACB_MODELS = asymmzoo.list_models(family='acnet')
# pre-activation nets: their kxk convs feed a concat / sum, not a BN, so their ACBs are lone; deploy
# folds the fused biases into the BNs downstream (count_lone_bias tells how many)
PREACT = {'cifar_densenet40_acb', 'cifar_wrn16_8_acb', 'densenet121_acb'}


def test_every_family_has_twins():
    for base in ['cifar_quick', 'cifar_vgg16', 'cifar_resnet56_v1', 'cifar_wrn16_8', 'cifar_densenet40',
                 'alexnet_bn', 'resnet18_v1', 'densenet121']:
        assert base + '_acb' in ACB_MODELS
    asymm = [n for n in asymmzoo.list_models('asymmnet_*') + asymmzoo.list_models('mobilenetv3_*')
             if not n.endswith('_acb')]
    for n in asymm:
        if '_rot' not in n:
            assert n + '_acb' in ACB_MODELS, n


def _ops(net):
    import json
    nodes = json.loads(net(mx.sym.var('data')).tojson())['nodes']
    return [(n['op'], sorted(n.get('attrs', {}).items())) for n in nodes if n['op'] != 'null']


def _assert_loads_into_base(net, base, x, y_ref):
    """The deployed net's saved parameters load into the base model and give ``y_ref``."""
    fd, f = tempfile.mkstemp(suffix='.params')
    os.close(fd)
    try:
        net.save_parameters(f)
        base.load_parameters(f)
    finally:
        os.remove(f)
    with mx.autograd.predict_mode():
        assert _rel(base(x).asnumpy(), y_ref) < 1e-4


def _probe(net):
    shape = getattr(net, 'min_input_shape', (2, 3, 64, 64))
    return mx.nd.array(np.random.RandomState(0).standard_normal((1,) + tuple(shape[1:])))


@pytest.mark.parametrize('name', ACB_MODELS)
def test_registry_acb_deploys_to_base(name):
    net = asymmzoo.get_model(name)
    base_name = net.acnet_base
    x = _probe(net)
    mx.random.seed(0)
    net.initialize(mx.init.Xavier(magnitude=2.0))
    net(x)
    _randomize(net)
    assert acb_blocks(net)
    with mx.autograd.predict_mode():
        y_acb = net(x).asnumpy()
    lone = count_lone_bias(net)
    assert (lone > 0) == (name in PREACT), (name, lone)
    asymmzoo.deploy(net, probe=x)
    assert not acb_blocks(net)
    assert not any(isinstance(b, ACBAbsorbedBN) for _, _, _, b in asymmzoo.utils.blocks.iter_blocks(net))
    with mx.autograd.predict_mode():
        y_dep = net(x).asnumpy()
    assert _rel(y_dep, y_acb) < 1e-4
    base = asymmzoo.get_model(base_name)
    base.initialize()
    base(x)
    asymmzoo.deploy(base, probe=x)   # the base's inference graph (plain channel concats)
    assert count_params(net) == count_params(base)
    dep_names = dict((k, p.shape) for k, p in net._collect_params_with_prefix().items())
    base_names = dict((k, p.shape) for k, p in base._collect_params_with_prefix().items())
    assert dep_names == base_names
    # the deployed graph IS the base graph (same ops, same attributes: same cost) ...
    assert _ops(net) == _ops(base)
    # ... and the deployed weights ARE base weights
    _assert_loads_into_base(net, base, x, y_acb)


# -------------------------------------------------------------- GluonCV's own models, as they are
def _gcv(name):
    import importlib
    mod, fn, size = {
        'resnet18_v1b': ('resnetv1b', 'resnet18_v1b', 64),
        'vgg11_bn': ('vgg', 'vgg11_bn', 32),
        'densenet121': ('densenet', 'densenet121', 224),
        'mobilenet1.0': ('mobilenet', 'mobilenet1_0', 64),
        'mobilenetv2_1.0': ('mobilenet', 'mobilenet_v2_1_0', 64),
        'mobilenetv3_small': ('mobilenetv3', 'mobilenet_v3_small', 64),
        'cifar_resnet20_v1': ('cifarresnet', 'cifar_resnet20_v1', 32),
        'alexnet': ('alexnet', 'alexnet', 64),
    }[name]
    return getattr(importlib.import_module('gluoncv.model_zoo.' + mod), fn), size


@pytest.mark.parametrize('name', ['resnet18_v1b', 'vgg11_bn', 'densenet121', 'mobilenet1.0',
                                  'mobilenetv2_1.0', 'mobilenetv3_small', 'cifar_resnet20_v1',
                                  'alexnet'])
def test_gluoncv_round_trip(name):
    fn, size = _gcv(name)
    x = mx.nd.array(np.random.RandomState(0).standard_normal((1, 3, size, size)))
    net = asymmzoo.acnetify(fn(pretrained=False, classes=10))
    n_acb = len(acb_blocks(net))
    assert n_acb >= 5, n_acb
    mx.random.seed(0)
    net.initialize(mx.init.Xavier(magnitude=2.0))
    with mx.autograd.record():  # trains: gradients reach the asymmetric branches
        out = net(x)
    out.backward()
    assert np.abs(acb_blocks(net)[0].hor_conv.weight.grad().asnumpy()).sum() > 0
    _randomize(net)
    with mx.autograd.predict_mode():
        y_acb = net(x).asnumpy()
    lone = count_lone_bias(net)
    # every kxk conv of these nets feeds one BN (in a container, or -- resnet18_v1b, mobilenetv3 --
    # only in the forward code, found by tracing), except DenseNet's, which feed a concat: deploy
    # folds those biases into the BNs after the concat
    assert (lone > 0) == (name == 'densenet121'), (name, lone)
    asymmzoo.deploy(net, probe=x)
    with mx.autograd.predict_mode():
        assert _rel(net(x).asnumpy(), y_acb) < 1e-4
    base = fn(pretrained=False, classes=10)
    base.initialize()
    base(x)
    assert count_params(net) == count_params(base)
    _assert_loads_into_base(net, base, x, y_acb)


def test_base_parameter_counts():
    """The counts quoted in docs/acnet.md (paper: ResNet-56 0.85M, WRN-16-8 11M, DenseNet-40 1.0M)."""
    want = {'cifar_resnet56_v1': 855770, 'cifar_wrn16_8': 10961402, 'cifar_densenet40': 1019722,
            'cifar_quick': 145706}
    for name, n in want.items():
        net = asymmzoo.get_model(name)
        net.initialize()
        assert count_params(net, (1, 3, 32, 32)) == n, name


# ------------------------------------------------------------------------------------- analyses
def test_kernel_magnitude_matrix_matches_numpy_and_sees_fused_kernels():
    from asymmzoo.analysis import kernel_magnitude_matrix, square_kernels
    net = asymmzoo.acnetify(asymmzoo.get_model('cifar_resnet56_v1'))
    net.initialize(mx.init.Xavier())
    x = mx.nd.random.normal(shape=(1, 3, 32, 32))
    net(x)
    _randomize(net)
    kernels = square_kernels(net)
    assert len(kernels) == len(acb_blocks(net)) == 55
    ref = np.mean([np.abs(k).sum((0, 1)) / np.abs(k).sum((0, 1)).max() for _, k in kernels], axis=0)
    a = kernel_magnitude_matrix(net)
    assert a.shape == (3, 3) and np.allclose(a, ref)
    asymmzoo.deploy(net, probe=x)
    assert np.allclose(kernel_magnitude_matrix(net), a, atol=1e-5)  # same kernels once deployed


def test_pruning_positions_and_curves():
    from asymmzoo.analysis import position_mask, prune_kernels, pruning_curves
    assert position_mask('corner').sum() == 4 and position_mask('skeleton').sum() == 5
    assert position_mask('skeleton')[1].all() and position_mask('skeleton')[:, 1].all()
    rng = np.random.RandomState(0)
    w = rng.uniform(1, 2, (16, 8, 3, 3))
    for mode, ratio in [('corner', 0.3), ('skeleton', 0.2), ('global', 0.5), ('corner', 0.9)]:
        pw = prune_kernels(w, mode, ratio, rng)
        zero = pw == 0
        assert not zero[:, :, ~position_mask(mode)].any()
        assert zero.sum() == min(round(ratio * w.size), position_mask(mode).sum() * 128)
    with pytest.raises(ValueError, match='mode'):
        position_mask('edges')
    net = nn.HybridSequential()
    net.add(nn.Conv2D(4, 3, padding=1, in_channels=2), nn.Conv2D(4, 1, in_channels=4))
    net.initialize()
    net(mx.nd.zeros((1, 2, 5, 5)))
    before = net[0].weight.data().asnumpy().copy()
    centre = lambda n: float(np.abs(n[0].weight.data().asnumpy()[:, :, 1, 1]).sum())
    rows = pruning_curves(net, centre, ratios=(0.0, 0.4), modes=('corner', 'skeleton'), seeds=2)
    got = {(r['mode'], r['ratio']): r['mean'] for r in rows}
    full = centre(net)
    assert got[('corner', 0.0)] == got[('corner', 0.4)] == pytest.approx(full)  # corners spare the centre
    assert got[('skeleton', 0.4)] < full
    assert np.array_equal(net[0].weight.data().asnumpy(), before)  # restored
    acb_net = asymmzoo.acnetify(asymmzoo.get_model('cifar_quick'))
    acb_net.initialize()
    acb_net(mx.nd.zeros((1, 3, 32, 32)))
    with pytest.raises(ValueError, match='deploy'):
        pruning_curves(acb_net, centre, kernel_size=5)


def test_rotation_transforms():
    from asymmzoo.analysis import transform_images, rotation_robustness
    x = np.arange(2 * 1 * 3 * 3, dtype=np.float32).reshape(2, 1, 3, 3)
    r90 = transform_images(x, 'rot90')
    assert r90[0, 0, 0, 0] == x[0, 0, 0, 2]  # counter-clockwise: top-right goes to top-left
    assert np.array_equal(transform_images(x, 'rot180'), x[:, :, ::-1, ::-1])
    assert np.array_equal(transform_images(x, 'flipud')[:, :, 0], x[:, :, 2])
    with pytest.raises(ValueError):
        transform_images(x, 'rot45')
    # a net that reads only the top-left pixel's sign: accuracy per transform is predictable
    net = nn.HybridSequential()
    net.add(nn.Flatten(), nn.Dense(2, in_units=9, use_bias=False))
    net.initialize()
    w = np.zeros((2, 9), np.float32)
    w[1, 0], w[0, 0] = 1, -1
    net[1].weight.set_data(mx.nd.array(w))
    xs = np.zeros((4, 1, 3, 3), np.float32)
    xs[:, 0, 0, 0] = [1, -1, 1, -1]
    y = np.array([1, 0, 1, 0])
    res = rotation_robustness(net, xs, y)
    assert res['original'] == 1.0 and res['rot180'] == 0.5 and res['flipud'] == 0.5


def test_analyze_cli_kernel_matrix(tmp_path):
    from asymmzoo.cli import main
    rc = main(['analyze', 'kernel-matrix', 'cifar_quick', 'cifar_quick_acb', '--kernel-size', '5',
               '--out', str(tmp_path)])
    assert rc == 0
    for f in ('kernel_matrix.csv', 'kernel_matrix.md', 'kernel_matrix.png'):
        assert (tmp_path / f).stat().st_size > 0
    lines = (tmp_path / 'kernel_matrix.csv').read_text().strip().splitlines()
    assert len(lines) == 1 + 2 * 5
    assert main(['analyze', 'pruning', 'cifar_quick', '--params', 'a', 'b', '--out', str(tmp_path)]) == 2


# --------------------------------------------------------------------------- short real training
@pytest.mark.slow
def test_short_real_training_base_and_acb():
    from asymmzoo.train.quick import digits_arrays, quick_train, evaluate
    xtr, ytr = digits_arrays('train', size=32, channels=3)
    xva, yva = digits_arrays('val', size=32, channels=3)
    res = {}
    # ACNet's 1/3 gamma init: with the default 1 the summed branches start 3x too loud and the
    # ACB twin needs ~1.5x the steps to catch up (docs/acnet.md)
    for name, kw in (('cifar_quick', {}), ('cifar_quick_acb', dict(gamma_init=1.0 / 3))):
        net = asymmzoo.get_model(name, classes=10, **kw)
        mx.random.seed(0)
        net.initialize(mx.init.Xavier(magnitude=2.0))
        hist = quick_train(net, xtr, ytr, steps=80, batch_size=32, lr=0.05, seed=0)
        first, last = np.mean(hist['loss'][:10]), np.mean(hist['loss'][-10:])
        assert last < 0.5 * first, (name, first, last)
        acc = evaluate(net, xva, yva)
        assert acc > 0.8, (name, acc)
        if name.endswith('_acb'):
            asymmzoo.deploy(net, probe=mx.nd.array(xva[:4]))
            assert abs(evaluate(net, xva, yva) - acc) < 2e-3
        res[name] = (first, last, acc)
    print(res)


def test_deploy_inside_a_head_built_on_stages():
    """A head chaining backbone.stages() re-homes the stem conv/BN; deploy must fold the absorbed BN
    into the container it walks, leaving no placeholder and the same output."""
    import asymmzoo as _az
    from asymmzoo.nn import ACBAbsorbedBN as _Ph
    from asymmzoo.utils.blocks import iter_blocks as _iter

    class _Head(mx.gluon.nn.HybridBlock):
        def __init__(self, bb):
            super(_Head, self).__init__()
            self.s8, self.s16, self.s32 = bb.stages()

        def hybrid_forward(self, F, x):
            return self.s32(self.s16(self.s8(x))).mean(axis=(2, 3))

    bb = _az.get_model('asymmnet_small_0.35_acb')
    bb.initialize()
    head = _Head(bb)
    rng = np.random.RandomState(0)
    for k, p in head.collect_params().items():
        if k.endswith('running_var'):
            p.set_data(mx.nd.array(rng.uniform(0.5, 2, p.shape)))
        elif k.endswith('running_mean'):
            p.set_data(mx.nd.array(rng.uniform(-0.5, 0.5, p.shape)))
    _az.deploy(head, input_shape=(2, 3, 64, 64))  # verifies equality itself
    assert not [path for path, _, _, c in _iter(head) if isinstance(c, _Ph)]
