"""TSN action recognition (downstream.action): model contract, counts, video decoding, bad input,
training on OpenCV-written mp4s."""
import os
import sys
import warnings

import mxnet as mx
import numpy as np
import pytest

import asymmzoo
from asymmzoo.utils import count_params, count_madds
from downstream.action import TSN, VideoClsCV2, VideoDecodeError, count_video_frames, \
    read_video_frames, video_transforms

sys.path.insert(0, os.path.dirname(__file__))
from _video_fixtures import write_video, write_video_set  # noqa: E402
from _helpers import random_input as _rand
from _helpers import randomize_bn


def _randomize_bn(net, seed=1):
    return randomize_bn(net, seed, affine=True)


HAS_ACB = asymmzoo.is_registered('asymmnet_small_0.35_acb')
BACKBONES = ['asymmnet_large_1.0', 'asymmnet_small_0.35'] + \
    (['asymmnet_large_1.0_acb', 'asymmnet_small_0.35_acb'] if HAS_ACB else [])


def test_names_registered():
    for arch in ('large', 'small'):
        for mult in ('0.35', '0.5', '0.75', '1.0', '1.25'):
            for ds in ('hmdb51', 'ucf101', 'kinetics400'):
                assert asymmzoo.is_registered('tsn_asymmnet_%s_%s_%s' % (arch, mult, ds))
                assert asymmzoo.is_registered('tsn_mobilenetv3_%s_%s_%s' % (arch, mult, ds))
    net = asymmzoo.get_model('tsn_asymmnet_small_0.35_ucf101')
    assert isinstance(net, TSN) and net.classes == 101 and net.num_segments == 3
    assert asymmzoo.get_model('tsn_asymmnet_small_0.35_kinetics400').classes == 400
    with pytest.raises(ValueError, match='closest names'):
        asymmzoo.get_model('tsn_asymmnet_small_0.35_hmdb52')


@pytest.mark.parametrize('backbone', BACKBONES)
def test_tsn_contract(backbone, tmp_path):
    net = asymmzoo.get_model('tsn_%s_hmdb51' % backbone, classes=5, num_segments=3)
    base = asymmzoo.get_model(backbone)
    assert net.min_input_shape == (6, 3, 64, 64) and net.default_input_shape == (3, 3, 224, 224)
    assert net.feat_dim == base.classifier_in_channels == 1280
    assert asymmzoo.registry.get_spec(net.name_in_zoo).task == "action"  # per video: covered here
    mx.random.seed(0)
    net.initialize(mx.init.Xavier(magnitude=2.0), force_reinit=True)
    x = _rand((6, 3, 64, 64))
    with mx.autograd.record():
        out = net(x)
        loss = (out * _rand(out.shape, seed=3)).sum()
    loss.backward()
    assert out.shape == (2, 5)
    missing = [n for n, p in net.collect_params().items()
               if p.grad_req != 'null' and not np.any(p.grad().asnumpy())]
    assert not missing, missing
    _randomize_bn(net)
    with mx.autograd.predict_mode():
        ref = net(x).asnumpy()
        # average consensus: the video score is the mean of its frames' scores
        feats = net.head(net.features(x)).reshape((6, -1))
        frame_scores = net.output(feats).asnumpy().reshape(2, 3, 5)
        np.testing.assert_allclose(ref, frame_scores.mean(axis=1), rtol=1e-4, atol=1e-5)
        net.hybridize(static_alloc=True, static_shape=True)
        np.testing.assert_allclose(net(x).asnumpy(), ref, rtol=1e-4, atol=1e-5)
    prefix = str(tmp_path / 'tsn')
    net.export(prefix, epoch=0)
    sb = mx.gluon.SymbolBlock.imports(prefix + '-symbol.json', ['data'], prefix + '-0000.params')
    np.testing.assert_allclose(sb(x).asnumpy(), ref, rtol=1e-4, atol=1e-5)


@pytest.mark.skipif(not HAS_ACB, reason='asymmnet_*_acb not registered in this checkout')
@pytest.mark.parametrize('backbone', ['asymmnet_small_0.35', 'asymmnet_large_1.0'])
def test_tsn_acb_deploy_exact(backbone):
    from asymmzoo.nn.acb import ACBlock
    net = asymmzoo.get_model('tsn_%s_acb_hmdb51' % backbone, classes=4, num_segments=2)
    net.initialize(mx.init.Xavier(magnitude=2.0), force_reinit=True)
    _randomize_bn(net)
    x = _rand((4, 3, 64, 64), seed=5)
    with mx.autograd.predict_mode():
        ref = net(x).asnumpy()
    n_params = count_params(net)
    asymmzoo.deploy(net, probe=x)
    assert not [b for b in net.features if isinstance(b, ACBlock)]
    with mx.autograd.predict_mode():
        np.testing.assert_allclose(net(x).asnumpy(), ref, rtol=1e-4, atol=1e-5)
    base = asymmzoo.get_model('tsn_%s_hmdb51' % backbone, classes=4, num_segments=2)
    assert count_params(net) < n_params
    assert count_params(net) == count_params(base, input_shape=(2, 3, 64, 64))


def test_paper_table8_counts():
    # per frame (num_segments=1), 224x224, HMDB51 (51 classes): paper Table 8
    rows = {'asymmnet_large_1.0': (215.7, 4.8), 'asymmnet_small_1.0': (56.5, 1.9)}
    for bb, (madds, params) in rows.items():
        net = asymmzoo.get_model('tsn_%s_hmdb51' % bb, num_segments=1)
        m = count_madds(net, (1, 3, 224, 224)) / 1e6
        p = count_params(net, (1, 3, 224, 224)) / 1e6
        assert round(m, 1) == madds, (bb, m)
        assert abs(p - params) < 0.1, (bb, p)


def test_wrong_number_of_frames():
    net = asymmzoo.get_model('tsn_asymmnet_small_0.35_hmdb51', classes=3, num_segments=3)
    net.initialize()
    with pytest.raises(ValueError, match=r'7 frames, not a multiple of num_segments\*num_crop'):
        net(mx.nd.zeros((7, 3, 64, 64)))
    net.hybridize()
    with pytest.raises(ValueError, match='num_segments'):
        net(mx.nd.zeros((4, 3, 64, 64)))
    with pytest.raises(ValueError, match='4-d'):
        net(mx.nd.zeros((2, 3, 3, 64, 64)))
    assert net(mx.nd.zeros((6, 3, 64, 64))).shape == (2, 3)
    with pytest.raises(ValueError, match='num_segments'):
        asymmzoo.get_model('tsn_asymmnet_small_0.35_hmdb51', num_segments=0)


def test_mp4_decode_and_segment_sampling(tmp_path):
    path = write_video(str(tmp_path / 'a.mp4'), 0, frames=16)
    assert count_video_frames(path) == 16
    frames = read_video_frames(path, [0, 5, 15, 40])  # 40: past the end -> last frame
    assert [f.shape for f in frames] == [(64, 80, 3)] * 4
    # the frame index is the grey level / 12 of the corner block (mp4 is lossy: round)
    assert [int(round(f[2:14, 2:14].mean() / 12.0)) for f in frames] == [0, 5, 15, 15]
    with open(str(tmp_path / 'list.txt'), 'w') as f:
        f.write('a.mp4 999 1\n')  # the frame count of the list is re-read from the video
    # validation sampling: the middle frame of each of 4 segments, as GluonCV's _sample_val_indices
    ds = VideoClsCV2(str(tmp_path), str(tmp_path / 'list.txt'), train=False, num_segments=4,
                     new_width=80, new_height=64, target_width=64, target_height=64,
                     transform=video_transforms('val', size=64))
    assert ds.clips[0][1] == 16 and not ds.skipped
    x, y = ds[0]
    assert x.shape == (4, 3, 64, 64) and y == 1
    assert ds._frame_ids(16, *ds._sample_val_indices(16)) == [2, 6, 10, 14]
    # read the frame indices back from the decoded, centre-cropped (x offset 8), normalised frames
    grey = x[:, :, 2:14, 0:6].asnumpy().mean(axis=(2, 3))
    grey = grey * np.array([0.229, 0.224, 0.225]) + np.array([0.485, 0.456, 0.406])
    assert [int(round(v * 255 / 12.0)) for v in grey.mean(axis=1)] == [2, 6, 10, 14]
    # multi-crop test mode: crops x segments frames per video
    ds3 = VideoClsCV2(str(tmp_path), str(tmp_path / 'list.txt'), train=False, test_mode=True,
                      num_segments=4, num_crop=3, new_width=80, new_height=64, target_width=64,
                      target_height=64, transform=video_transforms('test', size=64, num_crop=3))
    x3, _ = ds3[0]
    assert x3.shape == (12, 3, 64, 64)
    # training sampling: one random frame inside each segment
    dst = VideoClsCV2(str(tmp_path), str(tmp_path / 'list.txt'), train=True, num_segments=4,
                      new_width=80, new_height=64, target_width=64, target_height=64,
                      transform=video_transforms('train', size=64))
    for _ in range(5):
        ids = dst._frame_ids(16, *dst._sample_train_indices(16))
        assert [i // 4 for i in ids] == [0, 1, 2, 3]
    assert dst[0][0].shape == (4, 3, 64, 64)


def test_frame_folder_loader(tmp_path):
    import cv2
    d = tmp_path / 'vid0'
    d.mkdir()
    for t in range(1, 10):
        cv2.imwrite(str(d / ('img_%05d.jpg' % t)), np.full((64, 80, 3), 10 * t, np.uint8))
    (tmp_path / 'list.txt').write_text('vid0 9 0\n')
    ds = VideoClsCV2(str(tmp_path), str(tmp_path / 'list.txt'), video_loader=False, train=False,
                     num_segments=3, new_width=80, new_height=64, target_width=64, target_height=64,
                     transform=video_transforms('val', size=64))
    x, y = ds[0]
    assert x.shape == (3, 3, 64, 64) and y == 0


def test_bad_videos_skipped_and_counted(tmp_path):
    root = str(tmp_path)
    lst = write_video_set(root, per_class=1, frames=12,
                          bad=[('garbage.mp4', b'this is not a video' * 20), ('missing.mp4', None),
                               ('empty.mp4', b'')])
    write_video(os.path.join(root, 'short.mp4'), 1, frames=2)
    with open(lst, 'a') as f:
        f.write('short.mp4 2 1\n')
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter('always')
        ds = VideoClsCV2(root, lst, num_segments=3, new_width=80, new_height=64, target_width=64,
                         target_height=64, transform=video_transforms('val', size=64))
    assert len(ds) == 2 and len(ds.skipped) == 4
    reasons = dict((os.path.basename(p), r) for p, r in ds.skipped)
    assert 'cannot open' in reasons['garbage.mp4'] and 'does not exist' in reasons['missing.mp4']
    assert 'fewer than num_segments' in reasons['short.mp4'] and 'allow_short' in reasons['short.mp4']
    assert any('skipped 4 of 6 videos' in str(x.message) for x in w)
    # allow_short keeps the 2-frame video (frames repeat, GluonCV's behaviour)
    ds2 = VideoClsCV2(root, lst, num_segments=3, allow_short=True, new_width=80, new_height=64,
                      target_width=64, target_height=64, transform=video_transforms('val', size=64))
    assert len(ds2) == 3 and ds2[2][0].shape == (3, 3, 64, 64)
    # a video that breaks after the dataset was built: replaced by the next one and counted
    os.remove(os.path.join(root, ds.clips[0][0]))
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        x, y = ds[0]
    assert ds.failed == 1 and x.shape == (3, 3, 64, 64) and y == ds.clips[1][2]
    # nothing usable: a clear error
    (tmp_path / 'bad.txt').write_text('garbage.mp4 10 0\n')
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        with pytest.raises(RuntimeError, match='no usable video'):
            VideoClsCV2(root, str(tmp_path / 'bad.txt'), num_segments=3)
    (tmp_path / 'malformed.txt').write_text('only_a_path.mp4\n')
    with pytest.raises(ValueError, match="line 1: expected 'path num_frames label'"):
        VideoClsCV2(root, str(tmp_path / 'malformed.txt'))


@pytest.mark.slow
def test_train_tsn_on_mp4_loss_falls(tmp_path):
    from downstream.action.train_tsn import build_parser, train, main
    root = str(tmp_path)
    tr = write_video_set(root, per_class=3, seed=0, bad=[('broken.mp4', b'\x00' * 100)])
    va = write_video_set(root, per_class=2, seed=1, list_name='val.txt')
    argv = ['--data-root', root, '--train-list', tr, '--val-list', va,
            '--model', 'tsn_asymmnet_small_0.35_hmdb51', '--num-classes', '2', '--num-segments', '3',
            '--num-crop', '3', '--new-width', '80', '--new-height', '64', '--input-size', '64',
            '--epochs', '5', '--batch-size', '2', '--lr', '0.05', '--lr-steps', '4', '--log-interval', '0']
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        out = train(build_parser().parse_args(argv))
    losses = out['losses']
    assert len(losses) == 15 and all(np.isfinite(losses))  # 6 videos / batch 2 x 5 epochs
    assert np.mean(losses[-3:]) < 0.5 * np.mean(losses[:3]), losses
    assert len(out['skipped']) == 1  # the broken video was skipped and counted
    assert out['val_accuracy'][-1] >= 0.75, out['val_accuracy']  # 3-crop, 4 held-out videos
    # the command line entry point, one step
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        assert main(argv[:-10] + ['--epochs', '1', '--max-steps', '1', '--batch-size', '2',
                                 '--log-interval', '0', '--save-prefix', str(tmp_path / 'm')]) == 0
    assert os.path.isfile(str(tmp_path / 'm.params'))


def test_decord_backend_matches_opencv(tmp_path):
    pytest.importorskip('decord')  # optional backend (not in requirements.txt)
    root = str(tmp_path)
    lst = write_video_set(root, per_class=1, bad=[('g.mp4', b'xx' * 50)])
    kw = dict(train=False, num_segments=3, new_width=80, new_height=64, target_width=64,
              target_height=64, transform=video_transforms('val', size=64))
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        a = VideoClsCV2(root, lst, backend='decord', **kw)
        b = VideoClsCV2(root, lst, backend='opencv', **kw)
    assert len(a) == len(b) == 2 and len(a.skipped) == len(b.skipped) == 1
    np.testing.assert_allclose(a[1][0].asnumpy(), b[1][0].asnumpy(), atol=1e-5)


def test_multicrop_evaluate_averages_crops_per_video():
    from downstream.action.train_tsn import evaluate
    net = asymmzoo.get_model('tsn_asymmnet_small_0.35_hmdb51', classes=5, num_segments=2)
    net.initialize(mx.init.Xavier(magnitude=2.0), force_reinit=True)
    _randomize_bn(net)
    x = _rand((3, 3 * 2, 3, 64, 64), seed=7)  # 3 videos x (3 crops x 2 segments) frames, crop-major
    with mx.autograd.predict_mode():
        want = np.stack([np.mean([net(x[b, 2 * c:2 * c + 2]).asnumpy()[0] for c in range(3)], axis=0)
                         for b in range(3)])
    pred = want.argmax(axis=1)
    assert evaluate(net, [(x, mx.nd.array(pred))], num_crop=3) == 1.0
    assert evaluate(net, [(x, mx.nd.array((pred + 1) % 5))], num_crop=3) == 0.0
