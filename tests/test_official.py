"""`convert-official` for every AsymmNet-L / -S width and the authors' MobileNetV3, under both naming
schemes. The authors' structure is built here independently, from the paper's tables and the
wiring of their published code (block 0 is declared for 16 input channels at every width; the
expansion exists when its width exceeds max(c_in, r * c_in); the depthwise conv takes
mid + r * c_in channels), so a file saved from it has their names and their layout."""
import os
import subprocess
import sys

import mxnet as mx
import numpy as np
import pytest
from mxnet.gluon import nn

import asymmzoo
from asymmzoo.io import WeightsError
from asymmzoo.models.official import convert_official, official_models

# kernel, expansion, out, SE, activation, stride (the paper's Table 3 / Table 4)
_TABLES = {
    'large': ([(3, 16, 16, 0, 'relu', 1), (3, 64, 24, 0, 'relu', 2), (3, 72, 24, 0, 'relu', 1),
               (5, 72, 40, 1, 'relu', 2), (5, 120, 40, 1, 'relu', 1), (5, 120, 40, 1, 'relu', 1),
               (3, 240, 80, 0, 'hs', 2), (3, 200, 80, 0, 'hs', 1), (3, 184, 80, 0, 'hs', 1),
               (3, 184, 80, 0, 'hs', 1), (3, 480, 112, 1, 'hs', 1), (3, 672, 112, 1, 'hs', 1),
               (5, 672, 160, 1, 'hs', 2), (5, 960, 160, 1, 'hs', 1), (5, 960, 160, 1, 'hs', 1)], 960),
    'small': ([(3, 16, 16, 1, 'relu', 2), (3, 72, 24, 0, 'relu', 2), (3, 88, 24, 0, 'relu', 1),
               (5, 96, 40, 1, 'hs', 2), (5, 240, 40, 1, 'hs', 1), (5, 240, 40, 1, 'hs', 1),
               (5, 120, 48, 1, 'hs', 1), (5, 144, 48, 1, 'hs', 1), (5, 288, 96, 1, 'hs', 2),
               (5, 576, 96, 1, 'hs', 1), (5, 576, 96, 1, 'hs', 1)], 576),
}


def _up8(x):
    return int(np.ceil(x / 8.0)) * 8


class _HSwish(nn.HybridBlock):
    def hybrid_forward(self, F, x):
        return x * F.clip(x + 3, 0, 6) / 6


class _ConvBN(nn.HybridBlock):
    def __init__(self, ch, k=1, s=1, groups=1, act=None):
        super().__init__()
        self.conv = nn.Conv2D(ch, k, s, k // 2, groups=groups, use_bias=False)
        self.bn = nn.BatchNorm()
        self.act = None if act is None else (nn.Activation('relu') if act == 'relu' else _HSwish())

    def hybrid_forward(self, F, x):
        y = self.bn(self.conv(x))
        return y if self.act is None else self.act(y)


class _Squeeze(nn.HybridBlock):
    def __init__(self, ch):
        super().__init__()
        self.conv1 = nn.Conv2D(_up8(ch // 4), 1)
        self.conv2 = nn.Conv2D(ch, 1)

    def hybrid_forward(self, F, x):
        s = F.mean(x, axis=(2, 3), keepdims=True)
        s = self.conv2(F.relu(self.conv1(s)))
        return F.broadcast_mul(x, F.clip(s + 3, 0, 6) / 6)


class _TheirBlock(nn.HybridBlock):
    """The asymmetric bottleneck of their asymmnet.py (r >= 1) or the residual unit of their
    mobilenetv3.py (``mnv3``); ``names`` = (depthwise child, linear child)."""

    def __init__(self, c_in, mid, out, k, se, act, s, r, mnv3, names):
        super().__init__()
        self.r, self.names = r, names
        if mnv3:
            self.has_expand, dw = out != mid, mid
            if self.has_expand:
                self.expand = _ConvBN(mid, act=act)
            self.r = 0
        else:
            self.has_expand = mid > max(c_in, r * c_in)
            dw = mid + r * c_in if self.has_expand else mid
            if self.has_expand:
                self.expand = _ConvBN(mid - r * c_in, act=act)
        setattr(self, names[0], _ConvBN(dw, k, s, groups=dw, act=act))
        self.se = _Squeeze(dw) if se else None
        setattr(self, names[1], _ConvBN(out))
        self.residual = c_in == out and s == 1

    def hybrid_forward(self, F, x):
        h = x
        if self.has_expand:
            h = self.expand(x)
            if self.r:
                h = F.concat(*([x] * self.r + [h] + [x] * self.r), dim=1)
        h = getattr(self, self.names[0])(h)
        if self.se is not None:
            h = self.se(h)
        h = getattr(self, self.names[1])(h)
        return x + h if self.residual else h


class TheirNet(nn.HybridBlock):
    def __init__(self, arch, k, r=1, mnv3=False, names=('dw_conv', 'pw_conv_linear'), classes=1000):
        super().__init__()
        table, last = _TABLES[arch]
        self.features = nn.HybridSequential()
        self.features.add(nn.Conv2D(_up8(16 * k), 3, 2, 1, use_bias=False), nn.BatchNorm(), _HSwish())
        c_in = 16   # their block 0 is declared for 16 channels at every width
        for kernel, exp, out, se, act, s in table:
            blk = _TheirBlock(c_in, _up8(k * exp), _up8(k * out), kernel, se, act, s, r, mnv3, names)
            self.features.add(blk)
            c_in = _up8(k * out)
        self.features.add(nn.Conv2D(_up8(k * last), 1, use_bias=False), nn.BatchNorm(), _HSwish(),
                          nn.GlobalAvgPool2D(), nn.Conv2D(1280, 1, use_bias=False), _HSwish(), nn.Dropout(0.2))
        self.output = nn.HybridSequential()
        self.output.add(nn.Conv2D(classes, 1), nn.Flatten())

    def hybrid_forward(self, F, x):
        return self.output(self.features(x))


def _their_file(net, path, seed=0):
    net.initialize(mx.init.Xavier())
    with mx.autograd.predict_mode():
        net(mx.nd.zeros((1, 3, 64, 64)))
    rng = np.random.RandomState(seed)
    for name, p in net.collect_params().items():
        if name.endswith(('running_var', 'gamma')):
            v = rng.uniform(0.5, 1.5, p.shape)
        elif name.endswith(('running_mean', 'beta', 'bias')):
            v = rng.normal(0, 0.2, p.shape)
        else:
            v = rng.normal(0, 1.0 / np.sqrt(max(1, np.prod(p.shape[1:]))), p.shape)
        p.set_data(mx.nd.array(v))
    net.save_parameters(path)
    return path


def _out(net, x):
    with mx.autograd.predict_mode():
        return net(x).asnumpy()


def _check(model, their, tmp_path, tol=1e-5):
    src = _their_file(their, str(tmp_path / 'theirs.params'))
    dst = str(tmp_path / 'ours.params')
    convert_official(src, dst, model=model)
    ours = asymmzoo.get_model(model, pretrained=dst)
    x = mx.nd.random.uniform(-1, 1, shape=(2, 3, 96, 96))
    a, b = _out(ours, x), _out(their, x)
    np.testing.assert_allclose(a, b, rtol=tol, atol=tol * max(1.0, np.abs(b).max()))
    return src


def test_asymmnet_s_075_published_and_released_naming(tmp_path):
    """The brief's case: a file saved from the authors' published AsymmNet-S x0.75 (dw_conv /
    pw_conv_linear) and one in the released naming (conv1 / conv2) give our model their outputs."""
    their = TheirNet('small', 0.75)
    src = _check('asymmnet_small_0.75', their, tmp_path)
    keys = mx.nd.load(src)
    assert any('.dw_conv.' in k for k in keys) and any('.pw_conv_linear.' in k for k in keys)
    # the same weights under the released names
    released = {k.replace('.dw_conv.', '.conv1.').replace('.pw_conv_linear.', '.conv2.'): v
                for k, v in keys.items()}
    rel = str(tmp_path / 'released.params')
    mx.nd.save(rel, released)
    dst = str(tmp_path / 'ours2.params')
    convert_official(rel, dst, model='asymmnet_small_0.75')
    ours = asymmzoo.get_model('asymmnet_small_0.75', pretrained=dst)
    x = mx.nd.random.uniform(-1, 1, shape=(2, 3, 96, 96))
    b = _out(their, x)
    np.testing.assert_allclose(_out(ours, x), b, rtol=1e-5, atol=1e-5 * max(1.0, np.abs(b).max()))


@pytest.mark.parametrize('model', ['asymmnet_large_0.75', 'asymmnet_small_0.35', 'asymmnet_small_1.0',
                                   'mobilenetv3_large_1.0', 'mobilenetv3_small_0.5'])
def test_other_widths_and_their_mobilenetv3(model, tmp_path):
    fam, arch, k = model.split('_')
    mnv3 = fam == 'mobilenetv3'
    names = ('conv1', 'conv2') if mnv3 else ('dw_conv', 'pw_conv_linear')
    _check(model, TheirNet(arch, float(k), mnv3=mnv3, names=names), tmp_path)


def test_every_width_converts_by_keys():
    """Every name convert-official takes has a key table of the authors' layout (ours, renamed)."""
    from asymmzoo.models.official import expected_official_keys, _reference_keys
    assert expected_official_keys('asymmnet_large_1.0') == _reference_keys()
    assert len(official_models()) == 20
    for model in official_models():
        table = expected_official_keys(model)
        assert not any(k.startswith('head.') for k in table)


@pytest.mark.parametrize('model', ['asymmnet_large_0.35', 'asymmnet_large_0.5', 'mobilenetv3_large_0.5',
                                   'mobilenetv3_large_1.25'])
def test_widths_whose_block0_differs_are_refused(model, tmp_path):
    """Their block 0 is declared for 16 input channels: at an -L width whose stem is not 16 channels
    it has no residual sum (ours has). Loaded key for key (bypassing the refusal), their weights give
    other outputs in our model; convert-official refuses with that reason and writes nothing."""
    from asymmzoo.models.official import official_to_ours, released_key
    fam, arch, k = model.split('_')
    their = TheirNet(arch, float(k), mnv3=fam == 'mobilenetv3',
                     names=('conv1', 'conv2') if fam == 'mobilenetv3' else ('dw_conv', 'pw_conv_linear'))
    src = _their_file(their, str(tmp_path / 't.params'))
    ours = asymmzoo.get_model(model)
    n_features = len(ours.features)
    arrays = {official_to_ours(released_key(key), n_features): v for key, v in mx.nd.load(src).items()}
    params = ours._collect_params_with_prefix()
    assert sorted(arrays) == sorted(params)                                  # the keys fit ...
    ours.initialize()
    for key, p in params.items():
        p.set_data(arrays[key])
    x = mx.nd.random.uniform(-1, 1, shape=(2, 3, 96, 96))
    a, b = _out(ours, x), _out(their, x)
    # ... the outputs do not: by far more than the 1e-5 every converted width meets
    assert np.abs(a - b).max() > 1e-4 * max(1.0, np.abs(b).max())
    with pytest.raises(WeightsError, match='their block 0 has no residual sum and ours has one'):
        convert_official(src, str(tmp_path / 'o.params'), model=model)
    assert not os.path.exists(str(tmp_path / 'o.params'))


@pytest.mark.parametrize('model', ['asymmnet_large_1.25', 'asymmnet_small_1.25'])
def test_asymmnet_125_has_no_authors_weights(model, tmp_path):
    """Their asymmnet.py does not build at x1.25 (the depthwise conv is declared for fewer channels
    than the concatenation gives): no such checkpoint can exist, and the refusal says so."""
    src = str(tmp_path / 't.params')
    mx.nd.save(src, {'features.0.weight': mx.nd.ones((24, 3, 3, 3))})
    with pytest.raises(WeightsError, match='their AsymmNet code does not build at x1.25'):
        convert_official(src, str(tmp_path / 'o.params'), model=model)
    assert not os.path.exists(str(tmp_path / 'o.params'))


def test_unknown_and_missing_keys_are_listed(tmp_path):
    their = TheirNet('small', 0.75)
    arrays = mx.nd.load(_their_file(their, str(tmp_path / 't.params')))
    del arrays['features.4.dw_conv.bn.gamma']
    arrays['features.4.extra_layer.weight'] = mx.nd.ones((3,))
    bad = str(tmp_path / 'bad.params')
    mx.nd.save(bad, arrays)
    with pytest.raises(WeightsError) as err:
        convert_official(bad, str(tmp_path / 'o.params'), model='asymmnet_small_0.75')
    msg = str(err.value)
    assert 'missing keys (1): features.4.conv1.bn.gamma' in msg
    assert 'unexpected keys (1): features.4.extra_layer.weight' in msg
    assert not os.path.exists(str(tmp_path / 'o.params'))
    with pytest.raises(WeightsError, match="is not a checkpoint of the authors' asymmnet_large_0.75"):
        convert_official(str(tmp_path / 't.params'), str(tmp_path / 'o.params'), model='asymmnet_large_0.75')
    with pytest.raises(WeightsError, match='--model one of asymmnet_'):
        convert_official(str(tmp_path / 't.params'), str(tmp_path / 'o.params'), model='asymmnet_small_0.75_pruned')
    r = subprocess.run([sys.executable, '-m', 'asymmzoo.cli', 'convert-official', str(tmp_path / 't.params'),
                        str(tmp_path / 'o.params'), '--model', 'asymmnet_small_0.75'],
                       capture_output=True, text=True)
    assert r.returncode == 0 and os.path.isfile(str(tmp_path / 'o.params')), r.stderr
