"""YOLOv3 on the zoo's backbones: shapes, the contract, gradients, hybridize, export, deploy, reset_class,
the VOC-folder dataset's errors, and real training on a VOC folder generated on disk."""
import glob
import os

import mxnet as mx
import numpy as np
import pytest
from mxnet import autograd

import asymmzoo
from gluoncv.model_zoo.yolo.yolo3 import YOLOV3 as GluonYOLOV3
from gluoncv.data.batchify import Tuple, Stack, Pad
from gluoncv.data.transforms.presets.yolo import YOLO3DefaultTrainTransform

from downstream.counting import paper_count_params
from downstream.detection import get_yolo3
from downstream.detection.data import VOCFolder, DatasetError
from downstream.detection import train_yolo3
from downstream.synthetic import make_voc_folder, make_coco_detection
from _helpers import random_input as _rand
from _helpers import randomize_bn as _randomize_bn


SIZE = 128
NUM_PRED = 3 * sum((SIZE // s) ** 2 for s in (8, 16, 32))  # 3 anchors per cell at strides 8/16/32


@pytest.fixture(scope='module')
def voc(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('voc'))
    info = make_voc_folder(root, splits=(('train', 6), ('val', 6)), size=(SIZE, SIZE), seed=0,
                           same_images=True)
    return root, info


def _batch(net, root, n=2):
    """A real training batch: GluonCV's train transform (with the net's targets) on synthetic images."""
    ds = VOCFolder(root, 'train')  # class ids 0, 1: valid for any net with >= 2 classes
    np.random.seed(0)
    t = YOLO3DefaultTrainTransform(SIZE, SIZE, net)
    items = [t(*ds[i]) for i in range(n)]
    b = Tuple(*([Stack() for _ in range(6)] + [Pad(axis=0, pad_val=-1)]))(items)
    return [x.as_in_context(mx.cpu()) for x in b]


def _losses(net, b):
    with autograd.record():
        losses = net(b[0], b[6], *b[1:6])
    return losses


@pytest.mark.parametrize('arch', ['large', 'small'])
@pytest.mark.parametrize('mult', ['1.0', '0.35'])
def test_shapes_and_contract(arch, mult, voc):
    name = 'yolo3_asymmnet_%s_%s_voc' % (arch, mult)
    net = asymmzoo.get_model(name)
    assert isinstance(net, GluonYOLOV3) and asymmzoo.registry.get_spec(net.name_in_zoo).task == "detection"
    base = asymmzoo.get_model('asymmnet_%s_%s' % (arch, mult))
    assert net.stage_channels == base.stage_channels() and net.stage_channels[2] == base.num_features
    assert len(net.classes) == 20 and net.default_input_shape == (1, 3, 416, 416)
    mx.random.seed(0)
    net.initialize()
    x = _rand((2, 3, SIZE, SIZE))
    # inference: GluonCV's (ids, scores, boxes) after NMS, post_nms = 100 rows
    ids, scores, boxes = net(x)
    assert ids.shape == (2, 100, 1) and scores.shape == (2, 100, 1) and boxes.shape == (2, 100, 4)
    valid = ids.asnumpy() >= 0
    assert np.all(ids.asnumpy()[valid] < 20)
    # training mode without recording: raw predictions (what the target generator consumes)
    with autograd.train_mode():
        raw = net(x)
    assert len(raw) == 8 and raw[0].shape == (2, NUM_PRED, 4)
    assert [f.shape[2:] for f in raw[3]] == [(SIZE // s, SIZE // s) for s in (32, 16, 8)]
    # training mode with targets: the four losses, one value per image
    b = _batch(net, voc[0])
    assert b[1].shape == (2, NUM_PRED, 1) and b[5].shape == (2, NUM_PRED, 20)
    losses = _losses(net, b)
    assert len(losses) == 4
    for l in losses:
        assert l.shape == (2,) and np.all(np.isfinite(l.asnumpy())) and np.all(l.asnumpy() >= 0)


def test_mobilenetv3_and_custom_names():
    assert asymmzoo.is_registered('yolo3_mobilenetv3_small_1.0_coco')
    net = asymmzoo.get_model('yolo3_mobilenetv3_small_0.35_coco')
    assert len(net.classes) == 80
    net = asymmzoo.get_model('yolo3_asymmnet_small_0.35_custom', classes=['cat', 'dog'])
    assert net.classes == ['cat', 'dog']
    net = asymmzoo.get_model('yolo3_asymmnet_small_0.35_custom', classes=3)
    assert len(net.classes) == 3
    # norm_layer / norm_kwargs reach every BN, backbone and head
    net = asymmzoo.get_model('yolo3_asymmnet_small_0.35_custom', classes=2,
                             norm_kwargs={'momentum': 0.77})
    bns = [b for b in _all_blocks(net) if isinstance(b, mx.gluon.nn.BatchNorm)]
    assert bns and all(b._kwargs['momentum'] == 0.77 for b in bns)


def _all_blocks(block):
    out = [block]
    for c in block._children.values():
        out += _all_blocks(c)
    return out


def test_gradients_hybridize_export(voc, tmp_path):
    net = asymmzoo.get_model('yolo3_asymmnet_small_0.35_custom', classes=['square', 'disk'])
    mx.random.seed(0)
    net.initialize(mx.init.Xavier(magnitude=2.0))
    b = _batch(net, voc[0])
    losses = _losses(net, b)
    autograd.backward(losses)
    missing = [n for n, p in net.collect_params().items()
               if p.grad_req != 'null' and not np.any(p.grad().asnumpy())]
    assert not missing, missing
    ref_losses = [l.asnumpy() for l in losses]
    _randomize_bn(net)
    x = _rand((2, 3, SIZE, SIZE), seed=5)
    net.set_nms(nms_thresh=-1, post_nms=-1)  # all raw detections: an element-wise comparison
    ref = [o.asnumpy() for o in net(x)]
    # a hybridized YOLOV3 caches one signature: hybridize again when switching train <-> inference
    net.hybridize()
    hyb = [o.asnumpy() for o in net(x)]
    for a, c in zip(ref, hyb):
        np.testing.assert_allclose(c, a, rtol=1e-4, atol=1e-3)
    net.hybridize()
    hyb_losses = [l.asnumpy() for l in _losses(net, b)]
    assert all(np.isfinite(l).all() for l in hyb_losses) and len(hyb_losses) == 4
    net.hybridize()
    net(x)
    prefix = os.path.join(str(tmp_path), 'yolo')
    net.export(prefix, epoch=0)
    sb = mx.gluon.SymbolBlock.imports(prefix + '-symbol.json', ['data'], prefix + '-0000.params')
    for a, c in zip(ref, sb(x)):
        np.testing.assert_allclose(c.asnumpy(), a, rtol=1e-4, atol=1e-3)
    assert ref_losses  # (the losses were finite above)


def test_acb_backbone_deploys_exactly():
    if not asymmzoo.is_registered('asymmnet_small_0.35_acb'):
        pytest.skip('ACB backbones are not registered in this checkout')
    from asymmzoo.deploy import converters
    net = asymmzoo.get_model('yolo3_asymmnet_small_0.35_acb_voc')
    mx.random.seed(0)
    net.initialize(mx.init.Xavier(magnitude=2.0))
    x = _rand((2, 3, SIZE, SIZE), seed=2)
    net(x)
    _randomize_bn(net, seed=3)
    kinds = tuple(converters())
    assert any(isinstance(b, kinds) for b in _all_blocks(net)), 'no ACB in the _acb head'
    n_before = asymmzoo.utils.count_params(net)
    net.set_nms(nms_thresh=-1, post_nms=-1)
    with autograd.predict_mode():
        ref = [o.asnumpy() for o in net(x)]
    asymmzoo.deploy(net, probe=x, rtol=1e-4, atol=1e-4)
    assert not any(isinstance(b, kinds) for b in _all_blocks(net))
    assert asymmzoo.utils.count_params(net) < n_before
    with autograd.predict_mode():
        out = [o.asnumpy() for o in net(x)]
    scale = max(np.abs(ref[2]).max(), 1.0)
    np.testing.assert_allclose(out[1], ref[1], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(out[2], ref[2], rtol=1e-4, atol=1e-4 * scale)
    assert (net.nms_thresh, net.post_nms) == (-1, -1)
    # with GluonCV's NMS on and the default 416x416 probe, the deploy verb's own check passes (it
    # compares every raw detection through YOLOV3.deploy_check_outputs) and NMS settings survive
    net2 = asymmzoo.get_model('yolo3_asymmnet_small_0.35_acb_voc')
    net2.initialize(mx.init.Xavier(magnitude=2.0))
    net2(x)
    _randomize_bn(net2, seed=4)
    net2.hybridize()
    asymmzoo.deploy(net2)
    assert (net2.nms_thresh, net2.post_nms) == (0.45, 100)
    assert not any(isinstance(b, kinds) for b in _all_blocks(net2))
    assert [o.shape for o in net2(x)] == [(2, 100, 1), (2, 100, 1), (2, 100, 4)]


def test_reset_class():
    net = asymmzoo.get_model('yolo3_asymmnet_small_0.35_custom', classes=['a', 'b', 'c'])
    net.initialize()
    x = _rand((1, 3, SIZE, SIZE))
    net(x)
    old = [o.prediction.weight.data().asnumpy().copy() for o in net.yolo_outputs]
    net.reset_class(['c', 'a'], reuse_weights={'c': 'c', 'a': 'a'})
    assert net.classes == ['c', 'a']
    for o, w in zip(net.yolo_outputs, old):
        new = o.prediction.weight.data().asnumpy()
        assert new.shape[0] == 3 * (5 + 2)
        for k in range(3):  # anchors: box/objectness rows and the reused class rows are copied
            np.testing.assert_array_equal(new[k * 7:k * 7 + 5], w[k * 8:k * 8 + 5])
            np.testing.assert_array_equal(new[k * 7 + 5], w[k * 8 + 5 + 2])  # c
            np.testing.assert_array_equal(new[k * 7 + 6], w[k * 8 + 5 + 0])  # a
    ids, scores, boxes = net(x)
    assert ids.asnumpy().max() <= 1
    # before initialisation too (GluonCV's needs initialised predictors)
    net = asymmzoo.get_model('yolo3_asymmnet_small_0.35_voc')
    net.reset_class(['person'])
    net.initialize()
    ids, _, _ = net(x)
    assert ids.asnumpy().max() <= 0 and len(net.classes) == 1


def test_transfer_from_store(tmp_path, monkeypatch):
    """GluonCV's ``transfer``: start from the stored VOC model, keep the shared classes' weights."""
    from asymmzoo.weights import add_to_store
    monkeypatch.setenv('MXNET_HOME', str(tmp_path))
    voc_net = asymmzoo.get_model('yolo3_asymmnet_small_0.35_voc')
    voc_net.initialize()
    voc_net(_rand((1, 3, SIZE, SIZE)))
    voc_net.save_parameters(str(tmp_path / 'v.params'))
    add_to_store(str(tmp_path / 'v.params'), 'yolo3_asymmnet_small_0.35_voc')
    net = asymmzoo.get_model('yolo3_asymmnet_small_0.35_custom', classes=['person', 'dog', 'zebra'],
                             transfer='voc')
    assert net.classes == ['person', 'dog', 'zebra']
    old = voc_net.yolo_outputs[0].prediction.weight.data().asnumpy()
    new = net.yolo_outputs[0].prediction.weight.data().asnumpy()
    np.testing.assert_array_equal(new[5 + 0], old[5 + 14])  # person
    np.testing.assert_array_equal(new[5 + 1], old[5 + 11])  # dog
    np.testing.assert_array_equal(new[:5], old[:5])  # box + objectness rows
    pa, pb = voc_net._collect_params_with_prefix(), net._collect_params_with_prefix()
    for k in [k for k in pa if k.startswith(('stages.', 'yolo_blocks.'))]:  # backbone and head
        np.testing.assert_array_equal(pb[k].data().asnumpy(), pa[k].data().asnumpy(), err_msg=k)
    assert net(_rand((1, 3, SIZE, SIZE)))[0].shape == (1, 100, 1)


def test_bad_input(voc, tmp_path):
    with pytest.raises(ValueError, match=r"unknown backbone 'asymmnet_huge_1.0'.*asymmnet_"):
        get_yolo3('asymmnet_huge_1.0', classes=['a'])
    with pytest.raises(ValueError, match='unknown model.*closest'):
        asymmzoo.get_model('yolo3_asymmnet_large_9.0_voc')
    with pytest.raises(ValueError, match='classes'):
        asymmzoo.get_model('yolo3_asymmnet_small_1.0_custom')
    non_contract = [n for n in asymmzoo.list_models('cifar_*')[:1]]
    if non_contract:
        with pytest.raises(TypeError, match='backbone contract'):
            get_yolo3(non_contract[0], classes=['a'])
    # a VOC folder with a missing annotation
    root = str(tmp_path / 'broken')
    make_voc_folder(root, splits=(('train', 3),), size=(64, 64), seed=1)
    os.remove(os.path.join(root, 'Annotations', '000001.xml'))
    with pytest.raises(DatasetError, match=r'missing.*000001\.xml'):
        VOCFolder(root, 'train')
    with pytest.raises(DatasetError, match=r'ImageSets.Main.nosuch\.txt'):
        VOCFolder(voc[0], 'nosuch')
    # a box outside the image: named, with the fix
    root = str(tmp_path / 'outside')
    make_voc_folder(root, splits=(('train', 2),), size=(64, 64), seed=2)
    xml = os.path.join(root, 'Annotations', '000000.xml')
    text = open(xml).read()
    start = text.index('<xmax>') + len('<xmax>')
    text = text[:start] + '90' + text[text.index('</xmax>'):]
    open(xml, 'w').write(text)
    with pytest.raises(DatasetError, match=r'000000\.xml.*outside the 64x64 image.*clip'):
        VOCFolder(root, 'train')
    ds = VOCFolder(root, 'train', invalid_boxes='clip')
    assert ds[0][1][:, 2].max() <= 64
    # the training script reports the same, through its own argument
    with pytest.raises(DatasetError, match='outside'):
        train_yolo3.main(['--network', 'asymmnet_small_0.35', '--dataset', 'folder', '--data-root', root,
                          '--train-split', 'train', '--val-split', '', '--save-dir', str(tmp_path / 'ck')])


def _run(voc_root, save_dir, extra):
    return train_yolo3.main([
        '--network', 'asymmnet_small_0.35', '--dataset', 'folder', '--data-root', voc_root,
        '--train-split', 'train', '--val-split', 'val', '--data-shape', str(SIZE), '-j', '0',
        '--filters', '64,32,16', '--save-dir', save_dir, '--log-interval', '0', '--seed', '1'] + extra)


def test_training_loss_falls_and_evaluates(voc, tmp_path):
    """20 real steps on the generated VOC folder: the loss falls, VOC07 mAP comes back as a number."""
    hist = _run(voc[0], str(tmp_path), ['--augment', 'none', '--optimizer', 'adam', '--lr', '0.005',
                                        '--lr-mode', 'step', '--lr-decay-epoch', '', '--warmup-epochs', '0',
                                        '--wd', '0', '--batch-size', '6', '--epochs', '20',
                                        '--val-interval', '20', '--no-hybridize'])
    losses = [h['loss'] for h in hist]
    assert len(losses) == 20
    assert np.mean(losses[-3:]) < 0.5 * np.mean(losses[:3]), losses
    assert 0.0 <= hist[-1]['map'] <= 1.0
    params = os.path.join(str(tmp_path), 'yolo3_asymmnet_small_0.35_folder-last.params')
    assert os.path.exists(params)
    # the demo draws the trained detector's boxes
    from asymmzoo.cli import main as cli
    img = os.path.join(voc[0], 'JPEGImages', '000000.jpg')
    out = os.path.join(str(tmp_path), 'det.png')
    assert cli(['detect', img, '--model', 'asymmnet_small_0.35', '--classes', 'disk,square', '--filters',
                '64,32,16', '--params', params, '--short', str(SIZE), '--thresh', '0.01', '--out', out]) == 0
    assert os.path.getsize(out) > 1000


def test_detect_demo_errors(tmp_path, capsys):
    from asymmzoo.cli import main as cli
    img = str(tmp_path / 'x.jpg')
    from PIL import Image
    Image.fromarray(np.zeros((64, 80, 3), 'uint8')).save(img)
    out = str(tmp_path / 'x.png')
    assert cli(['detect', img, '--model', 'asymmnet_small_0.35', '--untrained', '--short', '64',
                '--out', out]) == 0 and os.path.exists(out)
    assert cli(['detect', str(tmp_path / 'nope.jpg'), '--untrained']) == 2
    assert 'does not exist' in capsys.readouterr().err
    assert cli(['detect', img, '--model', 'asymmnet_small_0.35']) == 2
    assert '--params' in capsys.readouterr().err
    assert cli(['detect', img, '--model', 'yolo3_asymmnet_huge_1.0_voc', '--untrained']) == 2
    assert 'closest names' in capsys.readouterr().err


def test_default_pipeline_mixup_checkpoint_resume(voc, tmp_path):
    """GluonCV's augmenting transform with mixup and random shapes, then a resumed run."""
    d = str(tmp_path)
    common = ['--batch-size', '3', '--mixup', '--no-mixup-epochs', '1', '--random-shape',
              '--warmup-epochs', '1', '--save-interval', '1']
    h1 = _run(voc[0], d, common + ['--epochs', '1'])
    assert len(h1) == 1 and np.isfinite(h1[0]['loss']) and 'map' in h1[0]
    prefix = os.path.join(d, 'yolo3_asymmnet_small_0.35_folder')
    for suffix in ('-last.params', '-last.states', '-last.json', '-0000.params'):
        assert os.path.exists(prefix + suffix), suffix
    assert not glob.glob(os.path.join(d, '*tmp*'))  # atomic writes leave no temporaries
    h2 = _run(voc[0], d, common + ['--epochs', '2', '--resume'])
    assert len(h2) == 2 and h2[0] == h1[0] and h2[1]['epoch'] == 1
    with pytest.raises(ValueError, match='written for --network'):
        train_yolo3.main(['--network', 'asymmnet_large_0.35', '--dataset', 'folder', '--data-root', voc[0],
                          '--train-split', 'train', '--val-split', 'val', '--save-dir', d,
                          '--save-prefix', 'yolo3_asymmnet_small_0.35_folder', '--resume', '-j', '0'])


def test_resume_refuses_a_changed_model_applies_a_changed_lr(voc, tmp_path, caplog):
    """On resume, other --filters would not fit the saved weights: refused before loading, with the
    saved and the given value; a changed --lr is applied (the optimizer's schedule is rebuilt at the
    saved step count) and logged; a finished run is refused unless --epochs grows."""
    import logging
    d = str(tmp_path)
    common = ['--batch-size', '3', '--val-split', '', '--no-hybridize', '--warmup-epochs', '0',
              '--lr-mode', 'step', '--lr-decay-epoch', '']
    _run(voc[0], d, common + ['--epochs', '2', '--stop-epoch', '1'])
    with pytest.raises(ValueError, match=r'trained with --filters 64,32,16; resuming with --filters 32,16,8'):
        train_yolo3.main(['--network', 'asymmnet_small_0.35', '--dataset', 'folder', '--data-root', voc[0],
                          '--train-split', 'train', '--val-split', '', '--data-shape', str(SIZE), '-j', '0',
                          '--filters', '32,16,8', '--save-dir', d, '--log-interval', '0', '--seed', '1',
                          '--resume', '--epochs', '2'] + common)
    seen = []
    orig = train_yolo3.train

    def spy(net, train_data, val_data, eval_metric, ctx, args, trainer=None, **kw):
        seen.append(trainer.learning_rate)
        return orig(net, train_data, val_data, eval_metric, ctx, args, trainer=trainer, **kw)
    train_yolo3.train = spy
    try:
        with caplog.at_level(logging.INFO):
            hist = _run(voc[0], d, common + ['--epochs', '2', '--resume', '--lr', '0.0005'])
    finally:
        train_yolo3.train = orig
    assert seen == [0.0005] and len(hist) == 2
    assert 'resume: --lr 0.0005 (was 0.001)' in caplog.text
    with pytest.raises(ValueError, match='finished all 2 epochs of --epochs 2'):
        _run(voc[0], d, common + ['--epochs', '2', '--resume'])


def test_interrupted_and_resumed_equals_uninterrupted(voc, tmp_path):
    """Exact resume: 2 epochs straight == 1 epoch, stop, --resume (augmentation + mixup on)."""
    common = ['--batch-size', '3', '--mixup', '--no-mixup-epochs', '1', '--warmup-epochs', '1',
              '--epochs', '2', '--val-split', '', '--no-hybridize']
    a, b = str(tmp_path / 'a'), str(tmp_path / 'b')
    ha = _run(voc[0], a, common)
    hb1 = _run(voc[0], b, common + ['--stop-epoch', '1'])
    assert len(hb1) == 1
    hb = _run(voc[0], b, common + ['--resume'])
    drop_time = [{k: v for k, v in h.items() if k != 'time'} for h in ha], \
        [{k: v for k, v in h.items() if k != 'time'} for h in hb]
    assert drop_time[0] == drop_time[1]
    pa = mx.nd.load(os.path.join(a, 'yolo3_asymmnet_small_0.35_folder-last.params'))
    pb = mx.nd.load(os.path.join(b, 'yolo3_asymmnet_small_0.35_folder-last.params'))
    assert sorted(pa) == sorted(pb)
    for k in pa:
        np.testing.assert_array_equal(pa[k].asnumpy(), pb[k].asnumpy(), err_msg=k)


def test_gluoncv_voc_and_coco_dataset_classes(tmp_path):
    """--dataset voc (VOCDetection: VOC2007 + VOC2012 trainval, 2007 test) and --dataset coco
    (COCODetection + COCO mAP through pycocotools) on generated folders in the real layouts."""
    voc_root = str(tmp_path / 'voc')
    make_voc_folder(os.path.join(voc_root, 'VOC2007'), splits=(('trainval', 3), ('test', 2)), size=(96, 96),
                    seed=3, classes=('tvmonitor', 'bottle'))
    make_voc_folder(os.path.join(voc_root, 'VOC2012'), splits=(('trainval', 3),), size=(96, 96), seed=4,
                    classes=('tvmonitor', 'bottle'))
    common = ['--network', 'asymmnet_small_0.35', '--data-shape', '96', '--batch-size', '3', '-j', '0',
              '--epochs', '1', '--filters', '64,32,16', '--log-interval', '0', '--no-hybridize']
    h = train_yolo3.main(common + ['--dataset', 'voc', '--data-root', voc_root, '--save-dir',
                                   str(tmp_path / 'ck_voc')])
    assert len(h) == 1 and np.isfinite(h[0]['loss']) and 0.0 <= h[0]['map'] <= 1.0
    coco_root = str(tmp_path / 'coco')
    make_coco_detection(coco_root, splits=(('train2017', 3), ('val2017', 2)), size=(96, 96), seed=5)
    h = train_yolo3.main(common + ['--dataset', 'coco', '--data-root', coco_root, '--save-dir',
                                   str(tmp_path / 'ck_coco')])
    assert len(h) == 1 and np.isfinite(h[0]['loss']) and 0.0 <= h[0]['map'] <= 1.0


@pytest.mark.slow
def test_overfit_reaches_nontrivial_map(voc, tmp_path):
    hist = _run(voc[0], str(tmp_path), ['--augment', 'none', '--optimizer', 'adam', '--lr', '0.005',
                                        '--lr-mode', 'step', '--lr-decay-epoch', '45', '--warmup-epochs', '0',
                                        '--wd', '0', '--batch-size', '6', '--epochs', '60',
                                        '--val-interval', '60'])
    print('overfit mAP', hist[-1]['map'])
    assert hist[-1]['map'] > 0.3, hist[-1]


def test_counts_match_paper_table10():
    """The paper's Params column (its k-weights-per-kxk counter) is reproduced to the printed digit."""
    for name, paper in (('yolo3_asymmnet_small_1.0_voc', 9.33), ('yolo3_mobilenetv3_small_1.0_voc', 9.16),
                        ('yolo3_asymmnet_large_1.0_voc', 11.97),
                        ('yolo3_mobilenetv3_large_1.0_voc', 11.39)):
        net = asymmzoo.get_model(name)
        net.initialize()
        assert round(paper_count_params(net, (1, 3, 416, 416)) / 1e6, 2) == paper, name


def test_heads_need_no_downstream_package():
    """The heads live in the library: with no ``downstream`` package importable, every head is still
    registered and builds (the pipelines import asymmzoo, never the other way)."""
    import subprocess
    import sys
    code = ("import sys; sys.modules['downstream'] = None\n"
            "import asymmzoo\n"
            "assert len(asymmzoo.list_models('yolo3_*')) == 120\n"
            "net = asymmzoo.get_model('yolo3_asymmnet_small_0.35_voc')\n"
            "assert type(net).__module__ == 'asymmzoo.heads.yolo3'\n")
    subprocess.run([sys.executable, '-c', code], check=True, cwd='/')
