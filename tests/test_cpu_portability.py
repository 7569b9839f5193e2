"""What depends on the CPU's vector width, tested so that any host meets every failure mode.

oneDNN (MXNet) blocks channels by 8 on AVX2 and by 16 on AVX-512; onnxruntime's NCHWc layout does the
same. A channel offset that is a multiple of 8 but not of 16 only fails on an AVX-512 host, one that
is not a multiple of 8 fails on both: the networks below are built with both kinds of offsets, so an
AVX2 host trains through the same cases an AVX-512 host does. The ONNX padding is checked for both
block sizes whatever the host, and against what onnxruntime does on this host.
"""
import os

import numpy as np
import mxnet as mx
import pytest
from mxnet import autograd, gluon, nd

import asymmzoo
from asymmzoo.nn import AsymmBottleneck, channel_concat, use_plain_concat
from asymmzoo import export as E
from asymmzoo.export.nchwc import nchwc_block_size, pad_channels


def _cpu_flags():
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('flags'):
                    return set(line.split(':', 1)[1].split())
    except OSError:
        pass
    return set()


# (left part, middle part): X | Y | X offsets not multiples of 8, multiples of 8 only, of 16
OFFSETS = [(12, 36), (20, 4), (24, 48), (40, 80), (16, 48)]


@pytest.mark.parametrize('cx,cy', OFFSETS)
def test_channel_concat_gradient_is_the_split_gradient(cx, cy):
    """The concat feeds a depthwise conv (whose gradient comes back in oneDNN's blocked layout):
    each input's gradient is its slice of the concat's gradient, for every offset."""
    rng = np.random.RandomState(0)
    c = 2 * cx + cy
    x = nd.array(rng.standard_normal((2, cx, 8, 8)))
    y = nd.array(rng.standard_normal((2, cy, 8, 8)))
    w = nd.array(rng.standard_normal((c, 1, 3, 3)))
    r = nd.array(rng.standard_normal((2, c, 8, 8)))

    def conv(t):
        return nd.Convolution(t, w, kernel=(3, 3), pad=(1, 1), num_filter=c, num_group=c,
                              no_bias=True)
    for a in (x, y):
        a.attach_grad()
    with autograd.record():
        out = conv(channel_concat(nd, x, y, x))
        (out * r).sum().backward()
    ref_in = nd.concat(x, y, x, dim=1).copy()   # a leaf: its gradient is the concat's gradient
    ref_in.attach_grad()
    with autograd.record():
        ref = conv(ref_in)
        (ref * r).sum().backward()
    np.testing.assert_allclose(out.asnumpy(), ref.asnumpy(), rtol=1e-5, atol=1e-5)
    g = ref_in.grad.asnumpy()
    np.testing.assert_allclose(x.grad.asnumpy(), g[:, :cx] + g[:, cx + cy:], rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(y.grad.asnumpy(), g[:, cx:cx + cy], rtol=1e-5, atol=1e-4)


def _concat_offsets(net):
    offs = set()
    for b in net.blocks:
        if b.expand_channels:
            left, right = b.copies
            widths = [b.in_channels] * left + [b.expand_channels] + [b.in_channels] * right
            offs.update(np.cumsum(widths)[:-1].tolist())
    return offs


# every family with channel concats, at widths whose offsets are not multiples of 8 (divisor 4)
# and multiples of 8 but not of 16 (the registered widths)
CASES = [
    ('asymmnet_large_0.5', dict(channel_divisor=4)),
    ('asymmnet_small_0.75', dict(channel_divisor=4)),
    ('asymmnet_large_1.0', dict()),
    ('asymmnet_large_1.0', dict(r=2)),
    ('asymmnet_small_0.5_pruned', dict(channel_divisor=4)),
    ('asymmnet_large_0.5_acb', dict(channel_divisor=4)),
    ('cifar_densenet40', dict()),
    ('cifar_densenet40', dict(growth_rate=24)),
]


def _train_steps(net, shape, steps=3, hybridize=False):
    mx.random.seed(0)
    net.initialize(mx.init.Xavier(magnitude=2.0), force_reinit=True)
    if hybridize:
        net.hybridize(static_alloc=True)
    rng = np.random.RandomState(1)
    x = nd.array(rng.standard_normal(shape))
    label = nd.array(rng.randint(0, 5, shape[0]))
    trainer = gluon.Trainer(net.collect_params(), 'sgd', {'learning_rate': 0.05, 'momentum': 0.9})
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
    losses = []
    for _ in range(steps):
        with autograd.record():
            lo = loss_fn(net(x), label)
        lo.backward()
        trainer.step(shape[0])
        losses.append(float(lo.mean().asscalar()))
    return losses


@pytest.mark.parametrize('hybridize', [False, True], ids=['imperative', 'hybridized'])
@pytest.mark.parametrize('name,kw', CASES, ids=['%s%s' % (n, ''.join('-%s=%s' % i for i in k.items()))
                                                for n, k in CASES])
def test_family_trains_at_unaligned_concat_offsets(name, kw, hybridize):
    net = asymmzoo.get_model(name, classes=5, **kw)
    if hasattr(net, 'blocks'):
        offs = _concat_offsets(net)
        if kw.get('channel_divisor') == 4:
            assert any(o % 8 for o in offs), offs          # fails on every CPU without the fix
        else:
            assert any(o % 8 == 0 and o % 16 for o in offs), offs   # fails on AVX-512 without it
    shape = (4, 3, 32, 32)
    losses = _train_steps(net, shape, hybridize=hybridize)
    assert all(np.isfinite(losses)), losses
    assert losses[-1] < losses[0], losses


def test_channel_divisor_sets_the_widths():
    net = asymmzoo.get_model('asymmnet_large_0.5', channel_divisor=4)
    assert [b.out_channels for b in net.blocks][:3] == [8, 12, 12]
    assert net.blocks[1].expand_channels == 32 - 8 and net.blocks[2].dw_channels == 36 + 12
    assert asymmzoo.get_model('asymmnet_large_0.5').blocks[1].out_channels == 16
    with pytest.raises(ValueError, match='channel_divisor'):
        asymmzoo.get_model('asymmnet_large_0.5', channel_divisor=0)


def test_deploy_and_export_use_the_plain_concat_and_leave_training_alone(tmp_path):
    net = asymmzoo.get_model('asymmnet_large_0.5', classes=5, channel_divisor=4)
    net.initialize()
    x = nd.random.uniform(shape=(2, 3, 32, 32))
    # export from a training network: the file has plain concats, the network keeps the safe ones
    sym_file, par_file = E.export_symbol(net, str(tmp_path / 'm'), (1, 3, 32, 32))
    assert 'expand_dims' not in open(sym_file).read()
    assert not any(b.plain_concat for b in net.blocks)
    _train_steps(net, (4, 3, 32, 32), steps=1)      # still trains after the export
    with autograd.predict_mode():
        ref = net(x).asnumpy()
    asymmzoo.deploy(net, probe=x)
    assert all(b.plain_concat for b in net.blocks if b.expand_channels)
    with autograd.predict_mode():
        np.testing.assert_allclose(net(x).asnumpy(), ref, rtol=1e-5, atol=1e-5)
    # imperative training of the deployed net takes the safe form by itself; hybridized, it refuses
    net.hybridize(active=False)          # (export_symbol hybridized it)
    _train_steps(net, (4, 3, 32, 32), steps=1)
    net.hybridize()
    with pytest.raises(RuntimeError, match='use_plain_concat'):
        with autograd.record():
            net(x)
    assert use_plain_concat(net, False) > 0 and not any(b.plain_concat for b in net.blocks)
    _train_steps(net, (4, 3, 32, 32), steps=1, hybridize=True)


def test_nchwc_block_size_is_the_one_of_this_cpu():
    """The probe must agree with the CPU: a wrong answer would silently skip the padding."""
    flags = _cpu_flags()
    if not flags:
        pytest.skip('no /proc/cpuinfo flags on this platform')
    expect = 16 if 'avx512f' in flags else 8 if 'avx2' in flags else None
    if expect is None:
        pytest.skip('neither AVX2 nor AVX-512: onnxruntime block size not known in advance')
    assert nchwc_block_size() == expect


def _ort_ops(model, tmp_path, tag):
    import onnx
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.log_severity_level = 3
    so.optimized_model_filepath = str(tmp_path / ('%s_opt.onnx' % tag))
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=['CPUExecutionProvider'])
    return sess, [n.op_type for n in onnx.load(so.optimized_model_filepath).graph.node]


def _aligned(model, block):
    """Channel widths of every Concat input and depthwise conv are multiples of ``block``."""
    import onnx
    from onnx import numpy_helper
    inf = onnx.shape_inference.infer_shapes(model)
    ch = {v.name: v.type.tensor_type.shape.dim[1].dim_value
          for v in list(inf.graph.value_info) + list(inf.graph.input)
          if len(v.type.tensor_type.shape.dim) == 4}
    inits = {i.name: i for i in model.graph.initializer}
    bad = []
    for n in model.graph.node:
        if n.op_type == 'Concat':
            bad += [(n.name, t, ch[t]) for t in n.input if ch[t] % block]
        if n.op_type == 'Conv':
            w = numpy_helper.to_array(inits[n.input[1]])
            group = [a.i for a in n.attribute if a.name == 'group'] or [1]
            if group[0] > 1 and w.shape[0] % block:
                bad.append((n.name, 'depthwise', w.shape[0]))
    return bad


@pytest.mark.parametrize('name,kw', [('asymmnet_large_0.5', {}), ('asymmnet_small_1.0', {}),
                                     ('mobilenetv3_large_0.75', {}),
                                     ('asymmnet_large_0.5', {'channel_divisor': 4})])
def test_padded_static_graph_is_blocked_and_equal(name, kw, tmp_path):
    """For both block sizes the padded graph computes the same outputs and every concat part and
    depthwise conv is whole blocks; for this host's block onnxruntime runs it without a reorder
    inside the network (one in, one out)."""
    shape = (2, 3, 64, 64)
    net = asymmzoo.get_model(name, **kw)
    net, shape = E.prepare_model(net, input_shape=shape)
    info = E.export_onnx(net, str(tmp_path / 'm.onnx'), shape)
    x = np.random.RandomState(0).standard_normal(shape).astype(np.float32)
    plain = E.static_batch_model(info['path'], 2, pad_block=0)
    sess, _ = _ort_ops(plain, tmp_path, 'plain')
    ref = sess.run(None, {sess.get_inputs()[0].name: x})[0]
    host = nchwc_block_size()
    for block in (8, 16):
        padded = E.static_batch_model(info['path'], 2, pad_block=block)
        assert not _aligned(padded, block), _aligned(padded, block)
        sess, ops = _ort_ops(padded, tmp_path, 'b%d' % block)
        out = sess.run(None, {sess.get_inputs()[0].name: x})[0]
        np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-4 * max(1.0, np.abs(ref).max()))
        if block == host:
            assert ops.count('ReorderInput') <= 1 and ops.count('ReorderOutput') <= 1, ops
    assert _aligned(plain, 16), 'this model was expected to need padding at 16 channels'
    if kw.get('channel_divisor') == 4:
        assert _aligned(plain, 8), 'this model was expected to need padding at 8 channels'


def test_pad_channels_is_a_no_op_when_aligned():
    import onnx
    from onnx import helper, numpy_helper, TensorProto
    w = numpy_helper.from_array(np.ones((16, 3, 1, 1), np.float32), 'w')
    g = helper.make_graph([helper.make_node('Conv', ['x', 'w'], ['y'])], 'g',
                          [helper.make_tensor_value_info('x', TensorProto.FLOAT, [1, 3, 4, 4])],
                          [helper.make_tensor_value_info('y', TensorProto.FLOAT, [1, 16, 4, 4])], [w])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid('', 13)])
    before = m.SerializeToString()
    assert pad_channels(m, 16) == 0 and pad_channels(m, 8) == 0
    assert m.SerializeToString() == before


def test_doctor_prints_what_a_bug_report_needs(capsys):
    from asymmzoo.cli import main
    assert main(['doctor']) == 0
    import re
    text = capsys.readouterr().out
    assert re.search(r'^mxnet +1\.9\.1$', text, re.M) and re.search(r'^onnxruntime +\d', text, re.M)
    assert re.search(r'^mxnet features .*MKLDNN', text, re.M)
    flags = _cpu_flags()
    capped = any(os.environ.get(v) for v in ('DNNL_MAX_CPU_ISA', 'MKLDNN_MAX_CPU_ISA'))
    if 'avx512f' in flags:
        assert 'avx512f' in text and '16 channels' in text
        if not capped:
            assert 'AVX-512' in text        # oneDNN's ISA line
    elif 'avx2' in flags:
        assert 'avx2' in text and '8 channels' in text
    assert 'ISA:' in text and 'OMP_NUM_THREADS' in text and 'weight store' in text


def test_padding_a_file_that_lists_its_weights_as_inputs(tmp_path):
    """mxnet's exporter lists every weight as a graph input too: padded weights must not keep their
    old input shapes (onnxruntime refuses such a file)."""
    import onnx
    net, shape = E.prepare_model('mobilenetv3_small_0.5', input_shape=(1, 3, 64, 64))
    sym, par = E.export_symbol(net, str(tmp_path / 'm'), shape)
    mx.onnx.export_model(sym, par, [shape], [np.float32], str(tmp_path / 'raw.onnx'))
    raw = onnx.load(str(tmp_path / 'raw.onnx'))
    assert len(raw.graph.input) > 1                  # the weights are inputs
    x = np.random.RandomState(0).standard_normal(shape).astype(np.float32)
    outs = []
    for block in (0, 8, 16):
        sess, _ = _ort_ops(E.static_batch_model(raw, 1, pad_block=block), tmp_path, 'raw%d' % block)
        outs.append(sess.run(None, {sess.get_inputs()[0].name: x})[0])
    for o in outs[1:]:
        np.testing.assert_allclose(o, outs[0], rtol=1e-4, atol=1e-5)
