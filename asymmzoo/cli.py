"""The ``asymmzoo`` command. Each feature module contributes its sub-commands through
``add_commands(subparsers)``; the list below is the only place that names them."""
import argparse
import importlib
import sys

from .train.common import TrainingDiverged

# modules providing add_commands(subparsers); each sub-parser sets func=callable(args) -> int|None
COMMAND_MODULES = [
    'asymmzoo.commands.zoo',      # summary, store, convert-official
    'asymmzoo.commands.doctor',   # doctor (facts for a bug report)
    'asymmzoo.commands.deploy_tools',  # bench, export, quantize
    'asymmzoo.commands.analyze',  # analyze kernel-matrix / pruning / rotation (ACNet)
    'asymmzoo.commands.rotate',   # rotate-mnist
    'asymmzoo.commands.train',    # train, launch, pack
    'asymmzoo.commands.downstream',  # detect, pose, embed (YOLOv3 / SimplePose / ArcFace)
]


def build_parser():
    parser = argparse.ArgumentParser(
        prog='asymmzoo', description='The asymmzoo command: build, train, deploy, export, quantize and '
        'benchmark the AsymmNet / ACNet / RotateConv model zoo (`asymmzoo COMMAND --help` for each).')
    sub = parser.add_subparsers(dest='command', metavar='COMMAND')
    sub.required = True
    for mod in COMMAND_MODULES:
        importlib.import_module(mod).add_commands(sub)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args) or 0
    except KeyboardInterrupt:
        print("asymmzoo %s: interrupted" % args.command, file=sys.stderr)
        return 130
    except TrainingDiverged as e:   # a quick run's loss became NaN / inf (analyze, rotate-mnist, quantize)
        print("asymmzoo %s: error: %s" % (args.command, e), file=sys.stderr)
        return 3
    except (ValueError, OSError, KeyError, TypeError) as e:
        # user errors (bad values, files and folders that are missing, not writable or in the
        # way): one clear line, no traceback
        msg = e.args[0] if isinstance(e, KeyError) and e.args else e
        if isinstance(e, OSError) and e.filename and e.strerror:
            msg = '%s: %s' % (e.filename, e.strerror)
        print("asymmzoo %s: error: %s" % (args.command, msg), file=sys.stderr)
        return 2


if __name__ == '__main__':
    sys.exit(main())
