"""SimplePose / MobilePose on the zoo's backbones: shapes, the contract, gradients, hybridize, export,
deploy, GluonCV's name-based builder, bad input, and real training on COCO keypoint files generated
on disk."""
import os

import mxnet as mx
import numpy as np
import pytest
from mxnet import autograd, gluon

import asymmzoo
from downstream.counting import paper_count_params
from downstream.pose import SimplePose, get_simple_pose
from downstream.pose import train_simple_pose
from downstream.synthetic import make_coco_keypoints
from _helpers import random_input as _rand
from _helpers import randomize_bn as _randomize_bn


H, W = 128, 96


@pytest.fixture(scope='module')
def coco(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('coco'))
    make_coco_keypoints(root, splits=(('train2017', 8), ('val2017', 8)), size=(160, 128), seed=0,
                        same_images=True)
    return root


def _all_blocks(block):
    out = [block]
    for c in block._children.values():
        out += _all_blocks(c)
    return out


def _args(root, save_dir, extra=()):
    return ['--network', 'asymmnet_small_0.35', '--data-root', root, '--train-split',
            'person_keypoints_train2017', '--val-split', 'person_keypoints_val2017',
            '--input-size', '%d,%d' % (H, W), '-j', '0', '--save-dir', save_dir, '--log-interval', '0',
            '--seed', '1'] + list(extra)


def _batch(root, n=2):
    """A real training batch (image, heatmap target, target weight) through GluonCV's transform."""
    args = train_simple_pose.parse_args(_args(root, '/nonexistent', ['--batch-size', str(n)]))
    train, val = train_simple_pose.get_dataset(args)
    loader, _ = train_simple_pose.get_dataloader(train, val, args)
    mx.random.seed(0)
    np.random.seed(0)
    b = next(iter(loader))
    return [x.as_in_context(mx.cpu()) for x in b[:3]]


@pytest.mark.parametrize('arch', ['large', 'small'])
@pytest.mark.parametrize('mult', ['1.0', '0.35'])
def test_shapes_and_contract(arch, mult, coco):
    net = asymmzoo.get_model('simple_pose_asymmnet_%s_%s' % (arch, mult))
    base = asymmzoo.get_model('asymmnet_%s_%s' % (arch, mult))
    assert isinstance(net, SimplePose)
    assert net.default_input_shape == (1, 3, 256, 192)
    deconv = [b for b in net.deconv_layers if isinstance(b, gluon.nn.Conv2DTranspose)]
    assert len(deconv) == 3 and deconv[0]._in_channels == base.num_features
    assert all(d._channels == 256 and d._kwargs['kernel'] == (4, 4) and d._kwargs['stride'] == (2, 2)
               for d in deconv)
    mx.random.seed(0)
    net.initialize()
    # inference: heatmaps at input / 4
    with autograd.predict_mode():
        hm = net(_rand((2, 3, H, W)))
    assert hm.shape == (2, 17, H // 4, W // 4)
    # training: heatmaps and the weighted L2 loss against GluonCV's Gaussian targets, one per image
    img, target, weight = _batch(coco)
    assert target.shape == (2, 17, H // 4, W // 4) and weight.shape == (2, 17, 1, 1)
    with autograd.record():
        out = net(img)
        loss = gluon.loss.L2Loss()(out, target, weight)
    assert out.shape == target.shape and loss.shape == (2,) and np.all(np.isfinite(loss.asnumpy()))


def test_paper_input_size_gives_64x48():
    net = asymmzoo.get_model('simple_pose_asymmnet_small_0.35')
    net.initialize()
    with autograd.predict_mode():
        assert net(mx.nd.zeros((1, 3, 256, 192))).shape == (1, 17, 64, 48)


def test_gluoncv_mobile_pose_builder_accepts_our_names():
    """GluonCV's own name-based MobilePose builder builds on our backbone names."""
    from gluoncv.model_zoo.simple_pose.mobile_pose import get_mobile_pose
    import gluoncv
    net = get_mobile_pose('asymmnet_small_0.35', base_attrs=['features'])
    net.initialize()
    assert net(mx.nd.zeros((1, 3, 256, 192))).shape == (1, 17, 64, 48)
    assert isinstance(gluoncv.model_zoo.get_model('asymmnet_small_0.35'), asymmzoo.models.AsymmNet)
    # our registered mobile_pose_* end every backbone at the contract's stride-32 map, also for our
    # mobilenetv3_* names (GluonCV cuts 4 layers off anything called mobilenetv3*)
    for name in ('mobile_pose_asymmnet_small_0.35', 'mobile_pose_mobilenetv3_small_0.35'):
        net = asymmzoo.get_model(name)
        net.initialize()
        feats = net.features(mx.nd.zeros((1, 3, 256, 192)))
        assert feats.shape == (1, asymmzoo.get_model(name[len('mobile_pose_'):]).num_features, 8, 6)
        assert net(mx.nd.zeros((1, 3, 256, 192))).shape == (1, 17, 64, 48)


def test_gradients_hybridize_export(coco, tmp_path):
    net = asymmzoo.get_model('simple_pose_asymmnet_small_0.35')
    mx.random.seed(0)
    net.initialize(mx.init.Xavier(magnitude=2.0))
    img, target, weight = _batch(coco)
    with autograd.record():
        loss = gluon.loss.L2Loss()(net(img), target, weight)
    loss.backward()
    missing = [n for n, p in net.collect_params().items()
               if p.grad_req != 'null' and not np.any(p.grad().asnumpy())]
    assert not missing, missing
    _randomize_bn(net)
    x = _rand((2, 3, H, W), seed=4)
    with autograd.predict_mode():
        ref = net(x).asnumpy()
        net.hybridize(static_alloc=True, static_shape=True)
        hyb = net(x).asnumpy()
    tol = 1e-4 * max(1.0, np.abs(ref).max())
    np.testing.assert_allclose(hyb, ref, rtol=1e-4, atol=tol)
    prefix = os.path.join(str(tmp_path), 'pose')
    net.export(prefix, epoch=0)
    sb = gluon.SymbolBlock.imports(prefix + '-symbol.json', ['data'], prefix + '-0000.params')
    np.testing.assert_allclose(sb(x).asnumpy(), ref, rtol=1e-4, atol=tol)


def test_acb_backbone_deploys_exactly():
    if not asymmzoo.is_registered('asymmnet_small_0.35_acb'):
        pytest.skip('ACB backbones are not registered in this checkout')
    from asymmzoo.deploy import converters
    kinds = tuple(converters())
    for name in ('simple_pose_asymmnet_small_0.35_acb', 'mobile_pose_asymmnet_small_0.35_acb'):
        net = asymmzoo.get_model(name)
        mx.random.seed(0)
        net.initialize(mx.init.Xavier(magnitude=2.0))
        x = _rand((2, 3, H, W), seed=2)
        net(x)
        _randomize_bn(net, seed=3)
        assert any(isinstance(b, kinds) for b in _all_blocks(net)), name
        with autograd.predict_mode():
            ref = net(x).asnumpy()
        asymmzoo.deploy(net, probe=x)
        assert not any(isinstance(b, kinds) for b in _all_blocks(net))
        with autograd.predict_mode():
            out = net(x).asnumpy()
        np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-4 * max(1.0, np.abs(ref).max()))


def test_bad_input(tmp_path):
    with pytest.raises(ValueError, match=r"unknown backbone 'asymmnet_tiny_1.0'"):
        get_simple_pose('asymmnet_tiny_1.0')
    with pytest.raises(ValueError, match='unknown model.*closest'):
        asymmzoo.get_model('simple_pose_asymmnet_small_3.0')
    with pytest.raises(ValueError, match='num_joints'):
        get_simple_pose('asymmnet_small_0.35', num_joints=0)
    root = str(tmp_path / 'empty')
    os.makedirs(root)
    with pytest.raises(FileNotFoundError, match=r'person_keypoints_train2017\.json is missing'):
        train_simple_pose.main(_args(root, str(tmp_path / 'ck')))
    with pytest.raises(SystemExit):
        train_simple_pose.parse_args(['--input-size', '100,75'])


def test_training_loss_falls_and_evaluates(coco, tmp_path):
    """Real steps on the generated COCO keypoint files: the loss falls, OKS AP (pycocotools) comes back."""
    hist = train_simple_pose.main(_args(coco, str(tmp_path), [
        '--deconv-filters', '64,64,64', '--batch-size', '8', '--epochs', '25', '--lr', '0.005',
        '--lr-mode', 'cosine', '--scale-factor', '0', '--rotation-factor', '0', '--no-flip',
        '--val-interval', '25', '--save-interval', '0']))
    losses = [h['loss'] for h in hist]
    assert len(losses) == 25
    assert np.mean(losses[-3:]) < 0.7 * np.mean(losses[:3]), losses
    assert 0.0 <= hist[-1]['ap'] <= 1.0
    # checkpoint + resume
    hist2 = train_simple_pose.main(_args(coco, str(tmp_path), [
        '--deconv-filters', '64,64,64', '--batch-size', '8', '--epochs', '26', '--lr', '0.005',
        '--lr-mode', 'cosine', '--val-interval', '100', '--save-interval', '0', '--resume']))
    assert len(hist2) == 26 and hist2[:25] == hist
    # the demo draws the trained model's skeleton on a box
    from asymmzoo.cli import main as cli
    out = os.path.join(str(tmp_path), 'pose.png')
    assert cli(['pose', os.path.join(coco, 'train2017', '000000000001.jpg'), '--model',
                'asymmnet_small_0.35', '--deconv-filters', '64,64,64', '--input-size', str(H), str(W),
                '--params', os.path.join(str(tmp_path), 'simple_pose_asymmnet_small_0.35-last.params'),
                '--box', '5,5,120,150', '--out', out]) == 0
    assert os.path.getsize(out) > 1000


def test_pose_demo_errors(coco, tmp_path, capsys):
    from asymmzoo.cli import main as cli
    img = os.path.join(coco, 'train2017', '000000000001.jpg')
    out = str(tmp_path / 'p.png')
    assert cli(['pose', img, '--model', 'asymmnet_small_0.35', '--untrained', '--detector',
                'asymmnet_small_0.35', '--short', '128', '--thresh', '0', '--input-size', str(H), str(W),
                '--out', out]) == 0 and os.path.exists(out)
    assert cli(['pose', img, '--untrained', '--box', '0,0,500,20']) == 2
    assert 'outside' in capsys.readouterr().err
    assert cli(['pose', img]) == 2
    assert '--params' in capsys.readouterr().err


def test_mobile_pose_interrupted_and_resumed_equals_uninterrupted(coco, tmp_path):
    """GluonCV's MobilePose head through the script; 2 epochs straight == 1 + --resume, bit for bit
    (random scale / rotation / flip on)."""
    common = ['--head', 'mobile_pose', '--batch-size', '4', '--epochs', '2', '--val-split', '',
              '--lr-mode', 'cosine', '--save-interval', '0', '--no-hybridize']
    a, b = str(tmp_path / 'a'), str(tmp_path / 'b')
    ha = train_simple_pose.main(_args(coco, a, common))
    assert len(train_simple_pose.main(_args(coco, b, common + ['--stop-epoch', '1']))) == 1
    hb = train_simple_pose.main(_args(coco, b, common + ['--resume']))
    strip = lambda hist: [{k: v for k, v in h.items() if k != 'time'} for h in hist]  # noqa: E731
    assert strip(ha) == strip(hb) and len(ha) == 2
    pa = mx.nd.load(os.path.join(a, 'mobile_pose_asymmnet_small_0.35-last.params'))
    pb = mx.nd.load(os.path.join(b, 'mobile_pose_asymmnet_small_0.35-last.params'))
    assert sorted(pa) == sorted(pb)
    for k in pa:
        np.testing.assert_array_equal(pa[k].asnumpy(), pb[k].asnumpy(), err_msg=k)


@pytest.mark.slow
def test_overfit_reaches_nontrivial_ap(coco, tmp_path):
    hist = train_simple_pose.main(_args(coco, str(tmp_path), [
        '--deconv-filters', '64,64,64', '--batch-size', '8', '--epochs', '100', '--lr', '0.005',
        '--lr-mode', 'step', '--lr-decay-epoch', '', '--scale-factor', '0', '--rotation-factor', '0',
        '--no-flip', '--val-interval', '100', '--save-interval', '0', '--flip-test']))
    print('overfit AP', hist[-1]['ap'])
    assert hist[-1]['ap'] > 0.5, hist[-1]


def test_counts_match_paper_table9():
    """Table 9 is GluonCV's MobilePose head at 256x256: MAdds to 0.1M, params with the paper's counter
    (the paper prints 4.3 and 1.6 where that counter gives 4.246 and 1.546; the others match)."""
    for name, madds, params in (('mobile_pose_asymmnet_small_1.0', 310.7, 1.7),
                                ('mobile_pose_asymmnet_large_1.0', 523.9, 4.2),
                                ('mobile_pose_mobilenetv3_small_1.0', 309.7, 1.5),
                                ('mobile_pose_mobilenetv3_large_1.0', 523.6, 3.7)):
        net = asymmzoo.get_model(name)
        net.initialize()
        assert round(asymmzoo.utils.count_madds(net, (1, 3, 256, 256)) / 1e6, 1) == madds, name
        assert round(paper_count_params(net, (1, 3, 256, 256)) / 1e6, 1) == params, name
