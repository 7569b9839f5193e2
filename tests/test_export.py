"""asymmzoo.export: ONNX export checked against MXNet for every model family, the graph rewrites
(h-swish fusion, reuse concats, blocked SE scaling) keeping the function, the static-batch sessions,
symbol files, the opset, fastest_predictor / OnnxPredictor, and `asymmzoo export`."""
import os
import re
import tempfile
from unittest import mock

import mxnet as mx
import numpy as np
import pytest

import asymmzoo
from asymmzoo import export as E
from asymmzoo.cli import main

pytest.importorskip('onnx')
pytest.importorskip('onnxruntime')


# a representative set, resolved against the registry at collection time: every family that exists
ONNX_PATTERNS = ['asymmnet_small_1.0', 'asymmnet_large_1.0', 'mobilenetv3_large_1.0',
                 'mobilenetv3_small_0.75', 'asymmnet_large_0.5_pruned', '*_acb', '*_rot4']


ONNX_SHAPE = (1, 3, 64, 64)   # the check is about operators, not resolution: keep it fast


def _onnx_cases():
    names = []
    for pat in ONNX_PATTERNS:
        found = asymmzoo.list_models(pat)
        if '*' in pat:
            # one per family: prefer a small AsymmNet-family backbone, else a small CIFAR net
            for prefix in ('asymmnet_small', 'mobilenetv3_small', 'cifar_resnet20', 'cifar_quick', ''):
                pref = [n for n in found if n.startswith(prefix)]
                if pref:
                    found = pref[:1]
                    break
        names += [n for n in found if n not in names]
    return names


def _shape_for(name):
    net = asymmzoo.get_model(name)
    shape = getattr(net, 'default_input_shape', None)
    if shape and tuple(shape[2:]) != (224, 224):
        return (1,) + tuple(shape[1:])
    return ONNX_SHAPE


@pytest.mark.parametrize('name', _onnx_cases())
def test_onnx_export_matches_mxnet(tmp_path, name):
    net, shape = E.prepare_model(name, deploy=True, input_shape=_shape_for(name))
    info = E.export_onnx(net, str(tmp_path / 'm.onnx'), shape, verify=True, atol=1e-4)
    assert info['max_abs_diff'] <= 1e-4
    assert info['max_abs_out'] > 1e-3, "outputs too small for the check to mean anything"
    # the predictor wrapper gives the same numbers on a fresh input
    pred = E.OnnxPredictor(info['path'])
    x = np.random.RandomState(3).standard_normal((3,) + shape[1:]).astype(np.float32)
    with mx.autograd.predict_mode():
        ref = net(mx.nd.array(x)).asnumpy()
    assert np.abs(pred(x) - ref).max() <= 1e-4


@pytest.mark.parametrize('name', ['asymmnet_large_0.35', 'asymmnet_small_0.5_pruned'])
def test_graph_rewrites_keep_function(tmp_path, name):
    """h-swish fusion and the reuse-concat rewrites (late concat, split projection, the default
    policy mixing them) change the graph, not the function."""
    import onnx
    shape = (1, 3, 224, 224)
    net, shape = E.prepare_model(name, input_shape=shape)
    plain = E.export_onnx(net, str(tmp_path / 'a.onnx'), shape, fuse_activations=False,
                          split_concats=False)
    plain_ops = [n.op_type for n in onnx.load(plain['path']).graph.node]
    assert plain['fused_activations'] == 0 and plain['split_concats'] == 0
    n_reuse = plain_ops.count('Concat')       # every concat of these nets is a feature-reuse one
    x = np.random.RandomState(0).standard_normal((2,) + shape[1:]).astype(np.float32)
    a = E.OnnxPredictor(plain['path'], static_batch=False)(x)   # the exporter's graph as is
    assert np.abs(a).max() > 1e-3
    policies = {'default': True, 'late': lambda *_: 'late', 'split': lambda *_: 'split'}
    for tag, policy in policies.items():
        fast = E.export_onnx(net, str(tmp_path / ('%s.onnx' % tag)), shape, split_concats=policy)
        ops = [n.op_type for n in onnx.load(fast['path']).graph.node]
        assert fast['fused_activations'] > 0 and 'HardSwish' in ops and 'Div' not in ops
        if tag == 'late':    # every concat moved after its depthwise conv: as many concats
            assert fast['split_concats'] == n_reuse and ops.count('Concat') == n_reuse
            assert ops.count('Conv') == plain_ops.count('Conv') + 2 * n_reuse - sum(
                1 for n in onnx.load(plain['path']).graph.node
                if n.op_type == 'Concat' and len(n.input) == 2)
        elif tag == 'split':  # no feature-reuse concat left (SE inputs are re-joined, tiny)
            assert fast['split_concats'] == n_reuse
        else:                # strided blocks: late concat; stride-1 blocks keep theirs
            assert 0 < fast['split_concats'] < n_reuse and ops.count('Concat') == n_reuse
            assert 0 < sum(n.name.endswith('_late') for n in onnx.load(fast['path']).graph.node) \
                == fast['split_concats']
        b = E.OnnxPredictor(fast['path'], static_batch=False)(x)
        assert np.abs(a - b).max() <= 1e-5, tag
        c = E.OnnxPredictor(fast['path'])(x)      # static batch: SE blocked, remaining concats rewritten
        # (and channels padded to this CPU's blocks): float summation order only
        assert np.abs(a - c).max() <= 1e-5 * max(1.0, np.abs(a).max()), tag
        assert fast['max_abs_diff'] <= 1e-4


def _optimized_ops(model_or_path, tmp_path, tag):
    """onnxruntime's optimised graph ops (full optimisation, as the sessions run it)."""
    import onnx
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.log_severity_level = 3
    so.optimized_model_filepath = str(tmp_path / ('%s_opt.onnx' % tag))
    src = model_or_path if isinstance(model_or_path, str) else model_or_path.SerializeToString()
    ort.InferenceSession(src, so, providers=['CPUExecutionProvider'])
    return [(n.op_type, n.domain) for n in onnx.load(so.optimized_model_filepath).graph.node]


def test_static_batch_sessions_keep_the_blocked_layout(tmp_path):
    """A static batch size lets onnxruntime keep the SE scaling and the residual sums in its blocked
    layout (our Resize rewrite of the SE's broadcast Mul); same numbers as the dynamic file."""
    import onnx
    shape = (1, 3, 96, 96)
    net, shape = E.prepare_model('asymmnet_large_0.5', input_shape=shape)
    E.randomize_bn_stats(net, mx.nd.random.normal(shape=(2,) + shape[1:]))
    info = E.export_onnx(net, str(tmp_path / 'm.onnx'), shape)
    assert info['blocked_se'] == 0            # the dynamic file is left as exported
    n_se = sum(1 for b in net.blocks if b.use_se)
    static = E.static_batch_model(info['path'], 3)
    assert [d.dim_value for d in static.graph.input[0].type.tensor_type.shape.dim] == [3, 3, 96, 96]
    assert [n.op_type for n in static.graph.node].count('Resize') == n_se
    dyn_ops = _optimized_ops(info['path'], tmp_path, 'dyn')
    if not any(d == 'com.microsoft.nchwc' for _, d in dyn_ops):
        pytest.skip("onnxruntime's NCHWc layout is not used on this CPU (no AVX2)")
    st_ops = _optimized_ops(static, tmp_path, 'static')
    # dynamic batch: every SE block reorders its map to NCHW and back
    assert sum(op == 'ReorderInput' for op, _ in dyn_ops) >= n_se
    # static batch: blocked from the first conv to the classifier (one reorder in, one out)
    assert sum(op == 'ReorderInput' for op, _ in st_ops) <= 1
    assert sum(op == 'ReorderOutput' for op, _ in st_ops) <= 1
    x = np.random.RandomState(0).standard_normal((3,) + shape[1:]).astype(np.float32)
    with mx.autograd.predict_mode():
        ref = net(mx.nd.array(x)).asnumpy()
    fast = E.OnnxPredictor(info['path'])             # static sessions, one per batch size
    slow = E.OnnxPredictor(info['path'], static_batch=False)
    assert np.abs(ref).max() > 1e-2
    # float summation order only (the padded static graph runs other kernels): 1e-5 of the output scale
    assert np.abs(fast(x) - slow(x)).max() <= 1e-5 * max(1.0, np.abs(ref).max())
    assert np.abs(fast(x) - ref).max() <= 1e-4
    assert np.abs(fast(x[:1]) - ref[:1]).max() <= 1e-4
    assert list(fast._sessions) == [3, 1]
    with pytest.raises(ValueError, match='non-empty batch'):
        fast(x[:0])
    with pytest.raises(ValueError, match='positive integer'):
        E.static_batch_model(info['path'], 0)
    # from the graph before the concat rewrites, a large batch splits every reuse concat (the
    # only concats left join the SE's pooled parts, 1x1) with the same numbers
    base = E.export_onnx(net, str(tmp_path / 'base.onnx'), shape, keep_base=True)['base_model']
    n_cat = [n.op_type for n in base.graph.node].count('Concat')
    big = E.static_batch_model(base, E.SPLIT_ALL_FROM_BATCH)
    small = E.static_batch_model(base, 1)
    file_ops = [n.op_type for n in onnx.load(info['path']).graph.node]
    # batch 1 takes the per-block choice, like the dynamic file: the strided blocks' concats move
    # after the depthwise conv, the stride-1 blocks keep theirs
    small_cats = [n.name for n in small.graph.node if n.op_type == 'Concat']
    assert len(small_cats) == file_ops.count('Concat') == n_cat
    assert 0 < sum(c.endswith('_late') for c in small_cats) < n_cat
    from asymmzoo.export.rewrites import _inferred_shapes
    big_shapes = _inferred_shapes(big)
    cats = [n for n in big.graph.node if n.op_type == 'Concat']
    assert cats and all(big_shapes[c.output[0]][2:] == [1, 1] for c in cats)
    xb = np.random.RandomState(1).standard_normal((E.SPLIT_ALL_FROM_BATCH,) + shape[1:])
    xb = xb.astype(np.float32)
    with mx.autograd.predict_mode():
        refb = net(mx.nd.array(xb)).asnumpy()
    pb = E.OnnxPredictor(info['path'], source=base)
    assert np.abs(pb(xb) - refb).max() <= 1e-4
    # each new static session is checked against the verified file
    other, _ = E.prepare_model('asymmnet_large_0.5', input_shape=shape, seed=1)
    wrong = E.export_onnx(other, str(tmp_path / 'other.onnx'), shape, keep_base=True)['base_model']
    with pytest.raises(E.ExportError, match='differs from the verified file'):
        E.OnnxPredictor(info['path'], source=wrong)(x)
    # a fixed-batch export carries the rewrite in the file and checks it against MXNet
    fixed = E.export_onnx(net, str(tmp_path / 'b2.onnx'), (2,) + shape[1:], dynamic_batch=False)
    assert fixed['blocked_se'] == n_se and fixed['max_abs_diff'] <= 1e-4
    dims = onnx.load(fixed['path']).graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_value for d in dims] == [2, 3, 96, 96]
    with pytest.raises(ValueError, match='fixed batch size of 2'):
        E.OnnxPredictor(fixed['path'])(x)


def test_reuse_concat_policy():
    for n in (None, 1, 8):   # symbolic or small batch: chosen per block
        assert E.reuse_concat_policy([2, 2], [n, 96, 28, 28], True) == 'late'
        assert E.reuse_concat_policy([1, 1], [n, 96, 56, 56], False) == 'keep'
        assert E.reuse_concat_policy([2, 2], [n, 96, 28, 28], False) == 'late'
        assert E.reuse_concat_policy([1, 1], [n, 160, 28, 28], True) == 'keep'
    assert E.reuse_concat_policy([1, 1], None, True) == 'keep'
    for strides, se in (([2, 2], True), ([1, 1], True), ([1, 1], False)):   # large batch: no copy
        assert E.reuse_concat_policy(strides, [E.SPLIT_ALL_FROM_BATCH, 96, 28, 28], se) == 'split'


def test_onnx_unsupported_op_is_named(tmp_path):
    class Odd(mx.gluon.HybridBlock):
        def hybrid_forward(self, F, x):
            return F.erfinv(F.tanh(x))
    net = Odd()
    net.initialize()
    with pytest.raises(E.ExportError, match="erfinv"):
        E.export_onnx(net, str(tmp_path / 'odd.onnx'), (1, 3, 8, 8))
    assert os.listdir(str(tmp_path)) == []


def test_onnx_file_failing_verification_replaces_nothing(tmp_path):
    net, shape = E.prepare_model('mobilenetv3_small_0.35', input_shape=(1, 3, 32, 32))
    path = str(tmp_path / 'm.onnx')
    E.export_onnx(net, path, shape)
    before = open(path, 'rb').read()
    # a tolerance nothing can meet: the verification fails, the verified file stays as it was
    with pytest.raises(E.ExportError, match=r"differs from MXNet by .* for %s" % re.escape(path)):
        E.export_onnx(net, path, shape, fuse_activations=False, atol=-1.0)
    assert open(path, 'rb').read() == before
    assert os.listdir(str(tmp_path)) == ['m.onnx']


def test_symbol_export_round_trip(tmp_path, capsys):
    rc = main(['export', 'mobilenetv3_small_0.35', '--format', 'symbol', '--out', str(tmp_path),
               '--input-shape', '1', '3', '64', '64'])
    assert rc == 0
    sym = tmp_path / 'mobilenetv3_small_0.35-symbol.json'
    par = tmp_path / 'mobilenetv3_small_0.35-0000.params'
    assert sym.exists() and par.exists()
    assert 'max abs diff' in capsys.readouterr().out
    back = E.load_symbol(str(sym), str(par))
    net, shape = E.prepare_model('mobilenetv3_small_0.35', input_shape=(1, 3, 64, 64))
    x = mx.nd.array(np.random.RandomState(1).standard_normal((2, 3, 64, 64)))
    with mx.autograd.predict_mode():
        assert np.abs(net(x).asnumpy() - back(x).asnumpy()).max() <= 1e-5  # same seed, same weights


def test_export_onnx_cli(tmp_path, capsys):
    rc = main(['export', 'asymmnet_small_0.35', '--format', 'onnx', '--out', str(tmp_path),
               '--input-shape', '1', '3', '64', '64'])
    assert rc == 0
    assert (tmp_path / 'asymmnet_small_0.35.onnx').exists()
    assert 'max abs diff' in capsys.readouterr().out


def test_export_opset():
    """mxnet's exporter writes opset-13 nodes: the file says 13 (14 once h-swish is fused)."""
    import onnx
    for name, want in (('cifar_resnet20_v1', 13), ('mobilenetv3_small_0.35', 14)):
        net, shape = E.prepare_model(name, input_shape=(1, 3, 32, 32))
        with tempfile.TemporaryDirectory() as d:
            E.export_onnx(net, os.path.join(d, 'm.onnx'), shape)
            m = onnx.load(os.path.join(d, 'm.onnx'))
        assert [o.version for o in m.opset_import if o.domain in ('', 'ai.onnx')] == [want], name
        onnx.checker.check_model(m, full_check=True)


def test_export_notes_tiny_outputs(tmp_path, capsys):
    """An absolute tolerance says little about outputs far smaller than it: export says so."""
    info = {'path': str(tmp_path / 'm.onnx'), 'max_abs_diff': 1e-19, 'max_abs_out': 7e-13,
            'fused_activations': 0}
    with mock.patch('asymmzoo.export.export_onnx', return_value=info):
        assert main(['export', 'mobilenetv3_small_0.35', '--input-shape', '1', '3', '32', '32',
                     '--out', str(tmp_path)]) == 0
    assert 'the outputs are tiny (max |out| 7e-13 against --atol 0.0001)' in capsys.readouterr().err


def test_fastest_predictor_on_a_name():
    pred = E.fastest_predictor('mobilenetv3_small_0.35', input_shape=(1, 3, 64, 64))
    out = pred(np.zeros((2, 3, 64, 64), np.float32))
    assert out.shape == (2, 1000) and pred.info['max_abs_diff'] <= 1e-4
    # a wrong input is refused before a session is built for it, naming the exported shape
    assert pred.input_shape == (None, 3, 64, 64)
    for bad in (np.zeros((3, 64, 64)), np.zeros((2, 1, 64, 64)), np.zeros((1, 3, 32, 32)), np.zeros((0, 3, 64, 64))):
        with pytest.raises(ValueError, match=r'\(N, 3, 64, 64\)'):
            pred(bad)
    with pytest.raises(ValueError, match='uint8 batch: give the preprocessed float batch'):
        pred(np.zeros((2, 3, 64, 64), np.uint8))
    assert pred(np.zeros((2, 3, 64, 64), np.float64)).shape == (2, 1000)   # floats are cast
    assert list(pred._sessions) == [2]
    # its temporary folder goes with it
    folder = os.path.dirname(pred.path)
    assert os.path.isdir(folder) and os.path.basename(folder).startswith('asymmzoo-fast-')
    pred.close()
    assert not os.path.exists(folder)
    with pytest.raises(ValueError, match='is closed'):
        pred(np.zeros((2, 3, 64, 64), np.float32))


def test_a_network_never_initialised_is_refused_before_any_work(tmp_path, monkeypatch):
    """fastest_predictor / export_onnx / export_symbol run the network's own weights: one whose
    parameters were never initialised (no initialize(), no loaded weights) is a one-line ValueError
    naming it, before anything is initialised, built or written; initialize() alone (deferred until
    the first forward pass) is enough."""
    net = asymmzoo.get_model('mobilenetv3_small_0.35')
    tmp = tmp_path / 'tmp'
    tmp.mkdir()
    monkeypatch.setattr(tempfile, 'tempdir', str(tmp))   # fastest_predictor's own folder would go here
    for fn, args in ((E.fastest_predictor, ()), (E.export_onnx, (str(tmp_path / 'm.onnx'),)),
                     (E.export_symbol, (str(tmp_path / 'm'),))):
        with pytest.raises(ValueError) as err:
            fn(net, *args)
        msg = str(err.value)
        assert '\n' not in msg and msg.startswith(fn.__name__ + ': mobilenetv3_small_0.35 has '), msg
        assert 'never initialised' in msg and \
            'initialize it (net.initialize()) or load its weights (net.load_parameters(FILE))' in msg, msg
    assert all(p._data is None for p in net.collect_params().values())   # not initialised behind our back
    assert sorted(os.listdir(str(tmp_path))) == ['tmp'] and os.listdir(str(tmp)) == []
    net.initialize()
    pred = E.fastest_predictor(net, input_shape=(1, 3, 32, 32))
    assert pred(np.zeros((2, 3, 32, 32), np.float32)).shape == (2, 1000)
    pred.close()


def test_max_abs_diff_counts_equal_infinities_as_equal():
    from asymmzoo.utils.math import max_abs_diff
    a = np.array([1.0, np.inf, -np.inf, np.nan, -1.0], np.float32)
    assert max_abs_diff(a[:3], a[:3].copy()) == 0.0   # equal infinities are equal
    assert max_abs_diff([a[:3], mx.nd.array(a[:2])], [a[:3] + np.float32(0.5), mx.nd.array(a[:2])]) == 0.5
    assert max_abs_diff(a, np.where(np.isinf(a), 0, a)) == np.inf
    assert max_abs_diff(a, np.where(np.isnan(a), 0, a)) == np.inf
    assert max_abs_diff(a, a.copy(), equal_nan=False) == np.inf   # the default: NaN never passes
    assert max_abs_diff(a, a.copy(), equal_nan=True) == 0.0
    with pytest.raises(ValueError, match='2 outputs against 1'):
        max_abs_diff([a, a], a)
    from asymmzoo.utils.math import max_abs_finite
    assert max_abs_finite([a, mx.nd.array([-3.0, 2.0])]) == 3.0 and max_abs_finite(a[1:4]) == 0.0


def test_random_bn_stats_keep_hybridization_and_nan_weights_are_named():
    """randomize_bn_stats runs the net imperatively for its hooks and gives back the hybridization it
    found (static_alloc / static_shape included); a network whose own outputs are NaN is not passed
    off as deployed."""
    from asymmzoo.deploy import deploy, DeployError
    net, shape = E.prepare_model('mobilenetv3_small_0.35', deploy=False, input_shape=(1, 3, 32, 32))
    net.hybridize(static_alloc=True, static_shape=True)
    flags = dict(net._flags)
    E.randomize_bn_stats(net, mx.nd.random.normal(shape=(4, 3, 32, 32)))
    assert net._active and dict(net._flags) == flags
    w = [p for n, p in net.collect_params().items() if n.endswith('weight')][-1]   # the classifier's
    w.set_data(w.data() * np.nan)
    with pytest.raises(DeployError, match='contains NaN'):
        deploy(net, verify=True, probe=mx.nd.random.normal(shape=(2, 3, 32, 32)))
