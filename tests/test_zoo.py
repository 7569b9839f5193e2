"""Checks every registered model: forward shape, gradients, hybridize == imperative, export round trip.

Every model whose spec says ``task='classification'`` is checked here (selected from the registry, not
built to be skipped); the task heads (detection, pose, action, face) are covered by their own files.
"""
import os

import mxnet as mx
import numpy as np
import pytest

import asymmzoo
from _helpers import random_input as _rand
from _helpers import randomize_bn as _randomize_bn


ALL = asymmzoo.list_models(task='classification')


def _input_shape(net):
    return tuple(getattr(net, 'min_input_shape', (2, 3, 64, 64)))


def _build(name, classes=7):
    net = asymmzoo.get_model(name, classes=classes)
    mx.random.seed(0)
    net.initialize(mx.init.Xavier(magnitude=2.0))
    return net


@pytest.mark.parametrize('name', ALL)
def test_forward_backward_hybridize_export(name, tmp_path):
    net = _build(name)
    shape = _input_shape(net)
    x = _rand(shape)
    # training-mode forward + backward: every trainable parameter gets a (finite, non-identically zero
    # over the whole net) gradient
    with mx.autograd.record():
        out = net(x)
        loss = (out * _rand(out.shape, seed=3)).sum()
    loss.backward()
    assert out.shape == (shape[0], 7), (name, out.shape)
    no_grad = []
    for pname, p in net.collect_params().items():
        if p.grad_req == 'null':
            continue
        g = p.grad().asnumpy()
        assert np.all(np.isfinite(g)), pname
        if not np.any(g):
            no_grad.append(pname)
    assert not no_grad, "parameters without gradient: %s" % no_grad
    # inference: imperative vs hybridized vs exported symbol
    _randomize_bn(net)
    with mx.autograd.predict_mode():
        ref = net(x).asnumpy()
        net.hybridize(static_alloc=True, static_shape=True)
        hyb = net(x).asnumpy()
    np.testing.assert_allclose(hyb, ref, rtol=1e-4, atol=1e-4 * max(1.0, np.abs(ref).max()))
    prefix = os.path.join(str(tmp_path), 'm')
    net.export(prefix, epoch=0)
    sb = mx.gluon.SymbolBlock.imports(prefix + '-symbol.json', ['data'], prefix + '-0000.params')
    np.testing.assert_allclose(sb(x).asnumpy(), ref, rtol=1e-4, atol=1e-4 * max(1.0, np.abs(ref).max()))
