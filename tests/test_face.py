"""ArcFace face recognition (downstream.face): embedding net contract, counts, ArcFace loss vs numpy,
LFW-protocol verification, bad input, training on scikit-image's LFW faces, `asymmzoo embed`."""
import os

import mxnet as mx
import numpy as np
import pytest

import asymmzoo
from asymmzoo.utils import count_params, count_madds
from downstream.face import (FaceEmbedding, ArcFaceLoss, ArcMarginHead, arcface_loss_numpy,
                             arcface_logits_numpy, kfold_accuracy, read_pairs, evaluate_pairs,
                             write_identity_folder, augmented_views, preprocess, face_dataset)
from _helpers import random_input as _rand
from _helpers import randomize_bn


def _randomize_bn(net, seed=1):
    return randomize_bn(net, seed, affine=True)


HAS_ACB = asymmzoo.is_registered('asymmnet_small_0.35_acb')
BACKBONES = ['asymmnet_large_1.0', 'asymmnet_small_0.35'] + \
    (['asymmnet_large_1.0_acb', 'asymmnet_small_0.35_acb'] if HAS_ACB else [])


def _lfw_faces():
    skimage_data = pytest.importorskip('skimage.data')
    return skimage_data.lfw_subset()[:100]  # the first 100 of the 200 crops are faces


def test_names_registered():
    for arch in ('large', 'small'):
        for mult in ('0.35', '0.5', '0.75', '1.0', '1.25'):
            assert asymmzoo.is_registered('arcface_asymmnet_%s_%s' % (arch, mult))
            assert asymmzoo.is_registered('arcface_mobilenetv3_%s_%s' % (arch, mult))
    net = asymmzoo.get_model('arcface_asymmnet_small_0.35')
    assert isinstance(net, FaceEmbedding) and net.classes == net.embedding_size == 512
    assert net.feature_stride == 16 and net.map_size == 7


@pytest.mark.parametrize('backbone', BACKBONES)
def test_embedding_contract(backbone, tmp_path):
    net = asymmzoo.get_model('arcface_%s' % backbone, embedding_size=128)
    base = asymmzoo.get_model(backbone)
    assert net.min_input_shape == (2, 3, 112, 112) and net.default_input_shape == (1, 3, 112, 112)
    assert len(net.features) == base.tap(16).end
    mx.random.seed(0)
    net.initialize(mx.init.Xavier(magnitude=2.0))
    x = _rand((2, 3, 112, 112))
    assert net.features(x).shape == (2, base.tap(16).channels, 7, 7)  # the stride-16 map, 7x7
    with mx.autograd.record():
        out = net(x)
        loss = (out * _rand(out.shape, seed=3)).sum()
    loss.backward()
    assert out.shape == (2, 128)
    missing = [n for n, p in net.collect_params().items()
               if p.grad_req != 'null' and not np.any(p.grad().asnumpy())]
    assert not missing, missing
    _randomize_bn(net)
    with mx.autograd.predict_mode():
        ref = net(x).asnumpy()
        net.hybridize(static_alloc=True, static_shape=True)
        np.testing.assert_allclose(net(x).asnumpy(), ref, rtol=1e-4, atol=1e-4)
    prefix = str(tmp_path / 'face')
    net.export(prefix, epoch=0)
    sb = mx.gluon.SymbolBlock.imports(prefix + '-symbol.json', ['data'], prefix + '-0000.params')
    np.testing.assert_allclose(sb(x).asnumpy(), ref, rtol=1e-4, atol=1e-4)


def test_stride32_option_and_bad_input_size():
    net = asymmzoo.get_model('arcface_asymmnet_small_0.35', feature_stride=32, embedding_size=64)
    net.initialize()
    assert net.map_size == 4 and net(mx.nd.zeros((1, 3, 112, 112))).shape == (1, 64)
    with pytest.raises(ValueError, match='built for 112x112 face crops'):
        net(mx.nd.zeros((1, 3, 128, 128)))
    with pytest.raises(ValueError, match='no stride-4 tap'):
        asymmzoo.get_model('arcface_asymmnet_small_0.35', feature_stride=4)


@pytest.mark.skipif(not HAS_ACB, reason='asymmnet_*_acb not registered in this checkout')
@pytest.mark.parametrize('backbone', ['asymmnet_small_0.35', 'asymmnet_large_1.0'])
def test_acb_deploy_exact(backbone):
    from asymmzoo.nn.acb import ACBlock
    from asymmzoo.utils.blocks import iter_blocks
    net = asymmzoo.get_model('arcface_%s_acb' % backbone, embedding_size=64)
    net.initialize(mx.init.Xavier(magnitude=2.0))
    _randomize_bn(net)
    x = _rand((2, 3, 112, 112), seed=4)
    with mx.autograd.predict_mode():
        ref = net(x).asnumpy()
    asymmzoo.deploy(net, probe=x)
    assert not [b for _, _, _, b in iter_blocks(net) if isinstance(b, ACBlock)]
    with mx.autograd.predict_mode():
        np.testing.assert_allclose(net(x).asnumpy(), ref, rtol=1e-4, atol=1e-5)
    base = asymmzoo.get_model('arcface_%s' % backbone, embedding_size=64)
    assert count_params(net) == count_params(base, input_shape=(1, 3, 112, 112))


def test_paper_table7_counts():
    # the paper's numbers come out with MobileFaceNet's 128-d embedding: L 41.6M / 1.1M, s 10.3M / 0.3M
    # (its parameter counter counted a k x k kernel as k weights; true counts are a little higher)
    for bb, madds, params in [('asymmnet_large_1.0', 41.6, 1.1), ('asymmnet_small_1.0', 10.3, 0.35)]:
        net = asymmzoo.get_model('arcface_%s' % bb, embedding_size=128)
        m = count_madds(net, (1, 3, 112, 112)) / 1e6
        p = count_params(net, (1, 3, 112, 112)) / 1e6
        assert abs(m - madds) < 0.1 and abs(p - params) < 0.01, (bb, m, p)
    net = asymmzoo.get_model('arcface_asymmnet_large_1.0')  # default 512-d
    assert abs(count_madds(net, (1, 3, 112, 112)) / 1e6 - 41.74) < 0.01


@pytest.mark.parametrize('easy_margin', [False, True])
def test_arcface_loss_matches_numpy(easy_margin):
    rng = np.random.RandomState(0)
    n, c = 32, 11
    cos = rng.uniform(-1, 1, (n, c)).astype('float32')
    label = rng.randint(0, c, n)
    cos[0, label[0]] = 1.0      # target cosine at +1: arccos' derivative is infinite there
    cos[1, label[1]] = -1.0     # at -1, and theta + m > pi
    cos[2, :] = 1.0
    cos[3, :] = -1.0
    cos[4, label[4]] = np.cos(np.pi - 0.5) - 1e-3  # just past the theta + m > pi guard
    loss_fn = ArcFaceLoss(s=64, m=0.5, easy_margin=easy_margin)
    x = mx.nd.array(cos)
    x.attach_grad()
    with mx.autograd.record():
        loss = loss_fn(x, mx.nd.array(label))
    loss.backward()
    ref = arcface_loss_numpy(cos, label, s=64, m=0.5, easy_margin=easy_margin)
    assert np.all(np.isfinite(loss.asnumpy())) and np.all(np.isfinite(x.grad.asnumpy()))
    np.testing.assert_allclose(loss.asnumpy(), ref, rtol=1e-4, atol=2e-3)
    # the loss hybridizes too
    loss_fn.hybridize()
    np.testing.assert_allclose(loss_fn(x, mx.nd.array(label)).asnumpy(), ref, rtol=1e-4, atol=2e-3)
    # logits: the margin only touches the target column, scaled by s
    z = arcface_logits_numpy(cos, label, easy_margin=easy_margin)
    mask = np.zeros_like(cos, bool)
    mask[np.arange(n), label] = True
    np.testing.assert_allclose(z[~mask], 64 * np.clip(cos, -1 + 1e-6, 1 - 1e-6)[~mask], rtol=1e-6)
    t = np.clip(cos[mask].astype(np.float64), -1 + 1e-6, 1 - 1e-6)
    if easy_margin:
        want = np.where(t > 0, np.cos(np.arccos(t) + 0.5), t)
    else:
        want = np.where(t > np.cos(np.pi - 0.5), np.cos(np.arccos(t) + 0.5), t - np.sin(np.pi - 0.5) * 0.5)
    np.testing.assert_allclose(z[mask] / 64, want, rtol=1e-6, atol=1e-9)


def test_arcface_margin_zero_is_softmax_and_head_normalises():
    rng = np.random.RandomState(1)
    cos = rng.uniform(-0.9, 0.9, (8, 5)).astype('float32')
    label = rng.randint(0, 5, 8)
    got = ArcFaceLoss(s=10, m=0.0)(mx.nd.array(cos), mx.nd.array(label)).asnumpy()
    want = mx.gluon.loss.SoftmaxCrossEntropyLoss()(mx.nd.array(10 * cos), mx.nd.array(label)).asnumpy()
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    head = ArcMarginHead(5, 16)
    head.initialize()
    c = head(mx.nd.array(rng.randn(8, 16) * 30)).asnumpy()
    assert c.shape == (8, 5) and np.all(np.abs(c) <= 1 + 1e-5)
    with pytest.raises(ValueError, match=r'\(N, classes\)'):
        ArcFaceLoss()(mx.nd.zeros((2, 3, 4)), mx.nd.zeros((2,)))
    with pytest.raises(ValueError, match='margin'):
        ArcFaceLoss(m=2.0)


def test_kfold_accuracy_protocol():
    rng = np.random.RandomState(0)
    a = rng.randn(200, 16)
    a /= np.linalg.norm(a, axis=1, keepdims=True)
    same = np.arange(200) % 2 == 0
    b = np.where(same[:, None], a + 0.05 * rng.randn(200, 16), rng.randn(200, 16))
    b /= np.linalg.norm(b, axis=1, keepdims=True)
    res = kfold_accuracy(a, b, same)
    assert res['accuracy'] == 1.0 and len(res['fold_accuracies']) == 10 and 0 < res['threshold'] < 2
    rnd = kfold_accuracy(a, rng.randn(200, 16) / 4, same)
    assert rnd['accuracy'] < 0.7  # unrelated embeddings: about chance
    with pytest.raises(ValueError, match='at least nfolds'):
        kfold_accuracy(a[:5], b[:5], same[:5])


def test_pairs_file_formats_and_missing_image(tmp_path):
    import cv2
    img = np.full((112, 112, 3), 128, np.uint8)
    for p in ['x/a.png', 'x/b.png', 'Ann/Ann_0001.jpg', 'Ann/Ann_0002.jpg', 'Bob/Bob_0001.jpg']:
        os.makedirs(str(tmp_path / os.path.dirname(p)), exist_ok=True)
        cv2.imwrite(str(tmp_path / p), img)
    (tmp_path / 'pairs.txt').write_text('# path_a path_b same\nx/a.png x/b.png 1\nx/a.png x/b.png 0\n')
    pairs = read_pairs(str(tmp_path / 'pairs.txt'), str(tmp_path))
    assert [p[2] for p in pairs] == [True, False]
    (tmp_path / 'lfw.txt').write_text('1\t2\nAnn\t1\t2\nAnn\t1\tBob\t1\n')  # LFW's pairs.txt format
    lfw = read_pairs(str(tmp_path / 'lfw.txt'), str(tmp_path))
    assert lfw[0][0].endswith('Ann_0001.jpg') and lfw[0][2] and lfw[1][1].endswith('Bob_0001.jpg') \
        and not lfw[1][2]
    (tmp_path / 'bad.txt').write_text('x/a.png x/b.png 1\nx/a.png x/nope.png 0\n')
    with pytest.raises(FileNotFoundError, match=r'bad.txt line 2 names a missing image: .*nope.png'):
        read_pairs(str(tmp_path / 'bad.txt'), str(tmp_path))
    (tmp_path / 'bad2.txt').write_text('x/a.png x/b.png maybe\n')
    with pytest.raises(ValueError, match='1/0'):
        read_pairs(str(tmp_path / 'bad2.txt'), str(tmp_path))
    with pytest.raises(FileNotFoundError, match='does not exist'):
        read_pairs(str(tmp_path / 'nofile.txt'))
    with pytest.raises(FileNotFoundError, match='identity'):
        face_dataset(str(tmp_path / 'nofolder'))


def _lfw_setup(root, ids=20, views=8, pairs_n=100):
    """Identity-per-folder training set of augmented views and a held-out pairs file of fresh views."""
    import cv2
    faces = _lfw_faces()[:ids]
    write_identity_folder(os.path.join(root, 'train'), faces, views=views, seed=0)
    held = os.path.join(root, 'held')
    os.makedirs(held)
    for i, f in enumerate(faces):
        for j, v in enumerate(augmented_views(f, 2, seed=1000 + i)):
            cv2.imwrite(os.path.join(held, '%02d_%d.png' % (i, j)), v[:, :, ::-1])
    rng = np.random.RandomState(5)
    lines = []
    for k in range(pairs_n):
        i = k % ids
        if k % 2 == 0:
            lines.append('%02d_0.png %02d_1.png 1' % (i, i))
        else:
            j = (i + 1 + rng.randint(ids - 1)) % ids
            lines.append('%02d_0.png %02d_1.png 0' % (i, j))
    with open(os.path.join(root, 'pairs.txt'), 'w') as f:
        f.write('\n'.join(lines) + '\n')
    return os.path.join(root, 'train'), os.path.join(root, 'pairs.txt'), held


@pytest.mark.slow
def test_train_arcface_on_lfw_faces(tmp_path):
    from downstream.face.train_arcface import build_parser, train
    train_dir, pairs, held = _lfw_setup(str(tmp_path))
    ds = face_dataset(train_dir)
    assert ds.num_classes == 20 and len(ds) == 160 and ds[0][0].shape == (3, 112, 112)
    args = build_parser().parse_args([
        '--data', train_dir, '--model', 'arcface_asymmnet_small_0.35', '--embedding-size', '128',
        '--epochs', '100', '--max-steps', '60', '--batch-size', '32', '--optimizer', 'adam',
        '--lr', '0.001', '--log-interval', '0', '--pairs', pairs, '--pairs-root', held,
        '--val-interval', '1000',
        '--save-prefix', str(tmp_path / 'face')])
    out = train(args)
    losses = out['losses']
    assert len(losses) == 60 and all(np.isfinite(losses))
    assert np.mean(losses[-3:]) < 0.2 * np.mean(losses[:3]), losses  # s=64, m=0.5
    acc = out['verification'][-1]['accuracy']
    assert acc >= 0.9, out['verification'][-1]  # chance is 0.5 (balanced pairs)
    # views of one face stay pixel-similar, so even random weights beat chance: training must do better
    untrained = asymmzoo.get_model('arcface_asymmnet_small_0.35', embedding_size=128)
    mx.random.seed(0)
    untrained.initialize(mx.init.MSRAPrelu())
    base = evaluate_pairs(untrained, read_pairs(pairs, held))['accuracy']
    assert acc > base + 0.05, (acc, base)
    assert os.path.isfile(str(tmp_path / 'face-embed.params'))
    # `asymmzoo embed` with the trained weights: same identity closer than a different one
    from asymmzoo.cli import main
    npy = str(tmp_path / 'e.npy')
    imgs = [os.path.join(held, n) for n in ('03_0.png', '03_1.png', '07_1.png')]
    assert main(['embed'] + imgs + ['--model', 'arcface_asymmnet_small_0.35', '--embedding-size',
                                    '128', '--params', str(tmp_path / 'face-embed.params'),
                                    '-o', npy]) == 0
    e = np.load(npy)
    assert e.shape == (3, 128) and np.allclose(np.linalg.norm(e, axis=1), 1, atol=1e-4)


def test_train_arcface_stops_on_a_diverged_loss(tmp_path, capsys):
    """A NaN / infinite loss ends the script with one line naming the step and the fix (exit code 3,
    as train_imagenet.py), not a traceback and not a run that goes on with NaN weights."""
    from downstream.face.train_arcface import cli
    train_dir, _, _ = _lfw_setup(str(tmp_path), ids=4, views=4, pairs_n=4)
    assert cli(['--data', train_dir, '--model', 'arcface_asymmnet_small_0.35', '--embedding-size', '64',
                '--epochs', '3', '--batch-size', '8', '--lr', '1e30', '--log-interval', '0',
                '--save-prefix', str(tmp_path / 'face')]) == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and 'Traceback' not in err[0], err
    assert 'loss is ' in err[0] and ' at epoch 1 step ' in err[0] and '(lr 1e+30); stopped. lower --lr or --s' \
        in err[0], err
    assert not (tmp_path / 'face-embed.params').exists()


def test_train_arcface_lr_steps_decay_at_the_epochs_given(tmp_path, monkeypatch):
    """--lr-steps E: every update of epoch E on runs at a tenth of the rate (each epoch has exactly
    len(data) // batch steps: the last partial batch of a shuffled epoch is dropped)."""
    import downstream.face.train_arcface as tf
    seen = []

    class Recording(tf.StepLog):
        def after_step(self, loss, epoch, lr=None):
            seen.append((epoch, lr))
            return super(Recording, self).after_step(loss, epoch, lr)
    monkeypatch.setattr(tf, 'StepLog', Recording)
    train_dir, _, _ = _lfw_setup(str(tmp_path), ids=4, views=4, pairs_n=4)   # 16 images
    args = tf.build_parser().parse_args(['--data', train_dir, '--model', 'arcface_asymmnet_small_0.35',
                                         '--embedding-size', '64', '--epochs', '4', '--batch-size', '6',
                                         '--lr', '0.01', '--lr-steps', '1,3', '--log-interval', '0'])
    tf.train(args)
    assert [e for e, _ in seen] == [0, 0, 1, 1, 2, 2, 3, 3]
    assert [lr for _, lr in seen] == pytest.approx([0.01] * 2 + [0.001] * 4 + [0.0001] * 2)


def test_embed_command_errors(tmp_path, capsys):
    import cv2
    from asymmzoo.cli import main
    img = str(tmp_path / 'f.png')
    cv2.imwrite(img, np.full((60, 50, 3), 90, np.uint8))
    assert main(['embed', str(tmp_path / 'missing.png'), '--untrained']) == 2
    assert 'does not exist' in capsys.readouterr().err
    assert main(['embed', img, '--model', 'arcface_asymmnet_small_0.35']) == 2
    assert '--params' in capsys.readouterr().err
    assert main(['embed', img, '--model', 'asymmnet_small_0.35', '--untrained']) == 2
    assert 'face model' in capsys.readouterr().err
    npy = str(tmp_path / 'e.npy')
    assert main(['embed', img, img, '--model', 'arcface_asymmnet_small_0.35', '--untrained',
                 '-o', npy]) == 0
    out = capsys.readouterr().out
    assert '512-d' in out and 'cosine similarity to the first image: 1.0000' in out
    assert np.load(npy).shape == (2, 512)


def test_face_dataset_from_recordio(tmp_path):
    import cv2
    rec, idx = str(tmp_path / 'faces.rec'), str(tmp_path / 'faces.idx')
    w = mx.recordio.MXIndexedRecordIO(idx, rec, 'w')
    views = augmented_views(np.linspace(0, 1, 25 * 25).reshape(25, 25), 4, seed=3, size=120)
    for i, v in enumerate(views):
        header = mx.recordio.IRHeader(0, float(i % 2), i, 0)
        w.write_idx(i, mx.recordio.pack_img(header, v[:, :, ::-1], quality=95, img_fmt='.png'))
    w.close()
    ds = face_dataset(rec, train=False)
    assert len(ds) == 4 and ds.num_classes == 2
    x, y = ds[1]
    assert x.shape == (3, 112, 112) and x.dtype == np.float32 and y == 1.0
    np.testing.assert_allclose(x, preprocess(cv2.resize(views[1], (112, 112))), atol=1e-5)
    data = open(rec, 'rb').read()
    with open(rec, 'wb') as f:                       # a truncated .rec: named before MXNet reads it
        f.write(data[:len(data) // 2])
    with pytest.raises(ValueError, match='faces.rec: record [0-9]+ .*truncated'):
        face_dataset(rec)
    os.remove(idx)
    with pytest.raises(FileNotFoundError, match='needs its index'):
        face_dataset(rec)
