"""Train TSN on a video list (GluonCV's format) and evaluate with multi-crop testing.

    python -m downstream.action.train_tsn --data-root videos/ --train-list train.txt \
        --val-list val.txt --model tsn_asymmnet_large_1.0_hmdb51 --num-segments 3 --num-crop 3

List files: one video per line, ``path num_frames label`` (GluonCV's ``VideoClsCustom`` setting
file; for videos the frame count is re-read from the file). ``--frames`` reads folders of decoded
frames (``img_%05d.jpg``) instead of video files. Videos are decoded with OpenCV
(:class:`downstream.action.VideoClsCV2`); ones that cannot be decoded are skipped and counted.
Defaults follow GluonCV's TSN recipe for HMDB51 (SGD momentum 0.9, wd 1e-4, 3 segments, dropout 0.5,
340x256 resize, 224 multi-scale crops; 3-crop testing), learning rate for training from scratch.
"""
import argparse
import json
import logging
import sys

from .._precise_bn import recalibrate_bn, take_inputs
from asymmzoo.train.engine import StepLog, make_trainer, save_params, run_cli, refuse_to_overwrite, seed_all
from asymmzoo.data.workers import data_loader   # a Ctrl-C while it forks its workers is not lost
from asymmzoo.utils import argtypes as A

__all__ = ['build_parser', 'cli', 'train', 'evaluate', 'main']


def build_parser():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument('--data-root', default='', help='folder the list paths are relative to')
    p.add_argument('--train-list', required=True)
    p.add_argument('--val-list', default=None)
    p.add_argument('--frames', action='store_true', help='lists name frame folders, not video files')
    p.add_argument('--name-pattern', default='img_%05d.jpg')
    p.add_argument('--video-ext', default='mp4')
    p.add_argument('--backend', default='opencv', choices=['opencv', 'decord'])
    p.add_argument('--model', default='tsn_asymmnet_large_1.0_hmdb51')
    p.add_argument('--num-classes', type=A.positive_int, default=None, help='default: the model name\'s dataset')
    p.add_argument('--num-segments', type=A.positive_int, default=3)
    p.add_argument('--num-crop', type=int, default=3, choices=[1, 3, 10], help='crops at evaluation')
    p.add_argument('--new-width', type=A.positive_int, default=340)
    p.add_argument('--new-height', type=A.positive_int, default=256)
    p.add_argument('--input-size', type=A.positive_int, default=224)
    p.add_argument('--dropout', type=A.fraction, default=0.5)
    p.add_argument('--epochs', type=A.positive_int, default=30)
    p.add_argument('--max-steps', type=A.non_negative_int, default=0, help='stop after this many steps (0: no limit)')
    p.add_argument('--batch-size', type=A.positive_int, default=8, help='videos per batch')
    p.add_argument('--lr', type=A.positive_float, default=0.01)
    p.add_argument('--momentum', type=A.fraction, default=0.9)
    p.add_argument('--wd', type=A.non_negative_float, default=1e-4)
    p.add_argument('--lr-steps', type=A.epoch_list, default='', help='comma-separated epochs at which lr *= 0.1')
    p.add_argument('--clip-grad', type=A.positive_float, default=40.0, help='global gradient norm clip (TSN)')
    p.add_argument('--bn-recalib-batches', type=A.non_negative_int, default=20,
                   help='before evaluating / saving, re-estimate BN running statistics over this '
                        'many training batches (precise BN)')
    p.add_argument('--num-workers', type=A.non_negative_int, default=0)
    p.add_argument('--hybridize', action='store_true')
    p.add_argument('--save-prefix', default=None, help='write PREFIX.params after training')
    p.add_argument('--force', action='store_true', help='replace existing --save-prefix files')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--log-interval', type=A.non_negative_int, default=10)
    return p


def _dataset(args, setting, train):
    from .data import VideoClsCV2, video_transforms
    num_crop = 1 if train else args.num_crop
    tf = video_transforms('train' if train else 'test', size=args.input_size, num_crop=num_crop)
    return VideoClsCV2(args.data_root, setting, train=train, test_mode=not train,
                       video_loader=not args.frames, name_pattern=args.name_pattern,
                       video_ext=args.video_ext, backend=args.backend,
                       num_segments=args.num_segments, num_crop=num_crop,
                       new_width=args.new_width, new_height=args.new_height,
                       target_width=args.input_size, target_height=args.input_size, transform=tf)


def evaluate(net, loader, num_crop=1, ctx=None):
    """Top-1 accuracy with the scores of ``num_crop`` crops (and all segments) averaged per video."""
    import mxnet as mx
    ctx = ctx or mx.cpu()
    correct = total = 0
    for x, y in loader:
        b = x.shape[0]
        x = x.reshape((-1,) + x.shape[2:]).as_in_context(ctx)
        with mx.autograd.predict_mode():
            out = net(x)  # (b * num_crop, classes): one row per crop, segments averaged
        scores = out.reshape((b, num_crop, -1)).mean(axis=1).asnumpy()
        correct += int((scores.argmax(axis=1) == y.asnumpy()).sum())
        total += b
    return correct / max(total, 1)


def train(args):
    """Run training; returns a dict with the per-step losses, validation accuracy and data counts."""
    import mxnet as mx
    from mxnet import gluon, autograd
    import asymmzoo

    if args.save_prefix:   # before any work: nothing the user saved is replaced unasked
        refuse_to_overwrite([args.save_prefix + '.params'], getattr(args, 'force', False))
    log = logging.getLogger('train_tsn')
    seed_all(args.seed)   # `random` too: GluonCV's video transforms draw from it
    ctx = mx.cpu()
    train_ds = _dataset(args, args.train_list, train=True)
    val_ds = _dataset(args, args.val_list, train=False) if args.val_list else None
    kw = dict(num_segments=args.num_segments, dropout=args.dropout)
    if args.num_classes:
        kw['classes'] = args.num_classes
    net = asymmzoo.get_model(args.model, ctx=ctx, **kw)   # returned initialised on ctx (GluonCV's habit)
    labels = [c[2] for c in train_ds.clips]
    if max(labels) >= net.classes:
        raise ValueError("the train list has label %d but %s has %d classes; pass --num-classes"
                         % (max(labels), args.model, net.classes))
    if args.hybridize:
        net.hybridize(static_alloc=True)
    batch = min(args.batch_size, len(train_ds))
    loader = data_loader(train_ds, batch_size=batch, shuffle=True, last_batch='discard',
                                   num_workers=args.num_workers)
    params = net.collect_params()
    for name, p in params.items():
        if name.endswith(('gamma', 'beta', 'bias')):
            p.wd_mult = 0.0
    trainer = make_trainer(params, 'sgd', args.lr, args.epochs, len(train_ds) // batch,
                           lr_mode='step', lr_decay=0.1, lr_decay_epoch=args.lr_steps, wd=args.wd,
                           momentum=args.momentum)
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
    val_history, steps = [], StepLog(log, 'lower --lr', args.log_interval, args.max_steps)
    for epoch in range(args.epochs):
        for x, y in loader:
            x = x.reshape((-1,) + x.shape[2:]).as_in_context(ctx)  # (B*T, 3, H, W)
            with autograd.record():
                loss = loss_fn(net(x), y.as_in_context(ctx))
            loss.backward()
            if args.clip_grad:
                grads = [p.grad(ctx) for p in params.values() if p.grad_req != 'null']
                gluon.utils.clip_global_norm(grads, args.clip_grad * y.shape[0])
            trainer.step(y.shape[0])
            if steps.after_step(loss, epoch, trainer.learning_rate):
                break
        last_epoch = steps.last_epoch(epoch, args.epochs)
        if args.bn_recalib_batches and (val_ds is not None or last_epoch):
            recalibrate_bn(net, take_inputs(loader, args.bn_recalib_batches,
                                            lambda s: (-1,) + tuple(s[2:])), ctx)
        if val_ds is not None:
            vl = data_loader(val_ds, batch_size=min(args.batch_size, len(val_ds)),
                                       num_workers=args.num_workers)
            acc = evaluate(net, vl, args.num_crop, ctx)
            val_history.append(acc)
            log.info('epoch %d val top-1 %.4f (%d-crop)', epoch, acc, args.num_crop)
        if steps.done:
            break
    if args.save_prefix:
        save_params(net, args.save_prefix + '.params')
    return dict(losses=steps.losses, val_accuracy=val_history, steps=steps.step, net=net,
                skipped=list(train_ds.skipped) + (list(val_ds.skipped) if val_ds else []),
                failed=train_ds.failed + (val_ds.failed if val_ds else 0))


def main(argv=None):
    logging.basicConfig(level=logging.INFO, format='%(asctime)s %(message)s')
    args = build_parser().parse_args(argv)
    out = train(args)
    print(json.dumps(dict(steps=out['steps'], first_loss=out['losses'][0], last_loss=out['losses'][-1],
                          val_accuracy=out['val_accuracy'], skipped=len(out['skipped']),
                          failed=out['failed']), indent=1))
    return 0


def cli(argv=None):
    """``main`` as a command (one-line errors, exit code 2; Ctrl-C says that nothing was saved:
    this script has no checkpoints, --save-prefix is written when training ends)."""
    return run_cli(main, sys.argv[1:] if argv is None else argv, 'train_tsn',
                   interrupted='nothing was saved (--save-prefix writes PREFIX.params only when training ends)')


if __name__ == '__main__':
    sys.exit(cli())
