"""`_acb` twins start from their base's weights: get_model(twin, pretrained=True) computes exactly the
base function (inference and training mode), and the new branches still train."""
import os

import mxnet as mx
import numpy as np
import pytest

import asymmzoo
from asymmzoo.registry import get_spec
from asymmzoo.weights import add_to_store
from test_fetch import _serve_gluoncv, _source_hash, server  # noqa: F401 (fixture)


def _stored_base(base, root, tmp_path, **kwargs):
    shape = get_spec(base).input_shape
    net = asymmzoo.get_model(base, **kwargs)
    net.initialize(mx.init.Xavier())
    with mx.autograd.predict_mode():
        net(mx.nd.zeros(shape))
    rng = np.random.RandomState(0)
    for k, p in net.collect_params().items():
        p.set_data(mx.nd.array(rng.uniform(0.5, 1.5, p.shape) if k.endswith(('var', 'gamma'))
                               else rng.normal(0, 0.1, p.shape)))
    f = str(tmp_path / ('%s.params' % base))
    net.save_parameters(f)
    add_to_store(f, base, root=root)
    return net, shape


@pytest.mark.parametrize('base,kwargs', [('asymmnet_small_0.35', dict(dropout=0.0)), ('cifar_quick', {}),
                                         ('resnet18_v1', {})])
def test_twin_starts_as_exactly_the_base(base, kwargs, tmp_path):
    root = str(tmp_path / 'store')
    net, shape = _stored_base(base, root, tmp_path, **kwargs)
    twin = asymmzoo.get_model(base + '_acb', pretrained=True, root=root, **kwargs)
    assert asymmzoo.transforms.acb_blocks(twin)
    x = mx.nd.random.uniform(-1, 1, shape=(2,) + tuple(shape[1:]))
    # the twin fused back (deploy) is the base again
    fused = asymmzoo.deploy(asymmzoo.get_model(base + '_acb', pretrained=True, root=root, **kwargs))
    with mx.autograd.predict_mode():
        a = net(x).asnumpy()
        np.testing.assert_allclose(fused(x).asnumpy(), a, rtol=1e-4, atol=1e-5 * np.abs(a).max())
    for mode in (mx.autograd.predict_mode, mx.autograd.train_mode):   # (train mode: batch statistics)
        with mode():
            a, b = net(x).asnumpy(), twin(x).asnumpy()
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6 * np.abs(a).max())
    # the 1xk / kx1 branches start silent but train: their BN gammas get a gradient
    blk = asymmzoo.transforms.acb_blocks(twin)[-1]
    assert float(blk.ver_bn.gamma.data().abs().sum().asscalar()) == 0
    with mx.autograd.record():
        loss = twin(x).sum()
    loss.backward()
    assert float(blk.ver_bn.gamma.grad().abs().sum().asscalar()) > 0


def test_twin_weights_of_its_own_win_and_rotate_twins_say_why(tmp_path):
    root = str(tmp_path / 'store')
    net, shape = _stored_base('cifar_quick', root, tmp_path)
    twin = asymmzoo.get_model('cifar_quick_acb', pretrained=True, root=root)
    blk = asymmzoo.transforms.acb_blocks(twin)[0]
    blk.ver_bn.gamma.set_data(mx.nd.ones(blk.ver_bn.gamma.shape))   # "trained"
    f = str(tmp_path / 'twin.params')
    twin.save_parameters(f)
    add_to_store(f, 'cifar_quick_acb', root=root)
    again = asymmzoo.get_model('cifar_quick_acb', pretrained=True, root=root)
    assert float(asymmzoo.transforms.acb_blocks(again)[0].ver_bn.gamma.data().min().asscalar()) == 1
    rot = [n for n in asymmzoo.list_models('*_rot4')][:1]
    if rot:
        with pytest.raises(asymmzoo.store.StoreError, match='none are published'):
            asymmzoo.get_model(rot[0], pretrained=True, root=root)


def test_twin_of_a_published_base_fetches_it(server, tmp_path):
    gname, base = 'mobilenetv3_small', 'mobilenetv3_small_1.0'
    ref, sha1, path = _serve_gluoncv(server, gname, str(tmp_path))
    with _source_hash(base, sha1):
        twin = asymmzoo.get_model(base + '_acb', pretrained=True)
    assert server.hits == [path] and len(os.listdir(server.root)) == 1
    x = mx.nd.random.uniform(-1, 1, shape=(1, 3, 224, 224))
    with mx.autograd.predict_mode():
        a, b = ref(x).asnumpy(), twin(x).asnumpy()
    np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-5)


def test_twin_on_a_list_ctx_is_on_every_device(tmp_path):
    """GluonCV-style scripts pass a list ctx: the twin's parameters live on each device, like its base's."""
    from asymmzoo.io import atomic_save_parameters
    base = asymmzoo.get_model('cifar_quick', classes=10)
    base.initialize(mx.init.Xavier())
    base(mx.nd.zeros((1, 3, 32, 32)))
    root = str(tmp_path / 'store')
    path = str(tmp_path / 'b.params')
    atomic_save_parameters(base, path)
    from asymmzoo.weights import add_to_store
    add_to_store(path, 'cifar_quick', root=root)
    ctx = [mx.cpu(0), mx.cpu(1)]
    twin = asymmzoo.get_model('cifar_quick_acb', classes=10, pretrained=True, root=root, ctx=ctx)
    assert all(p.list_ctx() == ctx for p in twin.collect_params().values())
