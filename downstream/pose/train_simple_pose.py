"""Train SimplePose on a zoo backbone, in the style of GluonCV's
``scripts/pose/simple_pose/train_simple_pose.py``.

Data: GluonCV's :class:`~gluoncv.data.COCOKeyPoints` under ``--data-root``
(``annotations/{split}.json`` + the images its ``coco_url`` names: ``{root}/{train2017|val2017}/...``),
so the real COCO folder and any folder in COCO keypoint format work. Pipeline:
SimplePoseDefaultTrainTransform (Gaussian heatmap targets, random scale / rotation / flip),
weighted L2 heatmap loss, Adam with (optional) warmup then step / cosine decay, and COCO keypoint
OKS AP (pycocotools, through COCOKeyPointsMetric) on SimplePoseDefaultValTransform crops decoded
with GluonCV's ``get_final_preds`` (optional flip test).

Checkpoints and ``--resume`` as in ``downstream/detection/train_yolo3.py`` (atomic writes; every
epoch reseeds with ``seed + epoch``).

Example::

    python -m downstream.pose.train_simple_pose --network asymmnet_small_1.0 --data-root ~/coco \\
        --input-size 256,192 --epochs 140 --lr 1e-3 --lr-decay-epoch 90,120
"""
import argparse
import logging
import os
import sys
import time
import warnings

import mxnet as mx
from mxnet import autograd, gluon

from gluoncv.data import COCOKeyPoints
from gluoncv.data.transforms.presets.simple_pose import (SimplePoseDefaultTrainTransform,
                                                         SimplePoseDefaultValTransform)
from gluoncv.data.transforms.pose import get_final_preds, flip_heatmap
from gluoncv.utils.metrics.coco_keypoints import COCOKeyPointsMetric

from asymmzoo.registry import get_model
from asymmzoo.data.workers import data_loader   # a Ctrl-C while it forks its workers is not lost
from asymmzoo.utils import argtypes as A
from asymmzoo.train.engine import (seed_all, save_params, Checkpoint, make_trainer_from_args, contexts,
                             run_cli, settings_of, check_resume, StepLog)

__all__ = ['parse_args', 'get_dataset', 'get_dataloader', 'validate', 'train', 'main']

logger = logging.getLogger('train_simple_pose')


def parse_args(argv=None):
    p = argparse.ArgumentParser(description='Train SimplePose on an asymmzoo backbone.')
    p.add_argument('--network', default='asymmnet_small_1.0', help='backbone name')
    p.add_argument('--head', default='simple_pose', choices=['simple_pose', 'mobile_pose'],
                   help='simple_pose (3 deconvs) or GluonCV\'s mobile_pose (DUC) head')
    p.add_argument('--deconv-filters', type=A.width_list, default=None,
                   help='simple_pose (default 256,256,256): widths of the three deconvolutions (the paper setting: 256)')
    p.add_argument('--data-root', default=os.path.join('~', '.mxnet', 'datasets', 'coco'))
    p.add_argument('--train-split', default='person_keypoints_train2017')
    p.add_argument('--val-split', default='person_keypoints_val2017', help="'' = no validation")
    p.add_argument('--input-size', default='256,192', help='height,width (multiples of 32)')
    p.add_argument('--sigma', type=A.positive_float, default=2.0, help='Gaussian sigma of the heatmap targets')
    p.add_argument('--scale-factor', type=A.non_negative_float, default=0.30)
    p.add_argument('--rotation-factor', type=A.non_negative_float, default=40)
    p.add_argument('--no-flip', action='store_true', help='no random horizontal flip')
    p.add_argument('--flip-test', action='store_true', help='average with the flipped image at validation')
    p.add_argument('--batch-size', type=A.positive_int, default=32)
    p.add_argument('--num-workers', '-j', type=A.non_negative_int, default=4)
    p.add_argument('--gpus', default='')
    p.add_argument('--epochs', type=A.positive_int, default=140)
    p.add_argument('--optimizer', default='adam', choices=['adam', 'sgd', 'nag'])
    p.add_argument('--lr', type=A.positive_float, default=1e-3)
    p.add_argument('--lr-mode', default='step', choices=['step', 'cosine', 'poly', 'linear'])
    p.add_argument('--lr-decay', type=A.open_fraction, default=0.1)
    p.add_argument('--lr-decay-epoch', type=A.epoch_list, default='90,120')
    p.add_argument('--warmup-epochs', type=A.non_negative_int, default=0)
    p.add_argument('--warmup-lr', type=A.non_negative_float, default=0.0)
    p.add_argument('--wd', type=A.non_negative_float, default=0.0)
    p.add_argument('--momentum', type=A.fraction, default=0.9)
    p.add_argument('--pretrained-base', default='', help='path to backbone .params (optional)')
    p.add_argument('--save-dir', default='simple_pose_checkpoints')
    p.add_argument('--save-prefix', default=None)
    p.add_argument('--save-interval', type=A.non_negative_int, default=10)
    p.add_argument('--val-interval', type=A.positive_int, default=10)
    p.add_argument('--resume', action='store_true')
    p.add_argument('--stop-epoch', type=A.non_negative_int, default=0,
                   help='stop after this many epochs as if interrupted (the schedule still spans --epochs)')
    p.add_argument('--seed', type=int, default=233)
    p.add_argument('--log-interval', type=A.non_negative_int, default=100)
    p.add_argument('--hybridize', action='store_true', default=True)
    p.add_argument('--no-hybridize', dest='hybridize', action='store_false')
    args = p.parse_args(argv)
    if args.deconv_filters is not None and args.head == 'mobile_pose':
        p.error("--deconv-filters sets the simple_pose head's deconvolutions; --head mobile_pose has "
                "GluonCV's own upsampling (DUC) head: drop --deconv-filters, or use --head simple_pose")
    if args.deconv_filters is None:
        args.deconv_filters = '256,256,256'
    try:
        args.input_size = tuple(int(v) for v in args.input_size.split(','))
        assert len(args.input_size) == 2
    except (ValueError, AssertionError):
        p.error('--input-size must be height,width, got %r' % args.input_size)
    if any(v % 32 for v in args.input_size):
        p.error('--input-size values must be multiples of 32, got %s' % (args.input_size,))
    return args


def check_keypoint_json(path, need_people=True):
    """Check a COCO keypoint annotation file before pycocotools reads it (it fails there with a bare
    KeyError / IndexError / JSONDecodeError): valid JSON with ``images``, ``annotations`` and a
    ``categories`` entry with ``keypoints``; every annotation with ``image_id``, a 4-number ``bbox``
    and 3 numbers per keypoint; ``need_people``: at least one annotated person. Returns the number
    of annotations."""
    import json
    try:
        with open(path) as f:
            d = json.load(f)
    except ValueError as e:
        raise ValueError("%s is not valid JSON (%s): a truncated or edited file?" % (path, e))
    if not isinstance(d, dict):
        raise ValueError("%s is not a COCO annotation file (a JSON object with images, annotations, "
                         "categories)" % path)
    for key in ('images', 'annotations', 'categories'):
        if not isinstance(d.get(key), list):
            raise ValueError("%s has no %r list; a COCO keypoint file has images, annotations and "
                             "categories" % (path, key))
    cats = [c for c in d['categories'] if isinstance(c, dict) and isinstance(c.get('keypoints'), list)]
    if not cats:
        raise ValueError("%s: no category lists its 'keypoints' (the person category names the 17 "
                         "COCO joints)" % path)
    k = len(cats[0]['keypoints'])
    for i, a in enumerate(d['annotations']):
        where = "%s: annotation %d (id %s)" % (path, i, a.get('id') if isinstance(a, dict) else '?')
        if not isinstance(a, dict) or 'image_id' not in a:
            raise ValueError("%s has no image_id" % where)
        bbox = a.get('bbox')
        if not (isinstance(bbox, list) and len(bbox) == 4):
            raise ValueError("%s: bbox must be [x, y, width, height], got %r" % (where, bbox))
        kps = a.get('keypoints')
        if not (isinstance(kps, list) and len(kps) == 3 * k):
            raise ValueError("%s: keypoints must be %d numbers (x, y, visibility for each of the %d "
                             "joints), got %s" % (where, 3 * k, k,
                                                  len(kps) if isinstance(kps, list) else repr(kps)))
    for i, a in enumerate(d['annotations']):
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                   for v in a['bbox'] + a['keypoints']):
            raise ValueError("%s: annotation %d (id %s) has a bbox or keypoint value that is not a "
                             "number" % (path, i, a.get('id')))
    if need_people and not any(max(a['keypoints'][2::3] or [0]) > 0 for a in d['annotations']):
        raise ValueError("%s has no annotated person (no keypoint with visibility > 0): nothing to "
                         "train on" % path)
    return len(d['annotations'])


def get_dataset(args):
    """(train COCOKeyPoints, val COCOKeyPoints or None)."""
    root = os.path.expanduser(args.data_root)
    for split in [args.train_split] + ([args.val_split] if args.val_split else []):
        path = os.path.join(root, 'annotations', split + '.json')
        if not os.path.isfile(path):
            raise FileNotFoundError("%s is missing: COCO keypoint data lives in <root>/annotations/"
                                    "<split>.json with the images under <root>/<train2017|val2017>/"
                                    % path)
        check_keypoint_json(path, need_people=split == args.train_split)
    train = COCOKeyPoints(root, splits=(args.train_split,), skip_empty=True)
    val = COCOKeyPoints(root, splits=(args.val_split,), skip_empty=False) if args.val_split else None
    return train, val


def get_dataloader(train_dataset, val_dataset, args):
    h, w = args.input_size
    heatmap = (h // 4, w // 4)
    tt = SimplePoseDefaultTrainTransform(
        num_joints=train_dataset.num_joints, joint_pairs=train_dataset.joint_pairs,
        image_size=(h, w), heatmap_size=heatmap, sigma=args.sigma, scale_factor=args.scale_factor,
        rotation_factor=args.rotation_factor, random_flip=not args.no_flip)
    train_loader = data_loader(train_dataset.transform(tt), args.batch_size, shuffle=True,
                                         last_batch='rollover', num_workers=args.num_workers)
    val_loader = None
    if val_dataset is not None:
        vt = SimplePoseDefaultValTransform(num_joints=val_dataset.num_joints,
                                           joint_pairs=val_dataset.joint_pairs, image_size=(h, w))
        val_loader = data_loader(val_dataset.transform(vt), args.batch_size, shuffle=False,
                                           last_batch='keep', num_workers=args.num_workers)
    return train_loader, val_loader


def validate(net, val_data, val_dataset, ctx, save_prefix, input_size, flip_test=False):
    """OKS AP on ``val_data`` through COCOKeyPointsMetric; returns ``(names->values dict, AP)``."""
    metric = COCOKeyPointsMetric(val_dataset, save_prefix, use_time=False, cleanup=True,
                                 in_vis_thresh=0, data_shape=tuple(input_size))
    for batch in val_data:
        data = gluon.utils.split_and_load(batch[0], ctx_list=ctx, batch_axis=0, even_split=False)
        scale, center, score, imgid = batch[1], batch[2], batch[3], batch[4]
        with autograd.predict_mode():
            outputs = [net(x) for x in data]
            if flip_test:
                flipped = [net(x.flip(axis=3)) for x in data]
                outputs = [(o + flip_heatmap(f, val_dataset.joint_pairs, shift=True)) / 2
                           for o, f in zip(outputs, flipped)]
        heat = mx.nd.concat(*[o.as_in_context(mx.cpu()) for o in outputs], dim=0)
        preds, maxvals = get_final_preds(heat, center.asnumpy(), scale.asnumpy())
        metric.update(preds, maxvals, score, imgid)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        names_values, ap = metric.get()
    return dict(names_values), float(ap)


def _heatmap_loss():
    return gluon.loss.L2Loss()


def train(net, train_data, val_data, val_dataset, ctx, args, start_epoch=0, trainer=None, best_ap=0.0,
          history=None):
    history = list(history or [])
    ckpt = Checkpoint(args.save_dir, args.save_prefix)
    net.collect_params().reset_ctx(ctx)
    L = _heatmap_loss()
    if trainer is None:
        trainer = make_trainer_from_args(net, args, len(train_data))
    # the NaN stop; the loop logs itself, with the metric
    steps = StepLog(logger, 'lower --lr or raise --warmup-epochs (a run with a checkpoint continues '
                            'with --resume)')
    for epoch in range(start_epoch, args.epochs):
        seed_all(args.seed + epoch)
        loss_metric = mx.metric.Loss('heatmap_l2')
        tic = time.time()
        if args.hybridize:
            net.hybridize()
        for i, batch in enumerate(train_data):
            data = gluon.utils.split_and_load(batch[0], ctx_list=ctx, batch_axis=0)
            label = gluon.utils.split_and_load(batch[1], ctx_list=ctx, batch_axis=0)
            weight = gluon.utils.split_and_load(batch[2], ctx_list=ctx, batch_axis=0)
            with autograd.record():
                outputs = [net(x) for x in data]
                losses = [L(yhat, y, w) for yhat, y, w in zip(outputs, label, weight)]
            autograd.backward(losses)
            trainer.step(batch[0].shape[0])
            steps.after_step(losses, epoch, trainer.learning_rate)
            loss_metric.update(0, losses)
            if args.log_interval and (i + 1) % args.log_interval == 0:
                logger.info('[Epoch %d][Batch %d] lr=%.2e loss=%.6f', epoch, i, trainer.learning_rate,
                            loss_metric.get()[1])
        row = {'epoch': epoch, 'time': time.time() - tic, 'lr': trainer.learning_rate,
               'loss': float(loss_metric.get()[1])}
        if val_data is not None and ((epoch + 1) % args.val_interval == 0 or epoch + 1 == args.epochs):
            stats, ap = validate(net, val_data, val_dataset, ctx,
                                 os.path.join(args.save_dir, args.save_prefix + '-val'), args.input_size,
                                 args.flip_test)
            row['ap'] = ap
            row['ap50'] = float(stats.get('Ap .5', 0.0))
            if ap > best_ap:
                best_ap = ap
                save_params(net, ckpt.path('best'))
        logger.info('[Epoch %d] %s', epoch, ', '.join('%s=%.4g' % kv for kv in row.items()))
        history.append(row)
        if args.save_interval and (epoch + 1) % args.save_interval == 0:
            save_params(net, ckpt.path('%04d' % epoch))
        ckpt.save(net, trainer, {'epoch': epoch, 'best_ap': best_ap, 'history': history,
                                 'network': args.network, 'head': args.head,
                                 'input_size': list(args.input_size), 'settings': settings_of(args)})
        if args.stop_epoch and epoch + 1 >= args.stop_epoch:
            logger.info('stopping after epoch %d (--stop-epoch); continue with --resume', epoch)
            break
    return history



def main(argv=None):
    """Run a training job; returns the per-epoch history."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format='%(asctime)s %(message)s')
    args.save_prefix = args.save_prefix or '%s_%s' % (args.head, args.network)
    ckpt = Checkpoint(args.save_dir, args.save_prefix, resume=bool(args.resume))
    ctx = contexts(args.gpus)
    seed_all(args.seed)
    train_dataset, val_dataset = get_dataset(args)
    kw = {}
    if args.head == 'simple_pose':
        kw['deconv_filters'] = tuple(int(c) for c in args.deconv_filters.split(','))
        if args.pretrained_base:
            kw['pretrained_base'] = args.pretrained_base
    net = get_model('%s_%s' % (args.head, args.network), num_joints=train_dataset.num_joints, **kw)
    start_epoch, best_ap, history, resumed = 0, 0.0, [], False
    if args.resume and ckpt.exists():
        meta = ckpt.load_meta()
        if meta.get('network') != args.network or meta.get('head') != args.head:
            raise ValueError("%s was written for %s_%s, not %s_%s" % (
                ckpt.meta, meta.get('head'), meta.get('network'), args.head, args.network))
        check_resume(meta, args, logger, ckpt.meta)
        net.load_parameters(ckpt.params, ctx=mx.cpu())
        start_epoch, best_ap, history, resumed = meta['epoch'] + 1, meta['best_ap'], meta['history'], True
        logger.info('resuming from %s at epoch %d', ckpt.meta, start_epoch)
    else:
        if args.resume:
            logger.info('no checkpoint at %s: starting from scratch', ckpt.meta)
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            net.initialize(mx.init.Xavier(rnd_type='gaussian', factor_type='in', magnitude=2))
    train_data, val_data = get_dataloader(train_dataset, val_dataset, args)
    trainer = make_trainer_from_args(net, args, len(train_data), resume=ckpt if resumed else None,
                                     ctx=ctx)
    return train(net, train_data, val_data, val_dataset, ctx, args, start_epoch=start_epoch,
                 trainer=trainer, best_ap=best_ap, history=history)


if __name__ == '__main__':
    sys.exit(run_cli(main, sys.argv[1:], 'train_simple_pose', resumable=True))
