"""Published weights without internet: a loopback HTTP server started by the test serves generated
files under the real URL layout (GluonCV's store through MXNET_GLUON_REPO, the authors' file through
ASYMMZOO_ASYMMNET_URL); the table's hashes are replaced by the generated files' own. Also: every
GluonCV row of the weights table is checked to fit our structure key for key, output for output."""
import contextlib
import http.server
import os
import subprocess
import sys
import threading
import zipfile
from dataclasses import replace

import mxnet as mx
import numpy as np
import pytest

import asymmzoo
from asymmzoo.download import FetchError, file_hash
from asymmzoo.io import sha1_of
from asymmzoo.models.sources import GLUONCV_SHA1, WEIGHTS, convert_gluoncv
from asymmzoo.registry import get_spec, set_weight_source, weight_sources
from test_store import _ReleasedModel, _out, _released_file

GLUONCV_ROWS = [n for n, s in WEIGHTS.items() if s.conversion == 'gluoncv']


# ---- a loopback server --------------------------------------------------------------------------
class _Server:
    """Serves ``files[path] = bytes``; ``mode[path]``: 'truncate' (half the body, full length
    announced), 'chunked_cut' (a chunked body that stops without its last chunk), 'error' (HTTP 500)."""

    def __init__(self):
        self.files, self.mode, self.hits = {}, {}, []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                outer.hits.append(self.path)
                data, mode = outer.files.get(self.path), outer.mode.get(self.path)
                if mode == 'error':
                    self.send_error(500, 'Internal Server Error')
                    return
                if data is None:
                    self.send_error(404, 'Not Found')
                    return
                self.send_response(200)
                if mode == 'chunked_cut':
                    self.send_header('Transfer-Encoding', 'chunked')
                    self.end_headers()
                    half = data[:len(data) // 2]
                    self.wfile.write(b'%x\r\n' % len(data) + half)   # announces more than it sends
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.send_header('Content-Length', str(len(data)))
                self.end_headers()
                self.wfile.write(data[:len(data) // 2] if mode == 'truncate' else data)

        self.httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Handler)
        self.url = 'http://127.0.0.1:%d/' % self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server(monkeypatch, tmp_path):
    s = _Server()
    monkeypatch.setenv('MXNET_GLUON_REPO', s.url + 'mirror/')
    monkeypatch.setenv('ASYMMZOO_ASYMMNET_URL', s.url + 'Spark001/AsymmNet/' +
                       '3b048213552ef97fdd337a293adca5980c2a2c1a/')
    monkeypatch.setenv('MXNET_HOME', str(tmp_path / 'home'))
    s.root = str(tmp_path / 'home' / 'models')
    yield s
    s.close()


@contextlib.contextmanager
def _source_hash(name, digest):
    """The table's row of ``name`` with its hash replaced (a generated file stands in)."""
    old = get_spec(name).source
    set_weight_source(name, replace(old, hash=digest))
    try:
        yield old
    finally:
        set_weight_source(name, old)


# ---- GluonCV's networks with random weights and random BN statistics ---------------------------
def _gluoncv_net(gname):
    from gluoncv.model_zoo import get_model as gget
    kw = dict(pretrained_base=False) if gname.startswith('mobile_pose') else {}
    net = gget(gname, pretrained=False, **kw)
    net.initialize(mx.init.Xavier())
    shape = _input_shape(gname)
    with mx.autograd.predict_mode():
        net(mx.nd.zeros(shape))   # deferred shapes
    rng = np.random.RandomState(1)
    for k, p in net.collect_params().items():
        if k.endswith(('running_var', 'gamma')):
            v = rng.uniform(0.5, 1.5, p.shape)
        elif k.endswith(('running_mean', 'beta')):
            v = rng.normal(0, 0.2, p.shape)
        else:
            fan_in = max(1, int(np.prod(p.shape[1:])))
            v = rng.normal(0, 1.0 / np.sqrt(fan_in), p.shape)
        p.set_data(mx.nd.array(v))
    return net


def _input_shape(gname):
    if gname.startswith('cifar'):
        return (2, 3, 32, 32)
    if gname.startswith('mobile_pose'):
        return (1, 3, 128, 96)
    return (2, 3, 224, 224)


def _gluoncv_zip(net, gname, folder):
    """GluonCV's file format: ``{name}-{short hash}.params`` (save_parameters) inside a .zip of that
    name; returns (zip bytes, the params file's sha1, the params file)."""
    file_name = '%s-%s' % (gname, GLUONCV_SHA1[gname][:8])
    params = os.path.join(folder, file_name + '.params')
    net.save_parameters(params)
    zpath = os.path.join(folder, file_name + '.zip')
    with zipfile.ZipFile(zpath, 'w') as zf:
        zf.write(params, file_name + '.params')
    return open(zpath, 'rb').read(), sha1_of(params), params, '/mirror/gluon/models/%s.zip' % file_name


def _serve_gluoncv(server, gname, folder):
    """GluonCV's own ``gname`` network with random weights, served by ``server`` in GluonCV's zip
    layout; returns (the network, the params file's sha1, the URL path)."""
    ref = _gluoncv_net(gname)
    data, sha1, _, path = _gluoncv_zip(ref, gname, folder)
    server.files[path] = data
    return ref, sha1, path


@pytest.mark.parametrize('ours', GLUONCV_ROWS)
def test_gluoncv_rows_fit_our_structure(ours, tmp_path):
    """Each GluonCV row: GluonCV's own network, random weights and BN statistics, saved in its file
    format, converted into ours: every key used, the same outputs."""
    gname = WEIGHTS[ours].origin.split()[-1]
    ref = _gluoncv_net(gname)
    _, _, params, _ = _gluoncv_zip(ref, gname, str(tmp_path))
    dst = str(tmp_path / 'converted.params')
    convert_gluoncv(params, dst, ours)
    assert len(mx.nd.load(dst)) == len(mx.nd.load(params))
    net = asymmzoo.get_model(ours, pretrained=dst)
    x = mx.nd.random.uniform(-1, 1, shape=_input_shape(gname))
    a, b = _out(net, x), _out(ref, x)
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5 * max(1.0, np.abs(b).max()))


def test_table_pins_gluoncv_hashes_and_preprocessing():
    from gluoncv.model_zoo.model_store import _model_sha1
    for gname, sha1 in GLUONCV_SHA1.items():
        assert _model_sha1[gname] == sha1
    a = WEIGHTS['asymmnet_large_1.0']
    assert a.preprocess.mean == (123.68, 116.779, 103.939) and a.preprocess.std == (58.393, 57.12, 57.375)
    assert a.hash_kind == 'git-blob-sha1' and a.top1 == 75.42
    assert WEIGHTS['mobilenetv3_large_1.0'].preprocess.mean == (123.675, 116.28, 103.53)
    assert set(weight_sources()) == set(WEIGHTS)
    assert get_spec('mobile_pose_mobilenetv3_small_1.0').source is WEIGHTS['mobile_pose_mobilenetv3_small_1.0']


def test_git_blob_hash(tmp_path):
    p = tmp_path / 'f'
    p.write_bytes(b'hello\n')
    assert file_hash(str(p), 'git-blob-sha1') == 'ce013625030ba8dba906f756967f9e9ca394464a'  # git hash-object


def test_pretrained_true_downloads_verifies_converts_stores(server, tmp_path):
    gname, ours = 'mobilenetv3_small', 'mobilenetv3_small_1.0'
    ref, sha1, path = _serve_gluoncv(server, gname, str(tmp_path))
    with _source_hash(ours, sha1):
        net = asymmzoo.get_model(ours, pretrained=True)
        stored = os.listdir(server.root)
        assert len(stored) == 1 and stored[0].startswith(ours + '-')
        assert server.hits == [path]
        x = mx.nd.random.uniform(-1, 1, shape=(2, 3, 224, 224))
        np.testing.assert_allclose(_out(net, x), _out(ref, x), rtol=1e-4, atol=1e-5)
        asymmzoo.get_model(ours, pretrained=True)          # from the store: no second download
        assert server.hits == [path]
        # a head's pretrained_base takes the same store file
        asymmzoo.get_model('yolo3_%s_voc' % ours, pretrained_base=True)
        assert server.hits == [path]


def test_head_pretrained_base_downloads(server, tmp_path):
    gname, ours = 'mobilenetv3_small', 'mobilenetv3_small_1.0'
    _, sha1, path = _serve_gluoncv(server, gname, str(tmp_path))
    with _source_hash(ours, sha1):
        asymmzoo.get_model('simple_pose_' + ours, pretrained_base=True)
    assert server.hits == [path] and len(os.listdir(server.root)) == 1


def test_authors_file_fetched_with_its_blob_id(server, tmp_path):
    src = str(tmp_path / 'released.params')
    shapes, _ = _released_file(src)
    ref = _ReleasedModel(shapes)
    ref.load_parameters(src)
    server.files['/Spark001/AsymmNet/3b048213552ef97fdd337a293adca5980c2a2c1a/checkpoints/'
                 '0.7542-imagenet-modifiedv3-358-best.params'] = open(src, 'rb').read()
    with _source_hash('asymmnet_large_1.0', file_hash(src, 'git-blob-sha1')):
        net = asymmzoo.get_model('asymmnet_large_1.0', pretrained=True)
    x = mx.nd.random.uniform(-1, 1, shape=(1, 3, 224, 224))
    b = _out(ref, x)
    np.testing.assert_allclose(_out(net, x), b, rtol=1e-4, atol=1e-4 * np.abs(b).max())


@pytest.mark.parametrize('failure', ['hash', 'truncated', 'chunked_cut', 'server_error', 'no_network',
                                     'not_a_zip', 'mirror_without_scheme'])
def test_failed_fetch_is_one_clear_error_and_the_store_stays_untouched(failure, server, tmp_path,
                                                                       monkeypatch):
    gname, ours = 'cifar_resnet20_v1', 'cifar_resnet20_v1'
    data, sha1, _, path = _gluoncv_zip(_gluoncv_net(gname), gname, str(tmp_path))
    os.makedirs(server.root)
    keep = os.path.join(server.root, 'mine.params')   # something the user saved stays as it was
    open(keep, 'wb').write(b'user data')
    server.files[path] = data
    expected = sha1
    if failure == 'hash':
        expected = '0' * 40
    elif failure in ('truncated', 'chunked_cut'):
        server.mode[path] = 'truncate' if failure == 'truncated' else 'chunked_cut'
    elif failure == 'mirror_without_scheme':
        monkeypatch.setenv('MXNET_GLUON_REPO', '127.0.0.1:9/mirror/')
    elif failure == 'server_error':
        server.mode[path] = 'error'
    elif failure == 'no_network':
        monkeypatch.setenv('MXNET_GLUON_REPO', 'http://127.0.0.1:9/mirror/')
    elif failure == 'not_a_zip':
        server.files[path] = b'PK\x03\x04 garbage' + data[100:]
    with _source_hash(ours, expected):
        with pytest.raises(FetchError) as err:
            asymmzoo.get_model(ours, pretrained=True)
    msg = str(err.value)
    url = {'no_network': 'http://127.0.0.1:9/mirror', 'mirror_without_scheme': '127.0.0.1:9/mirror'}.get(
        failure, server.url + 'mirror') + path[7:]
    assert url in msg, msg
    assert 'expected sha1 %s' % expected in msg
    assert '`asymmzoo store add FILE --model %s`' % ours in msg
    assert 'nothing stored' in msg
    assert sorted(os.listdir(server.root)) == ['mine.params']   # no store file, no temporaries
    assert open(keep, 'rb').read() == b'user data'


def _cli(args, env):
    return subprocess.run([sys.executable, '-m', 'asymmzoo.cli'] + args, capture_output=True, text=True,
                          env=dict(os.environ, **env))


def test_store_add_converts_the_published_file_and_store_list_shows_the_table(tmp_path, monkeypatch):
    """A file fetched elsewhere (the zip, or the params inside it) goes in with `store add`."""
    gname, ours = 'cifar_resnet20_v1', 'cifar_resnet20_v1'
    ref = _gluoncv_net(gname)
    data, sha1, params, _ = _gluoncv_zip(ref, gname, str(tmp_path))
    root = str(tmp_path / 'store')
    from asymmzoo.weights import add_to_store
    with _source_hash(ours, sha1):
        stored = add_to_store(str(tmp_path / ('%s-%s.zip' % (gname, GLUONCV_SHA1[gname][:8]))), ours, root=root)
        assert os.path.basename(stored) == '%s-%s.params' % (ours, sha1_of(stored)[:8])
        net = asymmzoo.get_model(ours, pretrained=True, root=root)
    x = mx.nd.random.uniform(-1, 1, shape=(2, 3, 32, 32))
    np.testing.assert_allclose(_out(net, x), _out(ref, x), rtol=1e-4, atol=1e-5)
    r = _cli(['store', 'list', '--root', root], {})
    assert r.returncode == 0, r.stderr
    row = [l for l in r.stdout.splitlines() if l.startswith('| cifar_resnet20_v1 |')][0]
    assert os.path.basename(stored) in row and 'sha1 121e1579d811b091940b3b1fa033e1f0d1dca40f' in row
    row = [l for l in r.stdout.splitlines() if l.startswith('| asymmnet_large_1.0 |')][0]
    assert '| - | 75.42 top-1 |' in row and '123.68/116.779/103.939 / 58.393/57.12/57.375, 224, 0.875' in row
    assert 'git-blob-sha1 a2ee7b4f3161cd32595a67c9ec9c64764b914f00' in row


def test_fetch_command(server, tmp_path):
    """`asymmzoo fetch PATTERN` in a subprocess against the loopback server: the hash it checks is the
    table's, so a generated file is refused there (one clear error, nothing stored); with the real
    hash pinned by a test hook it stores the file, and a second run finds it there."""
    gname, ours = 'cifar_resnet20_v1', 'cifar_resnet20_v1'
    _, sha1, path = _serve_gluoncv(server, gname, str(tmp_path))
    env = {'MXNET_GLUON_REPO': server.url + 'mirror/', 'MXNET_HOME': str(tmp_path / 'home'),
           'PYTHONPATH': os.path.dirname(os.path.dirname(os.path.abspath(__file__)))}
    r = _cli(['fetch', 'cifar_resnet20_*', '-q'], env)
    assert r.returncode == 2 and 'failed its integrity check' in r.stderr and 'nothing stored' in r.stderr
    assert not os.listdir(server.root)
    hook = str(tmp_path / 'hook.py')
    open(hook, 'w').write(
        "import sys, dataclasses, runpy\nimport asymmzoo\nfrom asymmzoo.registry import get_spec, "
        "set_weight_source\ns = get_spec(%r).source\nset_weight_source(%r, dataclasses.replace(s, hash=%r))\n"
        "sys.argv = ['asymmzoo'] + sys.argv[1:]\nfrom asymmzoo.cli import main\nsys.exit(main())\n"
        % (ours, ours, sha1))
    r = subprocess.run([sys.executable, hook, 'fetch', 'cifar_resnet20_*'], capture_output=True, text=True,
                       env=dict(os.environ, **env))
    assert r.returncode == 0, r.stderr
    assert os.listdir(server.root) == [os.path.basename(r.stdout.split(': ', 1)[1].strip())]
    assert '%' in r.stderr or 'B/s' in r.stderr   # the progress bar
    r = subprocess.run([sys.executable, hook, 'fetch', 'cifar_resnet20_v1'], capture_output=True, text=True,
                       env=dict(os.environ, **env))
    assert r.returncode == 0 and 'already in the store' in r.stdout
    r = _cli(['fetch', 'asymmnet_small_*'], env)
    assert r.returncode == 2 and 'no model with published weights matches' in r.stderr


# ---- the weights' preprocessing reaches the consumers ---------------------------------------------
def _image_split(root, n=2):
    from PIL import Image
    for c in ('a', 'b'):
        (root / c).mkdir(parents=True)
        for i in range(n):
            Image.fromarray(np.full((40, 40, 3), 30 * i + 100 * (c == 'b'), np.uint8)).save(
                str(root / c / ('%d.jpg' % i)))


def test_fetch_then_eval_only_with_the_weights_preprocessing(server, tmp_path, monkeypatch, capsys):
    """The issue's story, on loopback: `asymmzoo fetch 'mobilenetv3_*_1.0' asymmnet_large_1.0`, then
    `train_imagenet.py --eval-only --pretrained store` on an ImageFolder normalises with the authors'
    mean / std (not GluonCV's) and downloads nothing more."""
    from asymmzoo.cli import main as cli
    from asymmzoo.train import loop
    from asymmzoo.train.cli import main as train_main
    patches = []
    for gname in ('mobilenetv3_large', 'mobilenetv3_small'):
        sha1 = _serve_gluoncv(server, gname, str(tmp_path))[1]
        patches.append(_source_hash(gname + '_1.0', sha1))
    src = str(tmp_path / 'released.params')
    _released_file(src)
    server.files['/Spark001/AsymmNet/3b048213552ef97fdd337a293adca5980c2a2c1a/checkpoints/'
                 '0.7542-imagenet-modifiedv3-358-best.params'] = open(src, 'rb').read()
    patches.append(_source_hash('asymmnet_large_1.0', file_hash(src, 'git-blob-sha1')))
    seen = {}
    real = loop.build_source

    def spy(**kw):
        seen.update(kw)
        return real(**kw)
    monkeypatch.setattr(loop, 'build_source', spy)
    with contextlib.ExitStack() as stack:
        for p in patches:
            stack.enter_context(p)
        assert cli(['fetch', 'mobilenetv3_*_1.0', 'asymmnet_large_1.0', '-q']) == 0
        assert len(os.listdir(server.root)) == 3 and len(server.hits) == 3
        data = tmp_path / 'imagenet'
        _image_split(data / 'train')
        _image_split(data / 'val')
        rc = train_main(['--eval-only', '--pretrained', 'store', '--model', 'asymmnet_large_1.0',
                         '--data-dir', str(data), '--input-size', '32', '--batch-size', '2', '--no-progress'])
        err = capsys.readouterr().err
        assert rc == 0, err
    assert len(server.hits) == 3      # the store's file, nothing downloaded again
    np.testing.assert_allclose(np.array(seen['mean']) * 255, (123.68, 116.779, 103.939), rtol=1e-6)
    np.testing.assert_allclose(np.array(seen['std']) * 255, (58.393, 57.12, 57.375), rtol=1e-6)
    assert '123.68/116.779/103.939' in err


def test_consumers_read_the_weights_preprocessing():
    from asymmzoo.commands.downstream import normalisation
    from asymmzoo.registry import preprocess_of
    from asymmzoo.train.loop import weights_preprocess
    import argparse
    authors = preprocess_of('asymmnet_large_1.0')
    assert authors.mean == (123.68, 116.779, 103.939)
    assert preprocess_of('asymmnet_large_1.0_acb') is authors                    # a twin: its base's
    assert preprocess_of('yolo3_asymmnet_large_1.0_voc') is authors              # a head: its backbone's
    assert preprocess_of('asymmnet_small_0.5') is None
    assert weights_preprocess(argparse.Namespace(pretrained='store', model='asymmnet_large_1.0')) is authors
    assert weights_preprocess(argparse.Namespace(pretrained='x.params', model='asymmnet_large_1.0')) is None
    # detect / pose: the model's own row, else GluonCV's values (what the training scripts use)
    mean, std = normalisation('mobile_pose_mobilenetv3_large_1.0')
    np.testing.assert_allclose(mean, (0.485, 0.456, 0.406), atol=1e-4)
    with _source_hash('mobile_pose_mobilenetv3_large_1.0', '0' * 40):
        old = get_spec('mobile_pose_mobilenetv3_large_1.0').source
        set_weight_source('mobile_pose_mobilenetv3_large_1.0', replace(old, preprocess=authors))
        mean, std = normalisation('mobile_pose_mobilenetv3_large_1.0')
    np.testing.assert_allclose(np.array(mean) * 255, authors.mean, rtol=1e-6)
    assert normalisation('yolo3_asymmnet_large_1.0_voc')[0] == (0.485, 0.456, 0.406)


def test_fastest_predictor_takes_pixels_with_the_weights_preprocessing(tmp_path):
    from asymmzoo.weights import add_to_store
    pytest.importorskip('onnxruntime')
    from asymmzoo.export import fastest_predictor
    from asymmzoo.io import atomic_save_parameters
    net = asymmzoo.get_model('mobilenetv3_small_1.0')
    net.initialize(mx.init.Xavier())
    net(mx.nd.zeros((1, 3, 64, 64)))
    assert getattr(net, 'weights_preprocess', None) is None      # random weights: no known run
    atomic_save_parameters(net, str(tmp_path / 'w.params'))
    root = str(tmp_path / 'store')
    add_to_store(str(tmp_path / 'w.params'), 'mobilenetv3_small_1.0', root=root)
    net = asymmzoo.get_model('mobilenetv3_small_1.0', pretrained=True, root=root)
    pred = fastest_predictor(net, input_shape=(1, 3, 64, 64))
    pp = pred.preprocess
    assert pp is WEIGHTS['mobilenetv3_small_1.0'].preprocess
    pixels = np.random.RandomState(0).randint(0, 256, size=(1, 64, 64, 3)).astype(np.uint8)
    x = (pixels.transpose(0, 3, 1, 2) - np.array(pp.mean).reshape(1, 3, 1, 1)) / np.array(pp.std).reshape(1, 3, 1, 1)
    np.testing.assert_allclose(pred(pixels), pred(x.astype(np.float32)), rtol=1e-5, atol=1e-5)
    other = asymmzoo.get_model('mobilenetv3_small_0.35')
    other.initialize(mx.init.Xavier())
    plain = fastest_predictor(other, input_shape=(1, 3, 64, 64))
    assert plain.preprocess is None
    with pytest.raises(ValueError, match='raw pixels'):
        plain(pixels)


def test_summary_shows_the_published_weights(capsys):
    from asymmzoo.cli import main as cli
    assert cli(['summary', 'cifar_resnet20_v1', 'cifar_quick', '-q']) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].endswith('| published weights |')
    row = [l for l in out if l.startswith('| cifar_resnet20_v1 |')][0]
    assert row.endswith('| 92.1 CIFAR-10 accuracy (GluonCV cifar_resnet20_v1) |')
    assert [l for l in out if l.startswith('| cifar_quick |')][0].endswith('|  |')


def test_quantize_calibration_images_use_the_weights_preprocessing(tmp_path):
    from PIL import Image
    from asymmzoo.quantize import calibration_images
    (tmp_path / 'imgs' / 'x').mkdir(parents=True)
    for i in range(3):
        Image.fromarray(np.full((40, 50, 3), 50 * i + 20, np.uint8)).save(str(tmp_path / 'imgs' / 'x' / ('%d.png' % i)))
    x = calibration_images('asymmnet_large_1.0', str(tmp_path / 'imgs'), n=2, input_size=32)
    assert x.shape == (2, 3, 32, 32) and x.dtype == np.float32
    pixel = np.round(x[:, 0, 0, 0] * 58.393 + 123.68)   # back to pixels with the authors' values
    assert set(pixel) <= {20.0, 70.0, 120.0}
    with pytest.raises(ValueError, match='no published weights'):
        calibration_images('asymmnet_small_0.5', str(tmp_path / 'imgs'))
    (tmp_path / 'empty').mkdir()
    with pytest.raises(ValueError, match='no images'):
        calibration_images('asymmnet_large_1.0', str(tmp_path / 'empty'))


def test_default_urls_are_the_published_ones(monkeypatch):
    """With no mirror set, the table resolves to GluonCV's model store and the authors' raw file at
    the pinned commit (the loopback tests override both, so this pins the defaults themselves)."""
    monkeypatch.delenv('MXNET_GLUON_REPO', raising=False)
    monkeypatch.delenv('ASYMMZOO_ASYMMNET_URL', raising=False)
    assert WEIGHTS['resnet18_v1'].resolved_urls() == [
        'https://apache-mxnet.s3-accelerate.dualstack.amazonaws.com/gluon/models/resnet18_v1-a0666292.zip']
    assert WEIGHTS['asymmnet_large_1.0'].resolved_urls() == [
        'https://raw.githubusercontent.com/Spark001/AsymmNet/3b048213552ef97fdd337a293adca5980c2a2c1a/'
        'checkpoints/0.7542-imagenet-modifiedv3-358-best.params']
    from gluoncv.model_zoo import model_store
    assert model_store.apache_repo_url == 'https://apache-mxnet.s3-accelerate.dualstack.amazonaws.com/'
