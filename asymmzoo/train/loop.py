"""The training / evaluation loop behind ``train_imagenet.py`` (see :mod:`asymmzoo.train.cli`)."""
import json
import math
import os
import sys
import time

import numpy as np

from .common import seed_all, contexts, check_loss, TrainingDiverged
from ..data.folder import DataError
from ..data.workers import worker_scratch
from ..data.pipelines import build_source, epoch_seed
from .checkpoint import (RunLock, CheckpointError, atomic_write_json, load_resume, net_arrays,
                         restore, save_checkpoint, RESUME_FILE, make_run_folder, remove_unused_run_folder)
from .cli import DEFAULT_MODEL
from .recipe import apply_no_wd, build_lr_scheduler, make_initializer, resolve_settings
from .dist import KVSync
from .report import plot_curves, setup_logger, write_csv

__all__ = ['TrainingDiverged', 'run', 'evaluate', 'export_deployed', 'DEFAULT_DIGITS_INPUT']

DEFAULT_DIGITS_INPUT = 64  # the embedded digits (28x28) are resized to this unless --input-size


def parse_model_kwargs(items):
    """``['r=2', 'dropout=0.1', 'norm_layer=...']`` -> dict with ints / floats / bools parsed."""
    out = {}
    for it in items or []:
        if '=' not in it:
            raise ValueError("--model-kwargs expects key=value pairs, got %r" % it)
        k, v = it.split('=', 1)
        low = v.lower()
        if low in ('true', 'false'):
            val = low == 'true'
        elif low == 'none':
            val = None
        else:
            try:
                val = int(v)
            except ValueError:
                try:
                    val = float(v)
                except ValueError:
                    val = v
        out[k.strip().replace('-', '_')] = val
    return out


def weights_preprocess(args):
    """The preprocessing of the weights ``--pretrained store`` loads (their published row's, or the
    base's for an ``_acb`` twin), else None (ImageNet's mean / std)."""
    if getattr(args, 'pretrained', None) != 'store':
        return None
    from ..registry import preprocess_of
    return preprocess_of(args.model)


def build_net(args, classes, ctx):
    import mxnet as mx
    from ..registry import get_model
    kw = parse_model_kwargs(args.model_kwargs)
    if args.dropout is not None:
        kw['dropout'] = args.dropout
    if args.pretrained == 'store':   # the store's file (fetched when published; a twin from its base)
        net = get_model(args.model, classes=classes, pretrained=True, ctx=ctx[0], **kw)
        net.collect_params().reset_ctx(ctx)
    elif args.pretrained:
        from ..store import load_pretrained
        net = get_model(args.model, classes=classes, **kw)
        load_pretrained(net, args.model.lower(), args.pretrained, ctx=ctx[0])
        net.collect_params().reset_ctx(ctx)
    else:
        net = get_model(args.model, classes=classes, **kw)
        # force: a builder that returns its network initialised (TSN) still starts from --init
        net.initialize(make_initializer(getattr(args, 'init', None)), ctx=ctx, force_reinit=True)
    if args.dtype and args.dtype != 'float32':
        net.cast(args.dtype)
    return net


def _default_save_dir(model, kind):
    base = os.path.join('runs', '%s-%s' % (model.lower(), kind))
    d, i = base, 1
    while os.path.exists(d):
        i += 1
        d = '%s-%d' % (base, i)
    return d


def evaluate(net, source, ctx, dtype='float32'):
    """Top-1 / top-5 of ``net`` on the validation pipeline (inference mode), counted as every
    evaluation of the project (:func:`asymmzoo.train.quick.accuracy`)."""
    from .quick import accuracy
    return accuracy(net, source.val_batches(), ctx, (1, min(5, len(source.classes))), dtype)


def export_deployed(net, save_dir, name, input_shape, probe=None):
    """Deploy ``net`` in place (training-time structures -> plain convs, verified), hybridize and
    export symbol + params. Returns ``(symbol_file, params_file, max_abs_diff_of_reload)``."""
    import mxnet as mx
    from mxnet import gluon
    from ..deploy import deploy
    ctx = list(net.collect_params().values())[0].list_ctx()[0]
    if probe is None:
        probe = mx.nd.array(np.random.RandomState(0).standard_normal(input_shape), ctx=ctx)
    with mx.autograd.predict_mode():
        before = net(probe).asnumpy()
    deploy(net, verify=True, probe=probe)
    net.hybridize()
    with mx.autograd.predict_mode():
        net(probe)
    prefix = os.path.join(save_dir, '%s-deploy' % name)
    from ..io import atomic_export
    sym_file, params_file = atomic_export(net, prefix, epoch=0)
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', UserWarning)  # "Cannot decide type for data": it is float32
        reloaded = gluon.SymbolBlock.imports(sym_file, ['data'], params_file, ctx=ctx)
    after = reloaded(probe).asnumpy()
    return sym_file, params_file, float(np.abs(before - after).max())


def _copy_for_eval(net, eval_net, args, classes, ctx):
    """Validate on a copy: a hybridized inference pass lets MKL-DNN re-lay-out the weights it
    reads, which changes the rounding of later training steps; a run resumed from a checkpoint (no
    such pass before it) would then drift from the uninterrupted run. The copy keeps training exact."""
    import mxnet as mx
    from ..registry import get_model
    if eval_net is None:
        kw = parse_model_kwargs(args.model_kwargs)
        if args.dropout is not None:
            kw['dropout'] = args.dropout
        eval_net = get_model(args.model, classes=classes, **kw)
        eval_net.initialize(mx.init.Zero(), ctx=ctx)
        if args.dtype and args.dtype != 'float32':
            eval_net.cast(args.dtype)
        if args.hybridize:
            eval_net.hybridize(static_alloc=True, static_shape=True)
    dst = eval_net._collect_params_with_prefix()
    for k, p in net._collect_params_with_prefix().items():
        dst[k].set_data(p.data(ctx[0]).copy())
    return eval_net


def _label_targets(label, classes, eta, mixup_lam=None, dtype='float32'):
    import mxnet as mx
    def smooth(y):
        return mx.nd.one_hot(y, classes, on_value=1 - eta + eta / classes, off_value=eta / classes,
                             dtype=dtype)
    if mixup_lam is None:
        return smooth(label)
    return mixup_lam * smooth(label) + (1 - mixup_lam) * smooth(label[::-1])


_HELD_LOCKS = []

# flags whose command-line default is None: left out, they take the resumed run's value, else these
_DEFAULTS = dict(model=DEFAULT_MODEL, model_kwargs=[], batch_size=64, seed=0, recipe='asymmnet',
                 lr_decay=0.1, lr_decay_epoch='40,60', steps_per_epoch=0, crop_ratio=0.875,
                 init='msraprelu', mixup=False, mixup_alpha=0.2, mixup_off_epoch=0)
# what a resumed run may change: applied from the restored step on (the schedule is rebuilt), and
# what it may not (the checkpoint, the data order or the optimizer state depend on it)
_RESUME_APPLIES = ('lr', 'num_epochs', 'lr_mode', 'warmup_epochs', 'warmup_lr', 'lr_decay',
                   'lr_decay_epoch', 'wd', 'momentum', 'label_smoothing', 'crop_ratio', 'mixup',
                   'mixup_alpha', 'mixup_off_epoch')
_RESUME_REFUSES = ('model', 'model_kwargs', 'batch_size', 'input_size', 'seed', 'recipe', 'optimizer',
                   'dtype', 'no_wd', 'dropout', 'steps_per_epoch')
# the data: taken from the run when left out, a new location accepted (and said)
_RESUME_DATA = ('data_dir', 'rec_train', 'rec_train_idx', 'rec_val', 'rec_val_idx', 'num_classes')


def _same_setting(k, a, b):
    if k == 'model':
        return str(a).lower() == str(b).lower()
    if k == 'model_kwargs':
        return parse_model_kwargs(a) == parse_model_kwargs(b)
    return a == b


def _adopt_resumed_settings(args):
    """Fill the flags left out (None) from the resumed run's settings.json, then from _DEFAULTS.
    Returns ``{flag: (run's value, new value)}`` of the flags given with another value than the run's;
    raises ValueError for one that cannot change on resume (with --eval-only: only the model)."""
    prev = {}
    if args.resume:
        path = os.path.join(args.resume, 'settings.json')
        if not os.path.isfile(path) and os.path.isfile(os.path.join(args.resume, RESUME_FILE)):
            raise ValueError("--resume %s: its settings.json is missing (the run writes it when it "
                             "starts; its flags cannot be checked without it): restore it, or start a "
                             "new run" % args.resume)
        if os.path.isfile(path):
            try:
                with open(path) as f:
                    prev = json.load(f)
            except ValueError as e:
                raise ValueError("--resume %s: %s is not valid JSON (%s); it is truncated or was edited"
                                 % (args.resume, path, e))
    changed = {}
    for k in set(_RESUME_APPLIES) | set(_RESUME_REFUSES) | set(_RESUME_DATA) | set(_DEFAULTS):
        if k not in prev and k not in _DEFAULTS:
            continue
        if getattr(args, k, None) is None:
            setattr(args, k, prev.get(k, _DEFAULTS.get(k)))
        elif prev.get(k) is not None and not _same_setting(k, prev[k], getattr(args, k)):
            changed[k] = (prev[k], getattr(args, k))
    fixed = ('model', 'model_kwargs') if args.eval_only else _RESUME_REFUSES
    refused = sorted(k for k in changed if k in fixed)
    if refused:
        raise ValueError("--resume %s: %s cannot change on resume (the checkpoint, the data order or the "
                         "optimizer state depend on it); leave %s out to continue with the run's value, or "
                         "start a new run with another --save-dir" % (
                             args.resume, ', '.join('--%s %r (the run has %r)' % (
                                 k.replace('_', '-'), changed[k][1], changed[k][0]) for k in refused),
                             'it' if len(refused) == 1 else 'them'))
    return {k: v for k, v in changed.items() if k in _RESUME_APPLIES or k in _RESUME_DATA}


_MADE_DIRS = []   # per run: the folders it made (checkpoint.make_run_folder), taken back if it fails


def run(args):
    """Train (or evaluate) as ``args`` say; the save folder is locked for the run's duration, and a
    folder this run made (with parents) is removed again if the run fails before its first checkpoint
    (:func:`asymmzoo.train.checkpoint.remove_unused_run_folder`)."""
    held, made = len(_HELD_LOCKS), len(_MADE_DIRS)
    ok = False
    try:
        with worker_scratch():
            out = _run(args)
        ok = True
        return out
    finally:
        while len(_HELD_LOCKS) > held:
            _HELD_LOCKS.pop().release()
        while len(_MADE_DIRS) > made:
            folders = _MADE_DIRS.pop()
            if not ok:
                import logging
                logger = logging.getLogger('asymmzoo.train')
                for h in list(logger.handlers):
                    if isinstance(h, logging.FileHandler):   # let go of train.log first
                        logger.removeHandler(h)
                        h.close()
                remove_unused_run_folder(folders)


# what ``asymmzoo launch`` (or MXNet's tools/launch.py) sets for each worker
_DIST_ENV = ('DMLC_ROLE', 'DMLC_PS_ROOT_URI', 'DMLC_PS_ROOT_PORT', 'DMLC_NUM_WORKER', 'DMLC_NUM_SERVER')
# the script that trains each task's models
_TASK_SCRIPTS = {'detection': 'python -m downstream.detection.train_yolo3',
                 'pose': 'python -m downstream.pose.train_simple_pose',
                 'action': 'python -m downstream.action.train_tsn',
                 'face': 'python -m downstream.face.train_arcface'}


def _check_classifier(model):
    """train_imagenet trains classifiers: refuse a registered model of another task, naming the
    script that trains it."""
    from ..registry import get_spec
    task = get_spec(model).task
    if task != 'classification':
        raise ValueError("%s is a %s model; this script trains image classifiers: train it with %s"
                         % (model, task, _TASK_SCRIPTS.get(task, 'the downstream script of its task')))


def _run(args):
    """Train (or evaluate with ``args.eval_only``) according to parsed ``args``; returns a summary."""
    t_start = time.time()
    import mxnet as mx
    from mxnet import autograd, gluon
    from ..registry import get_model, is_registered

    resume_changes = _adopt_resumed_settings(args)
    if args.params and not args.eval_only:
        raise ValueError("--params FILE is read by --eval-only; to start training from weights, pass "
                         "--pretrained FILE")
    if args.data_dir and (args.rec_train or args.rec_val):
        raise ValueError("give either --data-dir (an ImageFolder) or the --rec-* RecordIO files, not both")
    if not is_registered(args.model):
        get_model(args.model)  # raises the registry's ValueError with the closest names
    _check_classifier(args.model)
    kv = None
    if args.kvstore and args.kvstore.startswith('dist'):
        if 'async' in args.kvstore:
            raise ValueError("--kvstore %s: only dist_sync / dist_device_sync are supported (exact, "
                             "reproducible updates)" % args.kvstore)
        missing = [k for k in _DIST_ENV if not os.environ.get(k)]
        if missing:
            raise ValueError("--kvstore %s needs the environment of a distributed launch (%s not set); "
                             "start the workers with: asymmzoo launch -n N -- python train_imagenet.py "
                             "--kvstore %s ..." % (args.kvstore, ', '.join(missing), args.kvstore))
        kv = mx.kv.create(args.kvstore)
    rank, nworkers = (kv.rank, kv.num_workers) if kv else (0, 1)
    ctx = contexts(args.gpus)
    if args.dtype == 'float16' and ctx[0].device_type == 'cpu':
        raise ValueError("--dtype float16 needs --gpus: MXNet has no float16 GEMM / convolution on the "
                         "CPU (train in float32 there)")
    seed_all(args.seed)

    # ------------------------------------------------------------------ output folder / resume
    resume_state = None
    if args.resume:
        resume_state = load_resume(args.resume)
        if args.save_dir is None:
            args.save_dir = args.resume
    if args.save_dir is None:
        if kv is not None:
            raise ValueError("distributed runs need an explicit --save-dir (the same on every worker)")
        kind = 'record' if (args.rec_train or args.rec_val) else ('folder' if args.data_dir else 'digits')
        args.save_dir = _default_save_dir(args.model, kind) if not args.eval_only else None
    elif (not args.eval_only and rank == 0
          and (not args.resume or os.path.abspath(args.save_dir) != os.path.abspath(args.resume))
          and os.path.isfile(os.path.join(args.save_dir, RESUME_FILE))):
        raise ValueError("%s already holds a run's checkpoints; pass --resume %s to continue it, or "
                         "choose another --save-dir (nothing is overwritten)" % (args.save_dir, args.save_dir))
    # what the model takes: channels (digits can be fed as 1 or 3 channels) and a small native size
    probe = get_model(args.model, **parse_model_kwargs(args.model_kwargs))
    in_ch = int(getattr(probe, 'in_channels', 3) or 3)
    native = getattr(probe, 'default_input_shape', None)
    del probe
    digits = not (args.rec_train or args.rec_val or args.data_dir)
    # weights from the store bring their preprocessing (mean / std, input size of their run)
    pp = weights_preprocess(args) if not digits else None
    if args.input_size is None:
        args.input_size = DEFAULT_DIGITS_INPUT if digits else (pp.input_size if pp else 224)
        if digits and native and native[-1] < DEFAULT_DIGITS_INPUT:
            args.input_size = int(native[-1])
    if pp is not None and args.crop_ratio is None:
        args.crop_ratio = pp.crop_ratio          # the evaluation crop of the weights' run
    if in_ch not in (1, 3) or (in_ch == 1 and not digits):
        raise ValueError("%s takes %d-channel input; the ImageFolder / RecordIO pipelines give RGB "
                         "(only the embedded digits can be fed as 1 or 3 channels)" % (args.model, in_ch))
    norm = dict(mean=tuple(v / 255.0 for v in pp.mean), std=tuple(v / 255.0 for v in pp.std)) if pp else {}
    source = build_source(
        channels=in_ch, data_dir=args.data_dir, rec_train=args.rec_train, rec_train_idx=args.rec_train_idx,
        rec_val=args.rec_val, rec_val_idx=args.rec_val_idx, num_classes=args.num_classes,
        batch_size=args.batch_size * len(ctx), input_size=args.input_size,
        num_workers=args.num_workers, crop_ratio=args.crop_ratio, num_parts=nworkers,
        part_index=rank, seed=args.seed, max_steps=args.steps_per_epoch, **norm)
    global_batch = args.batch_size * len(ctx) * nworkers
    decided = resolve_settings(args, global_batch, source.kind)
    if resume_state is not None and not args.eval_only and resume_state['epoch'] + 1 >= args.num_epochs:
        raise ValueError("--resume %s: the run already finished its %d epochs (its results stay as they "
                         "are); pass --num-epochs N (more than %d) to train it further, or --eval-only "
                         "to evaluate it" % (args.resume, resume_state['epoch'] + 1,
                                             resume_state['epoch'] + 1))

    log_file = None
    if args.save_dir and rank == 0:
        made = make_run_folder(args.save_dir)
        if made:                 # removed again if this run fails before its first checkpoint
            _MADE_DIRS.append(made)
        if not args.eval_only:   # one run at a time in a folder (a second would overwrite the first)
            _HELD_LOCKS.append(RunLock(args.save_dir))
        log_file = os.path.join(args.save_dir, 'eval.log' if args.eval_only else 'train.log')
    logger = setup_logger(log_file, quiet=args.quiet,
                          prefix='[worker %d/%d] ' % (rank, nworkers) if nworkers > 1 else '')
    logger.info("asymmzoo train: %s on %s | %s", args.model, ','.join(str(c) for c in ctx),
                source.describe())
    if pp is not None:
        logger.info("normalising with the pretrained weights' preprocessing: mean %s, std %s (pixels)",
                    '/'.join('%g' % v for v in pp.mean), '/'.join('%g' % v for v in pp.std))

    net = build_net(args, len(source.classes), ctx)
    if args.hybridize:
        net.hybridize(static_alloc=True, static_shape=True)

    if args.eval_only:
        return _eval_only(args, net, source, ctx, logger, resume_state)

    if args.no_wd:
        apply_no_wd(net)
    steps = source.steps_per_epoch
    opt_params = dict(wd=args.wd, momentum=args.momentum,
                      lr_scheduler=build_lr_scheduler(args, steps))
    if args.optimizer not in ('nag', 'sgd'):
        opt_params.pop('momentum')
    if args.dtype != 'float32':
        opt_params['multi_precision'] = True
    # the Trainer stays local (its optimizer state is what checkpoints save); KVSync all-reduces
    sync_kv = kv if kv is not None else (mx.kv.create(args.kvstore or 'device') if len(ctx) > 1 else None)
    sync = KVSync(sync_kv, net, ctx) if sync_kv is not None else None
    trainer = gluon.Trainer(net.collect_params(), args.optimizer, opt_params, kvstore=None)

    settings = {k: v for k, v in sorted(vars(args).items()) if k != 'func'}
    settings.update(_decided_by_recipe=sorted(decided), _data=source.describe(),
                    _global_batch=global_batch, _num_workers=nworkers, _mxnet=mx.__version__)
    start_epoch, global_step, best, best_epoch, history = 0, 0, -1.0, -1, []
    if resume_state is not None:
        restore(resume_state, net, trainer, ctx)
        start_epoch = resume_state['epoch'] + 1
        global_step = resume_state.get('global_step', 0)
        best, best_epoch = resume_state.get('best_top1', -1.0), resume_state.get('best_epoch', -1)
        history = resume_state.get('history', [])
        if set(resume_changes) & set(_RESUME_APPLIES):
            # applied from here on: the schedule rebuilt from the new settings at the restored step
            trainer._optimizer.lr_scheduler = opt_params['lr_scheduler']
            trainer._optimizer.wd = args.wd
            if 'momentum' in opt_params:
                trainer._optimizer.momentum = args.momentum
        if resume_changes:
            logger.info("changed on resume (applied from step %d): %s", global_step, ', '.join(
                '%s %r -> %r' % (k, a, b) for k, (a, b) in sorted(resume_changes.items())))
        logger.info("resumed from %s at epoch %d (global step %d, best top-1 %.4f)",
                    args.resume, start_epoch, global_step, max(best, 0))
    if kv is not None:
        sync.broadcast_params()  # identical start on every worker (also after a resume)
    if rank == 0:
        atomic_write_json(settings, os.path.join(args.save_dir, 'settings.json'))
    logger.info("settings: lr %.5g (%s, warmup %d), %d epochs, batch %d/device x %d device(s) x %d "
                "worker(s), %s momentum %s, wd %g%s, label smoothing %s%s, dtype %s -> %s",
                args.lr, args.lr_mode, args.warmup_epochs, args.num_epochs, args.batch_size, len(ctx),
                nworkers, args.optimizer, args.momentum, args.wd, ' (not on BN/bias)' if args.no_wd else '',
                args.label_smoothing, ', mixup %.2f' % args.mixup_alpha if args.mixup else '',
                args.dtype, args.save_dir)

    dense = bool(args.label_smoothing) or args.mixup
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss(sparse_label=not dense)
    classes = len(source.classes)
    step_delay = float(os.environ.get('ASYMMZOO_STEP_DELAY', '0') or 0)  # test hook: slow steps down
    show_bar = rank == 0 and not args.no_progress and not args.quiet
    train_time, train_imgs = 0.0, 0
    eval_net = None
    from tqdm import tqdm
    for epoch in range(start_epoch, args.num_epochs):
        es = epoch_seed(args.seed, epoch)
        seed_all(es)
        acc = mx.metric.Accuracy()
        loss_sum, n_seen, t0 = 0.0, 0, time.time()
        skipped0 = source.skipped
        bar = tqdm(total=steps, desc='epoch %d/%d' % (epoch + 1, args.num_epochs), unit='step',
                   disable=not show_bar, file=sys.stderr, mininterval=0.5, leave=False)
        for i, (data, label) in enumerate(source.train_batches(epoch)):
            n = data.shape[0]
            lam = None
            if args.mixup and epoch < args.num_epochs - args.mixup_off_epoch:
                lam = float(np.random.beta(args.mixup_alpha, args.mixup_alpha))
                data = lam * data + (1 - lam) * data[::-1]
            target = _label_targets(label, classes, float(args.label_smoothing or 0), lam) if dense else label
            xs = gluon.utils.split_and_load(data.astype(args.dtype), ctx, even_split=False)
            ys = gluon.utils.split_and_load(target.astype(args.dtype) if dense else target, ctx,
                                            even_split=False)
            with autograd.record():
                outs = [net(x) for x in xs]
                losses = [loss_fn(o, y) for o, y in zip(outs, ys)]
            for lo in losses:
                lo.backward()
            if sync is not None:
                sync.allreduce_grads()
            trainer.update(n * nworkers)
            batch_loss = sum(float(lo.sum().asscalar()) for lo in losses)
            if not math.isfinite(batch_loss):
                bar.close()
                last = os.path.join(args.save_dir, RESUME_FILE)
                check_loss(batch_loss, "epoch %d step %d (lr %.4g)" % (epoch + 1, i + 1, trainer.learning_rate),
                           ("The last good checkpoint is kept (%s): lower --lr or raise --warmup-epochs "
                            "and continue with --resume %s" % (last, args.save_dir)) if os.path.isfile(last)
                           else "No epoch had finished, so there is no checkpoint: start again with a "
                                "lower --lr or more --warmup-epochs")
            if lam is None:
                acc.update(gluon.utils.split_and_load(label, ctx, even_split=False),
                           [o.astype('float32') for o in outs])
            loss_sum += batch_loss
            n_seen += n
            global_step += 1
            bar.set_postfix(loss='%.3f' % (loss_sum / n_seen), lr='%.4g' % trainer.learning_rate,
                            refresh=False)
            bar.update(1)
            if step_delay:
                time.sleep(step_delay)
        bar.close()
        if n_seen == 0:
            raise DataError("epoch %d trained on no image: %s" % (
                epoch + 1, "all %d train images that were read failed to decode (corrupt or not "
                "images); check the train split" % (source.skipped - skipped0)
                if source.skipped > skipped0 else "the train split gave no batch"))
        mx.nd.waitall()
        dt = time.time() - t0
        train_time += dt
        train_imgs += n_seen
        if sync is not None:
            sync.average_aux()
        if rank == 0:
            eval_net = _copy_for_eval(net, eval_net, args, classes, ctx)
            top1, top5 = evaluate(eval_net, source, ctx, args.dtype)
        else:
            top1 = top5 = float('nan')
        row = dict(epoch=epoch + 1, train_loss=round(loss_sum / max(n_seen, 1), 6),
                   train_acc=round(acc.get()[1], 6) if acc.num_inst else '',
                   val_top1=round(top1, 6), val_top5=round(top5, 6),
                   lr=round(trainer.learning_rate, 8), epoch_time_s=round(dt, 3),
                   img_per_s=round(n_seen * nworkers / dt, 1), skipped_images=source.skipped - skipped0)
        history.append(row)
        val = ("val top-1 %.4f top-5 %.4f" % (top1, top5)) if rank == 0 else "validated by worker 0"
        logger.info("[epoch %d/%d] loss %.4f train-acc %s | %s | lr %.4g | "
                    "%.1fs, %.0f img/s%s", epoch + 1, args.num_epochs, row['train_loss'],
                    row['train_acc'], val, row['lr'], dt, row['img_per_s'],
                    (" | %d corrupt image(s) skipped" % row['skipped_images']) if row['skipped_images'] else '')
        if rank == 0:
            if top1 > best:
                best, best_epoch = top1, epoch + 1
                from ..io import atomic_save_params
                atomic_save_params(net_arrays(net), os.path.join(args.save_dir, 'best.params'))
            last_epoch = epoch + 1 == args.num_epochs
            if last_epoch or (epoch + 1) % max(1, args.save_frequency) == 0:
                save_checkpoint(args.save_dir, epoch, net, trainer,
                                dict(global_step=global_step, best_top1=best, best_epoch=best_epoch,
                                     history=history, mx_seed=es, model=args.model),
                                keep=args.keep_checkpoints)
            write_csv(history, os.path.join(args.save_dir, 'metrics.csv'))
            plot_curves(history, os.path.join(args.save_dir, 'curve.png'),
                        '%s on %s' % (args.model, source.kind))

    # ------------------------------------------------------------------ after training
    summary = dict(model=args.model, save_dir=os.path.abspath(args.save_dir), epochs=args.num_epochs,
                   rank=rank, num_workers=nworkers)
    from ..io import atomic_save_params
    if kv is not None:
        atomic_save_params(net_arrays(net), os.path.join(args.save_dir, 'worker%d-final.params' % rank))
    if rank != 0:
        return summary
    final_params = atomic_save_params(net_arrays(net), os.path.join(args.save_dir, 'final.params'))
    top1, top5 = (history[-1]['val_top1'], history[-1]['val_top5']) if history else \
        evaluate(net, source, ctx, args.dtype)
    summary.update(top1=top1, top5=top5, best_top1=best, best_epoch=best_epoch,
                   final_params=final_params, skipped_images=source.skipped,
                   train_img_per_s=round(train_imgs * nworkers / train_time, 1) if train_time else None)
    if not args.no_export:
        shape = (2, in_ch, source.input_size, source.input_size)
        sym, prm, diff = export_deployed(net, args.save_dir, args.model.lower(), shape)
        summary.update(export_symbol=sym, export_params=prm, export_max_abs_diff=diff)
        logger.info("deployed + exported: %s, %s (reload differs by %.2g)", sym, prm, diff)
    summary['wall_time_s'] = round(time.time() - t_start, 1)
    atomic_write_json(summary, os.path.join(args.save_dir, 'summary.json'))
    logger.info("done in %.1fs (%s img/s training): top-1 %.4f top-5 %.4f (best top-1 %.4f at epoch %d)"
                " -> %s", summary['wall_time_s'], summary['train_img_per_s'], top1, top5, best,
                best_epoch, args.save_dir)
    return summary


def _eval_only(args, net, source, ctx, logger, resume_state):
    if args.params:
        path = args.params
    elif resume_state is not None:
        best = os.path.join(args.resume, 'best.params')
        path = best if os.path.isfile(best) else resume_state['params']
    elif args.pretrained:
        path = None
    else:
        raise ValueError("--eval-only needs weights: --params FILE, --resume RUN_DIR or --pretrained")
    if path is not None:
        from ..io import load_params_into
        from ..store import StoreError
        if not os.path.isfile(path):
            raise CheckpointError("--params %s: no such file" % path)
        try:
            load_params_into(net, path, ctx=ctx[0])
        except StoreError as e:
            raise CheckpointError(str(e))
        net.collect_params().reset_ctx(ctx)
    top1, top5 = evaluate(net, source, ctx, args.dtype)
    logger.info("eval %s (%s) on %s: top-1 %.4f top-5 %.4f", args.model, path or 'pretrained',
                source.kind, top1, top5)
    return dict(model=args.model, params=path, top1=top1, top5=top5)
