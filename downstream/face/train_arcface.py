"""Train a face embedding network with the ArcFace loss; verify on a pairs list (LFW protocol).

    python -m downstream.face.train_arcface --data faces/ --model arcface_asymmnet_small_1.0 \
        --epochs 20 --batch-size 128 --lr 0.1 --pairs pairs.txt --pairs-root faces_val/

``--data``: identity-per-folder ImageFolder (``root/<identity>/<image>``) or a RecordIO ``.rec``
(+ ``.idx``). Recipe defaults follow insightface (SGD momentum 0.9, wd 5e-4, s=64, m=0.5); the
embedding and margin head are saved as ``PREFIX-embed.params`` / ``PREFIX-margin.params``.
"""
import argparse
import json
import logging
import sys

from .._precise_bn import recalibrate_bn, take_inputs
from asymmzoo.train.engine import StepLog, make_trainer, save_params, run_cli, refuse_to_overwrite, seed_all
from asymmzoo.data.workers import data_loader   # a Ctrl-C while it forks its workers is not lost
from asymmzoo.utils import argtypes as A

__all__ = ['build_parser', 'cli', 'train', 'recalibrate_bn', 'main']


def build_parser():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument('--data', required=True, help='identity-per-folder root, or a .rec file')
    p.add_argument('--num-classes', type=A.positive_int, default=None, help='identities (.rec only; else counted)')
    p.add_argument('--model', default='arcface_asymmnet_large_1.0')
    p.add_argument('--embedding-size', type=A.positive_int, default=512)
    p.add_argument('--input-size', type=A.positive_int, default=112)
    p.add_argument('--epochs', type=A.positive_int, default=20)
    p.add_argument('--max-steps', type=A.non_negative_int, default=0, help='stop after this many steps (0: no limit)')
    p.add_argument('--batch-size', type=A.positive_int, default=128)
    p.add_argument('--optimizer', default='sgd', choices=['sgd', 'nag', 'adam'])
    p.add_argument('--lr', type=A.positive_float, default=0.1)
    p.add_argument('--momentum', type=A.fraction, default=0.9)
    p.add_argument('--wd', type=A.non_negative_float, default=5e-4)
    p.add_argument('--lr-steps', type=A.epoch_list, default='', help='comma-separated epochs at which lr *= 0.1')
    p.add_argument('--s', type=A.positive_float, default=64.0, help='ArcFace scale')
    p.add_argument('--m', type=A.non_negative_float, default=0.5, help='ArcFace angular margin (radians)')
    p.add_argument('--easy-margin', action='store_true')
    p.add_argument('--bn-recalib-batches', type=A.non_negative_int, default=20,
                   help='after training, re-estimate BN running statistics over this many batches')
    p.add_argument('--pairs', default=None, help='verification pairs file (evaluated every epoch)')
    p.add_argument('--val-interval', type=A.positive_int, default=1,
                   help='verify every this many epochs (and always after the last one)')
    p.add_argument('--pairs-root', default='', help='folder the pairs file paths are relative to')
    p.add_argument('--no-flip', action='store_true', help='no mirror-sum embedding at verification')
    p.add_argument('--save-prefix', default=None, help='write PREFIX-embed.params, PREFIX-margin.params')
    p.add_argument('--force', action='store_true', help='replace existing --save-prefix files')
    p.add_argument('--num-workers', type=A.non_negative_int, default=0)
    p.add_argument('--hybridize', action='store_true')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--log-interval', type=A.non_negative_int, default=20)
    return p


def train(args):
    """Run training; returns a dict with the per-step losses and the verification results."""
    import mxnet as mx
    from mxnet import autograd
    import asymmzoo
    from .data import face_dataset
    from .loss import ArcMarginHead, ArcFaceLoss
    from .verification import read_pairs, evaluate_pairs

    if args.save_prefix:   # before any work: nothing the user saved is replaced unasked
        refuse_to_overwrite([args.save_prefix + '-embed.params', args.save_prefix + '-margin.params'],
                            getattr(args, 'force', False))
    log = logging.getLogger('train_arcface')
    seed_all(args.seed)
    ctx = mx.cpu()
    pairs = read_pairs(args.pairs, args.pairs_root) if args.pairs else None  # fail early on bad pairs
    ds = face_dataset(args.data, train=True, size=args.input_size, seed=args.seed,
                      num_classes=args.num_classes)
    if ds.num_classes < 2:
        raise ValueError("%s holds %d identity: ArcFace learns to tell identities apart, so it needs "
                         "at least two (one folder per person)" % (args.data, ds.num_classes))
    batch = min(args.batch_size, len(ds))
    loader = data_loader(ds, batch_size=batch, shuffle=True, last_batch='discard',
                                   num_workers=args.num_workers)
    net = asymmzoo.get_model(args.model, embedding_size=args.embedding_size, input_size=args.input_size)
    net.initialize(mx.init.MSRAPrelu(), ctx=ctx)
    head = ArcMarginHead(ds.num_classes, args.embedding_size)
    head.initialize(ctx=ctx)
    if args.hybridize:
        net.hybridize(static_alloc=True)
        head.hybridize(static_alloc=True)
    loss_fn = ArcFaceLoss(s=args.s, m=args.m, easy_margin=args.easy_margin)
    params = net.collect_params()
    params.update(head.collect_params())
    for name, p in params.items():  # no weight decay on BN and biases
        if name.endswith(('gamma', 'beta', 'bias')):
            p.wd_mult = 0.0
    trainer = make_trainer(params, args.optimizer, args.lr, args.epochs, len(ds) // batch, lr_mode='step',
                           lr_decay=0.1, lr_decay_epoch=args.lr_steps, wd=args.wd, momentum=args.momentum)
    history, steps = [], StepLog(log, 'lower --lr or --s', args.log_interval, args.max_steps)
    for epoch in range(args.epochs):
        for x, y in loader:
            with autograd.record():
                loss = loss_fn(head(net(x.as_in_context(ctx))), y.as_in_context(ctx))
            loss.backward()
            trainer.step(x.shape[0])
            if steps.after_step(loss, epoch, trainer.learning_rate):
                break
        last_epoch = steps.last_epoch(epoch, args.epochs)
        verify = pairs is not None and (last_epoch or (epoch + 1) % max(args.val_interval, 1) == 0)
        if args.bn_recalib_batches and (verify or last_epoch):
            recalibrate_bn(net, take_inputs(loader, args.bn_recalib_batches), ctx)
        if verify:
            res = evaluate_pairs(net, pairs, flip=not args.no_flip)
            res['epoch'] = epoch
            history.append(res)
            log.info('epoch %d verification accuracy %.4f +- %.4f (threshold %.2f)',
                     epoch, res['accuracy'], res['std'], res['threshold'])
        if steps.done:
            break
    if args.save_prefix:
        save_params(net, args.save_prefix + '-embed.params')
        save_params(head, args.save_prefix + '-margin.params')
    return dict(losses=steps.losses, verification=history, steps=steps.step, net=net, head=head,
                num_classes=ds.num_classes)


def main(argv=None):
    logging.basicConfig(level=logging.INFO, format='%(asctime)s %(message)s')
    args = build_parser().parse_args(argv)
    out = train(args)
    summary = dict(steps=out['steps'], first_loss=out['losses'][0], last_loss=out['losses'][-1],
                   verification=out['verification'][-1] if out['verification'] else None)
    print(json.dumps(summary, indent=1))
    return 0


def cli(argv=None):
    """``main`` as a command (one-line errors, exit code 2; Ctrl-C says that nothing was saved:
    this script has no checkpoints, --save-prefix is written when training ends)."""
    return run_cli(main, sys.argv[1:] if argv is None else argv, 'train_arcface',
                   interrupted='nothing was saved '
                               '(--save-prefix writes PREFIX-embed.params / PREFIX-margin.params only when training ends)')


if __name__ == '__main__':
    sys.exit(cli())
