"""`asymmzoo summary`, `asymmzoo store add` / `store list`, `asymmzoo fetch`, `asymmzoo convert-official`."""
import os
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
        try:
            with mx.autograd.predict_mode():
                out = net(mx.nd.zeros(shape))
            out_shape = tuple(out.shape) if hasattr(out, 'shape') else tuple(o.shape for o in out)
            rows.append((name, count_params(net), count_madds(net, shape), shape, out_shape))
        except (mx.base.MXNetError, ValueError) as e:
            if not args.input_shape:
                raise
            takes = tuple(getattr(net, 'default_input_shape', ()) or ())
            what = ' (%d channels)' % takes[1] if len(takes) == 4 and takes[1] != args.input_shape[1] else ''
            raise ValueError("%s does not run on --input-shape %s (it takes %s%s); give a shape it takes, "
                             "or leave --input-shape out" % (name, ' '.join(map(str, args.input_shape)),
                                                             'x'.join(map(str, takes or ('?',))), what))
    from ..registry import get_spec
    print("| model | params | MAdds | input | output | published weights |")
    print("|---|---:|---:|---|---|---|")
    for name, p, m, shp, o in rows:
        print("| %s | %s | %.1fM | %s | %s | %s |" % (name, "{:,}".format(p), m / 1e6,
                                                   'x'.join(map(str, shp[1:])), o,
                                                   _published(get_spec(name).source)))
    return 0


def _published(source):
    if source is None:
        return ''
    return '%s %s (%s)' % (source.top1, source.metric, source.origin)


def _store_list(args):
    import os
    from ..registry import weight_sources
    from ..store import _stored, store_root
    root = store_root(args.root)
    sources = weight_sources()
    print("store: %s" % root)
    print("| model | in the store | published | source | integrity | conversion | preprocessing "
          "(mean / std, size, crop) | citation | license |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, src in sources.items():
        stored = _stored(name, root)
        pp = src.preprocess
        print("| %s | %s | %s %s | %s | %s %s | %s | %s / %s, %d, %.3g | %s | %s |" % (
            name, os.path.basename(stored[-1]) if stored else '-', src.top1, src.metric,
            ' '.join(src.resolved_urls()), src.hash_kind, src.hash, src.conversion,
            '/'.join('%g' % v for v in pp.mean), '/'.join('%g' % v for v in pp.std), pp.input_size,
            pp.crop_ratio, src.citation, src.license))
    others = sorted(os.path.basename(p) for p in __import__('glob').glob(os.path.join(root, '*.params'))
                    if os.path.basename(p).rsplit('-', 1)[0] not in sources)
    if others:
        print("\nother files in the store: " + ", ".join(others))
    return 0


def _fetch(args):
    from ..download import FetchError
    from ..registry import get_spec, weight_sources
    from ..store import _stored, ensure_pretrained
    names = []
    for pat in args.patterns:
        found = list(weight_sources(pat))
        if not found:
            raise ValueError("no model with published weights matches %r; `asymmzoo store list` shows "
                             "the weights table" % pat)
        names += [n for n in found if n not in names]
    failed = []
    for name in names:
        if _stored(name, args.root):
            print("%s: already in the store" % name)
            continue
        try:
            path = ensure_pretrained(name, get_spec(name).source, root=args.root, progress=not args.quiet)
        except FetchError as e:
            failed.append(str(e))
            continue
        print("%s: %s" % (name, path))
    if failed:
        raise FetchError("%d of %d not fetched:\n  %s" % (len(failed), len(names), "\n  ".join(failed)))
    return 0


def _store_add(args):
    from ..weights import add_to_store
    print(add_to_store(args.file, args.model.lower(), root=args.root))
    from ..io import classes_in_params
    from ..registry import get_model
    theirs = classes_in_params(args.file)
    net = get_model(args.model.lower())
    ours = getattr(net, 'classes', None)
    if not isinstance(ours, int):   # read it off the classifier
        outs = [p for k, p in sorted(net._collect_params_with_prefix().items())
                if k.startswith('output.') and k.endswith('weight') and p.shape]
        ours = outs[-1].shape[0] if outs else None
    if theirs and isinstance(ours, int) and theirs != ours:
        print("note: its classifier has %d classes, %s's default is %d: get_model(%r, classes=%d, "
              "pretrained=True) loads all of it; with another class count the classifier starts afresh"
              % (theirs, args.model.lower(), ours, args.model.lower(), theirs), file=sys.stderr)
    return 0


def _convert_official(args):
    from ..models.official import convert_official
    if os.path.isfile(args.dst) and not args.force and not (
            os.path.exists(args.src) and os.path.samefile(args.src, args.dst)):
        raise ValueError("%s exists; pass --force to replace it, or choose another file" % args.dst)
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
    a = ssub.add_parser('list', help='the weights table: published weights, sources, hashes, '
                        'preprocessing, and what the store holds')
    a.add_argument('--root', default=None, help='store folder (default $MXNET_HOME/models)')
    a.set_defaults(func=_store_list)

    p = sub.add_parser('fetch', help='download, verify and convert published weights into the store')
    p.add_argument('patterns', nargs='+', help="model names or fnmatch patterns, e.g. 'mobilenetv3_*_1.0'")
    p.add_argument('--root', default=None, help='store folder (default $MXNET_HOME/models)')
    p.add_argument('-q', '--quiet', action='store_true', help='no progress bar')
    p.set_defaults(func=_fetch)

    p = sub.add_parser('convert-official',
                       help="convert a checkpoint of the AsymmNet authors' code (the released file or one "
                       "saved from their published code) for get_model(pretrained=)")
    p.add_argument('src')
    p.add_argument('dst')
    p.add_argument('--model', default='asymmnet_large_1.0',
                   help="asymmnet_{large,small}_W or mobilenetv3_{large,small}_W (default asymmnet_large_1.0, "
                   "the released run)")
    p.add_argument('--force', action='store_true', help='replace an existing DST file')
    p.set_defaults(func=_convert_official)
