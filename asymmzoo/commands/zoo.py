"""`asymmzoo summary`, `asymmzoo store add`, `asymmzoo convert-official`."""
import sys

from ..utils import argtypes as A


def _summary(args):
    import mxnet as mx
    from ..registry import get_model, list_models
    from ..utils.counting import count_params, count_madds
    names = []
    for pat in args.patterns or ['*']:
        names += [n for n in list_models(pat) if n not in names]
    if not names:
        raise ValueError("no registered model matches %s" % ' '.join(args.patterns))
    try:
        from tqdm import tqdm
        it = tqdm(names, desc='summary', file=sys.stderr, disable=len(names) < 3 or args.quiet)
    except ImportError:  # pragma: no cover
        it = names
    rows = []
    for name in it:
        net = get_model(name)
        shape = tuple(args.input_shape) if args.input_shape else \
            getattr(net, 'default_input_shape', (1, 3, 224, 224))
        shape = (getattr(net, "rows_per_sample", 1),) + tuple(shape[1:])  # TSN: frames per video
        net.initialize(force_reinit=True)   # (some builders return it initialised)
        with mx.autograd.predict_mode():
            out = net(mx.nd.zeros(shape))
        out_shape = tuple(out.shape) if hasattr(out, 'shape') else tuple(o.shape for o in out)
        rows.append((name, count_params(net), count_madds(net, shape), shape, out_shape))
    print("| model | params | MAdds | input | output |")
    print("|---|---:|---:|---|---|")
    for name, p, m, shp, o in rows:
        print("| %s | %s | %.1fM | %s | %s |" % (name, "{:,}".format(p), m / 1e6,
                                              'x'.join(map(str, shp[1:])), o))
    return 0


def _store_add(args):
    from ..weights import add_to_store
    print(add_to_store(args.file, args.model.lower(), root=args.root))
    return 0


def _convert_official(args):
    from ..models.official import convert_official
    dst = convert_official(args.src, args.dst, model=args.model.lower())
    print("wrote %s; load it with asymmzoo.get_model(%r, pretrained=%r)" % (dst, args.model, dst))
    return 0


def add_commands(sub):
    p = sub.add_parser('summary', help='table of params, MAdds and output shape of matching models')
    p.add_argument('patterns', nargs='*', help="fnmatch patterns (default '*')")
    p.add_argument('--input-shape', type=A.positive_int, nargs=4, metavar=('N', 'C', 'H', 'W'),
                   help='input shape (default: the model\'s default_input_shape, else 1 3 224 224)')
    p.add_argument('-q', '--quiet', action='store_true', help='no progress bar')
    p.set_defaults(func=_summary)

    p = sub.add_parser('store', help='the local pretrained store')
    ssub = p.add_subparsers(dest='store_command', metavar='ACTION')
    ssub.required = True
    a = ssub.add_parser('add', help='copy a .params file into the store under its sha1 name')
    a.add_argument('file')
    a.add_argument('--model', required=True)
    a.add_argument('--root', default=None, help='store folder (default $MXNET_HOME/models)')
    a.set_defaults(func=_store_add)

    p = sub.add_parser('convert-official',
                       help="convert the AsymmNet authors' released checkpoint for get_model(pretrained=)")
    p.add_argument('src')
    p.add_argument('dst')
    p.add_argument('--model', default='asymmnet_large_1.0')
    p.set_defaults(func=_convert_official)
