"""INT8 noise analysis: layer_sqnr and the fp32 fallback of quantize_net(min_sqnr=...) (issue 8)."""
import mxnet as mx
import numpy as np
import pytest

from asymmzoo.utils.quantize import layer_sqnr, quantize_net


def _conv_bn(channels_in, channels, groups=1, kernel=1):
    net = mx.gluon.nn.HybridSequential()
    net.add(mx.gluon.nn.Conv2D(channels, kernel, padding=kernel // 2, groups=groups, use_bias=False,
                               in_channels=channels_in),
            mx.gluon.nn.BatchNorm(in_channels=channels))
    net.initialize()
    return net


def _amplified_channel_case(n=64, seed=0):
    """Channel 0 spreads over [-3, 3]; channel 1 sits near 5 and varies by 1e-3, which its BatchNorm
    (running var 1e-6) scales back up to unit spread: per-tensor INT8 rounding of the input
    (step 5/127) wipes channel 1 out."""
    rng = np.random.RandomState(seed)
    x = rng.standard_normal((n, 2, 4, 4)).astype(np.float32)
    x[:, 1] = 5 + 1e-3 * x[:, 1]
    net = _conv_bn(2, 2, groups=2)
    net[0].weight.set_data(mx.nd.ones((2, 1, 1, 1)))
    net[1].running_mean.set_data(mx.nd.array([0, 5]))
    net[1].running_var.set_data(mx.nd.array([1, 1e-6]))
    return net, x


def _expected_sqnr(x, y_fp32, y_int8, gain):
    axes = (0, 2, 3)
    var = y_fp32.var(axis=axes).astype(np.float64)
    noise = ((y_int8 - y_fp32) ** 2).mean(axis=axes).astype(np.float64)
    return 10 * np.log10((gain ** 2 * var).sum() / (gain ** 2 * noise).sum())


def test_layer_sqnr_matches_direct_rounding():
    """Against rounding written out with numpy: input over its min/max (int8 as it goes negative),
    weights per output channel, noise and signal weighted by the BatchNorm gains."""
    mx.random.seed(1)
    rng = np.random.RandomState(1)
    net = _conv_bn(3, 4, kernel=3)
    net[0].weight.set_data(mx.nd.array(rng.standard_normal((4, 3, 3, 3)) * [[[[1]]], [[[0.1]]], [[[3]]], [[[1]]]]))
    net[1].gamma.set_data(mx.nd.array(rng.uniform(0.5, 2, 4)))
    net[1].running_var.set_data(mx.nd.array(rng.uniform(0.01, 4, 4)))
    x = rng.standard_normal((40, 3, 8, 8)).astype(np.float32) * 2 + 0.5
    (r,) = layer_sqnr(net, x, batch_size=16)  # batches of 16, 16, 8: the sums must add up
    assert r['op'] == 'Convolution' and r['name'] == net[0].name + '_fwd'

    w = net[0].weight.data().asnumpy()
    s = 127 / max(-x.min(), x.max())
    xq = np.clip(np.round(x * s), -127, 127) / s
    ws = 127 / np.abs(w).reshape(4, -1).max(axis=1)
    wq = np.round(w * ws[:, None, None, None]) / ws[:, None, None, None]
    conv = lambda a, b: mx.nd.Convolution(mx.nd.array(a), mx.nd.array(b), kernel=(3, 3), pad=(1, 1),
                                          num_filter=4, no_bias=True).asnumpy()
    gain = (net[1].gamma.data().asnumpy()
            / np.sqrt(net[1].running_var.data().asnumpy() + net[1]._kwargs['eps'])).astype(np.float64)
    y = conv(x, w)
    assert r['sqnr_db'] == pytest.approx(_expected_sqnr(x, y, conv(xq, wq), gain), abs=0.05)
    assert r['input_sqnr_db'] == pytest.approx(_expected_sqnr(x, y, conv(xq, w), gain), abs=0.05)
    assert r['weight_sqnr_db'] == pytest.approx(_expected_sqnr(x, y, conv(x, wq), gain), abs=0.05)
    assert 25 < r['sqnr_db'] < 60  # ordinary INT8 territory


def test_layer_sqnr_unsigned_input_after_relu():
    """A never-negative input is rounded as uint8 (twice the resolution of int8): ~6 dB better."""
    rng = np.random.RandomState(2)
    x = np.abs(rng.standard_normal((32, 4, 6, 6))).astype(np.float32)
    net = _conv_bn(4, 4)
    signed = layer_sqnr(net, np.concatenate([x, -x[:1] * 1e-3]))[0]['input_sqnr_db']
    unsigned = layer_sqnr(net, x)[0]['input_sqnr_db']
    assert unsigned - signed == pytest.approx(20 * np.log10(255 / 127), abs=0.6)


def test_layer_sqnr_sees_the_batchnorm_gain_and_quantize_net_keeps_that_layer_fp32():
    net, x = _amplified_channel_case()
    (r,) = layer_sqnr(net, x)
    assert r['sqnr_db'] < 10 and r['input_sqnr_db'] < 10  # the rounding of the input is the cause
    assert r['weight_sqnr_db'] > 40
    net.hybridize()
    with mx.autograd.predict_mode():
        ref = net(mx.nd.array(x)).asnumpy()
    plain = quantize_net(net, x)
    kept = quantize_net(net, x, min_sqnr=20)
    assert kept.fp32_layers == [r['name']] and plain.fp32_layers == []
    assert kept.layer_sqnr[0]['sqnr_db'] == pytest.approx(r['sqnr_db'])
    err_plain = np.abs(plain(mx.nd.array(x)).asnumpy() - ref)[:, 1].mean()
    err_kept = np.abs(kept(mx.nd.array(x)).asnumpy() - ref)[:, 1].mean()
    assert err_plain > 0.3 and err_kept < 0.05 * err_plain, (err_plain, err_kept)


def test_layer_sqnr_on_a_zoo_model_covers_every_conv_and_dense_layer():
    import json
    import asymmzoo
    net = asymmzoo.get_model('asymmnet_small_0.35', classes=10)
    net.initialize(mx.init.MSRAPrelu())
    asymmzoo.deploy(net, probe=mx.nd.zeros((2, 3, 32, 32)))
    x = np.random.RandomState(0).standard_normal((8, 3, 32, 32)).astype(np.float32)
    res = layer_sqnr(net, x)
    nodes = json.loads(net(mx.sym.var('data')).tojson())['nodes']
    assert [r['name'] for r in res] == [n['name'] for n in nodes
                                        if n['op'] in ('Convolution', 'FullyConnected')]
    assert all(np.isfinite(r['sqnr_db']) and r['sqnr_db'] > 0 for r in res)


def test_layer_sqnr_refuses_an_empty_calibration_set():
    with pytest.raises(ValueError, match='non-empty batch'):
        layer_sqnr(_conv_bn(3, 3), np.zeros((0, 3, 8, 8), np.float32))
