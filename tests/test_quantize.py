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


def _sqnr(ref, noisy):
    axes = (0, 2, 3)
    var = ref.astype(np.float64).var(axis=axes)
    noise = ((noisy.astype(np.float64) - ref) ** 2).mean(axis=axes)
    return 10 * np.log10(var.sum() / noise.sum())


def _round(a, lo, hi):
    s = 255 / hi if lo >= 0 else 127 / max(-lo, hi)
    return np.clip(np.round(a * s), 0 if lo >= 0 else -127, 255 if lo >= 0 else 127) / s


def test_layer_sqnr_matches_direct_rounding():
    """Against rounding written out with numpy: input over its min/max (int8 as it goes negative),
    weights per output channel, the BatchNorm output (which oneDNN fuses into the conv) over its
    min/max; noise and signal measured on that output."""
    rng = np.random.RandomState(1)
    net = _conv_bn(3, 4, kernel=3)
    scale = np.array([1, 0.1, 3, 1]).reshape(4, 1, 1, 1)
    net[0].weight.set_data(mx.nd.array(rng.standard_normal((4, 3, 3, 3)) * scale))
    bn = net[1]
    bn.gamma.set_data(mx.nd.array(rng.uniform(0.5, 2, 4)))
    bn.beta.set_data(mx.nd.array(rng.uniform(-1, 1, 4)))
    bn.running_mean.set_data(mx.nd.array(rng.uniform(-1, 1, 4)))
    bn.running_var.set_data(mx.nd.array(rng.uniform(0.01, 4, 4)))
    x = rng.standard_normal((40, 3, 8, 8)).astype(np.float32) * 2 + 0.5
    (r,) = layer_sqnr(net, x, batch_size=16)  # batches of 16, 16, 8: the sums must add up
    assert r['op'] == 'Convolution' and r['name'] == net[0].name + '_fwd'

    w = net[0].weight.data().asnumpy()
    xq = _round(x, x.min(), x.max())
    ws = 127 / np.abs(w).reshape(4, -1).max(axis=1)
    wq = np.round(w * ws[:, None, None, None]) / ws[:, None, None, None]
    gain = bn.gamma.data().asnumpy() / np.sqrt(bn.running_var.data().asnumpy() + bn._kwargs['eps'])
    shift = bn.beta.data().asnumpy() - bn.running_mean.data().asnumpy() * gain

    def out(a, b):
        y = mx.nd.Convolution(mx.nd.array(a), mx.nd.array(b), kernel=(3, 3), pad=(1, 1),
                              num_filter=4, no_bias=True).asnumpy()
        return y * gain[:, None, None] + shift[:, None, None]
    z = out(x, w)
    zr = lambda a: _round(a, z.min(), z.max())
    assert r['sqnr_db'] == pytest.approx(_sqnr(z, zr(out(xq, wq))), abs=0.05)
    assert r['input_sqnr_db'] == pytest.approx(_sqnr(z, out(xq, w)), abs=0.05)
    assert r['weight_sqnr_db'] == pytest.approx(_sqnr(z, out(x, wq)), abs=0.05)
    assert r['output_sqnr_db'] == pytest.approx(_sqnr(z, zr(z)), abs=0.05)
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


class _Fused(mx.gluon.HybridBlock):
    """conv -> BN followed by: an Activation(relu) ('relu'), a residual sum ('sum'), a sum and then a
    ReLU ('sum_relu') -- what oneDNN fuses into the conv -- or a bare `relu` op, which it does not."""

    def __init__(self, channels, mode, **kw):
        super().__init__(**kw)
        self.mode = mode
        with self.name_scope():
            self.body = _conv_bn(channels, channels)

    def hybrid_forward(self, F, x):
        y = self.body(x)
        if self.mode == 'relu':
            return F.Activation(y, act_type='relu')
        if self.mode == 'bare_relu':
            return F.relu(y)
        y = x + y
        return F.Activation(y, act_type='relu') if self.mode == 'sum_relu' else y


@pytest.mark.parametrize('mode', ['relu', 'sum', 'sum_relu', 'bare_relu'])
def test_layer_sqnr_rounds_the_output_oneDNN_fuses(mode):
    """The output rounding is applied where oneDNN requantizes: after a fused ReLU (uint8, never
    negative), after a fused residual sum (the noise measured on the sum) or sum + ReLU; a bare
    `relu` op is not fused, so the BatchNorm output is what gets rounded."""
    rng = np.random.RandomState(3)
    net = _Fused(4, mode)  # its body comes initialised
    bn = net.body[1]
    bn.running_mean.set_data(mx.nd.array(rng.uniform(-1, 1, 4)))
    bn.running_var.set_data(mx.nd.array(rng.uniform(0.1, 2, 4)))
    x = rng.standard_normal((16, 4, 6, 6)).astype(np.float32)
    (r,) = layer_sqnr(net, x, batch_size=5)
    with mx.autograd.predict_mode():
        z = (net.body(mx.nd.array(x)) if mode == 'bare_relu' else net(mx.nd.array(x))).asnumpy()
    assert (z.min() >= 0) == (mode in ('relu', 'sum_relu'))
    assert r['output_sqnr_db'] == pytest.approx(_sqnr(z, _round(z, z.min(), z.max())), abs=0.05)


def test_layer_sqnr_wants_stored_weights():
    """A train-form RotateConv computes its kernel in the graph: a clear error, not a KeyError."""
    import asymmzoo
    net = asymmzoo.get_model('rotate_sn_rot2', classes=10)
    net.initialize()
    with pytest.raises(ValueError, match='deploy the network first'):
        layer_sqnr(net, np.zeros((2, 1, 28, 28), np.float32))


def test_min_sqnr_refuses_a_calibration_it_does_not_model():
    net, x = _amplified_channel_case()
    with pytest.raises(ValueError, match='min_sqnr=None'):
        quantize_net(net, x, calib_mode='entropy', min_sqnr=20)


def test_boundary_data_ops_keep_concats_and_poolings_next_to_fp32_in_fp32():
    """A concat / pooling stays int8 only inside an int8 region; next to an fp32 layer (or h-swish's
    fp32 multiply) it is left in fp32, and the quantized graph has no quantized op there."""
    import json
    import asymmzoo
    from asymmzoo.utils.quantize import boundary_data_ops, _graph
    net = asymmzoo.get_model('asymmnet_large_0.35', classes=10)
    net.initialize(mx.init.MSRAPrelu())
    asymmzoo.deploy(net, probe=mx.nd.zeros((2, 3, 32, 32)))
    nodes = _graph(net)[1]
    convs = [n['name'] for n in nodes if n['op'] in ('Convolution', 'FullyConnected')]
    data_ops = [n['name'] for n in nodes if n['op'] in ('Concat', 'Pooling', 'Flatten')]
    blk = lambda k, what: [n for n in data_ops + convs if 'asymmbottleneck%d_' % k in n and what in n]
    base = set(boundary_data_ops(net, []))
    # ReLU blocks 1-5: concat and SE pooling between int8 convs stay int8
    for k in range(1, 6):
        assert not base & set(blk(k, 'concat')), k
    assert not base & set(blk(4, 'pool'))
    # h-swish blocks: the expansion's activation (an fp32 multiply) feeds the concat
    assert set(blk(7, 'concat')) <= base and set(blk(12, 'pool')) <= base
    # an fp32 depthwise conv makes its block's concat a boundary
    dw4 = blk(4, 'convbnact1')[0]
    assert set(blk(4, 'concat')) <= set(boundary_data_ops(net, [dw4]))
    # every conv in fp32: no data op is worth quantizing
    assert set(boundary_data_ops(net, convs)) == set(data_ops)
    x = np.random.RandomState(0).standard_normal((16, 3, 32, 32)).astype(np.float32)
    q = quantize_net(net, x, exclude_layers=[dw4])
    assert set(q.boundary_ops) == set(boundary_data_ops(net, [dw4])) and blk(4, 'concat')[0] in q.boundary_ops
    q(mx.nd.array(x[:2]))
    qnodes = json.loads(q._cached_graph[1].tojson())['nodes']
    quantized = {n['name'] for n in qnodes if n['op'].startswith('_contrib_quantized_')}
    assert 'quantized_' + blk(4, 'concat')[0] not in quantized
    assert 'quantized_' + blk(2, 'concat')[0] in quantized       # inside an int8 region
    off = quantize_net(net, x, exclude_layers=[dw4], fp32_boundary=False)
    assert off.boundary_ops == []


def test_quantize_to_target_raises_the_threshold_until_the_output_is_clean():
    """Accuracy-aware fallback: the per-layer threshold goes up until the network's output SQNR on the
    tuning images reaches the target; a reachable target stops early, an unreachable one at max_db."""
    import asymmzoo
    from asymmzoo.utils.quantize import network_sqnr, quantize_to_target
    net = asymmzoo.get_model('mobilenetv3_small_0.35', classes=10)
    net.initialize(mx.init.MSRAPrelu())
    asymmzoo.deploy(net, probe=mx.nd.zeros((2, 3, 32, 32)))
    net.hybridize()
    rng = np.random.RandomState(0)
    x, tune = (rng.standard_normal((n, 3, 32, 32)).astype(np.float32) for n in (32, 32))
    assert network_sqnr(net, net, tune) > 100
    first = quantize_net(net, x, min_sqnr=24)
    start = network_sqnr(net, first, tune)
    q = quantize_to_target(net, x, tune, target_db=start + 10, min_sqnr=24, step_db=8, max_db=72)
    steps = q.tuning
    assert steps[0]['min_sqnr_db'] == 24 and steps[0]['output_sqnr_db'] == pytest.approx(start, abs=0.5)
    assert [s['min_sqnr_db'] for s in steps] == [24 + 8 * k for k in range(len(steps))]
    fp32 = [s['low_sqnr_layers'] for s in steps]
    assert fp32 == sorted(fp32) and fp32[-1] > fp32[0]
    assert steps[-1]['output_sqnr_db'] >= start + 10 or steps[-1]['min_sqnr_db'] + 8 > 72
    assert network_sqnr(net, q, tune) == pytest.approx(steps[-1]['output_sqnr_db'], abs=1e-6)
    easy = quantize_to_target(net, x, tune, target_db=0, min_sqnr=24)
    assert len(easy.tuning) == 1
    with pytest.raises(ValueError, match='target_db'):
        quantize_to_target(net, x, tune, target_db=None)
    with pytest.raises(ValueError, match='non-empty'):
        network_sqnr(net, q, tune[:0])
