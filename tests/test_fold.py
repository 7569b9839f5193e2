"""Folding a conv bias into downstream BatchNorms (asymmzoo.utils.fold): exact where every path of
the conv's output ends in a BN (through sums, concats and channel-keeping reshapes), refused
otherwise."""
import mxnet as mx
import numpy as np
import pytest
from mxnet.gluon import nn

from asymmzoo.utils.fold import fold_conv_biases
from _helpers import randomize_bn


@pytest.fixture(autouse=True)
def _quiet_unused_param():
    import warnings
    with warnings.catch_warnings():
        warnings.filterwarnings('ignore', message='Parameter .* is not used')
        yield


class Net(nn.HybridBlock):
    """x -> conv_a (bias) --+--> [route] --> bn --> out, with ``route`` picking the topology."""

    def __init__(self, route, **kwargs):
        super(Net, self).__init__(**kwargs)
        self.route = route
        with self.name_scope():
            self.stem = nn.Conv2D(6, 3, padding=1, in_channels=3, use_bias=False)
            self.conv_a = nn.Conv2D(6, 3, padding=1, in_channels=6)
            self.conv_b = nn.Conv2D(4, 1, in_channels=6, use_bias=False)
            width = {'concat': 10, 'concat5d': 10}.get(route, 6)
            self.bn = nn.BatchNorm(in_channels=width)
            self.bn2 = nn.BatchNorm(in_channels=6)
            self.head = nn.Conv2D(2, 1, in_channels=width)

    def hybrid_forward(self, F, x):
        s = self.stem(x)
        a = self.conv_a(s)
        r = self.route
        if r == 'sum':             # pre-activation residual: a + identity, then two BNs read it
            y = a + s
            return F.broadcast_add(self.head(F.relu(self.bn(y))), self.bn2(y + a).mean(axis=1, keepdims=True))
        if r == 'concat':          # dense layer: [conv_b(s), a] concatenated, then BN
            y = F.concat(self.conv_b(s), a, dim=1)
            return self.head(F.relu(self.bn(y)))
        if r == 'concat5d':        # the same through 5-D views (our CIFAR DenseNet's concat)
            y = F.concat(self.conv_b(s).expand_dims(2), a.expand_dims(2), dim=1)
            return self.head(F.relu(self.bn(y.reshape((0, 0, -3, 0)))))
        if r == 'relu':            # an activation before the BN: not foldable
            return self.head(self.bn(F.relu(a)))
        if r == 'output':          # a path to the output: not foldable
            return F.broadcast_add(self.head(self.bn(a)), a.mean(axis=1, keepdims=True))
        raise ValueError(r)


def _run(net, hybrid=False):
    """Random weights, BN statistics and conv_a bias; outputs before / after folding conv_a's bias."""
    net.initialize(mx.init.Xavier())
    if hybrid:
        net.hybridize()
    x = mx.nd.random.normal(shape=(2, 3, 8, 8))
    net(x)
    randomize_bn(net)
    net.conv_a.bias.set_data(mx.nd.random.normal(shape=(6,)) * 3)
    with mx.autograd.predict_mode():
        before = net(x).asnumpy()
    with mx.autograd.train_mode():
        before_train = net(x).asnumpy()
    folded = fold_conv_biases(net, [net.conv_a], x.shape)
    with mx.autograd.predict_mode():
        after = net(x).asnumpy()
    with mx.autograd.train_mode():
        after_train = net(x).asnumpy()
    return net, folded, before, after, before_train, after_train


@pytest.mark.parametrize('route', ['sum', 'concat', 'concat5d'])
@pytest.mark.parametrize('hybrid', [False, True])
def test_fold_is_exact(route, hybrid):
    mx.random.seed(1)
    net, folded, before, after, before_train, after_train = _run(Net(route), hybrid)
    assert folded == [net.conv_a]
    assert np.abs(net.conv_a.bias.data().asnumpy()).max() == 0
    scale = np.abs(before).max()
    assert np.abs(before - after).max() < 1e-5 * scale
    # training mode: batch statistics cancel the constant by themselves, so the fold is exact there too
    assert np.abs(before_train - after_train).max() < 1e-4 * np.abs(before_train).max()


@pytest.mark.parametrize('route', ['relu', 'output'])
def test_fold_refuses_when_a_path_does_not_end_in_bn(route):
    mx.random.seed(1)
    net, folded, before, after, _, _ = _run(Net(route))
    assert folded == []
    assert np.abs(net.conv_a.bias.data().asnumpy()).max() > 0
    assert np.array_equal(before, after)


def test_fold_moves_the_bias_into_the_running_mean():
    mx.random.seed(1)
    net = Net('sum')
    net.initialize()
    x = mx.nd.random.normal(shape=(1, 3, 8, 8))
    net(x)
    bias = mx.nd.random.normal(shape=(6,))
    net.conv_a.bias.set_data(bias)
    mean, mean2 = net.bn.running_mean.data().asnumpy(), net.bn2.running_mean.data().asnumpy()
    fold_conv_biases(net, [net.conv_a], x.shape)
    # bn sees a + s (one copy of the bias); bn2 sees a + s + a (two copies)
    assert np.allclose(net.bn.running_mean.data().asnumpy(), mean - bias.asnumpy(), atol=1e-6)
    assert np.allclose(net.bn2.running_mean.data().asnumpy(), mean2 - 2 * bias.asnumpy(), atol=1e-6)


class Odd(nn.HybridBlock):
    """conv_a (bias) feeding a BN in ways the fold must refuse."""

    def __init__(self, case, **kwargs):
        super(Odd, self).__init__(**kwargs)
        self.case = case
        with self.name_scope():
            self.conv_a = nn.Conv2D(6, 3, padding=1, in_channels=3)
            self.conv_b = nn.Conv2D(6, 3, padding=1, in_channels=3, use_bias=False)
            self.bn = nn.BatchNorm(in_channels=6)
            self.bn_last = nn.BatchNorm(axis=3, in_channels=8)

    def hybrid_forward(self, F, x):
        a = self.conv_a(x)
        c = self.case
        if c == 'shared_bn':        # one BN block called on the biased map and on another one
            return self.bn(a) + self.bn(self.conv_b(x))
        if c == 'bn_twice':         # the same BN called twice on the biased map
            return self.bn(a) + self.bn(a + self.conv_b(x))
        if c == 'bn_axis':          # a BN over another axis: the constant is not per its channel
            return self.bn_last(a.reshape((0, 0, 8, -1)))
        if c == 'moves_channels':   # a reshape that does not keep N and C
            return self.bn(a.reshape((0, 3, -1, 8)).reshape((0, 6, 8, 8)))
        if c == 'concat_dim2':      # a concat along H mixes nothing per channel, but is not handled
            return self.bn(F.concat(a, self.conv_b(x), dim=2))
        raise ValueError(c)


@pytest.mark.parametrize('case', ['shared_bn', 'bn_twice', 'bn_axis', 'moves_channels',
                                  'concat_dim2'])
def test_fold_refuses_unsafe_graphs(case):
    mx.random.seed(2)
    net, folded, before, after, _, _ = _run(Odd(case))
    assert folded == []
    assert np.abs(net.conv_a.bias.data().asnumpy()).max() > 0
    assert np.array_equal(before, after)


class Stats(nn.HybridBlock):
    def __init__(self, **kwargs):
        super(Stats, self).__init__(**kwargs)
        with self.name_scope():
            self.conv_a = nn.Conv2D(6, 3, padding=1, in_channels=3)
            self.bn = nn.BatchNorm(in_channels=6)
        self.bn._kwargs['output_mean_var'] = True   # the block exposes (out, mean, var)

    def hybrid_forward(self, F, x):
        out = self.bn(self.conv_a(x))
        return F.broadcast_add(out[0], out[1].reshape((1, -1, 1, 1)))


def test_fold_refuses_bn_statistics_output():
    """A BN with output_mean_var exposes the statistics the constant would shift."""
    net = Stats()
    net.initialize()
    x = mx.nd.random.normal(shape=(2, 3, 8, 8))
    net(x)
    net.conv_a.bias.set_data(mx.nd.ones((6,)))
    assert fold_conv_biases(net, [net.conv_a], x.shape) == []
