"""Pretrained store (sha1-named files), loading rules, and conversion of the released checkpoint."""
import json
import os
import subprocess
import sys

import mxnet as mx
import numpy as np
import pytest
from mxnet.gluon import nn

import asymmzoo
from asymmzoo.store import StoreError, find_pretrained
from asymmzoo.weights import add_to_store
from asymmzoo.models.official import convert_official

HERE = os.path.dirname(os.path.abspath(__file__))
KEYS_JSON = os.path.join(HERE, '..', 'asymmzoo', 'data', 'released_asymmnet_large_1.0_keys.json')


def _trained_like(name, classes=1000):
    net = asymmzoo.get_model(name, classes=classes)
    net.initialize(mx.init.Xavier())
    rng = np.random.RandomState(0)
    for k, p in net.collect_params().items():
        p.set_data(mx.nd.array(rng.uniform(0.5, 1.5, p.shape) if 'var' in k else rng.normal(0, .2, p.shape)))
    return net


def _out(net, x):
    with mx.autograd.predict_mode():
        return net(x).asnumpy()


def test_store_roundtrip_and_errors(tmp_path):
    root = str(tmp_path / 'models')
    net = _trained_like('asymmnet_small_0.35')
    src = str(tmp_path / 'w.params')
    net.save_parameters(src)
    with pytest.raises(StoreError, match=r"asymmnet_small_0\.35-<first 8 hex digits of its sha1>\.params"):
        asymmzoo.get_model('asymmnet_small_0.35', pretrained=True, root=root)
    path = add_to_store(src, 'asymmnet_small_0.35', root=root)
    assert os.path.basename(path).startswith('asymmnet_small_0.35-') and find_pretrained(
        'asymmnet_small_0.35', root) == path
    x = mx.nd.random.uniform(shape=(2, 3, 64, 64))
    loaded = asymmzoo.get_model('asymmnet_small_0.35', pretrained=True, root=root)
    np.testing.assert_allclose(_out(loaded, x), _out(net, x), rtol=1e-5, atol=1e-6)
    # corrupt it: one byte flipped -> sha1 mismatch, refused with the reason
    data = bytearray(open(path, 'rb').read())
    data[len(data) // 2] ^= 0xFF
    open(path, 'wb').write(bytes(data))
    with pytest.raises(StoreError, match='corrupted'):
        asymmzoo.get_model('asymmnet_small_0.35', pretrained=True, root=root)
    with pytest.raises(StoreError, match='not found'):
        asymmzoo.get_model('asymmnet_small_0.35', pretrained=str(tmp_path / 'nope.params'))


def test_pretrained_path_other_classes_drops_classifier(tmp_path):
    net = _trained_like('asymmnet_small_0.5')
    src = str(tmp_path / 'w.params')
    net.save_parameters(src)
    with pytest.warns(UserWarning, match='classifier'):
        new = asymmzoo.get_model('asymmnet_small_0.5', pretrained=src, classes=10)
    assert new(mx.nd.zeros((1, 3, 64, 64))).shape == (1, 10)
    np.testing.assert_array_equal(new.features[0].weight.data().asnumpy(),
                                  net.features[0].weight.data().asnumpy())
    # a file of another architecture is refused with the offending keys listed
    other = str(tmp_path / 'o.params')
    _trained_like('asymmnet_large_0.35').save_parameters(other)
    with pytest.raises(StoreError, match=r'does not fit AsymmNet:\n  missing \(\d+\): .*\n  unexpected \(\d+\): '):
        asymmzoo.get_model('asymmnet_small_0.5', pretrained=other)


# ---- an independent re-implementation of the authors' released model (structure file) ----------
_STRIDES = [1, 2, 1, 2, 1, 1, 2, 1, 1, 1, 1, 1, 2, 1, 1]
_ACTS = ['relu'] * 6 + ['hswish'] * 9


class _HSwish(nn.HybridBlock):
    def hybrid_forward(self, F, x):
        return x * F.clip(x + 3, 0, 6) / 6


def _act(kind):
    return nn.Activation('relu') if kind == 'relu' else _HSwish()


class _Unit(nn.HybridBlock):
    def __init__(self, ch, k=1, s=1, groups=1, act=None):
        super().__init__()
        self.conv = nn.Conv2D(ch, k, s, k // 2, groups=groups, use_bias=False)
        self.bn = nn.BatchNorm()
        self.act = _act(act) if act else None

    def hybrid_forward(self, F, x):
        x = self.bn(self.conv(x))
        return self.act(x) if self.act else x


class _SE(nn.HybridBlock):
    def __init__(self, ch, mid):
        super().__init__()
        self.conv1 = nn.Conv2D(mid, 1)
        self.conv2 = nn.Conv2D(ch, 1)

    def hybrid_forward(self, F, x):
        w = self.conv2(F.relu(self.conv1(F.contrib.AdaptiveAvgPooling2D(x, output_size=1))))
        return F.broadcast_mul(x, F.clip(w + 3, 0, 6) / 6)


class _ModifyUnitV3(nn.HybridBlock):
    def __init__(self, shapes, i, c_in):
        super().__init__()
        p = 'features.%d.' % i
        b = _STRIDES[i - 3], _ACTS[i - 3]
        self.has_expand = p + 'expand.conv.weight' in shapes
        dw, _, k, _ = shapes[p + 'conv1.conv.weight']
        out = shapes[p + 'conv2.conv.weight'][0]
        if self.has_expand:
            self.expand = _Unit(shapes[p + 'expand.conv.weight'][0], act=b[1])
        self.conv1 = _Unit(dw, k, b[0], groups=dw, act=b[1])
        self.se = _SE(dw, shapes[p + 'se.conv1.weight'][0]) if p + 'se.conv1.weight' in shapes else None
        self.conv2 = _Unit(out)
        self.residual = c_in == out and b[0] == 1
        self.out = out

    def hybrid_forward(self, F, x):
        h = F.concat(x, self.expand(x), x, dim=1) if self.has_expand else x
        h = self.conv1(h)
        if self.se is not None:
            h = self.se(h)
        h = self.conv2(h)
        return h + x if self.residual else h


class _ReleasedModel(nn.HybridBlock):
    def __init__(self, shapes):
        super().__init__()
        self.features = nn.HybridSequential()
        self.features.add(nn.Conv2D(16, 3, 2, 1, use_bias=False), nn.BatchNorm(), _HSwish())
        c = 16
        for i in range(3, 18):
            blk = _ModifyUnitV3(shapes, i, c)
            self.features.add(blk)
            c = blk.out
        self.features.add(nn.Conv2D(960, 1, use_bias=False), nn.BatchNorm(), _HSwish(),
                          nn.GlobalAvgPool2D(), nn.Conv2D(1280, 1, use_bias=False), _HSwish(),
                          nn.Dropout(0.2))
        self.output = nn.HybridSequential()
        self.output.add(nn.Conv2D(1000, 1), nn.Flatten())

    def hybrid_forward(self, F, x):
        return self.output(self.features(x))


def _released_file(path, seed=0):
    shapes = {k: tuple(v) for k, v in json.load(open(KEYS_JSON)).items()}
    rng = np.random.RandomState(seed)
    arrays = {k: mx.nd.array(rng.uniform(0.5, 1.5, s) if k.endswith(('running_var', 'gamma'))
                             else rng.normal(0, 0.3 if k.endswith(('mean', 'beta')) else 0.15, s))
              for k, s in shapes.items()}
    mx.nd.save(path, arrays)
    return shapes, arrays


def test_convert_official_gives_the_authors_outputs(tmp_path):
    src, dst = str(tmp_path / 'released.params'), str(tmp_path / 'converted.params')
    shapes, arrays = _released_file(src)
    ref = _ReleasedModel(shapes)
    ref.load_parameters(src)  # the authors' layout loads its own file by name
    convert_official(src, dst)
    ours = asymmzoo.get_model('asymmnet_large_1.0', pretrained=dst)
    x = mx.nd.random.uniform(-1, 1, shape=(2, 3, 224, 224))
    a, b = _out(ours, x), _out(ref, x)
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4 * np.abs(b).max())


def test_convert_official_bad_files(tmp_path):
    src = str(tmp_path / 'released.params')
    _, arrays = _released_file(src)
    del arrays['features.5.expand.conv.weight']
    arrays['features.3.conv1.bn.gamma'] = mx.nd.ones((17,))
    arrays['features.99.weight'] = mx.nd.ones((1,))
    bad = str(tmp_path / 'bad.params')
    mx.nd.save(bad, arrays)
    with pytest.raises(StoreError) as err:
        convert_official(bad, str(tmp_path / 'out.params'))
    msg = str(err.value)
    assert 'features.5.expand.conv.weight' in msg and 'features.99.weight' in msg
    assert 'shape of features.3.conv1.bn.gamma: (17,), expected (16,)' in msg
    # through the CLI: one clear line, exit code 2, nothing written
    junk = str(tmp_path / 'junk.params')
    open(junk, 'wb').write(b'not a params file')
    r = subprocess.run([sys.executable, '-m', 'asymmzoo.cli', 'convert-official', junk,
                        str(tmp_path / 'o2.params')], capture_output=True, text=True)
    assert r.returncode == 2 and 'not a readable MXNet params file' in r.stderr
    assert not os.path.exists(str(tmp_path / 'o2.params'))


def test_atomic_writes_replace_whole_files_or_nothing(tmp_path, monkeypatch):
    from asymmzoo.io import atomic_save_params, atomic_write_json, atomic_write_text
    path = str(tmp_path / 'sub' / 'results.json')   # the folder is created
    atomic_write_json({'b': 1, 'a': [1, 2]}, path, indent=1, sort_keys=False)
    with open(path) as f:
        assert f.read() == json.dumps({'b': 1, 'a': [1, 2]}, indent=1)
    # a write that dies before its rename leaves the previous file whole
    def dies(src, dst):
        raise KeyboardInterrupt
    monkeypatch.setattr(os, 'replace', dies)
    with pytest.raises(KeyboardInterrupt):
        atomic_write_text('half', path)
    with pytest.raises(KeyboardInterrupt):
        atomic_save_params({'w': mx.nd.ones((2,))}, str(tmp_path / 'sub' / 'w.params'))
    monkeypatch.undo()
    with open(path) as f:
        assert json.load(f) == {'b': 1, 'a': [1, 2]}
    assert sorted(os.listdir(str(tmp_path / 'sub'))) == ['results.json']   # no temporaries left
    atomic_write_text('whole', path)
    assert open(path).read() == 'whole'
    assert sorted(os.listdir(str(tmp_path / 'sub'))) == ['results.json']


def test_atomic_target_keeps_mode_follows_links_and_serves_every_writer(tmp_path):
    from asymmzoo.io import atomic_export, atomic_save_parameters, atomic_savefig, atomic_target, atomic_write_text
    real = tmp_path / 'real.txt'
    atomic_write_text('v1', str(real))
    os.chmod(str(real), 0o600)
    link = tmp_path / 'link.txt'
    os.symlink(str(real), str(link))
    atomic_write_text('v2', str(link))
    assert os.path.islink(str(link)) and real.read_text() == 'v2'   # written through the link
    assert os.stat(str(real)).st_mode & 0o777 == 0o600               # its permissions kept
    # the temporary keeps the extension (writers that infer the format from it work)
    with atomic_target(str(tmp_path / 'a.npy')) as tmp:
        assert tmp.endswith('.npy') and os.path.dirname(tmp) == str(tmp_path)
        np.save(tmp, np.arange(3))
    assert np.load(str(tmp_path / 'a.npy')).tolist() == [0, 1, 2]
    # nothing written is an error, not an empty file
    with pytest.raises(FileNotFoundError):
        with atomic_target(str(tmp_path / 'never.txt')):
            pass
    assert not os.path.exists(str(tmp_path / 'never.txt'))
    # a figure, a block's parameters, a symbol export
    import matplotlib
    matplotlib.use('Agg', force=False)
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots()
    ax.plot([0, 1])
    atomic_savefig(fig, str(tmp_path / 'f.png'))
    assert (tmp_path / 'f.png').read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    assert not plt.fignum_exists(fig.number)
    net = nn.HybridSequential()
    net.add(nn.Dense(3, in_units=4))
    net.initialize()
    atomic_save_parameters(net, str(tmp_path / 'n.params'))
    assert sorted(mx.nd.load(str(tmp_path / 'n.params'))) == ['0.bias', '0.weight']
    net.hybridize()
    net(mx.nd.ones((1, 4)))
    sym, par = atomic_export(net, str(tmp_path / 'exp' / 'net'), epoch=3)
    assert (sym, par) == (str(tmp_path / 'exp' / 'net-symbol.json'), str(tmp_path / 'exp' / 'net-0003.params'))
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', UserWarning)  # "Cannot decide type for data": float32
        back = mx.gluon.SymbolBlock.imports(sym, ['data'], par)
    assert np.allclose(back(mx.nd.ones((1, 4))).asnumpy(), net(mx.nd.ones((1, 4))).asnumpy())
    assert sorted(os.listdir(str(tmp_path / 'exp'))) == ['net-0003.params', 'net-symbol.json']
    assert sorted(p for p in os.listdir(str(tmp_path)) if p.startswith('.')) == []   # no temporaries
