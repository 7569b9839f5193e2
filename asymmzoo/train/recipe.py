"""Training recipes: named sets of defaults, and the optimizer / LR schedule built from settings.

``asymmnet`` is the run of the authors' released AsymmNet-L x1.0 checkpoint, from their training log
(docs/training.md, ``--recipe asymmnet``): NAG momentum 0.9, cosine schedule with 5 linear-warmup
epochs from 0, lr 2.6 at a global batch of 2048 scaled linearly to the actual global batch, wd 3e-5
with no weight decay on BN parameters and biases, label smoothing 0.1, dropout 0.2 (the models'
default), MSRAPrelu init, 360 epochs, fp32.
``none`` leaves everything to the flags (GluonCV train_imagenet.py's defaults).
Any flag given on the command line overrides the recipe.
"""
import mxnet as mx

from .common import lr_schedule

__all__ = ['RECIPES', 'DIGITS_DEFAULTS', 'resolve_settings', 'build_lr_scheduler', 'make_initializer',
           'apply_no_wd']

# values used when a flag is left at None
RECIPES = {
    'asymmnet': dict(optimizer='nag', momentum=0.9, lr_mode='cosine', warmup_epochs=5, warmup_lr=0.0,
                     base_lr=2.6, base_batch=2048, num_epochs=360, wd=3e-5, no_wd=True,
                     label_smoothing=0.1, init='msraprelu', dtype='float32'),
    'none': dict(optimizer='nag', momentum=0.9, lr_mode='step', warmup_epochs=0, warmup_lr=0.0,
                 base_lr=0.1, base_batch=256, num_epochs=120, wd=1e-4, no_wd=False,
                 label_smoothing=0.0, init='msraprelu', dtype='float32'),
}

# the embedded digits: a few minutes on a 2-core CPU, not 360 ImageNet epochs
DIGITS_DEFAULTS = dict(num_epochs=5, warmup_epochs=1)


def resolve_settings(args, global_batch, source_kind):
    """Fill the recipe-controlled flags left at None; returns a dict of what was decided."""
    recipe = RECIPES[args.recipe]
    decided = {}

    def fill(name, value):
        if getattr(args, name, None) is None:
            setattr(args, name, value)
            decided[name] = value

    if source_kind == 'digits':
        for k, v in DIGITS_DEFAULTS.items():
            fill(k, v)
    for k in ('optimizer', 'momentum', 'lr_mode', 'warmup_epochs', 'warmup_lr', 'num_epochs', 'wd',
              'no_wd', 'label_smoothing', 'dtype'):
        fill(k, recipe[k])
    fill('lr', recipe['base_lr'] * global_batch / float(recipe['base_batch']))
    if args.warmup_epochs > args.num_epochs:
        args.warmup_epochs = args.num_epochs
    return decided


def build_lr_scheduler(args, iters_per_epoch):
    """The run's schedule from its flags (:func:`asymmzoo.train.common.lr_schedule`): linear warmup
    from ``--warmup-lr``, then ``--lr-mode`` down to 0."""
    return lr_schedule(args.lr, args.num_epochs, iters_per_epoch, args.lr_mode, args.warmup_epochs,
                       args.warmup_lr, 0.0, args.lr_decay, str(args.lr_decay_epoch))


def make_initializer(name='msraprelu'):
    name = (name or 'msraprelu').lower()
    if name == 'msraprelu':
        return mx.init.MSRAPrelu()
    if name == 'xavier':
        return mx.init.Xavier(rnd_type='gaussian', factor_type='in', magnitude=2)
    raise ValueError("unknown initializer %r (msraprelu | xavier)" % name)


def apply_no_wd(net):
    """No weight decay on BN parameters and biases (GluonCV's --no-wd)."""
    for name, p in net.collect_params().items():
        if name.endswith(('_beta', '_gamma', '_bias')):
            p.wd_mult = 0.0
