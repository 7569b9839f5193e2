"""Command line of ``train_imagenet.py`` (GluonCV's flag names where they exist).

With no data flags it trains on the embedded handwritten digits; ``--data-dir`` takes an ImageFolder
(``train/`` and ``val/`` with one folder per class), ``--rec-train/--rec-val`` (+ ``-idx``) ImageNet
RecordIO. ``--recipe asymmnet`` (the default) fills every recipe flag you leave out with the released
AsymmNet run's settings.
"""
import argparse
import os
import sys

from ..utils import argtypes as A

__all__ = ['build_parser', 'add_arguments', 'run_args', 'main']

DEFAULT_MODEL = 'asymmnet_small_0.35'
DEFAULT_INPUT = 64


def build_parser(prog='train_imagenet.py'):
    p = argparse.ArgumentParser(prog=prog, description=__doc__.split('\n\n')[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    return add_arguments(p)


def add_arguments(p):
    g = p.add_argument_group('model')
    g.add_argument('--model', default=None,
                   help='any registry name (asymmzoo summary lists them); default %s, or the resumed '
                        'run\'s' % DEFAULT_MODEL)
    g.add_argument('--model-kwargs', nargs='*', default=None, metavar='K=V',
                   help='extra builder kwargs, e.g. r=2 dropout=0.1')
    g.add_argument('--dropout', type=A.fraction, default=None, help="override the model's dropout")
    g.add_argument('--input-size', default=None,
                   type=A.checked(int, lambda v: 8 <= v <= 1024, 'a size of 8 to 1024 pixels'),
                   help='training crop size (default: 224; the embedded digits: %d, or the model\'s '
                        'native size if smaller)' % DEFAULT_INPUT)
    g.add_argument('--crop-ratio', type=A.open_fraction, default=None,
                   help='validation centre-crop ratio (default 0.875)')
    g.add_argument('--pretrained', default=None, metavar='FILE|store',
                   help="start from weights: a .params file, or 'store' for the local store")
    g.add_argument('--init', default=None, choices=['msraprelu', 'xavier'], help='default msraprelu')
    g.add_argument('--mode', default='hybrid', choices=['hybrid', 'imperative'])

    g = p.add_argument_group('data')
    g.add_argument('--data-dir', default=None, help='ImageFolder root with train/ and val/')
    g.add_argument('--rec-train', default=None)
    g.add_argument('--rec-train-idx', default=None)
    g.add_argument('--rec-val', default=None)
    g.add_argument('--rec-val-idx', default=None)
    g.add_argument('--num-classes', type=A.checked(int, lambda v: v >= 2, 'a class count of at least 2'),
                   default=None, help='RecordIO only (default: from the .lst)')
    g.add_argument('-j', '--num-workers', type=A.non_negative_int, default=0, help='data loading workers / threads')

    g = p.add_argument_group('recipe (left out = taken from --recipe)')
    g.add_argument('--recipe', default=None, choices=['asymmnet', 'none'],
                   help='default asymmnet, or the resumed run\'s')
    g.add_argument('--batch-size', type=A.positive_int, default=None,
                   help='per device (GluonCV convention); default 64, or the resumed run\'s')
    g.add_argument('--num-epochs', type=A.positive_int, default=None)
    g.add_argument('--steps-per-epoch', type=A.non_negative_int, default=None,
                   help='cap the steps of each epoch (0 = the whole shard); for quick runs and tests')
    g.add_argument('--lr', type=A.positive_float, default=None,
                   help='default: the recipe base lr scaled linearly to the global batch')
    g.add_argument('--lr-mode', default=None, choices=['cosine', 'step', 'poly', 'linear', 'constant'])
    g.add_argument('--lr-decay', type=A.open_fraction, default=None, help='step mode factor (default 0.1)')
    g.add_argument('--lr-decay-epoch', type=A.epoch_list, default=None, help='step mode epochs (default 40,60)')
    g.add_argument('--warmup-epochs', type=A.non_negative_int, default=None)
    g.add_argument('--warmup-lr', type=A.non_negative_float, default=None)
    g.add_argument('--optimizer', default=None, choices=['nag', 'sgd', 'adam'])
    g.add_argument('--momentum', type=A.fraction, default=None)
    g.add_argument('--wd', type=A.non_negative_float, default=None)
    g.add_argument('--no-wd', action='store_const', const=True, default=None,
                   help='no weight decay on BN parameters and biases')
    g.add_argument('--wd-on-bn', dest='no_wd', action='store_const', const=False,
                   help='weight decay on every parameter (undo the recipe\'s --no-wd)')
    g.add_argument('--label-smoothing', type=A.fraction, nargs='?', const=0.1, default=None,
                   help='epsilon (bare flag = 0.1)')
    g.add_argument('--mixup', action='store_const', const=True, default=None)
    g.add_argument('--mixup-alpha', type=A.positive_float, default=None, help='default 0.2')
    g.add_argument('--mixup-off-epoch', type=A.non_negative_int, default=None, help='default 0')
    g.add_argument('--dtype', default=None, choices=['float32', 'float16'])
    g.add_argument('--seed', type=int, default=None, help='default 0, or the resumed run\'s')

    g = p.add_argument_group('devices and distribution')
    g.add_argument('--gpus', default='', help="e.g. 0,1,2,3 (empty = CPU)")
    g.add_argument('--kvstore', default='device',
                   choices=['device', 'local', 'nccl', 'dist_sync', 'dist_device_sync', 'dist_async'],
                   help="device | local | dist_sync | dist_device_sync (start dist jobs with "
                        "`asymmzoo launch`)")

    g = p.add_argument_group('output, resume, evaluation')
    g.add_argument('--save-dir', default=None,
                   help='output folder (default runs/<model>-<data>[-N], never an existing one)')
    g.add_argument('--save-frequency', type=A.positive_int, default=1, help='checkpoint every N epochs')
    g.add_argument('--keep-checkpoints', type=A.non_negative_int, default=0, help='keep only the newest N (0 = all)')
    g.add_argument('--resume', default=None, metavar='RUN_DIR',
                   help='continue the run saved in RUN_DIR exactly where its last checkpoint was')
    g.add_argument('--eval-only', action='store_true',
                   help='only validate (--params FILE, --resume RUN_DIR or --pretrained)')
    g.add_argument('--params', default=None, help='weights for --eval-only')
    g.add_argument('--no-export', action='store_true', help='skip deploy + export after training')
    g.add_argument('--no-progress', action='store_true', help='no progress bar')
    g.add_argument('-q', '--quiet', action='store_true', help='only errors and the final line')
    return p


def main(argv=None, prog='train_imagenet.py'):
    return run_args(build_parser(prog).parse_args(argv), prog)


def _saved_so_far(args, prog):
    """What an interrupted run leaves: its last checkpoint and the command that continues it."""
    import json
    import os
    from .checkpoint import RESUME_FILE
    folder = getattr(args, 'save_dir', None)
    if getattr(args, 'eval_only', False) or not folder:
        return "Nothing was saved."
    path = os.path.join(folder, RESUME_FILE)
    try:
        with open(path) as f:
            epoch = json.load(f)['epoch']
    except (OSError, ValueError, KeyError):
        return "No epoch finished, so no checkpoint was written in %s." % folder
    return ("The checkpoint of epoch %d is in %s; continue with: python %s --resume %s"
            % (epoch + 1, folder, prog, folder))


def run_args(args, prog='train_imagenet.py'):
    """Run parsed arguments; returns the exit code (2 bad input, 3 diverged), errors on stderr."""
    args.hybridize = args.mode == 'hybrid'
    from .checkpoint import CheckpointError
    from .loop import run, TrainingDiverged
    from ..data.folder import DataError
    try:
        summary = run(args)
    except KeyboardInterrupt:
        print("%s: interrupted. %s" % (prog, _saved_so_far(args, prog)), file=sys.stderr)
        return 130
    except TrainingDiverged as e:
        print("%s: error: %s" % (prog, e), file=sys.stderr)
        return 3
    except (ValueError, OSError, TypeError, CheckpointError, DataError) as e:
        msg = e
        if isinstance(e, OSError) and e.filename and e.strerror:
            msg = "%s: %s" % (e.filename, e.strerror)
            save = getattr(args, 'save_dir', None)
            f, d = os.path.abspath(str(e.filename)), os.path.abspath(save) if save else None
            if d and (f.startswith(d) or d.startswith(f)):   # the folder, a file in it, or above it
                msg += " (choose a --save-dir you can write to)"
        print("%s: error: %s" % (prog, msg), file=sys.stderr)
        return 2
    if args.quiet and summary.get('top1') is not None:
        print("top-1 %.4f top-5 %.4f" % (summary['top1'], summary['top5']))
    return 0
