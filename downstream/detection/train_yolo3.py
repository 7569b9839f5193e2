"""Train YOLOv3 on a zoo backbone, in the style of GluonCV's ``scripts/detection/yolo/train_yolo3.py``.

Datasets: ``--dataset voc`` (GluonCV's VOCDetection under ``--data-root``, 07+12 trainval / 07 test),
``--dataset coco`` (COCODetection, train2017 / val2017, COCO mAP), or ``--dataset folder``: any VOC-format
folder (``Annotations/``, ``JPEGImages/``, ``ImageSets/Main/{split}.txt``; classes from ``--classes``,
``classes.txt`` or the annotations). Pipeline: YOLO3DefaultTrainTransform with the network's prefetch
target generator, optional mixup (disabled for the last ``--no-mixup-epochs``), optional random input
shapes, GluonCV's YOLOv3 loss, SGD with linear warmup + cosine (or step) decay, VOC07 mAP.

Checkpoints (``--save-dir``): ``{prefix}-last.params/.states/.json`` after every epoch, written through
temporary files and atomic renames (a killed run never leaves half a file), ``{prefix}-best.params`` on
the best validation mAP, ``{prefix}-{epoch:04d}.params`` every ``--save-interval`` epochs. ``--resume``
continues from ``-last`` (weights, optimizer state incl. the LR schedule position, epoch, best mAP);
every epoch reseeds numpy / mxnet / random with ``seed + epoch`` so a resumed run sees the same data
order and augmentation as an uninterrupted one (with ``--num-workers 0``).

Example::

    python -m downstream.detection.train_yolo3 --network asymmnet_small_1.0 --dataset folder \\
        --data-root mydata --train-split train --val-split val --data-shape 416 --epochs 100
"""
import argparse
import logging
import os
import sys
import time
import warnings

import numpy as np
import mxnet as mx
from mxnet import autograd, gluon

import gluoncv as gcv
from gluoncv.data.batchify import Tuple, Stack, Pad
from gluoncv.data.transforms.presets.yolo import YOLO3DefaultTrainTransform, YOLO3DefaultValTransform
from gluoncv.utils.metrics.voc_detection import VOC07MApMetric

from asymmzoo.registry import get_model
from asymmzoo.data.workers import data_loader   # a Ctrl-C while it forks its workers is not lost
from asymmzoo.utils import argtypes as A
from asymmzoo.train.engine import (seed_all, save_params, Checkpoint, make_trainer_from_args, contexts,
                             run_cli, settings_of, check_resume, StepLog)

__all__ = ['parse_args', 'get_dataset', 'get_dataloader', 'validate', 'train', 'main']

logger = logging.getLogger('train_yolo3')


def parse_args(argv=None):
    p = argparse.ArgumentParser(description='Train YOLOv3 on an asymmzoo backbone.')
    p.add_argument('--network', default='asymmnet_small_1.0',
                   help='backbone name (asymmnet_*, mobilenetv3_*, *_acb)')
    p.add_argument('--dataset', default='voc', choices=['voc', 'coco', 'folder'])
    p.add_argument('--data-root', default=None, help='dataset folder (default GluonCV\'s ~/.mxnet/datasets/...)')
    p.add_argument('--train-split', default='trainval', help='folder datasets: ImageSets/Main/<split>.txt')
    p.add_argument('--val-split', default='test', help="folder datasets: validation split ('' = none)")
    p.add_argument('--classes', default=None, help='folder datasets: comma-separated class names')
    p.add_argument('--invalid-boxes', default='error', choices=['error', 'clip', 'skip'],
                   help='folder datasets: what to do with boxes outside the image')
    p.add_argument('--data-shape', type=A.positive_int, default=416, help='input size (multiple of 32)')
    p.add_argument('--batch-size', type=A.positive_int, default=64)
    p.add_argument('--num-workers', '-j', type=A.non_negative_int, default=4)
    p.add_argument('--gpus', default='', help="e.g. '0,1'; empty = CPU")
    p.add_argument('--epochs', type=A.positive_int, default=200)
    p.add_argument('--lr', type=A.positive_float, default=0.001)
    p.add_argument('--lr-mode', default='cosine', choices=['cosine', 'step', 'poly', 'linear'])
    p.add_argument('--lr-decay', type=A.open_fraction, default=0.1)
    p.add_argument('--lr-decay-epoch', type=A.epoch_list, default='160,180')
    p.add_argument('--warmup-lr', type=A.non_negative_float, default=0.0)
    p.add_argument('--warmup-epochs', type=A.non_negative_int, default=2)
    p.add_argument('--optimizer', default='sgd', choices=['sgd', 'nag', 'adam'],
                   help="GluonCV's recipe is sgd; adam converges faster on tiny data")
    p.add_argument('--momentum', type=A.fraction, default=0.9)
    p.add_argument('--wd', type=A.non_negative_float, default=0.0005)
    p.add_argument('--no-wd', action='store_true', help='no weight decay on BN and biases')
    p.add_argument('--mixup', action='store_true')
    p.add_argument('--no-mixup-epochs', type=A.non_negative_int, default=20)
    p.add_argument('--label-smooth', action='store_true')
    p.add_argument('--augment', default='default', choices=['default', 'none'],
                   help="'default': YOLO3DefaultTrainTransform (colour, expand, crop, flip); 'none': resize "
                        "only, targets computed once and cached (overfitting / debugging)")
    p.add_argument('--random-shape', action='store_true',
                   help='multi-scale training (sizes 320..608, or around --data-shape)')
    p.add_argument('--filters', type=A.width_list, default='512,256,128',
                   help="YOLOv3 detection-block widths, deepest first (GluonCV's default)")
    p.add_argument('--pretrained-base', default='', help='path to backbone .params (optional)')
    p.add_argument('--save-dir', default='yolo3_checkpoints')
    p.add_argument('--save-prefix', default=None, help='default: yolo3_<network>_<dataset>')
    p.add_argument('--save-interval', type=A.non_negative_int, default=10)
    p.add_argument('--val-interval', type=A.positive_int, default=1)
    p.add_argument('--resume', action='store_true', help='continue from <save-dir>/<prefix>-last.*')
    p.add_argument('--seed', type=int, default=233)
    p.add_argument('--log-interval', type=A.non_negative_int, default=100)
    p.add_argument('--stop-epoch', type=A.non_negative_int, default=0,
                   help='stop after this many epochs as if interrupted (the schedule still spans --epochs)')
    p.add_argument('--max-iters', type=A.non_negative_int, default=0, help='stop each epoch after this many batches (debug)')
    p.add_argument('--hybridize', action='store_true', default=True)
    p.add_argument('--no-hybridize', dest='hybridize', action='store_false')
    args = p.parse_args(argv)
    if args.data_shape % 32:
        p.error('--data-shape must be a multiple of 32, got %d' % args.data_shape)
    n = len([c for c in args.filters.split(',') if c.strip()])
    if n != 3:
        p.error("--filters needs 3 widths, one per YOLOv3 stage (deepest first, e.g. 512,256,128), "
                "got %d" % n)
    return args


def check_detection_json(path, need_boxes=True):
    """Check a COCO detection annotation file before pycocotools reads it (it fails there with a bare
    KeyError, or trains on nothing at loss nan): valid JSON with ``images``, ``annotations`` and
    ``categories`` lists, every annotation with ``image_id``, ``category_id`` and a 4-number
    ``bbox``; ``need_boxes``: at least one box. Returns the number of annotations."""
    import json
    if not os.path.isfile(path):
        raise FileNotFoundError("%s is missing: COCO detection data lives in <root>/annotations/"
                                "instances_<split>.json with the images under <root>/<split>/" % path)
    try:
        with open(path) as f:
            d = json.load(f)
    except ValueError as e:
        raise ValueError("%s is not valid JSON (%s): a truncated or edited file?" % (path, e))
    for key in ('images', 'annotations', 'categories'):
        if not isinstance(d, dict) or not isinstance(d.get(key), list):
            raise ValueError("%s has no %r list; a COCO detection file has images, annotations and "
                             "categories" % (path, key))
    for i, a in enumerate(d['annotations']):
        bbox = a.get('bbox') if isinstance(a, dict) else None
        if not isinstance(a, dict) or 'image_id' not in a or 'category_id' not in a or not (
                isinstance(bbox, list) and len(bbox) == 4
                and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in bbox)):
            raise ValueError("%s: annotation %d needs image_id, category_id and bbox [x, y, w, h] "
                             "(numbers)" % (path, i))
    if need_boxes and not d['annotations']:
        raise ValueError("%s has no annotated box: nothing to train on" % path)
    return len(d['annotations'])


def get_dataset(args):
    """(train_dataset, val_dataset or None, val_metric or None, class names)."""
    from .data import VOCFolder
    if args.dataset == 'voc':
        root = args.data_root or os.path.join('~', '.mxnet', 'datasets', 'voc')
        train = gcv.data.VOCDetection(root=root, splits=[(2007, 'trainval'), (2012, 'trainval')])
        val = gcv.data.VOCDetection(root=root, splits=[(2007, 'test')])
        metric = VOC07MApMetric(iou_thresh=0.5, class_names=val.classes)
    elif args.dataset == 'coco':
        root = args.data_root or os.path.join('~', '.mxnet', 'datasets', 'coco')
        for split in ('instances_train2017', 'instances_val2017'):
            check_detection_json(os.path.join(os.path.expanduser(root), 'annotations', split + '.json'),
                                 need_boxes=split.endswith('train2017'))
        train = gcv.data.COCODetection(root=root, splits='instances_train2017', use_crowd=False)
        val = gcv.data.COCODetection(root=root, splits='instances_val2017', skip_empty=False)
        metric = gcv.utils.metrics.coco_detection.COCODetectionMetric(
            val, os.path.join(args.save_dir, 'coco_eval'), cleanup=True,
            data_shape=(args.data_shape, args.data_shape))
    else:
        if not args.data_root:
            raise ValueError("--dataset folder needs --data-root (a VOC-format folder)")
        classes = [c.strip() for c in args.classes.split(',')] if args.classes else None
        train = VOCFolder(args.data_root, args.train_split, classes=classes,
                          invalid_boxes=args.invalid_boxes)
        val, metric = None, None
        if args.val_split:
            val = VOCFolder(args.data_root, args.val_split, classes=train.classes,
                            invalid_boxes=args.invalid_boxes)
            metric = VOC07MApMetric(iou_thresh=0.5, class_names=train.classes)
    if args.dataset in ('voc', 'folder'):   # before any work: an image that cannot be decoded is named
        from asymmzoo.data.folder import check_image_headers
        for ds in (train, val):
            if ds is not None:
                check_image_headers(ds._image_path.format(*i) for i in ds._items)
    if args.mixup:
        from gluoncv.data.mixup import detection
        train = detection.MixupDetection(train)
    return train, val, metric, list(val.classes if val is not None else _classes_of(train))


def _classes_of(ds):
    return ds.classes if hasattr(ds, 'classes') else ds._dataset.classes


class YOLO3ResizeTrainTransform(YOLO3DefaultTrainTransform):
    """YOLO3DefaultTrainTransform without augmentation: resize, normalise, training targets."""

    def __call__(self, src, label):
        from gluoncv.data.transforms import image as timage, bbox as tbbox
        h, w, _ = src.shape
        img = timage.imresize(src, self._width, self._height, interp=1)
        bbox = tbbox.resize(label, (w, h), (self._width, self._height))
        img = mx.nd.image.normalize(mx.nd.image.to_tensor(img), mean=self._mean, std=self._std)
        gt_bboxes = mx.nd.array(bbox[np.newaxis, :, :4])
        gt_ids = mx.nd.array(bbox[np.newaxis, :, 4:5])
        obj, centers, scales, weights, clas = self._target_generator(
            self._fake_x, self._feat_maps, self._anchors, self._offsets, gt_bboxes, gt_ids, None)
        return img, obj[0], centers[0], scales[0], weights[0], clas[0], gt_bboxes[0]


def get_dataloader(net, train_dataset, val_dataset, data_shape, batch_size, num_workers, args):
    """GluonCV's YOLOv3 loaders: 7-field training batches (image, 5 targets, gt boxes)."""
    width, height = data_shape, data_shape
    batchify_fn = Tuple(*([Stack() for _ in range(6)] + [Pad(axis=0, pad_val=-1) for _ in range(1)]))
    if args.augment == 'none':
        if args.mixup or args.random_shape:
            raise ValueError("--augment none cannot be combined with --mixup / --random-shape")
        cached = gluon.data.SimpleDataset(
            [YOLO3ResizeTrainTransform(width, height, net)(*train_dataset[i])
             for i in range(len(train_dataset))])
        train_loader = data_loader(cached, batch_size, True, batchify_fn=batchify_fn,
                                             last_batch='rollover', num_workers=0)
    elif args.random_shape:
        transform_fns = [YOLO3DefaultTrainTransform(x * 32, x * 32, net, mixup=args.mixup)
                         for x in range(max(1, data_shape // 32 - 3), data_shape // 32 + 4)]
        train_loader = gcv.data.RandomTransformDataLoader(
            transform_fns, train_dataset, batch_size=batch_size, interval=10, last_batch='rollover',
            shuffle=True, batchify_fn=batchify_fn, num_workers=num_workers)
    else:
        train_loader = data_loader(
            train_dataset.transform(YOLO3DefaultTrainTransform(
                width, height, net, mixup=args.mixup)),
            batch_size, True, batchify_fn=batchify_fn, last_batch='rollover', num_workers=num_workers)
    val_loader = None
    if val_dataset is not None:
        val_batchify_fn = Tuple(Stack(), Pad(pad_val=-1))
        val_loader = data_loader(
            val_dataset.transform(YOLO3DefaultValTransform(width, height)),
            batch_size, False, batchify_fn=val_batchify_fn, last_batch='keep', num_workers=num_workers)
    return train_loader, val_loader


def validate(net, val_data, ctx, eval_metric, hybridize=True):
    """Run the detector over ``val_data`` and return ``(names, values)`` of ``eval_metric``."""
    eval_metric.reset()
    net.set_nms(nms_thresh=0.45, nms_topk=400)
    if hybridize:
        net.hybridize()  # re-hybridize: the cached graph may be the training one
    for batch in val_data:
        data = gluon.utils.split_and_load(batch[0], ctx_list=ctx, batch_axis=0, even_split=False)
        label = gluon.utils.split_and_load(batch[1], ctx_list=ctx, batch_axis=0, even_split=False)
        det_bboxes, det_ids, det_scores, gt_bboxes, gt_ids, gt_difficults = [], [], [], [], [], []
        for x, y in zip(data, label):
            with autograd.predict_mode():
                ids, scores, bboxes = net(x)
            det_ids.append(ids)
            det_scores.append(scores)
            det_bboxes.append(bboxes.clip(0, batch[0].shape[2]))
            gt_ids.append(y.slice_axis(axis=-1, begin=4, end=5))
            gt_bboxes.append(y.slice_axis(axis=-1, begin=0, end=4))
            gt_difficults.append(y.slice_axis(axis=-1, begin=5, end=6) if y.shape[-1] > 5 else None)
        eval_metric.update(det_bboxes, det_ids, det_scores, gt_bboxes, gt_ids, gt_difficults)
    return eval_metric.get()


def train(net, train_data, val_data, eval_metric, ctx, args, start_epoch=0, trainer=None,
          best_map=0.0, history=None):
    """The training loop; returns the history (a list of per-epoch dicts)."""
    history = list(history or [])
    ckpt = Checkpoint(args.save_dir, args.save_prefix)
    net.collect_params().reset_ctx(ctx)
    if args.no_wd:
        for _, v in net.collect_params('.*beta|.*gamma|.*bias').items():
            v.wd_mult = 0.0
    if args.label_smooth:
        net._target_generator._label_smooth = True
    if trainer is None:
        trainer = make_trainer_from_args(net, args, len(train_data))
    mx_losses = [mx.metric.Loss(n) for n in ('ObjLoss', 'BoxCenterLoss', 'BoxScaleLoss', 'ClassLoss')]
    # the NaN stop; the loop logs itself, with the loss parts
    steps = StepLog(logger, 'lower --lr or raise --warmup-epochs (a run with a checkpoint continues '
                            'with --resume)')
    for epoch in range(start_epoch, args.epochs):
        seed_all(args.seed + epoch)
        if args.mixup:
            mix = _find_mixup(train_data)
            if epoch < args.epochs - args.no_mixup_epochs:
                mix.set_mixup(np.random.beta, 1.5, 1.5)
            else:
                mix.set_mixup(None)
        for m in mx_losses:
            m.reset()
        tic = time.time()
        if args.hybridize:
            net.hybridize()  # (re-)build the training graph
        for i, batch in enumerate(train_data):
            if args.max_iters and i >= args.max_iters:
                break
            data = gluon.utils.split_and_load(batch[0], ctx_list=ctx, batch_axis=0)
            fixed_targets = [gluon.utils.split_and_load(batch[it], ctx_list=ctx, batch_axis=0)
                             for it in range(1, 6)]
            gt_boxes = gluon.utils.split_and_load(batch[6], ctx_list=ctx, batch_axis=0)
            sum_losses, parts = [], [[], [], [], []]
            with autograd.record():
                for ix, x in enumerate(data):
                    losses = net(x, gt_boxes[ix], *[ft[ix] for ft in fixed_targets])
                    sum_losses.append(sum(losses))
                    for k, l in enumerate(losses):
                        parts[k].append(l)
                autograd.backward(sum_losses)
            trainer.step(batch[0].shape[0])
            steps.after_step(sum_losses, epoch, trainer.learning_rate)
            for m, p in zip(mx_losses, parts):
                m.update(0, p)
            if args.log_interval and (i + 1) % args.log_interval == 0:
                logger.info('[Epoch %d][Batch %d] lr=%.2e %s', epoch, i, trainer.learning_rate,
                            ', '.join('%s=%.3f' % m.get() for m in mx_losses))
        row = {'epoch': epoch, 'time': time.time() - tic, 'lr': trainer.learning_rate}
        row.update({m.get()[0]: float(m.get()[1]) for m in mx_losses})
        row['loss'] = sum(row[m.get()[0]] for m in mx_losses)
        logger.info('[Epoch %d] %s', epoch, ', '.join('%s=%.4g' % kv for kv in row.items()))
        if val_data is not None and eval_metric is not None and \
                ((epoch + 1) % args.val_interval == 0 or epoch + 1 == args.epochs):
            names, values = validate(net, val_data, ctx, eval_metric, args.hybridize)
            names, values = (names, values) if isinstance(names, list) else ([names], [values])
            # VOC07MApMetric: fractions, mAP last; COCODetectionMetric: strings in percent, mAP last
            row['map'] = float(values[-1]) / (100.0 if args.dataset == 'coco' else 1.0)
            logger.info('[Epoch %d] validation: %s', epoch,
                        ', '.join('%s=%s' % (str(n).strip(), v) for n, v in zip(names, values)))
            if row['map'] > best_map:
                best_map = row['map']
                save_params(net, ckpt.path('best'))
        history.append(row)
        if args.save_interval and (epoch + 1) % args.save_interval == 0:
            save_params(net, ckpt.path('%04d' % epoch))
        ckpt.save(net, trainer, {'epoch': epoch, 'best_map': best_map, 'history': history,
                                 'network': args.network, 'dataset': args.dataset,
                                 'data_shape': args.data_shape, 'classes': list(net.classes),
                                 'settings': settings_of(args)})
        if args.stop_epoch and epoch + 1 >= args.stop_epoch:
            logger.info('stopping after epoch %d (--stop-epoch); continue with --resume', epoch)
            break
    return history


def _find_mixup(loader):
    obj = loader
    for _ in range(6):  # DataLoader -> lazy transform -> MixupDetection
        if hasattr(obj, 'set_mixup'):
            return obj
        obj = getattr(obj, '_dataset', None) or getattr(obj, '_data', None)
        if obj is None:
            break
    raise RuntimeError("--mixup is on but no MixupDetection dataset was found under the loader")



def main(argv=None):
    """Run a training job; returns the per-epoch history."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format='%(asctime)s %(message)s')
    args.save_prefix = args.save_prefix or 'yolo3_%s_%s' % (args.network, args.dataset)
    ckpt = Checkpoint(args.save_dir, args.save_prefix, resume=bool(args.resume))
    ctx = contexts(args.gpus)
    seed_all(args.seed)
    train_dataset, val_dataset, eval_metric, classes = get_dataset(args)
    net = get_model('yolo3_%s_custom' % args.network, classes=classes,
                    filters=[int(c) for c in args.filters.split(',')],
                    pretrained_base=args.pretrained_base or False)
    start_epoch, best_map, history, resumed = 0, 0.0, [], False
    if args.resume and ckpt.exists():
        meta = ckpt.load_meta()
        if meta.get('network') != args.network:
            raise ValueError("%s was written for --network %s, not %s" % (ckpt.meta, meta.get('network'),
                                                                          args.network))
        check_resume(meta, args, logger, ckpt.meta)
        net.load_parameters(ckpt.params, ctx=mx.cpu())
        start_epoch, best_map, history, resumed = meta['epoch'] + 1, meta['best_map'], meta['history'], True
        logger.info('resuming from %s at epoch %d', ckpt.meta, start_epoch)
    else:
        if args.resume:
            logger.info('no checkpoint at %s: starting from scratch', ckpt.meta)
        seed_all(args.seed)
        with warnings.catch_warnings():  # a pretrained backbone is initialised already: skip it quietly
            warnings.simplefilter('ignore')
            net.initialize(mx.init.Xavier(factor_type='avg', magnitude=2.0))
    net.collect_params().reset_ctx(mx.cpu())
    # GluonCV's train transform runs one training-mode forward pass (on a zero image) to read the
    # anchor / offset maps; where BN updates its running statistics in the forward pass (cuDNN; the
    # CPU MKL-DNN kernel does it in backward) that would move them: keep them as they were, so that
    # a resumed run continues from exactly the saved state (and fresh ones start from 0 / 1)
    aux = {k: (p.data().copy() if p._data is not None else None)
           for k, p in net.collect_params().items() if p.grad_req == 'null'}
    train_data, val_data = get_dataloader(net, train_dataset, val_dataset, args.data_shape,
                                          args.batch_size, args.num_workers, args)
    params = net.collect_params()
    for k, v in aux.items():
        if v is not None:
            params[k].set_data(v)
        elif k.endswith('running_mean') or k.endswith('running_var'):
            params[k].set_data(mx.nd.zeros(params[k].shape) if k.endswith('running_mean')
                               else mx.nd.ones(params[k].shape))
    trainer = make_trainer_from_args(net, args, len(train_data), resume=ckpt if resumed else None,
                                     ctx=ctx)
    return train(net, train_data, val_data, eval_metric, ctx, args, start_epoch=start_epoch,
                 trainer=trainer, best_map=best_map, history=history)


if __name__ == '__main__':
    sys.exit(run_cli(main, sys.argv[1:], 'train_yolo3', resumable=True))
