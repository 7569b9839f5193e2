"""train_imagenet.py: embedded default run, exact resume after a real kill, a real dist_sync job on
127.0.0.1, bad input, RecordIO packing. End-to-end runs are tiny (32 px, few steps) and marked slow."""
import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, 'train_imagenet.py')
TINY = ['--batch-size', '32', '--no-progress', '--input-size', '32']


def _env(**extra):
    env = dict(os.environ)
    env.update(MPLBACKEND='Agg', OMP_NUM_THREADS='1', PYTHONPATH=ROOT)
    env.update({k: str(v) for k, v in extra.items()})
    return env


def _run(args, timeout=240, **env):
    return subprocess.run([sys.executable, SCRIPT] + list(args), cwd=ROOT, env=_env(**env),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout, text=True)


def _load(path):
    import mxnet as mx
    return {k: v.asnumpy() for k, v in mx.nd.load(path).items()}


def _read_csv(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def _main(argv, capsys=None):
    from asymmzoo.train.cli import main
    return main(list(argv))


# ------------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_embedded_default_one_short_epoch(tmp_path):
    out = tmp_path / 'run'
    # the embedded default (asymmnet_small_0.35, digits at 64 px, batch 64, NAG, label smoothing),
    # one epoch (62 steps) with a cosine lr from 0.1 and no warmup
    r = _run(['--num-epochs', '1', '--warmup-epochs', '0', '--lr', '0.1', '--save-dir', str(out)])
    assert r.returncode == 0, r.stderr[-3000:]
    assert 'top-1' in r.stderr
    rows = _read_csv(out / 'metrics.csv')
    assert len(rows) == 1
    top1, top5 = float(rows[0]['val_top1']), float(rows[0]['val_top5'])
    assert top1 > 0.5, rows  # chance is 0.1 (0.73 and 0.85 measured with seeds 1 and 2)
    assert top5 > 0.85, rows  # chance is 0.5
    for f in ('epoch0000.params', 'epoch0000.states', 'resume.json', 'best.params', 'final.params',
              'curve.png', 'train.log', 'settings.json', 'summary.json',
              'asymmnet_small_0.35-deploy-symbol.json', 'asymmnet_small_0.35-deploy-0000.params'):
        assert (out / f).is_file(), f
    assert (out / 'curve.png').read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    settings = json.loads((out / 'settings.json').read_text())
    assert settings['recipe'] == 'asymmnet' and settings['optimizer'] == 'nag'
    assert settings['label_smoothing'] == 0.1 and settings['no_wd'] is True
    assert settings['lr'] == 0.1 and settings['input_size'] == 64 and settings['batch_size'] == 64
    assert settings['wd'] == 3e-5 and settings['momentum'] == 0.9 and settings['lr_mode'] == 'cosine'

    # the exported (deployed) model reproduces the trained model's predictions
    import mxnet as mx
    from mxnet import gluon
    import asymmzoo
    from asymmzoo.data import load_digits
    from asymmzoo.data.pipelines import digits_to_input
    net = asymmzoo.get_model('asymmnet_small_0.35', classes=10)
    net.load_parameters(str(out / 'final.params'))
    exported = gluon.SymbolBlock.imports(str(out / 'asymmnet_small_0.35-deploy-symbol.json'), ['data'],
                                         str(out / 'asymmnet_small_0.35-deploy-0000.params'))
    xv, yv = load_digits('val')
    xall = digits_to_input(xv, 64)
    a, b = [], []
    for i in range(0, len(xall), 250):
        x = mx.nd.array(xall[i:i + 250])
        with mx.autograd.predict_mode():
            a.append(net(x).asnumpy())
        b.append(exported(x).asnumpy())
    a, b = np.concatenate(a), np.concatenate(b)
    assert np.allclose(a, b, rtol=1e-4, atol=1e-4), np.abs(a - b).max()
    assert (a.argmax(1) == b.argmax(1)).mean() > 0.995
    assert abs((a.argmax(1) == yv).mean() - top1) < 0.006  # the very model the run validated


# ------------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_resume_after_kill_matches_uninterrupted_run(tmp_path):
    common = TINY + ['--num-epochs', '3', '--steps-per-epoch', '6', '--seed', '3', '--no-export',
                     '--mixup', '--dropout', '0.2']
    ref = tmp_path / 'ref'
    r = _run(common + ['--save-dir', str(ref)])
    assert r.returncode == 0, r.stderr[-3000:]

    run = tmp_path / 'killed'
    p = subprocess.Popen([sys.executable, SCRIPT] + common + ['--save-dir', str(run)], cwd=ROOT,
                         env=_env(ASYMMZOO_STEP_DELAY=0.4), stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.time() + 120
        while not (run / 'resume.json').exists():  # epoch 1 checkpointed, epoch 2 under way
            assert p.poll() is None, "training ended before it could be killed"
            assert time.time() < deadline, "no checkpoint within 120 s"
            time.sleep(0.05)
        time.sleep(1.0)  # a couple of steps into epoch 2
        os.killpg(p.pid, signal.SIGKILL)
        p.wait(30)
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait(30)
    assert p.returncode == -signal.SIGKILL
    assert json.loads((run / 'resume.json').read_text())['epoch'] == 0
    assert not (run / 'final.params').exists()

    r = _run(common + ['--resume', str(run)])
    assert r.returncode == 0, r.stderr[-3000:]
    assert 'resumed from' in r.stderr
    a, b = _load(str(ref / 'final.params')), _load(str(run / 'final.params'))
    assert sorted(a) == sorted(b)
    for k in a:
        assert np.allclose(a[k], b[k], rtol=1e-5, atol=1e-6), (k, np.abs(a[k] - b[k]).max())
    ra, rb = _read_csv(ref / 'metrics.csv'), _read_csv(run / 'metrics.csv')
    assert [r['epoch'] for r in rb] == ['1', '2', '3']
    assert [r['val_top1'] for r in ra] == [r['val_top1'] for r in rb]


# ------------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_dist_sync_two_workers_on_loopback(tmp_path):
    from asymmzoo.launch import launch_local
    out, logs = tmp_path / 'dist', tmp_path / 'logs'
    cmd = [sys.executable, SCRIPT, '--kvstore', 'dist_sync', '--save-dir', str(out), '--num-epochs', '3',
           '--steps-per-epoch', '8', '--lr', '0.1', '--lr-mode', 'constant', '--warmup-epochs', '0',
           '--label-smoothing', '0', '--no-export', '--seed', '1', '--batch-size', '32', '--no-progress',
           '--input-size', '64']
    codes = launch_local(cmd, num_workers=2, num_servers=1, timeout=150, log_dir=str(logs),
                         env=_env(), server_grace=15, verbose=False)
    assert codes == [0, 0]
    w0 = (logs / 'worker0.log').read_text()
    assert 'shard 0 of 2' in w0 or 'shard 1 of 2' in w0
    shards = {('shard %d of 2' % i) for i in range(2)
              for f in ('worker0.log', 'worker1.log') if 'shard %d of 2' % i in (logs / f).read_text()}
    assert shards == {'shard 0 of 2', 'shard 1 of 2'}  # each worker on its own shard
    a, b = _load(str(out / 'worker0-final.params')), _load(str(out / 'worker1-final.params'))
    assert sorted(a) == sorted(b)
    for k in a:  # identical up to float32 rounding of the update kernels
        assert np.allclose(a[k], b[k], rtol=1e-5, atol=1e-6), (k, np.abs(a[k] - b[k]).max())
    rows = _read_csv(out / 'metrics.csv')
    losses = [float(r['train_loss']) for r in rows]
    assert losses[-1] < losses[0] - 0.1, losses
    settings = json.loads((out / 'settings.json').read_text())
    assert settings['_num_workers'] == 2 and settings['_global_batch'] == 64


def test_launch_prints_cluster_commands(capsys):
    from asymmzoo.cli import main
    assert main(['launch', '-n', '2', '-s', '1', '-H', 'h1,h2', '--port', '9000', '--',
                 'python', 'train_imagenet.py', '--kvstore', 'dist_sync']) == 0
    out = capsys.readouterr().out
    assert out.count('DMLC_ROLE=worker') == 2 and out.count('DMLC_ROLE=server') == 1
    assert 'DMLC_ROLE=scheduler' in out and 'DMLC_PS_ROOT_URI=h1' in out
    assert 'DMLC_PS_ROOT_PORT=9000' in out and 'DMLC_NUM_WORKER=2' in out


def test_launch_failing_worker_stops_the_job(tmp_path):
    from asymmzoo.launch import launch_local, LaunchError
    t = time.time()
    with pytest.raises(LaunchError, match='worker'):
        launch_local([sys.executable, '-c', 'import sys; sys.exit(3)'], 2, 1, timeout=60,
                     log_dir=str(tmp_path), verbose=False)
    assert time.time() - t < 30


# ------------------------------------------------------------------------------------------------
def _jpeg_folder(root, classes=('cat', 'dog'), per_class=6, size=40, seed=0):
    import cv2
    rng = np.random.RandomState(seed)
    for split in ('train', 'val'):
        for ci, c in enumerate(classes):
            d = root / split / c
            d.mkdir(parents=True, exist_ok=True)
            for i in range(per_class):
                img = np.full((size, size + 8, 3), 60 + 120 * ci, np.uint8)
                img = np.clip(img + rng.randint(0, 30, img.shape), 0, 255).astype(np.uint8)
                cv2.imwrite(str(d / ('%s_%d.jpg' % (c, i))), img)
    return root


def test_bad_input_missing_and_empty_data_dir(tmp_path, capsys):
    assert _main(['--data-dir', str(tmp_path / 'nope')] + TINY) == 2
    err = capsys.readouterr().err
    assert 'does not exist' in err and 'train/<class>' in err
    (tmp_path / 'empty').mkdir()
    assert _main(['--data-dir', str(tmp_path / 'empty')] + TINY) == 2
    assert 'is empty' in capsys.readouterr().err
    (tmp_path / 'noclass' / 'train').mkdir(parents=True)
    (tmp_path / 'noclass' / 'val').mkdir(parents=True)
    assert _main(['--data-dir', str(tmp_path / 'noclass')] + TINY) == 2
    assert 'no class folders' in capsys.readouterr().err


def test_bad_input_class_mismatch(tmp_path, capsys):
    root = _jpeg_folder(tmp_path / 'd', per_class=2)
    shutil.move(str(root / 'val' / 'dog'), str(root / 'val' / 'wolf'))
    assert _main(['--data-dir', str(root)] + TINY) == 2
    err = capsys.readouterr().err
    assert 'class folders differ' in err and "only in train: ['dog']" in err and "['wolf']" in err


def test_bad_input_unknown_model(capsys):
    assert _main(['--model', 'asymmnet_smal_0.35'] + TINY) == 2
    err = capsys.readouterr().err
    assert 'unknown model' in err and 'asymmnet_small_0.35' in err


def test_bad_input_save_dir_holding_a_run_is_not_overwritten(tmp_path, capsys):
    d = tmp_path / 'run'
    d.mkdir()
    (d / 'resume.json').write_text('{}')
    assert _main(['--save-dir', str(d)] + TINY) == 2
    assert '--resume' in capsys.readouterr().err
    assert (d / 'resume.json').read_text() == '{}'


@pytest.fixture(scope='module')
def tiny_run(tmp_path_factory):
    d = tmp_path_factory.mktemp('tiny') / 'run'
    assert _main(TINY + ['--num-epochs', '1', '--steps-per-epoch', '2', '--no-export', '-q',
                         '--save-dir', str(d)]) == 0
    return d


def test_bad_input_truncated_checkpoint(tiny_run, tmp_path, capsys):
    d = tmp_path / 'copy'
    shutil.copytree(str(tiny_run), str(d))
    p = d / 'epoch0000.params'
    p.write_bytes(p.read_bytes()[:len(p.read_bytes()) // 2])
    assert _main(TINY + ['--num-epochs', '2', '--resume', str(d)]) == 2
    err = capsys.readouterr().err
    assert 'truncated or corrupted' in err and 'epoch0000.params' in err
    # a truncated resume.json, and a missing folder
    shutil.rmtree(str(d))
    shutil.copytree(str(tiny_run), str(d))
    (d / 'resume.json').write_text((d / 'resume.json').read_text()[:40])
    assert _main(TINY + ['--resume', str(d)]) == 2
    assert 'not valid JSON' in capsys.readouterr().err
    assert _main(TINY + ['--resume', str(tmp_path / 'nothing')]) == 2
    assert 'no such folder' in capsys.readouterr().err


def test_eval_only_of_a_checkpoint(tiny_run, capsys):
    assert _main(TINY + ['--eval-only', '--resume', str(tiny_run)]) == 0
    assert 'top-1' in capsys.readouterr().err


@pytest.mark.slow
def test_corrupt_jpeg_is_skipped_and_counted(tmp_path):
    root = _jpeg_folder(tmp_path / 'd', per_class=8)
    (root / 'train' / 'cat' / 'broken.jpg').write_bytes(b'\xff\xd8\xff\xe0 this is not a jpeg')
    (root / 'train' / 'dog' / 'empty.jpg').write_bytes(b'')
    out = tmp_path / 'run'
    assert _main(['--data-dir', str(root), '--batch-size', '9', '--input-size', '32', '--num-epochs',
                  '1', '--no-export', '--no-progress', '--save-dir', str(out)]) == 0
    rows = _read_csv(out / 'metrics.csv')
    assert rows[0]['skipped_images'] == '2'
    assert '2 corrupt image(s) skipped' in (out / 'train.log').read_text()


@pytest.mark.slow
def test_pack_round_trip_and_train_on_recordio(tmp_path, capsys):
    import mxnet as mx
    from asymmzoo.cli import main
    root = _jpeg_folder(tmp_path / 'd', per_class=6)
    (root / 'val' / 'dog' / 'bad.jpg').write_bytes(b'garbage')
    assert main(['pack', str(root), str(tmp_path / 'rec'), '-q']) == 0
    out = capsys.readouterr().out
    assert 'skipped 1' in out and '--rec-train' in out
    rec = mx.recordio.MXIndexedRecordIO(str(tmp_path / 'rec' / 'train.idx'),
                                        str(tmp_path / 'rec' / 'train.rec'), 'r')
    assert len(rec.keys) == 12
    labels = []
    for k in rec.keys:
        header, img = mx.recordio.unpack_img(rec.read_idx(k))
        labels.append(int(header.label))
        expect = 60 + 120 * int(header.label)
        assert img.shape == (40, 48, 3) and abs(img.mean() - expect - 14.5) < 6
    rec.close()
    assert labels == [0] * 6 + [1] * 6
    run = tmp_path / 'run'
    r = tmp_path / 'rec'
    assert main(['train', '--rec-train', str(r / 'train.rec'), '--rec-train-idx', str(r / 'train.idx'),
                 '--rec-val', str(r / 'val.rec'), '--rec-val-idx', str(r / 'val.idx'), '--batch-size', '4',
                 '--input-size', '32', '--num-epochs', '1', '--no-export', '--no-progress',
                 '--save-dir', str(run)]) == 0
    rows = _read_csv(run / 'metrics.csv')
    assert len(rows) == 1 and 0 <= float(rows[0]['val_top1']) <= 1
    assert 'record: 2 classes, 12 train / 12 val' in (run / 'train.log').read_text()


def test_nan_loss_stops_with_a_clear_message(tmp_path, capsys):
    d = tmp_path / 'a' / 'run'
    assert _main(TINY + ['--lr', '1e30', '--warmup-epochs', '0', '--lr-mode', 'constant',
                         '--steps-per-epoch', '4', '--num-epochs', '1', '--save-dir', str(d)]) == 3
    err = capsys.readouterr().err
    assert 'loss is nan' in err or 'loss is inf' in err
    assert 'lower --lr' in err
    # no checkpoint: the folder the run made goes, with its settings / log / lock and the parent made
    # with it
    assert not (tmp_path / 'a').exists(), os.listdir(str(tmp_path / 'a'))
    kept = tmp_path / 'kept'
    kept.mkdir()
    (kept / 'notes.txt').write_text("the user's")
    assert _main(TINY + ['--lr', '1e30', '--warmup-epochs', '0', '--lr-mode', 'constant',
                         '--steps-per-epoch', '4', '--num-epochs', '1', '--save-dir', str(kept)]) == 3
    assert (kept / 'notes.txt').read_text() == "the user's"


# ------------------------------------------------------------------------------------------------
# one schedule for every run: train_imagenet's flags, the task scripts' make_trainer, quick fit

def test_lr_schedule_warmup_then_mode():
    from asymmzoo.train.common import lr_schedule
    s = lr_schedule(0.4, 5, 10, 'cosine', warmup_epochs=1, warmup_lr=0.0)
    lrs = [s(u) for u in range(1, 51)]
    assert lrs[0] == pytest.approx(0.4 / 9) and lrs[8] == pytest.approx(0.4)   # warmup: 10 steps, 0..9
    assert lrs[9] == pytest.approx(0.4) and lrs[-1] == 0.0                     # cosine over epochs 2-5
    assert all(a >= b for a, b in zip(lrs[9:], lrs[10:]))
    # 'step': x0.1 from the first update of each decay epoch on (4 updates an epoch)
    s = lr_schedule(0.1, 3, 4, 'step', decay_epochs=(1, 2))
    assert [s(u) for u in range(1, 13)] == pytest.approx([0.1] * 4 + [0.01] * 4 + [0.001] * 4)
    with pytest.raises(ValueError, match='choose one of cosine, step'):
        lr_schedule(0.1, 3, 4, 'cosin')


def test_lr_schedule_one_step_phases_hold_their_value():
    """A phase of a single step (one-image epochs) holds its first value: GluonCV's own schedule
    divides by zero there, and the task scripts' trainer did."""
    import mxnet as mx
    from asymmzoo.train.common import lr_schedule
    from asymmzoo.train.engine import make_trainer
    s = lr_schedule(0.4, 2, 1, 'cosine', warmup_epochs=1, warmup_lr=0.01)
    assert [s(0), s(1), s(2)] == [0.01, 0.4, 0.4]   # steps 0, 1, 2 (updates ask from step 1 on)
    net = mx.gluon.nn.Dense(2)
    net.initialize()
    t = make_trainer(net, 'sgd', 0.4, 2, 1, warmup_epochs=1, warmup_lr=0.01)
    assert [t._optimizer.lr_scheduler(u) for u in (0, 1, 2)] == [0.01, 0.4, 0.4]


def test_train_imagenet_and_task_scripts_schedule_alike():
    """Both builders against the closed form: 6 steps an epoch, 1 warmup epoch from 0.01 to 0.3
    (GluonCV's linear phase over steps 0..5; update u runs at step u), then 3 epochs of cosine to 0,
    or x0.5 from the first update of epochs 2 and 3."""
    import argparse
    import math
    import mxnet as mx
    from asymmzoo.train.engine import make_trainer
    from asymmzoo.train.recipe import build_lr_scheduler

    def expected(u, mode):
        if u < 6:
            return 0.3 + (0.01 - 0.3) * (1 - u / 5.0)
        if mode == 'cosine':
            return 0.3 * (1 + math.cos(math.pi * min(u - 6, 17) / 17.0)) / 2
        return 0.3 * 0.5 ** sum(u >= e * 6 + 1 for e in (2, 3))
    for mode, dec in (('cosine', ''), ('step', '2,3')):
        a = argparse.Namespace(lr=0.3, num_epochs=4, warmup_epochs=1, warmup_lr=0.01, lr_mode=mode,
                               lr_decay=0.5, lr_decay_epoch=dec)
        net = mx.gluon.nn.Dense(2)
        net.initialize()
        task = make_trainer(net, 'nag', 0.3, 4, 6, 1, 0.01, mode, 0.5,
                            [int(e) for e in dec.split(',') if e])._optimizer.lr_scheduler
        want = [expected(u, mode) for u in range(1, 25)]
        assert [build_lr_scheduler(a, 6)(u) for u in range(1, 25)] == pytest.approx(want, abs=1e-12), mode
        assert [task(u) for u in range(1, 25)] == pytest.approx(want, abs=1e-12), mode


def test_task_scripts_warm_up_over_their_whole_warmup():
    """A run shorter than its warmup ends in it (YOLOv3's default warmup is 2 epochs): the
    schedule is not squeezed into the epochs the run has."""
    from asymmzoo.train.common import lr_schedule
    s = lr_schedule(0.3, 1, 5, 'cosine', warmup_epochs=2, warmup_lr=0.0)
    assert [s(u) for u in range(1, 6)] == pytest.approx([0.3 * u / 9 for u in range(1, 6)])


def test_quick_fit_cosine_ends_at_final_lr_and_stops_on_nan(monkeypatch):
    import math
    import mxnet as mx
    import asymmzoo
    from asymmzoo.train import quick
    from asymmzoo.train.common import TrainingDiverged
    seen = []

    class Recording(mx.gluon.Trainer):
        def step(self, *a, **k):
            super(Recording, self).step(*a, **k)
            seen.append(self.learning_rate)
    monkeypatch.setattr(quick.gluon, 'Trainer', Recording)
    x, y = quick.digits_arrays('train', size=32, channels=3, limit=80)
    net = asymmzoo.get_model('cifar_quick', classes=10)
    net.initialize(mx.init.Xavier())
    quick.fit(net, x, y, steps=5, batch_size=16, lr=0.05, final_lr=0.001, hybridize=False)
    assert seen == pytest.approx([0.001 + 0.049 * (1 + math.cos(math.pi * u / 5)) / 2 for u in range(1, 6)])
    assert seen[-1] == pytest.approx(0.001)
    net = asymmzoo.get_model('cifar_quick', classes=10)
    net.initialize(mx.init.Xavier())
    with pytest.raises(TrainingDiverged, match=r'loss is (nan|inf) at step \d+; stopped. Lower the learning rate'):
        quick.fit(net, x, y, epochs=3, batch_size=16, lr=1e6, hybridize=False)


@pytest.mark.slow
@pytest.mark.parametrize('model,marker', [('asymmnet_small_0.35_acb', 'hor_conv'),
                                          ('rotate_sn_rot4', 'theta')])
def test_training_time_structures_are_deployed_and_exported(model, marker, tmp_path):
    import asymmzoo
    if not asymmzoo.is_registered(model):
        pytest.skip('%s is not registered' % model)
    d = tmp_path / 'run'
    assert _main(['--model', model, '--batch-size', '16', '--num-epochs', '1', '--steps-per-epoch', '2',
                  '--no-progress', '-q', '--save-dir', str(d)]) == 0
    summary = json.loads((d / 'summary.json').read_text())
    assert summary['export_max_abs_diff'] < 1e-4
    sym = (d / ('%s-deploy-symbol.json' % model)).read_text()
    train_keys = ' '.join(_load(str(d / 'final.params')))
    assert marker in train_keys          # the training form had the structure ...
    assert marker not in sym             # ... the exported inference graph has plain convs only


def test_accuracy_counts_top_k_over_batches():
    """One way of counting accuracy: quick ``evaluate`` (arrays) and train_imagenet's validation
    (a pipeline's batches) both use ``accuracy``."""
    import mxnet as mx
    from asymmzoo.train.quick import accuracy, evaluate

    class Logits(mx.gluon.HybridBlock):   # the input is the output
        def hybrid_forward(self, F, x):
            return x
    logits = np.array([[.1, .7, .2], [.5, .3, .2], [.2, .3, .5], [.6, .3, .1]], 'float32')
    labels = np.array([1, 1, 0, 0])
    # top-1 right for rows 0 and 3; top-2 also for row 1 (its second best is class 1)
    assert accuracy(Logits(), [(logits[:3], labels[:3]), (logits[3:], labels[3:])], mx.cpu(),
                    (1, 2)) == (0.5, 0.75)
    assert evaluate(Logits(), logits, labels, batch_size=3) == 0.5
    with pytest.raises(ValueError, match='x and y differ in length: 4 vs 2'):
        evaluate(Logits(), logits, labels[:2])


def test_a_failed_run_never_takes_back_another_runs_folder(tmp_path, monkeypatch):
    """Two runs started on one new save folder: only the one whose mkdir made it counts it as its
    own, and a failed run leaves a folder that holds another run's lock."""
    from asymmzoo.train import checkpoint as ck
    x = tmp_path / 'runs' / 'exp1'
    real = ck.missing_folders

    def then_run_a_makes_it(folder):   # run B looks, then run A makes the folder
        out = real(folder)
        os.makedirs(folder)
        return out
    monkeypatch.setattr(ck, 'missing_folders', then_run_a_makes_it)
    assert ck.make_run_folder(str(x)) == []            # B made nothing: nothing of it to take back
    monkeypatch.undo()
    x.rmdir()
    (tmp_path / 'runs').rmdir()
    made = ck.make_run_folder(str(x))
    assert made == [str(x), str(tmp_path / 'runs')]
    lock = ck.RunLock(str(x))                           # a run that holds the folder
    (x / 'settings.json').write_text('{}')
    (x / 'train.log').write_text('')
    assert ck.remove_unused_run_folder(made) == [] and (x / 'settings.json').exists()
    lock.release()                                      # the run itself fails: its folder goes
    assert ck.remove_unused_run_folder(made) == [str(x), str(tmp_path / 'runs')]
    assert not (tmp_path / 'runs').exists()
