"""`asymmzoo analyze kernel-matrix | pruning | rotation`: ACNet's analyses (Fig. 6, Fig. 5, Table 4).

Each sub-command takes one or more model names (e.g. ``cifar_quick cifar_quick_acb``), gets their
weights from ``--params`` (one file per model, ``save_parameters`` format) or trains them briefly on the
embedded digits (``--quick-train EPOCHS``), and writes ``<out>/<analysis>.csv``, ``.md`` and ``.png``.
ACB models are deployed (fused) before the analysis, as in the paper.
"""
import os
import sys
from ..utils import argtypes as A


def _load_models(args, need_data=True):
    import mxnet as mx
    from ..registry import get_model
    from ..deploy import deploy
    from ..transforms.acnet import acb_blocks
    from ..train.quick import digits_arrays, quick_train, evaluate
    if args.params and len(args.params) != len(args.models):
        raise ValueError("give one --params file per model (%d models, %d files)"
                         % (len(args.models), len(args.params)))
    data = None
    out = []
    for i, name in enumerate(args.models):
        kw = dict(gamma_init=args.gamma_init) if args.gamma_init and name.endswith('_acb') else {}
        net = get_model(name, classes=10, **kw)
        _check_kernel_size(args, name, net)   # before any training
        shape = getattr(net, 'default_input_shape', (1, 3, 224, 224))
        if data is None and (need_data or args.quick_train):
            xtr, ytr = digits_arrays('train', size=shape[2], channels=shape[1])
            xva, yva = digits_arrays('val', size=shape[2], channels=shape[1], limit=args.limit)
            data = (xtr, ytr, xva, yva)
        mx.random.seed(args.seed)
        net.initialize(mx.init.Xavier(magnitude=2.0), force_reinit=True)
        if args.params:
            if not os.path.isfile(args.params[i]):
                raise FileNotFoundError("no such params file: %s" % args.params[i])
            from ..io import load_parameters_checked
            load_parameters_checked(net, args.params[i])   # a wrong or unreadable file: one line
        elif args.quick_train:
            hist = quick_train(net, data[0], data[1], epochs=args.quick_train, batch_size=64,
                               lr=args.lr, seed=args.seed)
            print("%s: trained %d steps on the embedded digits, final loss %.3f"
                  % (name, hist['steps'], sum(hist['loss'][-10:]) / 10), file=sys.stderr)
        else:
            print("%s: no --params and no --quick-train: analysing random initial weights"
                  % name, file=sys.stderr)
        probe = mx.nd.array(data[2][:4]) if data else None
        if probe is None:
            with mx.autograd.predict_mode():
                net(mx.nd.zeros((1,) + tuple(shape[1:])))
        if acb_blocks(net):
            deploy(net, probe=probe, input_shape=(2,) + tuple(shape[1:]))
        acc = evaluate(net, data[2], data[3]) if data else None
        out.append((name, net, acc))
    return out, data


def _check_kernel_size(args, name, net):
    from ..analysis import square_kernel_sizes
    sizes = square_kernel_sizes(net)
    if not sizes:
        raise ValueError("%s has no square kxk (odd k >= 3) conv layers to analyse" % name)
    k = getattr(args, 'kernel_size', None)
    if k and k not in sizes:
        raise ValueError("%s has no %dx%d conv layers (its square kernels: %s); pick one of those "
                         "with --kernel-size, or leave it out" % (name, k, k, ', '.join(
                             '%dx%d' % (s, s) for s in sorted(sizes))))


def _write_table(rows, header, out, stem):
    import csv
    import io
    from ..io import atomic_write_text
    buf = io.StringIO(newline='')
    w = csv.writer(buf)
    w.writerow(header)
    w.writerows(rows)
    atomic_write_text(buf.getvalue(), os.path.join(out, stem + '.csv'))
    lines = ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
    lines += ['| ' + ' | '.join(str(c) for c in r) + ' |' for r in rows]
    md = '\n'.join(lines) + '\n'
    atomic_write_text(md, os.path.join(out, stem + '.md'))
    return md


def _kernel_matrix(args):
    from ..analysis import kernel_magnitude_matrix, plot_kernel_matrix
    models, _ = _load_models(args, need_data=False)
    from ..analysis import dominant_kernel_size
    mats, rows = [], []
    k = args.kernel_size or dominant_kernel_size(models[0][1])
    for name, net, _ in models:
        a = kernel_magnitude_matrix(net, k)
        mats.append(a)
        for r in range(a.shape[0]):
            rows.append([name, r] + ['%.3f' % v for v in a[r]])
    header = ['model', 'row'] + ['col%d' % c for c in range(k)]
    print(_write_table(rows, header, args.out, 'kernel_matrix'))
    png = plot_kernel_matrix(mats, os.path.join(args.out, 'kernel_matrix.png'),
                             [n for n, _, _ in models])
    print("wrote %s (.csv, .md)" % png)


def _pruning(args):
    from ..analysis import pruning_curves, plot_pruning_curves
    from ..train.quick import evaluate
    models, data = _load_models(args)
    from ..analysis import dominant_kernel_size
    groups, rows = [], []
    k = args.kernel_size or dominant_kernel_size(models[0][1])
    for name, net, _ in models:
        res = pruning_curves(net, lambda n: evaluate(n, data[2], data[3]), ratios=args.ratios,
                             modes=args.modes, seeds=args.seeds, kernel_size=k)
        groups.append(res)
        rows += [[name, k, r['mode'], '%.2f' % r['ratio'], '%.4f' % r['mean'], '%.4f' % r['std']]
                 for r in res]
    print(_write_table(rows, ['model', 'kernel', 'mode', 'sparsity', 'acc_mean', 'acc_std'], args.out,
                       'pruning'))
    png = plot_pruning_curves(groups, os.path.join(args.out, 'pruning.png'),
                              [n for n, _, _ in models])
    print("wrote %s (.csv, .md)" % png)


def _rotation(args):
    from ..analysis import TRANSFORMS, rotation_robustness
    models, data = _load_models(args)
    rows, accs = [], []
    for name, net, _ in models:
        res = rotation_robustness(net, data[2], data[3])
        accs.append(res)
        rows.append([name] + ['%.2f' % (100 * res[t]) for t in TRANSFORMS])
    print(_write_table(rows, ['model'] + ['%s (%%)' % t for t in TRANSFORMS], args.out, 'rotation'))
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    from ..io import atomic_savefig
    import numpy as np
    fig, ax = plt.subplots(figsize=(1.6 + 1.6 * len(TRANSFORMS), 3.2))
    w = 0.8 / len(models)
    for i, ((name, _, _), res) in enumerate(zip(models, accs)):
        ax.bar(np.arange(len(TRANSFORMS)) + i * w, [100 * res[t] for t in TRANSFORMS], w, label=name)
    ax.set_xticks(np.arange(len(TRANSFORMS)) + 0.4 - w / 2)
    ax.set_xticklabels(TRANSFORMS)
    ax.set_ylabel('top-1 (%)')
    ax.legend(fontsize=8)
    fig.tight_layout()
    png = os.path.join(args.out, 'rotation.png')
    atomic_savefig(fig, png, dpi=120)
    print("wrote %s (.csv, .md)" % png)


def add_commands(sub):
    p = sub.add_parser('analyze', help="ACNet's analyses: kernel magnitude matrix, pruning curves, "
                                       "rotation robustness (table + PNG)")
    asub = p.add_subparsers(dest='analysis', metavar='ANALYSIS')
    asub.required = True

    def common(a):
        a.add_argument('models', nargs='+', help='registered model names, e.g. cifar_quick cifar_quick_acb')
        a.add_argument('--params', nargs='+', help='one .params file per model (save_parameters format)')
        a.add_argument('--quick-train', type=A.non_negative_int, default=0, metavar='EPOCHS',
                       help='without --params: train this many epochs on the embedded digits first')
        a.add_argument('--lr', type=A.positive_float, default=0.05)
        a.add_argument('--gamma-init', type=float, default=None,
                       help="branch BN gamma init of the _acb models for --quick-train (ACNet: 0.3333)")
        a.add_argument('--seed', type=int, default=0)
        a.add_argument('--limit', type=A.positive_int, default=None, help='use only the first N validation digits')
        a.add_argument('--kernel-size', type=A.odd_kernel, default=None,
                       help='kernel size k of the kxk layers analysed (default: the most common one)')
        a.add_argument('--out', default='analysis_out', help='output folder (default analysis_out)')

    a = asub.add_parser('kernel-matrix', help='average kernel magnitude matrix A (Eq. 9-10, Fig. 6)')
    common(a)
    a.set_defaults(func=_kernel_matrix)
    a = asub.add_parser('pruning', help='accuracy vs sparsity pruning corners / skeleton / anywhere (Fig. 5)')
    common(a)
    a.add_argument('--ratios', type=A.unit_interval, nargs='+', default=[0.0, 0.1, 0.2, 0.3, 0.4],
                   help='per-layer sparsity ratios, each in [0, 1] (default 0 0.1 0.2 0.3 0.4)')
    a.add_argument('--modes', nargs='+', default=['corner', 'skeleton', 'global'],
                   choices=['corner', 'skeleton', 'global'])
    a.add_argument('--seeds', type=A.positive_int, default=5, help='random repeats per point (mean +- std)')
    a.set_defaults(func=_pruning)
    a = asub.add_parser('rotation', help='accuracy on original / rot90 / rot180 / up-down flipped inputs (Table 4)')
    common(a)
    a.set_defaults(func=_rotation)
