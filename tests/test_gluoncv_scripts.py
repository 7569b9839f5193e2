"""GluonCV's own training scripts build and train our models: each test replays what one script does
(its ``get_model`` call with the script's exact keyword arguments, its initialisation, the GluonCV
library transforms, losses, metrics and trainer of one training step) on tiny data made here.

The scripts (GluonCV's repository ``scripts/``) are not in its wheel, so the library calls they make
are called directly; the lines they replay are cited per test. docs/gluoncv-scripts.md gives the
commands.
"""
import warnings

import mxnet as mx
import numpy as np
import pytest
from mxnet import autograd, gluon

import asymmzoo
from gluoncv import model_zoo
from asymmzoo.weights import add_to_store

CTX = [mx.cpu()]          # the scripts pass a list of devices


def _store_random_weights(name, tmp_path, **kw):
    """Random weights of ``name`` put in the store (as `asymmzoo store add` does): {key: array}."""
    net = asymmzoo.get_model(name, **kw)
    mx.random.seed(7)
    net.initialize(mx.init.MSRAPrelu())
    with autograd.predict_mode():
        net(mx.nd.zeros((1, 3, 64, 64)))
    path = str(tmp_path / ('%s.params' % name))
    net.save_parameters(path)
    add_to_store(path, name)
    return {k: v.data().asnumpy() for k, v in net._collect_params_with_prefix().items()}


def _assert_loaded(params, stored, prefix=''):
    """Every stored backbone array is in ``params`` (structural names, under ``prefix``), equal."""
    got = {k: v for k, v in params.items()}
    hits = 0
    for k, v in stored.items():
        if k.startswith('output.'):
            continue
        key = prefix + k
        assert key in got, (key, sorted(got)[:5])
        np.testing.assert_array_equal(got[key].data().asnumpy(), v)
        hits += 1
    assert hits > 50


def _all_initialised(net):
    missing = [n for n, p in net.collect_params().items()   # deferred (shape known at first call)
               if p._data is None and not p._deferred_init]
    assert not missing, missing[:5]


def _classification_steps(net, trainer, x, y, steps):
    """The scripts' step: SoftmaxCrossEntropyLoss, backward, trainer.step, Accuracy. Returns the
    last output and the loss of every step."""
    L = gluon.loss.SoftmaxCrossEntropyLoss()
    metric = mx.metric.Accuracy()
    losses = []
    for _ in range(steps):
        with autograd.record():
            out = net(x)
            loss = L(out, y)
        loss.backward()
        trainer.step(x.shape[0] // getattr(net, 'frames_per_video', 1))
        metric.update([y], [out])
        losses.append(float(loss.mean().asscalar()))
    return out, losses


# ---------------------------------------------------------------------------------------------
# scripts/classification/imagenet/train_imagenet.py

def test_train_imagenet_script_step(tmp_path):
    """kwargs = {'ctx': context, 'pretrained': opt.use_pretrained, 'classes': 1000} (+ last_gamma),
    net.cast, hybridize, initialize(MSRAPrelu, ctx), NAG, SoftmaxCrossEntropyLoss, Accuracy."""
    name = 'asymmnet_small_0.35'
    stored = _store_random_weights(name, tmp_path)
    kwargs = {'ctx': CTX, 'pretrained': True, 'classes': 1000, 'last_gamma': True}
    net = model_zoo.get_model(name, **kwargs)
    net.cast('float32')
    _assert_loaded(net._collect_params_with_prefix(), stored)
    net.hybridize(static_alloc=True, static_shape=True)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')      # "already initialized": the script calls it anyway
        net.initialize(mx.init.MSRAPrelu(), ctx=CTX)
    _assert_loaded(net._collect_params_with_prefix(), stored)   # the init did not overwrite them
    trainer = gluon.Trainer(net.collect_params(), 'nag', {'learning_rate': 0.05, 'wd': 1e-4,
                                                          'momentum': 0.9})
    from mxnet.gluon.data.vision import transforms
    tf = transforms.Compose([transforms.RandomResizedCrop(64), transforms.RandomFlipLeftRight(),
                             transforms.ToTensor(),
                             transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])
    rng = np.random.RandomState(0)
    imgs = [mx.nd.array(rng.randint(0, 255, (80, 80, 3)), dtype='uint8') for _ in range(8)]
    x = mx.nd.stack(*[tf(im) for im in imgs])
    y = mx.nd.array(rng.randint(0, 1000, 8))
    out, losses = _classification_steps(net, trainer, x, y, 4)
    assert np.isfinite(losses).all() and losses[-1] < losses[0], losses
    # last_gamma on a fresh network: the residual blocks' last BN gamma starts at zero
    fresh = model_zoo.get_model(name, ctx=CTX, classes=1000, last_gamma=True)
    fresh.initialize(mx.init.MSRAPrelu(), ctx=CTX)
    gammas = {b.use_residual: float(np.abs(b.conv2.bn.gamma.data().asnumpy()).max())
              for b in fresh.blocks}
    assert gammas == {True: 0.0, False: 1.0}


# ---------------------------------------------------------------------------------------------
# scripts/detection/yolo/train_yolo3.py

def test_train_yolo3_script_step(tmp_path):
    """net = get_model('yolo3_' + network + '_voc', pretrained_base=True); net.initialize();
    YOLO3DefaultTrainTransform(w, h, net); reset_ctx; hybridize; the four losses; then validation
    with set_nms and VOC07MApMetric."""
    from gluoncv.data.batchify import Tuple, Stack, Pad
    from gluoncv.data.transforms.presets.yolo import YOLO3DefaultTrainTransform, \
        YOLO3DefaultValTransform
    from gluoncv.utils.metrics.voc_detection import VOC07MApMetric
    backbone = 'asymmnet_small_0.35'
    stored = _store_random_weights(backbone, tmp_path)
    net = model_zoo.get_model('yolo3_%s_voc' % backbone, pretrained_base=True)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        net.initialize()
    # the backbone's weights came from the store (the stages hold the backbone's features blocks)
    first = [p for k, p in net._collect_params_with_prefix().items() if k.endswith('weight')][0]
    np.testing.assert_array_equal(first.data().asnumpy(), stored['features.0.weight'])
    size = 128
    tf = YOLO3DefaultTrainTransform(size, size, net, mixup=False)
    rng = np.random.RandomState(0)
    img = mx.nd.array(rng.randint(0, 255, (150, 170, 3)), dtype='uint8')
    label = np.array([[10, 20, 90, 110, 3, 0], [40, 30, 160, 140, 11, 0]], dtype=np.float32)
    batch = Tuple(*([Stack() for _ in range(6)] + [Pad(axis=0, pad_val=-1)]))(
        [tf(img, label) for _ in range(2)])
    net.collect_params().reset_ctx(CTX)
    net.hybridize()
    trainer = gluon.Trainer(net.collect_params(), 'sgd', {'learning_rate': 0.001, 'wd': 5e-4,
                                                          'momentum': 0.9})
    metrics = [mx.metric.Loss(n) for n in ('ObjLoss', 'BoxCenterLoss', 'BoxScaleLoss', 'ClassLoss')]
    # the script's gluon.utils.split_and_load(batch[i], ctx_list=ctx)
    data, fixed_targets, gt_boxes = [[gluon.utils.split_and_load(b, ctx_list=CTX)[0] for b in part]
                                     for part in ([batch[0]], batch[1:6], [batch[6]])]
    data, gt_boxes = data[0], gt_boxes[0]
    with autograd.record():
        obj, center, scale, cls = net(data, gt_boxes, *fixed_targets)
        autograd.backward([obj.sum(), center.sum(), scale.sum(), cls.sum()])
    trainer.step(2)
    for m, lo in zip(metrics, (obj, center, scale, cls)):
        m.update(0, lo)
        assert np.isfinite(m.get()[1])
    # validation, as the script's validate()
    net.set_nms(nms_thresh=0.45, nms_topk=400)
    net.hybridize()
    val_x, _ = YOLO3DefaultValTransform(size, size)(img, label)
    ids, scores, bboxes = net(val_x.expand_dims(0))
    metric = VOC07MApMetric(iou_thresh=0.5, class_names=net.classes)
    metric.update(bboxes, ids, scores, mx.nd.array(label[None, :, :4]), mx.nd.array(label[None, :, 4:5]))
    assert len(metric.get()[0]) == len(net.classes) + 1


# ---------------------------------------------------------------------------------------------
# scripts/pose/simple_pose/train_simple_pose.py

@pytest.mark.parametrize('model', ['simple_pose_asymmnet_small_0.35', 'mobile_pose_asymmnet_small_0.35',
                                   'mobile_pose_mobilenetv3_small_0.35'])
def test_train_simple_pose_script_step(model, tmp_path):
    """kwargs = {'ctx': context, 'num_joints': 17, 'pretrained': False, 'pretrained_base': True,
    'pretrained_ctx': context}; with --use-pretrained-base only the head is initialised
    (deconv_layers / final_layer, or upsampling); SimplePoseDefaultTrainTransform, L2Loss, adam,
    HeatmapAccuracy."""
    from gluoncv.data.transforms.presets.simple_pose import SimplePoseDefaultTrainTransform
    from gluoncv.utils.metrics.heatmap_accuracy import HeatmapAccuracy
    backbone = model.split('_pose_', 1)[1]
    stored = _store_random_weights(backbone, tmp_path)
    kwargs = {'ctx': CTX, 'num_joints': 17, 'pretrained': False, 'pretrained_base': True,
              'pretrained_ctx': CTX}
    net = model_zoo.get_model(model, **kwargs)
    net.cast('float32')
    if model.startswith('simple'):
        net.deconv_layers.initialize(ctx=CTX)
        net.final_layer.initialize(ctx=CTX)
    else:
        net.upsampling.initialize(ctx=CTX)
    _all_initialised(net)                     # the backbone came loaded, nothing is left over
    # the backbone's features sit one level deeper in MobilePose ('0.' + key)
    feats = net.features._collect_params_with_prefix()
    depth = 1 if model.startswith('mobile') else 0
    loaded = {k.split('.', depth)[-1]: p for k, p in feats.items()}
    backbone_keys = {k.split('.', 1)[1]: v for k, v in stored.items() if k.startswith('features.')}
    assert set(loaded) <= set(backbone_keys) and len(loaded) > 100
    for k, p in loaded.items():
        np.testing.assert_array_equal(p.data().asnumpy(), backbone_keys[k], err_msg=k)
    net.hybridize(static_alloc=True, static_shape=True)
    h, w = 128, 96
    joint_pairs = [[1, 2], [3, 4], [5, 6], [7, 8], [9, 10], [11, 12], [13, 14], [15, 16]]
    tf = SimplePoseDefaultTrainTransform(num_joints=17, joint_pairs=joint_pairs, image_size=(h, w),
                                         heatmap_size=(h // 4, w // 4), sigma=2, scale_factor=0.3,
                                         rotation_factor=40, random_flip=True)
    rng = np.random.RandomState(0)
    img = mx.nd.array(rng.randint(0, 255, (200, 160, 3)), dtype='uint8')
    joints = np.zeros((17, 3, 2), np.float32)
    joints[:, 0, 0] = rng.uniform(40, 120, 17)
    joints[:, 1, 0] = rng.uniform(40, 160, 17)
    joints[:, :2, 1] = 1
    samples = [tf(img, {'bbox': (30, 30, 130, 170), 'joints_3d': joints}, 1) for _ in range(2)]
    x = mx.nd.stack(*[s[0] for s in samples])
    target = mx.nd.stack(*[mx.nd.array(s[1]) for s in samples])
    weight = mx.nd.stack(*[mx.nd.array(s[2]) for s in samples])
    trainer = gluon.Trainer(net.collect_params(), 'adam', {'learning_rate': 1e-3, 'wd': 1e-4})
    L = gluon.loss.L2Loss()
    metric = HeatmapAccuracy()
    with autograd.record():
        out = net(x)
        loss = L(out, target, weight)
    loss.backward()
    trainer.step(2)
    assert out.shape == (2, 17, h // 4, w // 4)
    assert np.isfinite(loss.asnumpy()).all()
    metric.update(target, out)


# ---------------------------------------------------------------------------------------------
# scripts/action-recognition/train_recognizer.py

def test_train_recognizer_script_step(tmp_path):
    """net = get_model(name=model_name, nclass=classes, pretrained=..., use_tsn=..., num_segments=...,
    partial_bn=..., bn_frozen=...); net.cast; reset_ctx (no initialize: the builder returns it
    initialised); VideoGroupTrainTransform; (B, S, 3, H, W) reshaped to (B*S, 3, H, W); SGD."""
    from gluoncv.data.transforms import video
    backbone = 'asymmnet_small_0.35'
    stored = _store_random_weights(backbone, tmp_path)
    net = model_zoo.get_model(name='tsn_%s_hmdb51' % backbone, nclass=5, pretrained=False,
                              use_tsn=True, num_segments=2, partial_bn=True, bn_frozen=False,
                              pretrained_base=True)
    net.cast('float32')
    net.collect_params().reset_ctx(CTX)
    _all_initialised(net)
    _assert_loaded(net._collect_params_with_prefix(), {k: v for k, v in stored.items()
                                                       if k.startswith(('features.', 'head.'))})
    net.hybridize(static_alloc=True, static_shape=True)
    tf = video.VideoGroupTrainTransform(size=(64, 64), scale_ratios=[1.0, 0.875, 0.75, 0.66],
                                        mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])
    rng = np.random.RandomState(0)
    clips = []
    for _ in range(2):
        frames = [rng.randint(0, 255, (80, 96, 3)).astype(np.uint8) for _ in range(2)]
        clips.append(np.stack(tf(frames)))           # (S, 3, 64, 64)
    x = mx.nd.array(np.stack(clips))                  # (B, S, 3, H, W)
    x = x.reshape((-1,) + x.shape[2:])
    y = mx.nd.array([1, 3])
    trainer = gluon.Trainer(net.collect_params(), 'sgd', {'learning_rate': 0.01, 'momentum': 0.9,
                                                          'wd': 1e-4})
    out, losses = _classification_steps(net, trainer, x, y, 3)
    assert out.shape == (2, 5) and losses[-1] < losses[0], losses


def test_action_builder_keywords():
    net = asymmzoo.get_model('tsn_asymmnet_small_0.35_hmdb51', num_segments=2, feat_ext=True,
                             bn_frozen=True)
    out = net(mx.nd.random.uniform(shape=(4, 3, 64, 64)))
    assert out.shape == (2, net.feat_dim)              # features, not scores
    assert asymmzoo.get_model('tsn_asymmnet_small_0.35_hmdb51', nclass=7).classes == 7
    with pytest.raises(ValueError, match='disagree'):
        asymmzoo.get_model('tsn_asymmnet_small_0.35_hmdb51', nclass=7, classes=8)
    with pytest.raises(ValueError, match='use_tsn=False'):
        asymmzoo.get_model('tsn_asymmnet_small_0.35_hmdb51', use_tsn=False)


def test_a_keyword_a_model_cannot_take_is_refused_by_name():
    with pytest.raises(TypeError, match=r"yolo3_asymmnet_small_0.35_voc does not take .*'last_gamma'"):
        asymmzoo.get_model('yolo3_asymmnet_small_0.35_voc', last_gamma=True)
    with pytest.raises(TypeError, match='model name must be a str'):
        asymmzoo.get_model(None)
