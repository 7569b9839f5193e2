"""Bad input meets a clear error before any work, and nothing a user has is lost: a table of bad
flags per entry point, the model builder's arguments, one run per save folder, outputs that would
overwrite their inputs."""
import os
import subprocess
import sys

import pytest

import asymmzoo
from asymmzoo.cli import main as cli
from asymmzoo.train.cli import main as train_main
from asymmzoo.train.checkpoint import LOCK_FILE

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# (flag, bad value, what the message must say)
TRAIN_FLAGS = [
    ('--batch-size', '-4', 'positive integer'), ('--batch-size', '0', 'positive integer'),
    ('--num-epochs', '0', 'positive integer'), ('--num-epochs', '-1', 'positive integer'),
    ('--steps-per-epoch', '-3', 'non-negative integer'), ('--lr', '-0.1', 'positive number'),
    ('--lr', 'nan', 'positive number'), ('--momentum', '1.5', '[0, 1)'), ('--wd', '-1', 'non-negative'),
    ('--label-smoothing', '1.5', '[0, 1)'), ('--warmup-epochs', '-1', 'non-negative integer'),
    ('--kvstore', 'bogus', 'invalid choice'), ('--dropout', '1.0', '[0, 1)'),
    ('--input-size', '0', '8 to 1024'), ('--input-size', '100000', '8 to 1024'), ('--crop-ratio', '0', '(0, 1]'),
    ('--lr-decay', '2', '(0, 1]'), ('--num-classes', '1', 'at least 2'),
    ('--lr-decay-epoch', '40,abc', 'comma-separated list of epochs'),
    ('--save-frequency', '0', 'positive integer'), ('-j', '-1', 'non-negative integer'),
    ('--mixup-alpha', '0', 'positive number'),
]


@pytest.mark.parametrize('flag,value,said', TRAIN_FLAGS, ids=['%s=%s' % f[:2] for f in TRAIN_FLAGS])
def test_train_flags_are_checked_before_any_work(flag, value, said, tmp_path, capsys):
    save = tmp_path / 'run'
    with pytest.raises(SystemExit) as e:
        train_main([flag, value, '--save-dir', str(save)])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert flag.lstrip('-') in err and said in err, err
    assert not save.exists()                     # nothing was started


@pytest.mark.parametrize('kw,said', [
    (dict(dropout=-0.5), 'dropout must be a probability'), (dict(dropout=1.5), 'dropout'),
    (dict(classes=0), 'classes must be a positive integer'), (dict(classes=2.5), 'classes'),
])
def test_builder_refuses_bad_values(kw, said):
    with pytest.raises(ValueError, match=said):
        asymmzoo.get_model('asymmnet_small_0.35', **kw)


def test_builder_refuses_unknown_keywords_and_names():
    with pytest.raises(TypeError, match=r"asymmnet_small_0.35 does not take the keyword argument 'foo'"):
        asymmzoo.get_model('asymmnet_small_0.35', foo=1)
    with pytest.raises(TypeError, match='model name must be a str'):
        asymmzoo.get_model(None)
    with pytest.raises(ValueError, match='unknown model'):
        asymmzoo.get_model('asymmnet_large_2.0')


def _lock_holder(folder):
    """Another process holding the folder's run lock (as a training run does) until killed."""
    code = ("import sys, time; sys.path.insert(0, %r)\n"
            "from asymmzoo.train.checkpoint import RunLock\n"
            "RunLock(%r); print('locked', flush=True); time.sleep(120)\n" % (ROOT, str(folder)))
    p = subprocess.Popen([sys.executable, '-c', code], stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == 'locked'
    return p


def test_a_save_folder_is_owned_by_one_run(tmp_path, capsys):
    save = tmp_path / 'run'
    save.mkdir()
    owner = _lock_holder(save)
    try:
        rc = train_main(['--save-dir', str(save), '--num-epochs', '1', '--steps-per-epoch', '1',
                         '--no-export', '--no-progress', '--batch-size', '8', '--input-size', '32'])
        err = capsys.readouterr().err
        assert rc == 2 and 'in use by another run (pid %d' % owner.pid in err, err
        assert sorted(os.listdir(save)) == [LOCK_FILE]          # nothing written by the second run
    finally:
        owner.kill()
        owner.wait()
    # the owner is gone (killed): its lock is stale and the next run takes the folder over
    rc = train_main(['--save-dir', str(save), '--num-epochs', '1', '--steps-per-epoch', '1',
                     '--no-export', '--no-progress', '--batch-size', '8', '--input-size', '32'])
    assert rc == 0
    assert not (save / LOCK_FILE).exists() and (save / 'final.params').exists()


def test_convert_official_refuses_to_overwrite_its_input(tmp_path, capsys):
    src = tmp_path / 'released.params'
    src.write_bytes(b'not really params, but the user\'s file')
    before = src.read_bytes()
    assert cli(['convert-official', str(src), str(src)]) == 2
    assert 'is the input file' in capsys.readouterr().err
    assert src.read_bytes() == before


def test_pack_does_not_overwrite_a_packed_folder(tmp_path, capsys):
    from PIL import Image
    import numpy as np
    root = tmp_path / 'split'
    for c in ('a', 'b'):
        (root / c).mkdir(parents=True)
        for i in range(2):
            Image.fromarray(np.full((16, 16, 3), 40 * i + 100 * (c == 'b'), np.uint8)).save(
                str(root / c / ('%d.jpg' % i)))
    out = tmp_path / 'rec'
    out.mkdir()
    (out / 'split.rec').write_bytes(b'the user\'s earlier pack')
    assert cli(['pack', str(root), str(out), '-q']) == 2
    assert 'already holds split.rec' in capsys.readouterr().err
    assert (out / 'split.rec').read_bytes() == b'the user\'s earlier pack'
    assert cli(['pack', str(root), str(out), '-q', '--force']) == 0
    assert (out / 'split.rec').stat().st_size > 100


def _image_split(root, n=3, shade=0):
    from PIL import Image
    import numpy as np
    for c in ('a', 'b'):
        (root / c).mkdir(parents=True)
        for i in range(n):
            Image.fromarray(np.full((24, 24, 3), shade + 30 * i + 100 * (c == 'b'), np.uint8)).save(
                str(root / c / ('%d.jpg' % i)))
    return root


@pytest.fixture
def packed(tmp_path):
    """train / val RecordIO of a tiny two-class folder, and a second, different pack."""
    _image_split(tmp_path / 'imgs' / 'train')
    _image_split(tmp_path / 'imgs' / 'val')
    assert cli(['pack', str(tmp_path / 'imgs'), str(tmp_path / 'rec'), '-q']) == 0
    _image_split(tmp_path / 'other', n=5, shade=7)
    assert cli(['pack', str(tmp_path / 'other'), str(tmp_path / 'rec2'), '-q']) == 0
    return tmp_path


def _train_on(rec, capsys, **swap):
    files = {'train': rec / 'train.rec', 'train-idx': rec / 'train.idx', 'val': rec / 'val.rec',
             'val-idx': rec / 'val.idx'}
    files.update(swap)
    argv = sum((['--rec-%s' % k, str(v)] for k, v in files.items()), []) + [
        '--num-epochs', '1', '--no-export', '--no-progress', '--batch-size', '2', '--input-size', '16',
        '--save-dir', str(rec.parent / 'run')]
    rc = train_main(argv)
    return rc, capsys.readouterr().err


def test_a_truncated_recordio_is_named_before_training(packed, capsys):
    rec = packed / 'rec'
    data = (rec / 'train.rec').read_bytes()
    (rec / 'train.rec').write_bytes(data[:len(data) // 2])
    rc, err = _train_on(rec, capsys)
    assert rc == 2 and 'train.rec' in err and 'truncated' in err, err
    assert not (packed / 'run' / 'final.params').exists()


def test_an_index_of_another_file_is_named_before_training(packed, capsys):
    rc, err = _train_on(packed / 'rec', capsys, **{'train-idx': packed / 'rec2' / 'other.idx'})
    assert rc == 2 and 'other.idx' in err and ('do not belong together' in err or 'truncated' in err), err


def test_overwritten_record_heads_are_named_before_training(packed, capsys):
    rec = packed / 'rec'
    data = bytearray((rec / 'val.rec').read_bytes())
    first_key, second = [l.split() for l in (rec / 'val.idx').read_text().splitlines()][1]
    off = int(second)
    data[off:off + 8] = b'\x13\x37' * 4
    (rec / 'val.rec').write_bytes(bytes(data))
    rc, err = _train_on(rec, capsys)
    assert rc == 2 and 'val.rec' in err and 'no record starts at byte %d' % off in err, err


def test_an_index_that_is_not_an_index(packed, capsys):
    (packed / 'rec' / 'train.idx').write_text('hello world\n')
    rc, err = _train_on(packed / 'rec', capsys)
    assert rc == 2 and "is not 'key offset'" in err, err


def _saved(name, tmp_path, fname, nan=False):
    import mxnet as mx
    net = asymmzoo.get_model(name)
    net.initialize()
    if nan:
        p = list(net.collect_params().values())[3]
        p.set_data(p.data() * float('nan'))
    path = str(tmp_path / fname)
    net.save_parameters(path)
    return path


def test_store_add_checks_name_architecture_and_file(tmp_path, capsys):
    from asymmzoo.store import store_root
    mnv3 = _saved('mobilenetv3_small_0.35', tmp_path, 'mnv3.params')
    cases = [
        (['store', 'add', mnv3, '--model', 'asymmnet_small_0.35'], "does not hold asymmnet_small_0.35's"),
        (['store', 'add', mnv3, '--model', 'mobilenetv3_smal_0.35'], 'unknown model'),
    ]
    trunc = tmp_path / 'trunc.params'
    trunc.write_bytes(open(mnv3, 'rb').read()[:5000])
    cases.append((['store', 'add', str(trunc), '--model', 'mobilenetv3_small_0.35'],
                  'not a readable MXNet params file'))
    nan = _saved('mobilenetv3_small_0.35', tmp_path, 'nan.params', nan=True)
    cases.append((['store', 'add', nan, '--model', 'mobilenetv3_small_0.35'], 'NaN or infinite'))
    for argv, said in cases:
        assert cli(argv) == 2, argv
        err = capsys.readouterr().err
        assert said in err and err.count('\n') <= 6, err          # short, no traceback
    root = store_root()
    assert not os.path.isdir(root) or not os.listdir(root)        # nothing entered the store
    assert cli(['store', 'add', mnv3, '--model', 'mobilenetv3_small_0.35']) == 0


def test_pretrained_file_with_nan_is_refused(tmp_path):
    nan = _saved('mobilenetv3_small_0.35', tmp_path, 'nan.params', nan=True)
    with pytest.raises(ValueError, match='NaN or infinite'):
        asymmzoo.get_model('mobilenetv3_small_0.35', pretrained=nan)


def _folder_run(root, capsys):
    rc = train_main(['--data-dir', str(root), '--num-epochs', '1', '--no-export', '--no-progress',
                     '--batch-size', '2', '--input-size', '16', '--save-dir', str(root.parent / 'run')])
    return rc, capsys.readouterr().err


def test_image_folder_with_an_empty_class_folder(tmp_path, capsys):
    root = tmp_path / 'd'
    _image_split(root / 'train')
    _image_split(root / 'val')
    (root / 'train' / 'c').mkdir()
    (root / 'val' / 'c').mkdir()
    rc, err = _folder_run(root, capsys)
    assert rc == 2 and 'class folders without images: c' in err, err


def test_image_folder_whose_train_images_are_all_corrupt(tmp_path, capsys):
    root = tmp_path / 'd'
    _image_split(root / 'train')
    _image_split(root / 'val')
    for p in (root / 'train').rglob('*.jpg'):
        p.write_bytes(b'not a jpeg')
    rc, err = _folder_run(root, capsys)
    assert rc == 2 and 'trained on no image' in err and 'failed to decode' in err, err
    assert not (tmp_path / 'run').exists()      # the folder this failed run made is gone again


@pytest.mark.parametrize('argv,said', [
    (['detect', 'NOTANIMAGE', '--params', 'x.params'], 'not an image OpenCV can read'),
    (['detect', 'IMAGE', '--short', '0'], 'at least 32 pixels'),
    (['pose', 'IMAGE', '--keypoint-thresh', '2'], '[0, 1)'),
    (['launch', '-n', '2', '-H', 'conf/hosts.txt', '--', 'python', 'x.py'], 'host file conf/hosts.txt does not exist'),
    (['launch', '-n', '2', '--timeout', '-5', '--', 'python', 'x.py'], 'positive number'),
    (['launch', '-n', '0', '--', 'python', 'x.py'], 'positive integer'),
    (['pack', 'SRC', 'DST', '--quality', '101'], 'JPEG quality'),
])
def test_cli_inputs_are_checked_before_work(argv, said, tmp_path, capsys, monkeypatch):
    from PIL import Image
    import numpy as np
    monkeypatch.chdir(tmp_path)
    Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(str(tmp_path / 'IMAGE'), format='PNG')
    (tmp_path / 'NOTANIMAGE').write_bytes(b'RIFF....AVI LIST')
    try:
        rc = cli(argv)
    except SystemExit as e:      # argparse's own refusal
        rc = e.code
    assert rc == 2
    err = capsys.readouterr().err
    assert said in err and 'Traceback' not in err, err


@pytest.mark.slow
def test_ctrl_c_says_what_was_saved_and_how_to_resume(tmp_path):
    import signal
    import time
    save = tmp_path / 'run'
    env = dict(os.environ, ASYMMZOO_STEP_DELAY='0.05', MPLBACKEND='Agg', OMP_NUM_THREADS='1')
    p = subprocess.Popen([sys.executable, os.path.join(ROOT, 'train_imagenet.py'), '--save-dir', str(save),
                          '--num-epochs', '20', '--steps-per-epoch', '3', '--batch-size', '8',
                          '--input-size', '32', '--no-progress', '--no-export'],
                         cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    t = time.time()
    while not (save / 'resume.json').exists() and time.time() - t < 120 and p.poll() is None:
        time.sleep(0.1)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=120)
    assert p.returncode == 130, err[-2000:]
    assert 'interrupted' in err and '--resume %s' % save in err and 'Traceback' not in err, err[-2000:]
    assert not (save / LOCK_FILE).exists()


def _tiny(save, *extra):
    return ['--save-dir', str(save), '--steps-per-epoch', '2', '--batch-size', '8', '--input-size', '32',
            '--no-export', '--no-progress'] + list(extra)


def _csv_lr(save):
    import csv
    with open(str(save / 'metrics.csv')) as f:
        return [float(r['lr']) for r in csv.DictReader(f)]


@pytest.mark.slow
def test_resume_applies_a_new_schedule_and_says_so(tmp_path, capsys):
    save = tmp_path / 'run'
    assert train_main(_tiny(save, '--model', 'mobilenetv3_small_0.35', '--num-epochs', '2',
                            '--warmup-epochs', '0', '--lr', '0.05')) == 0
    assert _csv_lr(save)[-1] == 0.0                     # the cosine schedule ended at 0
    capsys.readouterr()
    # no --model: the run's model is used; a longer run and a new lr are applied and said
    assert train_main(['--resume', str(save), '--num-epochs', '4', '--lr', '0.02',
                       '--no-progress', '--no-export']) == 0
    log = (save / 'train.log').read_text()
    assert "changed on resume (applied from step 4): lr 0.05 -> 0.02, num_epochs 2 -> 4" in log, log
    assert log.count('asymmzoo train: mobilenetv3_small_0.35 on') == 2     # both runs
    lrs = _csv_lr(save)
    assert len(lrs) == 4 and 0 < lrs[2] <= 0.02 and lrs[3] == 0.0, lrs


def test_resume_refuses_what_cannot_change(tmp_path, capsys):
    save = tmp_path / 'run'
    assert train_main(_tiny(save, '--num-epochs', '1')) == 0
    before = sorted(os.listdir(save))
    capsys.readouterr()
    assert train_main(['--resume', str(save), '--batch-size', '16', '--num-epochs', '2']) == 2
    err = capsys.readouterr().err
    assert "--batch-size 16 (the run has 8) cannot change on resume" in err, err
    assert sorted(os.listdir(save)) == before


# ---------------------------------------------------------------------------------------------
# downstream data: VOC XML and COCO keypoint json are checked, the scripts end in one line

def _voc(tmp_path):
    from downstream.synthetic import make_voc_folder
    root = tmp_path / 'voc'
    make_voc_folder(str(root), splits=(('train', 3), ('val', 2)), size=(64, 64))
    return root


@pytest.mark.parametrize('edit,said', [
    (lambda x: x.replace('<name>', '<nam>', 1).replace('</name>', '</nam>', 1), 'has no <name>'),
    (lambda x: x.replace('<bndbox>', '<box>', 1).replace('</bndbox>', '</box>', 1), 'has no <bndbox>'),
    (lambda x: x.replace('<xmin>', '<xmin>ten', 1), "<xmin> is 'ten"),
    (lambda x: x.split('<object>')[0] + '</annotation>', 'has no object to learn from'),
])
def test_voc_annotation_errors_name_the_file(edit, said, tmp_path):
    from downstream.detection.data import VOCFolder, DatasetError
    root = _voc(tmp_path)
    xml = root / 'Annotations' / '000000.xml'
    xml.write_text(edit(xml.read_text()))
    with pytest.raises(DatasetError, match=said) as e:
        VOCFolder(str(root), 'train')
    assert '000000.xml' in str(e.value)


def test_voc_dropping_an_images_only_box_is_named(tmp_path):
    from downstream.detection.data import VOCFolder, DatasetError
    root = _voc(tmp_path)
    xml = root / 'Annotations' / '000000.xml'
    text = xml.read_text()
    first = text.split('<object>')[1].split('</object>')[0]
    bad = first.split('<xmax>')[0] + '<xmax>900</xmax>' + first.split('</xmax>')[1]
    xml.write_text(text.split('<object>')[0] + '<object>' + bad + '</object></annotation>')
    with pytest.raises(DatasetError, match="000000.xml has no object to learn from .*invalid_boxes='skip'"):
        VOCFolder(str(root), 'train', invalid_boxes='skip')


def _coco(tmp_path):
    import json
    from downstream.synthetic import make_coco_keypoints
    paths = make_coco_keypoints(str(tmp_path / 'coco'), splits=(('train2017', 2), ('val2017', 1)))
    with open(paths['train2017']) as f:
        return paths['train2017'], json.load(f)


@pytest.mark.parametrize('edit,said', [
    (lambda d: d.pop('categories'), "has no 'categories' list"),
    (lambda d: d['categories'][0].pop('keypoints'), "no category lists its 'keypoints'"),
    (lambda d: d['annotations'][0].pop('bbox'), 'bbox must be'),
    (lambda d: d['annotations'][1].__setitem__('keypoints', [1, 2, 2]), 'keypoints must be 51 numbers'),
    (lambda d: d.pop('annotations'), "has no 'annotations' list"),
    (lambda d: d.__setitem__('annotations', []), 'has no annotated person'),
])
def test_coco_keypoint_json_errors_name_the_file(edit, said, tmp_path):
    import json
    from downstream.pose.train_simple_pose import check_keypoint_json
    path, d = _coco(tmp_path)
    edit(d)
    with open(path, 'w') as f:
        json.dump(d, f)
    with pytest.raises(ValueError, match=said) as e:
        check_keypoint_json(path)
    assert 'person_keypoints_train2017.json' in str(e.value)


def test_truncated_coco_json_is_named(tmp_path):
    from downstream.pose.train_simple_pose import check_keypoint_json
    path, _ = _coco(tmp_path)
    text = open(path).read()
    with open(path, 'w') as f:
        f.write(text[:len(text) // 2])
    with pytest.raises(ValueError, match='is not valid JSON'):
        check_keypoint_json(path)


def test_downstream_scripts_end_a_user_error_in_one_line(tmp_path):
    path, _ = _coco(tmp_path)
    open(path, 'w').write('{"images": [], "categories": []}')
    out = subprocess.run([sys.executable, '-m', 'downstream.pose.train_simple_pose', '--data-root',
                          str(tmp_path / 'coco'), '--epochs', '1'], cwd=ROOT, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 2, out.stderr[-1500:]
    lines = [l for l in out.stderr.splitlines() if 'error' in l]
    assert lines and "has no 'annotations' list" in lines[-1] and 'Traceback' not in out.stderr


def test_arcface_needs_two_identities(tmp_path):
    from PIL import Image
    import numpy as np
    from downstream.face.train_arcface import main as arcface
    person = tmp_path / 'faces' / 'alice'
    person.mkdir(parents=True)
    for i in range(3):
        Image.fromarray(np.full((112, 112, 3), 60 * i, np.uint8)).save(str(person / ('%d.png' % i)))
    with pytest.raises(ValueError, match='holds 1 identity'):
        arcface(['--data', str(tmp_path / 'faces'), '--epochs', '1'])


@pytest.mark.parametrize('name', ['asymmnet_small_0.35', 'cifar_resnet20_v1', 'resnet18_v1_acb',
                                  'cifar_densenet40', 'arcface_asymmnet_small_0.35', 'tsn_asymmnet_small_0.35_hmdb51'])
@pytest.mark.parametrize('kw,said', [(dict(classes=0), 'classes must be a positive integer'),
                                     (dict(classes=-5), 'classes must be'), (dict(classes=2.5), 'classes must be'),
                                     (dict(dropout=1.5), 'dropout must be a probability'),
                                     (dict(dropout=-0.1), 'dropout must be')])
def test_every_family_checks_classes_and_dropout(name, kw, said):
    with pytest.raises(ValueError, match=said):
        asymmzoo.get_model(name, **kw)


def test_list_models_and_r_are_checked():
    with pytest.raises(TypeError, match='fnmatch pattern'):
        asymmzoo.list_models(5)
    with pytest.raises(ValueError, match='asymmetry rate r must be a non-negative integer'):
        asymmzoo.get_model('asymmnet_small_0.35', r='abc')


@pytest.mark.parametrize('where', ['file', 'proc'])
def test_a_save_dir_that_cannot_be_written(where, tmp_path, capsys):
    target = {'file': None, 'proc': '/proc/asymmzoo-cannot-write/run'}[where]
    if target is None:
        f = tmp_path / 'a_file'
        f.write_text('the user\'s file')
        target = str(f / 'run')
    rc = train_main(['--save-dir', target, '--num-epochs', '1', '--no-progress'])
    err = capsys.readouterr().err
    assert rc == 2 and 'choose a --save-dir you can write to' in err and 'Traceback' not in err, err
    if where == 'file':
        assert (tmp_path / 'a_file').read_text() == 'the user\'s file'


def test_convert_official_bad_outputs_and_inputs(tmp_path, capsys):
    import mxnet as mx
    src = tmp_path / 'x.params'
    mx.nd.save(str(src), {'a': mx.nd.ones(2)})
    (tmp_path / 'out').mkdir()
    assert cli(['convert-official', str(src), str(tmp_path / 'out')]) == 2
    assert 'is a folder: give the file to write' in capsys.readouterr().err
    assert cli(['convert-official', str(src), str(tmp_path / 'o.params')]) == 2
    err = capsys.readouterr().err
    assert 'missing keys (265)' in err and len(err) < 1500 and not (tmp_path / 'o.params').exists()
    (tmp_path / 'junk').write_bytes(b'junk')
    assert cli(['convert-official', str(tmp_path / 'junk'), str(tmp_path / 'o.params')]) == 2
    err = capsys.readouterr().err
    assert 'Invalid NDArray file format' in err and 'Traceback' not in err


def test_worker_processes_leave_nothing_in_tmpdir(tmp_path):
    import shutil
    import tempfile
    root = tmp_path / 'd'
    _image_split(root / 'train')
    _image_split(root / 'val')
    tmpdir = tempfile.mkdtemp(prefix='azt-', dir='/tmp')   # short: workers put AF_UNIX sockets there
    try:
        env = dict(os.environ, TMPDIR=tmpdir, OMP_NUM_THREADS='1', MPLBACKEND='Agg')
        out = subprocess.run([sys.executable, os.path.join(ROOT, 'train_imagenet.py'), '--data-dir',
                              str(root), '-j', '2', '--num-epochs', '1', '--batch-size', '4',
                              '--input-size', '16', '--no-export', '--no-progress', '-q',
                              '--save-dir', str(tmp_path / 'run')],
                             cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
        left = os.listdir(tmpdir)
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)
    assert out.returncode == 0, out.stderr[-1500:]
    assert left == []


def test_resume_takes_the_runs_data_refuses_new_steps_and_evaluates_freely(tmp_path, capsys):
    root = tmp_path / 'd'
    _image_split(root / 'train')
    _image_split(root / 'val')
    save = tmp_path / 'run'
    assert train_main(['--data-dir', str(root), '--save-dir', str(save), '--num-epochs', '1',
                       '--batch-size', '2', '--input-size', '16', '--no-export', '--no-progress']) == 0
    capsys.readouterr()
    assert train_main(['--resume', str(save), '--steps-per-epoch', '1', '--num-epochs', '2']) == 2
    assert '--steps-per-epoch 1 (the run has 0) cannot change' in capsys.readouterr().err
    # no --data-dir: the run's folder is used (not the embedded digits); eval may change its input size
    assert train_main(['--resume', str(save), '--eval-only', '--input-size', '24', '--no-progress']) == 0
    log = (save / 'eval.log').read_text()
    assert 'folder: 2 classes' in log, log


def test_partial_and_frozen_bn_keep_their_running_statistics():
    from mxnet import autograd
    import mxnet as mx
    moved = {}
    for kw in ({}, {'partial_bn': True}, {'bn_frozen': True}):
        net = asymmzoo.get_model('tsn_asymmnet_small_0.35_hmdb51', num_segments=2, **kw)
        means = [p for n, p in net.collect_params().items() if n.endswith('running_mean')]
        before = [m.data().copy() for m in means]
        with autograd.record():
            net(mx.nd.random.uniform(shape=(4, 3, 32, 32))).sum().backward()
        moved[tuple(kw)] = sum(float((m.data() - b).abs().sum().asscalar()) > 0
                               for m, b in zip(means, before))
        total = len(means)
    assert moved[()] == total and moved[('partial_bn',)] == 1 and moved[('bn_frozen',)] == 0


def test_nothing_a_user_saved_is_overwritten(tmp_path, capsys):
    from PIL import Image
    import numpy as np
    img = tmp_path / 'in.png'
    Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(str(img))
    before = img.read_bytes()
    assert cli(['detect', str(img), '--untrained', '-o', str(img)]) == 2
    assert 'is the input image' in capsys.readouterr().err and img.read_bytes() == before
    # a finished run is not rewritten by a resume, nor another run by --resume A --save-dir B
    a, b = tmp_path / 'a', tmp_path / 'b'
    for run in (a, b):
        assert train_main(_tiny(run, '--num-epochs', '1')) == 0
    snap = {p: p.read_bytes() for run in (a, b) for p in run.iterdir() if p.is_file()}
    capsys.readouterr()
    assert train_main(['--resume', str(a), '--no-progress']) == 2
    assert 'already finished its 1 epochs' in capsys.readouterr().err
    assert train_main(['--resume', str(a), '--save-dir', str(b), '--num-epochs', '2']) == 2
    assert "already holds a run's checkpoints" in capsys.readouterr().err
    assert {p: p.read_bytes() for p in snap} == snap


def test_downstream_runs_do_not_overwrite_a_run(tmp_path):
    from asymmzoo.train.engine import Checkpoint
    (tmp_path / 'yolo3_x-last.json').write_text('{}')
    with pytest.raises(ValueError, match='already holds a yolo3_x run'):
        Checkpoint(str(tmp_path), 'yolo3_x', resume=False)
    other = tmp_path / 'other'
    other.mkdir()
    owner = _lock_holder(other)     # another process trains there
    try:
        with pytest.raises(ValueError, match='in use by another run'):
            Checkpoint(str(other), 'yolo3_x', resume=True)
    finally:
        owner.kill()
        owner.wait()
    assert Checkpoint(str(other), 'yolo3_x', resume=True).exists() is False


def test_downstream_checkpoints_share_the_training_format(tmp_path):
    """A task script's checkpoint is written by asymmzoo.train.checkpoint: params / states / rng, then
    the json naming them with their sha1; a truncated file is refused on resume, naming it."""
    import mxnet as mx
    from asymmzoo.train.checkpoint import CheckpointError
    from asymmzoo.train.engine import Checkpoint
    net = asymmzoo.get_model('cifar_quick', classes=3)
    net.initialize()
    net(mx.nd.zeros((1, 3, 32, 32)))
    trainer = mx.gluon.Trainer(net.collect_params(), 'sgd', {'learning_rate': 0.1})
    ckpt = Checkpoint(str(tmp_path), 'run', resume=False)
    ckpt.save(net, trainer, {'epoch': 0, 'history': []})
    assert sorted(os.listdir(str(tmp_path))) == ['.run.lock', 'run-last.json', 'run-last.params',
                                                 'run-last.rng', 'run-last.states']
    meta = ckpt.load_meta()
    assert meta['epoch'] == 0 and meta['params'] == os.path.join(str(tmp_path), 'run-last.params')
    data = open(ckpt.params, 'rb').read()
    open(ckpt.params, 'wb').write(data[:len(data) // 2])
    with pytest.raises(CheckpointError, match='run-last.params is truncated or corrupted'):
        ckpt.load_meta()


def test_train_flags_that_would_be_ignored_are_refused(tmp_path, capsys):
    for argv, said in ((['--params', 'x.params'], '--params FILE is read by --eval-only'),
                       (['--data-dir', 'd', '--rec-train', 't.rec'], 'not both')):
        assert train_main(argv + ['--save-dir', str(tmp_path / 'run')]) == 2
        assert said in capsys.readouterr().err
        assert not (tmp_path / 'run').exists()


@pytest.mark.parametrize('module,argv,said', [
    ('downstream.detection.train_yolo3', ['--batch-size', '0'], 'positive integer'),
    ('downstream.detection.train_yolo3', ['--filters', '512,abc,128'], 'channel widths'),
    ('downstream.detection.train_yolo3', ['--filters', '64,32'], '--filters needs 3 widths, one per YOLOv3 stage'),
    ('downstream.pose.train_simple_pose', ['--sigma', '-1'], 'positive number'),
    ('downstream.pose.train_simple_pose', ['--head', 'mobile_pose', '--deconv-filters', '128,128,128'],
     "--head mobile_pose has GluonCV's own upsampling (DUC) head: drop --deconv-filters"),
    ('downstream.action.train_tsn', ['--num-classes', '0'], 'positive integer'),
    ('downstream.face.train_arcface', ['--lr', 'nan'], 'positive number'),
])
def test_downstream_flags_are_checked(module, argv, said, capsys):
    import importlib
    main = importlib.import_module(module).main
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2 and said in capsys.readouterr().err


def test_api_verbs_refuse_what_is_not_a_network():
    for call in (lambda: asymmzoo.deploy(None), lambda: asymmzoo.deploy('asymmnet_small_0.35'),
                 lambda: asymmzoo.acnetify(5)):
        with pytest.raises(TypeError, match='takes a Gluon network'):
            call()


def test_a_failed_write_is_an_oserror_naming_the_file(tmp_path, monkeypatch):
    import mxnet as mx
    from asymmzoo.io import atomic_save_params

    def full_disk(path, arrays):
        open(path, 'wb').write(b'half')
        raise mx.base.MXNetError('Check failed: FileStream.Write incomplete')
    monkeypatch.setattr(mx.nd, 'save', full_disk)
    target = tmp_path / 'x.params'
    target.write_bytes(b'the earlier file')
    with pytest.raises(OSError, match='disk full or not writable') as e:
        atomic_save_params({'a': mx.nd.ones(2)}, str(target))
    assert e.value.filename == str(target) and target.read_bytes() == b'the earlier file'
    assert sorted(os.listdir(str(tmp_path))) == ['x.params']        # no temporary left
    with pytest.raises(IsADirectoryError, match='is a folder'):
        atomic_save_params({'a': mx.nd.ones(2)}, str(tmp_path))


@pytest.mark.parametrize('edit,said', [
    (lambda d: d.pop('annotations'), "has no 'annotations' list"),
    (lambda d: d.pop('images'), "has no 'images' list"),
    (lambda d: d.pop('categories'), "has no 'categories' list"),
    (lambda d: d['annotations'][0].pop('bbox'), 'needs image_id, category_id and bbox'),
    (lambda d: d.__setitem__('annotations', []), 'has no annotated box'),
])
def test_coco_detection_json_errors_name_the_file(edit, said, tmp_path):
    import json
    from downstream.synthetic import make_coco_detection
    from downstream.detection.train_yolo3 import check_detection_json
    make_coco_detection(str(tmp_path / 'coco'), splits=(('train2017', 2),))
    path = tmp_path / 'coco' / 'annotations' / 'instances_train2017.json'
    d = json.loads(path.read_text())
    assert check_detection_json(str(path)) >= 2
    edit(d)
    path.write_text(json.dumps(d))
    with pytest.raises(ValueError, match=said) as e:
        check_detection_json(str(path))
    assert 'instances_train2017.json' in str(e.value)


def test_analyze_names_an_unreadable_params_file(tmp_path, capsys):
    junk = tmp_path / 'junk.params'
    junk.write_bytes(b'junk')
    assert cli(['analyze', 'kernel-matrix', 'cifar_quick_acb', '--params', str(junk)]) == 2
    err = capsys.readouterr().err
    assert 'is not a readable MXNet params file' in err and 'Traceback' not in err


@pytest.mark.parametrize('argv,said', [
    (['analyze', 'pruning', 'cifar_quick', '--ratios', '0.2', '1.5'], 'a number in [0, 1]'),
    (['analyze', 'pruning', 'cifar_quick', '--ratios', '-0.1'], 'a number in [0, 1]'),
    (['analyze', 'pruning', 'cifar_quick', '--seeds', '0'], 'positive integer'),
    (['analyze', 'kernel-matrix', 'cifar_quick', '--kernel-size', '4'], 'odd kernel size'),
])
def test_analyze_flags_are_checked_by_argparse(argv, said, capsys):
    with pytest.raises(SystemExit) as e:
        cli(argv)
    assert e.value.code == 2
    assert said in capsys.readouterr().err


def test_analyze_refuses_a_kernel_size_the_model_lacks_before_training(tmp_path, capsys, monkeypatch):
    import asymmzoo.train.quick as qt
    monkeypatch.setattr(qt, 'quick_train', lambda *a, **k: pytest.fail('trained before the check'))
    rc = cli(['analyze', 'pruning', 'cifar_quick', '--kernel-size', '7', '--quick-train', '1',
              '--out', str(tmp_path / 'out')])
    err = capsys.readouterr().err
    assert rc == 2 and 'cifar_quick has no 7x7 conv layers' in err and '5x5' in err, err
    assert not (tmp_path / 'out').exists()


def test_pruning_curves_checks_its_ratios_before_evaluating():
    from asymmzoo.analysis import pruning_curves
    calls = []
    net = asymmzoo.get_model('cifar_quick', classes=10)
    for kw, said in ((dict(ratios=(0.1, 1.2)), r'\[0, 1\]'), (dict(seeds=0), 'seeds must be'),
                     (dict(modes=('corner', 'edges')), 'pruning mode')):
        with pytest.raises(ValueError, match=said):
            pruning_curves(net, calls.append, **kw)
    assert calls == []


@pytest.mark.parametrize('kw,said', [(dict(embedding_size=0), 'embedding_size must be an integer >= 1'),
                                     (dict(embedding_size=2.5), 'embedding_size must be'),
                                     (dict(expand=-1), 'expand must be'), (dict(input_size=0), 'input_size must be')])
def test_face_embedding_sizes_are_checked(kw, said):
    with pytest.raises(ValueError, match=said):
        asymmzoo.get_model('arcface_asymmnet_small_0.35', **kw)


def test_a_truncated_jpeg_counts_as_corrupt(tmp_path):
    """libjpeg decodes a JPEG cut in its scan data (grey fill, a warning only): the folder reader and
    the packer must count it as undecodable rather than train on half an image."""
    import numpy as np
    from PIL import Image
    from asymmzoo.data.folder import SafeImageFolder, pack_folder, truncation_problem
    src = tmp_path / 'src' / 'a'
    src.mkdir(parents=True)
    rng = np.random.RandomState(0)
    for i, progressive in enumerate((False, True)):
        Image.fromarray((rng.rand(48, 48, 3) * 255).astype(np.uint8)).save(
            str(src / ('%d.jpg' % i)), progressive=progressive)
    whole = [(str(p), 0) for p in sorted(src.glob('*.jpg'))]
    for p, _ in whole:
        data = open(p, 'rb').read()
        assert truncation_problem(data) is None
        assert truncation_problem(data + b'\0\0') is None                 # trailing padding is fine
        open(p.replace('.jpg', '_cut.jpg'), 'wb').write(data[:len(data) * 2 // 3])
    cut = [(p.replace('.jpg', '_cut.jpg'), 0) for p, _ in whole]
    ds = SafeImageFolder(whole + cut)
    assert [ds[i] is None for i in range(len(ds))] == [False, False, True, True]
    res = pack_folder(str(tmp_path / 'src'), str(tmp_path / 'out' / 'train'), progress=False)
    assert res['packed'] == 2 and sorted(os.path.basename(p) for p in res['skipped']) == ['0_cut.jpg', '1_cut.jpg']


def test_ctrl_c_while_a_data_loader_forks_its_workers_is_not_lost(monkeypatch):
    """MXNet's DataLoader ignores SIGINT while it forks its workers: a Ctrl-C then was lost and the
    run went on (train_imagenet -j 2 makes two loaders an epoch). ``data_loader`` raises it."""
    import signal
    import time
    import mxnet as mx
    from mxnet.gluon.data import dataloader as dl
    from asymmzoo.data.workers import data_loader
    real_pool = dl.multiprocessing.Pool

    def pool_after_a_ctrl_c(*a, **k):   # the Ctrl-C arrives while the pool is being made
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.05)
        return real_pool(*a, **k)
    monkeypatch.setattr(dl.multiprocessing, 'Pool', pool_after_a_ctrl_c)
    data = mx.gluon.data.ArrayDataset(mx.nd.arange(8), mx.nd.arange(8))
    plain = dl.DataLoader(data, batch_size=4, num_workers=1)    # MXNet's own: the Ctrl-C is gone
    assert len(list(plain)) == 2
    del plain
    with pytest.raises(KeyboardInterrupt):
        data_loader(data, batch_size=4, num_workers=1)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    monkeypatch.undo()
    assert len(list(data_loader(data, batch_size=4, num_workers=1))) == 2   # no Ctrl-C: a loader


def test_a_diverged_quick_run_is_one_line(capsys):
    """analyze --quick-train with an lr that blows the loss up: one line naming the step and the
    flag to change, exit code 3 (as the training scripts), no traceback."""
    assert cli(['analyze', 'kernel-matrix', 'cifar_quick', '--quick-train', '1', '--lr', '1e30']) == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith('asymmzoo analyze: error: loss is '), err
    assert 'stopped. Lower the learning rate (lr=1e+30; CLI: --lr)' in err[0], err


def test_detect_names_a_truncated_image(tmp_path, capsys):
    import numpy as np
    from PIL import Image
    p = tmp_path / 'x.jpg'
    Image.fromarray((np.random.RandomState(0).rand(64, 64, 3) * 255).astype(np.uint8)).save(str(p))
    data = p.read_bytes()
    p.write_bytes(data[:len(data) * 2 // 3])
    assert cli(['detect', str(p), '--params', str(tmp_path / 'x.params')]) == 2
    err = capsys.readouterr().err
    assert 'truncated JPEG' in err and 'Traceback' not in err, err


# ---------------------------------------------------------------------------------------------
# a failed downstream run leaves no save folder behind; a folder that was there, or holds a file, stays

@pytest.mark.parametrize('module,extra', [
    ('downstream.detection.train_yolo3', ['--dataset', 'folder']),
    ('downstream.pose.train_simple_pose', []),
])
def test_a_failed_run_removes_the_save_folder_it_created(module, extra, tmp_path, capsys):
    import importlib
    from asymmzoo.train.engine import run_cli
    main = importlib.import_module(module).main
    argv = extra + ['--data-root', str(tmp_path / 'nosuch'), '--epochs', '1']
    save = tmp_path / 'a' / 'run'
    assert run_cli(main, argv + ['--save-dir', str(save)], 'x') == 2
    assert 'nosuch' in capsys.readouterr().err
    assert not (tmp_path / 'a').exists()                 # the folder and the parent made with it
    kept = tmp_path / 'kept'
    kept.mkdir()
    assert run_cli(main, argv + ['--save-dir', str(kept)], 'x') == 2
    assert kept.is_dir() and os.listdir(str(kept)) == []    # there before: stays
    assert run_cli(main, argv + ['--save-dir', str(save)], 'x', interrupted='y') == 2
    assert not save.exists()


def test_ctrl_c_before_the_first_checkpoint_says_nothing_was_saved(tmp_path, capsys):
    from asymmzoo.train.engine import run_cli, Checkpoint
    save = tmp_path / 'run'

    def main(argv):
        Checkpoint(str(save), 'p', resume=False)
        raise KeyboardInterrupt
    assert run_cli(main, [], 'x', resumable=True) == 130
    err = capsys.readouterr().err
    assert 'interrupted; nothing was saved (no checkpoint yet; the save folder %s it made is removed)' % save \
        in err and '--resume' not in err, err
    assert not save.exists()


def test_a_failed_run_keeps_a_folder_with_a_file_it_did_not_write(tmp_path, monkeypatch):
    from asymmzoo.train.engine import run_cli, Checkpoint
    save = tmp_path / 'run'

    def main(argv):
        Checkpoint(str(save), 'p', resume=False)
        (save / 'notes.txt').write_text('the user\'s')
        raise KeyboardInterrupt
    assert run_cli(main, [], 'x') == 130
    assert (save / 'notes.txt').read_text() == 'the user\'s' and os.listdir(str(save)) == ['notes.txt']


@pytest.mark.parametrize('module,files', [
    ('downstream.action.train_tsn', ['P.params']),
    ('downstream.face.train_arcface', ['P-embed.params', 'P-margin.params']),
])
def test_save_prefix_does_not_replace_a_users_file(module, files, tmp_path, capsys, monkeypatch):
    import importlib
    mod = importlib.import_module(module)
    prefix = str(tmp_path / 'P')
    (tmp_path / files[-1]).write_bytes(b'the user\'s weights')
    argv = ['--data', str(tmp_path / 'nosuch')] if 'face' in module else \
        ['--data-root', str(tmp_path / 'nosuch'), '--train-list', str(tmp_path / 'nosuch.txt')]
    assert mod.cli(argv + ['--save-prefix', prefix, '--epochs', '1']) == 2
    err = capsys.readouterr().err
    assert '%s exists; pass --force to replace it, or choose another --save-prefix' % (tmp_path / files[-1]) \
        in err, err
    assert (tmp_path / files[-1]).read_bytes() == b'the user\'s weights'
    assert mod.cli(argv + ['--save-prefix', prefix, '--epochs', '1', '--force']) == 2
    assert 'exists' not in capsys.readouterr().err       # --force: on to the data (missing here)


@pytest.mark.parametrize('module', ['downstream.action.train_tsn', 'downstream.face.train_arcface'])
def test_ctrl_c_in_a_script_without_checkpoints_says_nothing_was_saved(module, capsys, monkeypatch):
    import importlib
    mod = importlib.import_module(module)

    def interrupted(args):
        raise KeyboardInterrupt
    monkeypatch.setattr(mod, 'train', interrupted)
    argv = ['--data', 'x'] if 'face' in module else ['--train-list', 'x.txt']
    assert mod.cli(argv + ['--save-prefix', 'P']) == 130
    err = capsys.readouterr().err
    assert 'interrupted; nothing was saved (--save-prefix writes PREFIX' in err and 'save folder' not in err, err


@pytest.mark.parametrize('argv,said', [
    (['--model', 'yolo3_asymmnet_small_0.35_voc'], 'yolo3_asymmnet_small_0.35_voc is a detection model; this '
     'script trains image classifiers: train it with python -m downstream.detection.train_yolo3'),
    (['--model', 'arcface_asymmnet_small_0.35'], 'train it with python -m downstream.face.train_arcface'),
    (['--kvstore', 'dist_sync'], '--kvstore dist_sync needs the environment of a distributed launch '
     '(DMLC_ROLE, DMLC_PS_ROOT_URI, DMLC_PS_ROOT_PORT, DMLC_NUM_WORKER, DMLC_NUM_SERVER not set); start the '
     'workers with: asymmzoo launch -n N -- python train_imagenet.py --kvstore dist_sync'),
])
def test_train_imagenet_refuses_other_tasks_and_an_unlaunched_dist_kvstore(argv, said, tmp_path, capsys,
                                                                           monkeypatch):
    for k in ('DMLC_ROLE', 'DMLC_PS_ROOT_URI', 'DMLC_PS_ROOT_PORT', 'DMLC_NUM_WORKER', 'DMLC_NUM_SERVER'):
        monkeypatch.delenv(k, raising=False)
    save = tmp_path / 'run'
    assert train_main(argv + ['--save-dir', str(save), '--no-progress']) == 2
    err = capsys.readouterr().err
    assert said in err and len(err.strip().splitlines()) == 1, err
    assert not save.exists()


def test_api_verbs_name_what_they_take():
    from asymmzoo.export import fastest_predictor
    for call, who in ((lambda: asymmzoo.rotatify(5), 'rotatify'), (lambda: asymmzoo.acnetify(5), 'acnetify'),
                      (lambda: asymmzoo.deploy(5), 'deploy'), (lambda: fastest_predictor(None), 'fastest_predictor')):
        with pytest.raises(TypeError, match=r'%s\(\) takes a Gluon network' % who):
            call()


def test_acnetify_refuses_a_net_in_acnet_form():
    net = asymmzoo.acnetify(asymmzoo.get_model('cifar_quick'))
    before = len(net.collect_params().keys())
    with pytest.raises(ValueError, match=r'already holds \d+ ACBlock.*use the net as it is, or '
                                         r'asymmzoo.deploy\(net\) it first'):
        asymmzoo.acnetify(net)
    assert len(net.collect_params().keys()) == before


def test_a_shape_with_a_zero_dimension_is_named(tmp_path):
    from asymmzoo.export import export_onnx
    from asymmzoo.utils import count_madds, count_params
    net = asymmzoo.get_model('cifar_quick')
    net.initialize()
    for call, who in ((lambda: count_madds(net, input_shape=(1, 3, 0, 32)), 'count_madds'),
                      (lambda: count_params(asymmzoo.get_model('cifar_quick'), (1, 3, 0, 32)), 'count_params'),
                      (lambda: export_onnx(net, str(tmp_path / 'x.onnx'), input_shape=(1, 3, 0, 32)),
                       'export_onnx')):
        with pytest.raises(ValueError, match=r'%s\(\): input_shape \(1, 3, 0, 32\) is not a valid shape: '
                                             'every dimension must be a positive integer' % who):
            call()
    assert os.listdir(str(tmp_path)) == []


@pytest.mark.parametrize('classes', [0, -1, 2.5, True])
def test_reset_classifier_checks_classes(classes):
    net = asymmzoo.get_model('asymmnet_small_0.35', classes=10)
    with pytest.raises(ValueError, match='classes must be a positive integer'):
        net.reset_classifier(classes)
    assert net.classes == 10


def test_deploy_refuses_bn_statistics_that_are_not_finite():
    import mxnet as mx
    net = asymmzoo.get_model('resnet18_v1_acb', classes=10)
    net.initialize()
    net(mx.nd.zeros((1, 3, 32, 32)))
    name, p = [(k, v) for k, v in net.collect_params().items() if k.endswith('running_var')][3]
    bad = p.data().copy()
    bad[0] = float('nan')
    p.set_data(bad)
    n_before = len(net.collect_params().keys())
    with pytest.raises(ValueError, match='BatchNorm parameter %s holds values that are not finite' % name):
        asymmzoo.deploy(net)
    assert len(net.collect_params().keys()) == n_before and not getattr(net, 'deployed', False)


def _faces(root, people=('a', 'b', 'c', 'd'), n=2):
    from PIL import Image
    import numpy as np
    for k, who in enumerate(people):
        (root / who).mkdir(parents=True)
        for i in range(n):
            Image.fromarray(np.full((32, 32, 3), 50 * k + 10 * i, np.uint8)).save(str(root / who / ('%d.jpg' % i)))
    return root


def test_a_corrupt_image_is_named_before_training(tmp_path, capsys):
    from asymmzoo.train.engine import run_cli
    from downstream.detection.train_yolo3 import main as yolo3
    from downstream.detection.data import VOCFolder
    from downstream.face.data import face_dataset, _NamedImageFolder
    root = _voc(tmp_path)
    bad = root / 'JPEGImages' / '000001.jpg'
    bad.write_bytes(b'\xff\xd8\xff\xe0 not really a JPEG' * 20)
    assert run_cli(yolo3, ['--dataset', 'folder', '--data-root', str(root), '--train-split', 'train',
                           '--val-split', 'val', '--epochs', '1', '--save-dir', str(tmp_path / 'run')], 'x') == 2
    err = capsys.readouterr().err
    assert '%s cannot be decoded' % bad in err and 'remove or replace the file' in err, err
    with pytest.raises(ValueError, match='000001.jpg cannot be decoded .*remove or replace'):
        VOCFolder(str(root), 'train')[1]        # at decode time too (an image spoilt after the check)
    faces = _faces(tmp_path / 'faces')
    (faces / 'b' / '1.jpg').write_bytes(b'garbage' * 30)
    with pytest.raises(ValueError, match=r'b/1.jpg cannot be decoded .*remove or replace the file'):
        face_dataset(str(faces))
    with pytest.raises(ValueError, match=r'b/1.jpg cannot be decoded'):
        _NamedImageFolder(str(faces), flag=1)[3]


def test_arcface_records_are_checked_against_num_classes(tmp_path):
    import shutil
    from asymmzoo.data.folder import pack_folder
    from downstream.face.data import face_dataset
    pack_folder(str(_faces(tmp_path / 'faces')), str(tmp_path / 'f'), progress=False)
    rec = str(tmp_path / 'f.rec')
    with pytest.raises(ValueError, match=r'f.rec has label 3 but --num-classes is 2 .*pass --num-classes 4'):
        face_dataset(rec, num_classes=2)
    assert face_dataset(rec, num_classes=4).num_classes == 4 and face_dataset(rec).num_classes == 4
    pack_folder(str(_faces(tmp_path / 'other', people=('x', 'y', 'z'), n=5)), str(tmp_path / 'g'), progress=False)
    shutil.copy(str(tmp_path / 'g.idx'), str(tmp_path / 'f.idx'))
    with pytest.raises(ValueError, match='f.rec: record .*f.idx belongs to another file'):
        face_dataset(rec)


def test_outputs_a_user_has_are_not_replaced_without_force(tmp_path, capsys):
    """export / bench / quantize / embed / convert-official refuse to replace a file that exists
    (before any work), and say --force; the file is left as it was."""
    keep = tmp_path / 'keep.json'
    keep.write_text('mine')
    out = tmp_path / 'e'
    out.mkdir()
    (out / 'cifar_quick.onnx').write_bytes(b'an earlier export')
    for argv, flag in ((['bench', 'cifar_quick', '--json', str(keep)], '--json'),
                       (['quantize', 'cifar_quick', '--json', str(keep)], '--json'),
                       (['quantize', 'cifar_quick', '--save-params', str(keep)], '--save-params'),
                       (['export', 'cifar_quick', '--out', str(out)], '--out'),
                       (['convert-official', str(tmp_path / 'x.params'), str(keep)], 'exists')):
        assert cli(argv) == 2, argv
        err = capsys.readouterr().err
        assert 'exists; pass --force' in err and flag in err and 'Traceback' not in err, (argv, err)
    assert keep.read_text() == 'mine' and (out / 'cifar_quick.onnx').read_bytes() == b'an earlier export'


def test_failed_commands_take_back_the_folders_they_made(tmp_path, capsys):
    """A command that fails leaves no output folder it made behind (a folder that existed stays)."""
    junk = tmp_path / 'junk.params'
    junk.write_bytes(b'junk')
    assert cli(['export', 'cifar_quick', '--params', str(junk), '--out', str(tmp_path / 'new' / 'e')]) == 2
    assert not (tmp_path / 'new').exists()
    assert cli(['pack', str(tmp_path / 'nonexist'), str(tmp_path / 'out'), '-q']) == 2
    assert not (tmp_path / 'out').exists()
    note = tmp_path / 'note.txt'
    note.write_text('x')
    assert cli(['pack', str(note), str(tmp_path / 'out2'), '-q']) == 2
    assert not (tmp_path / 'out2').exists()
    assert 'is not a folder of images' in capsys.readouterr().err


def test_more_cli_inputs_named(tmp_path, capsys, monkeypatch):
    assert cli(['rotate-table1', 'nosuch']) == 2
    assert 'Table I has no nosuch' in capsys.readouterr().err
    assert cli(['summary', 'cifar_quick', '--input-shape', '1', '1', '32', '32', '-q']) == 2
    err = capsys.readouterr().err
    assert 'cifar_quick does not run on --input-shape 1 1 32 32 (it takes 1x3x32x32 (3 channels))' in err, err
    home = tmp_path / 'home'
    home.write_text('a file')
    monkeypatch.setenv('MXNET_HOME', str(home))
    assert cli(['doctor']) == 0
    assert 'cannot be made: %s is a file' % home in capsys.readouterr().out
    r = subprocess.run([sys.executable, '-m', 'asymmzoo', '--help'], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0 and 'usage: asymmzoo' in r.stdout


def test_store_add_notes_another_class_count(tmp_path, capsys):
    import mxnet as mx
    net = asymmzoo.get_model('cifar_quick', classes=3)
    net.initialize()
    net(mx.nd.zeros((1, 3, 32, 32)))
    net.save_parameters(str(tmp_path / 'q.params'))
    assert cli(['store', 'add', str(tmp_path / 'q.params'), '--model', 'cifar_quick',
                '--root', str(tmp_path / 'st')]) == 0
    assert 'its classifier has 3 classes, cifar_quick\'s default is 10' in capsys.readouterr().err


def test_a_full_disk_while_packing_is_one_line_and_leaves_nothing(tmp_path):
    """`ulimit -f` makes MXNet's RecordIO writer fail mid-pack: one line, no temporaries."""
    _image_split(tmp_path / 'imgs' / 'train', n=20)
    _image_split(tmp_path / 'imgs' / 'val', n=20)
    code = ("import resource, signal, sys; signal.signal(signal.SIGXFSZ, signal.SIG_IGN); "
            "resource.setrlimit(resource.RLIMIT_FSIZE, (3000, 3000)); "
            "from asymmzoo.cli import main; sys.exit(main(sys.argv[1:]))")
    r = subprocess.run([sys.executable, '-c', code, 'pack', str(tmp_path / 'imgs'), str(tmp_path / 'out'), '-q'],
                       capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 2 and 'Traceback' not in r.stderr and 'disk full or not writable' in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert not (tmp_path / 'out').exists() or not any('tmp' in p.name for p in (tmp_path / 'out').iterdir())


def test_num_classes_must_match_the_data(tmp_path, capsys, packed):
    """--num-classes against the data: the digits / an ImageFolder know their class count; a RecordIO
    label outside --num-classes is named before training."""
    assert train_main(['--num-classes', '5', '--save-dir', str(tmp_path / 'r1')]) == 2
    assert '--num-classes 5: the embedded digits data has 10 classes' in capsys.readouterr().err
    d = packed / 'rec'
    rec = (str(d / 'train.rec'), str(d / 'train.idx'))
    args = ['--rec-train', rec[0], '--rec-train-idx', rec[1], '--rec-val', str(d / 'val.rec'),
            '--rec-val-idx', str(d / 'val.idx'), '--num-classes', '2', '--save-dir', str(tmp_path / 'r2'),
            '--model', 'mobilenetv3_small_0.35']
    # the packed folders have labels 0 and 1: --num-classes 2 passes the check; a 1-class claim cannot
    # be given (argparse wants >= 2), so relabel a record beyond the range instead
    import mxnet as mx
    bad = str(tmp_path / 'bad')
    r = mx.recordio.MXIndexedRecordIO(rec[1], rec[0], 'r')
    w = mx.recordio.MXIndexedRecordIO(bad + '.idx', bad + '.rec', 'w')
    for i, k in enumerate(sorted(r.keys)):
        header, img = mx.recordio.unpack(r.read_idx(k))
        w.write_idx(i, mx.recordio.pack(header._replace(label=7.0 if i == 1 else header.label), img))
    r.close()
    w.close()
    args[1], args[3] = bad + '.rec', bad + '.idx'
    assert train_main(args) == 2
    err = capsys.readouterr().err
    assert 'bad.rec: record 1 has label 7, outside the 2 classes of --num-classes 2' in err, err


def test_resume_without_settings_is_refused(tmp_path, capsys):
    run = tmp_path / 'run'
    run.mkdir()
    (run / 'resume.json').write_text('{}')
    assert train_main(['--resume', str(run), '--num-epochs', '2']) == 2
    assert 'its settings.json is missing' in capsys.readouterr().err


def test_worker_scratch_of_a_killed_run_is_removed_by_the_next(tmp_path):
    """Workers share one scratch folder named after the run's pid, removed at exit; a run killed with
    SIGKILL cannot remove its own, so the next run removes it (only ours, only when its owner is gone)."""
    dead = subprocess.Popen([sys.executable, '-c', 'pass'])
    dead.wait()
    stale = tmp_path / ('asymmzoo-pymp-%d-abc' % dead.pid)
    stale.mkdir()
    other = tmp_path / 'pymp-someone-else'
    other.mkdir()
    mine_alive = tmp_path / ('asymmzoo-pymp-%d-x' % os.getpid())   # a live owner: kept
    mine_alive.mkdir()
    code = ("from asymmzoo.data.workers import worker_scratch\n"
            "with worker_scratch() as d:\n"
            "    import os; print(os.path.basename(d))\n")
    r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, cwd=ROOT,
                       env=dict(os.environ, TMPDIR=str(tmp_path)))
    assert r.returncode == 0, r.stderr
    made = r.stdout.strip()
    assert made.startswith('asymmzoo-pymp-')
    assert not stale.exists() and other.exists() and mine_alive.exists()
    assert not (tmp_path / made).exists()          # its own folder went at exit
