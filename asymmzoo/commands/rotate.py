"""`asymmzoo rotate-mnist`: the RotateConv paper's MNIST experiment (Table I, SN column) on the
embedded handwritten digits: ``rotate_sn`` with 3x3 kernels (version 9) vs RotateConv 4- and
2-parameter kernels, same recipe, plus the learned-angle histogram (paper Fig. 5 style).

Training loop: Adam (default; ``--optimizer sgd`` for momentum SGD), cosine LR, softmax cross
entropy; after every ``trainer.step`` the angles are projected with Eq. 6
(:func:`asymmzoo.nn.rotate.project_angles`). Angles live in degrees and their gradient is
``w * (dK_big - dK_small) / 45`` (Eq. 5), two to three orders of magnitude smaller than a weight's;
with Adam an angle moves by about ``lr * theta_lr_mult`` degrees per step whatever its gradient's
scale, so ``--theta-lr-mult`` (default 25: at most ~0.05 degree per step) sets how fast angles
rotate. Angles get no weight decay. The trained rotated nets are deployed (plain 3x3 convs) and
re-evaluated. The paper's SN has no BN and neither has ``rotate_sn``: with momentum SGD its rotated
versions sit on the initial loss plateau much longer than the 3x3 version, Adam trains all three.
"""
import os
import sys
import time
from ..utils import argtypes as A

__all__ = ['train_rotate_mnist', 'digits_nchw', 'table1_rows', 'add_commands']

VERSIONS = (('9', 'rotate_sn'), ('4', 'rotate_sn_rot4'), ('2', 'rotate_sn_rot2'))


def digits_nchw(split, limit=None):
    """Embedded digits as normalised float32 (N, 1, 28, 28) and int64 labels; ``limit`` takes a
    fixed random subset (:func:`asymmzoo.data.digits.digits_arrays`)."""
    from ..data.digits import digits_arrays
    return digits_arrays(split, size=28, channels=1, limit=limit)


def _angles(net):
    import numpy as np
    from ..nn.rotate import rotate_convs
    blocks = rotate_convs(net)
    if not blocks:
        return np.zeros(0)
    return np.concatenate([b.theta.data().asnumpy().ravel() for b in blocks])


def train_one(name, xtr, ytr, xva, yva, epochs=10, batch_size=64, lr=2e-3, momentum=0.9, wd=1e-4,
              theta_lr_mult=25.0, eps=1.0, seed=0, optimizer='adam', net_kwargs=None, log=None):
    """Train one model on arrays; returns a result dict (accuracy, per-epoch loss, angles)."""
    import numpy as np
    import mxnet as mx
    from ..registry import get_model
    from ..train.quick import fit, evaluate
    from ..nn.rotate import project_angles, snapshot_angles
    from ..deploy import deploy
    from ..utils.counting import count_params
    from ..models.rotate import table1_param_count

    mx.random.seed(seed)
    net = get_model(name, classes=10, **(net_kwargs or {}))
    net.initialize(mx.init.Xavier(magnitude=2.0))
    snapshot_angles(net)
    theta0 = _angles(net)
    for p in net.collect_params('.*theta').values():
        p.lr_mult = theta_lr_mult
    t0 = time.time()

    def on_epoch(ep, net, hist):
        if log:
            log("%s epoch %d/%d loss %.4f" % (name, ep + 1, epochs, hist['epoch_loss'][-1]))
    hist = fit(net, xtr, ytr, epochs=epochs, batch_size=batch_size, lr=lr, momentum=momentum, wd=wd,
               seed=seed, optimizer=optimizer, after_step=lambda n: project_angles(n, eps=eps),
               on_epoch=on_epoch)
    epoch_loss, clipped = hist['epoch_loss'], hist['after_step']
    acc = evaluate(net, xva, yva)
    theta = _angles(net)
    res = dict(model=name, val_acc=acc, epoch_loss=epoch_loss,
               params=count_params(net), params_table1=table1_param_count(net),
               train_seconds=time.time() - t0, angles_clipped=clipped)
    if theta.size:
        d = np.abs(theta - theta0)
        d = np.minimum(d, 180.0 - d)  # circular distance
        res.update(angles_init=theta0.tolist(), angles=theta.tolist(),
                   angle_change_mean=float(d.mean()), angle_change_max=float(d.max()),
                   angle_sector_changed=float(np.mean((theta // 45) != (theta0 // 45))))
        deploy(net, input_shape=(2, 1, 28, 28))
        res['val_acc_deployed'] = evaluate(net, xva, yva)
    return res


def plot_angles(results, path):
    """Histogram of the learned angles (and the initial ones) of the rotated versions."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    from ..io import atomic_savefig
    import numpy as np
    rot = [r for r in results if 'angles' in r]
    fig, axes = plt.subplots(1, len(rot), figsize=(5.5 * len(rot), 3.8), squeeze=False)
    bins = np.arange(0, 181, 5)
    for ax, r in zip(axes[0], rot):
        ax.hist(r['angles_init'], bins=bins, histtype='step', color='0.5', label='initial')
        ax.hist(r['angles'], bins=bins, alpha=0.7, color='C0' if r['model'].endswith('4') else 'C2',
                label='learned')
        ax.set_title('%s: %d angles, val acc %.2f%%' % (r['model'], len(r['angles']),
                                                         100 * r['val_acc']))
        ax.set_xlabel('theta (degrees)')
        ax.set_xticks(range(0, 181, 45))
        ax.set_ylabel('kernels')
        ax.legend(loc='upper right', fontsize=8)
    fig.tight_layout()
    atomic_savefig(fig, path, dpi=110)
    return path


def train_rotate_mnist(out_dir='rotate_mnist_out', epochs=10, batch_size=64, lr=2e-3,
                       theta_lr_mult=25.0, eps=1.0, limit=None, seed=0, versions=('9', '4', '2'),
                       optimizer='adam', log=print):
    """Train SN version 9 / 4 / 2 on the embedded digits (4000 train / 1000 val); write
    ``results.json`` and ``angles.png`` into ``out_dir``; return the list of result dicts."""
    xtr, ytr = digits_nchw('train', limit)
    xva, yva = digits_nchw('val')
    os.makedirs(out_dir, exist_ok=True)
    results = []
    for ver, name in VERSIONS:
        if ver not in versions:
            continue
        r = train_one(name, xtr, ytr, xva, yva, epochs=epochs, batch_size=batch_size, lr=lr,
                      theta_lr_mult=theta_lr_mult, eps=eps, seed=seed, optimizer=optimizer, log=log)
        r['version'] = ver
        results.append(r)
        if log:
            log("%s: val acc %.4f%s, params %d (Table I count %d), %.0fs" % (
                name, r['val_acc'], '' if 'val_acc_deployed' not in r else
                ' (deployed %.4f)' % r['val_acc_deployed'], r['params'], r['params_table1'],
                r['train_seconds']))
    settings = dict(epochs=epochs, batch_size=batch_size, lr=lr, optimizer=optimizer,
                    theta_lr_mult=theta_lr_mult, eps=eps,
                    seed=seed, train_samples=len(xtr), val_samples=len(xva))
    from ..io import atomic_write_json
    atomic_write_json(dict(settings=settings, results=results), os.path.join(out_dir, 'results.json'),
                      indent=1, sort_keys=False)
    if any('angles' in r for r in results):
        plot_angles(results, os.path.join(out_dir, 'angles.png'))
    return results


def _run(args):
    log = None if args.quiet else (lambda s: print(s, file=sys.stderr))
    res = train_rotate_mnist(args.out, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                             theta_lr_mult=args.theta_lr_mult, eps=args.eps, limit=args.limit,
                             seed=args.seed, optimizer=args.optimizer, log=log)
    print("| version | model | val acc | deployed | params | Table I count | mean angle change |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for r in res:
        print("| %s | %s | %.2f%% | %s | %d | %d | %s |" % (
            r['version'], r['model'], 100 * r['val_acc'],
            '%.2f%%' % (100 * r['val_acc_deployed']) if 'val_acc_deployed' in r else '-',
            r['params'], r['params_table1'],
            '%.1f deg' % r['angle_change_mean'] if 'angle_change_mean' in r else '-'))
    print("wrote %s" % os.path.join(args.out, 'results.json'))
    return 0


def table1_rows(bases=None):
    """(model, Table I value, Table I-convention count, true trainable count) for 9 / 4 / 2."""
    from ..registry import get_model, is_registered
    from ..models.rotate import table1_param_count, TABLE1_PARAMS, ROTATE_BASES
    from ..utils.counting import count_params
    unknown = [b for b in (bases or []) if b not in ROTATE_BASES]
    if unknown:
        raise ValueError("Table I has no %s; its bases are %s" % (', '.join(unknown), ', '.join(ROTATE_BASES)))
    rows = []
    for base in bases or ROTATE_BASES:
        if not is_registered(base):
            continue
        for ref, suffix in zip(TABLE1_PARAMS[base], ('', '_rot4', '_rot2')):
            net = get_model(base + suffix)
            shape = net.default_input_shape
            rows.append((base + suffix, ref, table1_param_count(net, shape), count_params(net, shape)))
    return rows


def _table1(args):
    print("| model | Table I | Table I convention | delta | true trainable | delta |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, ref, p, t in table1_rows(args.bases or None):
        print("| %s | %s | %s | %+.2f%% | %s | %+.2f%% |" % (
            name, "{:,.0f}".format(ref), "{:,}".format(p), 100 * (p / ref - 1), "{:,}".format(t),
            100 * (t / ref - 1)))
    return 0


def add_commands(sub):
    p = sub.add_parser('rotate-table1', help="parameter counts of the RotateConv models vs the "
                                             "paper's Table I")
    p.add_argument('bases', nargs='*', help='base names (default: all four of Table I)')
    p.set_defaults(func=_table1)

    p = sub.add_parser('rotate-mnist', help="RotateConv SN 9 vs 4 vs 2 parameters on the embedded "
                                            "digits; accuracies + learned-angle histogram")
    p.add_argument('--out', default='rotate_mnist_out', help='output folder (results.json, angles.png)')
    p.add_argument('--epochs', type=A.positive_int, default=10)
    p.add_argument('--batch-size', type=A.positive_int, default=64)
    p.add_argument('--optimizer', default='adam', help="gluon optimizer name (default adam; 'sgd' uses "
                                                       "momentum 0.9)")
    p.add_argument('--lr', type=A.positive_float, default=2e-3)
    p.add_argument('--theta-lr-mult', type=A.positive_float, default=25.0,
                   help='learning-rate multiplier of the angles (degrees), default 25')
    p.add_argument('--eps', type=A.positive_float, default=1.0, help='Eq. 6 epsilon in degrees (default 1)')
    p.add_argument('--limit', type=A.positive_int, default=None, help='use a random subset of N training images')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('-q', '--quiet', action='store_true')
    p.set_defaults(func=_run)
