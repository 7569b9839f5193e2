"""Where an inference command's weights come from: ``--params FILE``, ``--pretrained`` (the local
store) or ``--untrained`` (random, for testing). Shared by `detect`, `pose` and `embed`."""
import os
import sys


def add_weight_args(p, params_help):
    p.add_argument('--params', default=None, help=params_help)
    p.add_argument('--pretrained', action='store_true', help='weights from the local store')
    p.add_argument('--untrained', action='store_true', help='random weights (testing only)')


def check_weight_args(args, params_hint, verb):
    """Refuse a missing --params file, or no weight source at all, before any model is built."""
    if args.params and not os.path.isfile(args.params):
        raise FileNotFoundError("--params %s does not exist" % args.params)
    if not (args.params or args.pretrained or args.untrained):
        raise ValueError("give the trained weights with --params FILE (%s) or --pretrained (the "
                         "local store); --untrained %s with random weights (for testing only)"
                         % (params_hint, verb))


def load_weights(net, args, init, warning):
    """Load --params into ``net``, or (--untrained) initialise it with ``init`` and warn; a
    --pretrained net was loaded by its builder."""
    import mxnet as mx
    if args.params:
        from ..io import load_parameters_checked
        load_parameters_checked(net, args.params)
    elif not args.pretrained:
        mx.random.seed(0)
        net.initialize(init)
        print("warning: --untrained: %s" % warning, file=sys.stderr)
