"""The `asymmzoo bench|export|quantize` commands together (asymmzoo/commands/deploy_tools.py): the
one-line refusals of each verb, the --params and output paths they check before any work, and the
registry's downstream heads (a YOLOv3 detector, a TSN video model) through export and bench."""
from unittest import mock

import mxnet as mx
import numpy as np
import pytest

import asymmzoo
from asymmzoo import bench as B
from asymmzoo import export as E
from asymmzoo.cli import main

pytest.importorskip('onnx')
pytest.importorskip('onnxruntime')


@pytest.mark.parametrize('argv,needle', [
    (['export', 'asymmnet_large_9.0', '--format', 'onnx'], 'unknown model'),
    (['export', 'asymmnet_small_0.35', '--format', 'tflite'], "invalid choice: 'tflite'"),
    (['export', 'asymmnet_small_0.35', '--atol', '-1'], "'-1' is not a positive number"),
    (['bench', 'asymmnet_small_0.35', '--warmup', '-1'], "'-1' is not a non-negative integer"),
    (['bench', 'gluoncv:mobilenetv3_smal'], "unknown GluonCV model 'mobilenetv3_smal'; closest: "
                                            "mobilenetv3_small"),
    (['bench', 'gluoncv:mobilenetv3_*'], 'give one GluonCV model name, not a pattern'),
    (['bench', 'no_such_net_*'], 'no registered model matches'),
    (['quantize', 'mobilenetv3_small_0.35', '--params', '/nonexistent.params'], 'nonexistent'),
])
def test_clear_errors(tmp_path, capsys, argv, needle):
    if argv[0] == 'export':
        argv = argv + ['--out', str(tmp_path)]
    try:
        rc = main(argv)
    except SystemExit as e:   # argparse's own refusals
        rc = e.code
    err = capsys.readouterr().err
    assert rc == 2 and needle in err, err


def test_export_params_and_output_paths(tmp_path, capsys):
    """What a user can get wrong in export / bench / quantize is one clear line, before any work."""
    shape = ['--input-shape', '1', '3', '32', '32']
    # a 10-class checkpoint (quantize --save-params) exports: the class count comes from the file
    net = asymmzoo.get_model('mobilenetv3_small_0.35', classes=10)
    net.initialize(mx.init.MSRAPrelu())
    net(mx.nd.zeros((1, 3, 32, 32)))
    net.save_parameters(str(tmp_path / 'm10.params'))
    assert main(['export', 'mobilenetv3_small_0.35', '--params', str(tmp_path / 'm10.params'),
                 '--out', str(tmp_path / 'o')] + shape) == 0
    assert 'random weights' not in capsys.readouterr().out
    sess = E.onnx_session(str(tmp_path / 'o' / 'mobilenetv3_small_0.35.onnx'))
    x = np.random.RandomState(0).standard_normal((1, 3, 32, 32)).astype(np.float32)
    with mx.autograd.predict_mode():
        ref = net(mx.nd.array(x)).asnumpy()
    got = sess.run(None, {sess.get_inputs()[0].name: x})[0]
    assert got.shape == (1, 10) and np.abs(got - ref).max() <= 1e-4 * max(1, np.abs(ref).max())
    # ... and its weights are the file's: loading them into a 1000-class model names the class count
    from asymmzoo.io import load_parameters_checked
    from asymmzoo.store import StoreError
    with pytest.raises(StoreError, match='classifier has 10 classes, the model 1000: build it with classes=10'):
        load_parameters_checked(asymmzoo.get_model('mobilenetv3_small_0.35'), str(tmp_path / 'm10.params'))
    other = asymmzoo.get_model('cifar_resnet20_v1')
    other.initialize()
    other(mx.nd.zeros((1, 3, 32, 32)))
    other.save_parameters(str(tmp_path / 'r20.params'))
    (tmp_path / 'junk.params').write_bytes(b'junk')
    assert main(['export', 'mobilenetv3_small_0.35', '--format', 'symbol', '--out', str(tmp_path / 's')] + shape) == 0
    assert 'random weights (pass --params FILE' in capsys.readouterr().out
    # the symbol files are checked too: a reload that differs fails the export
    with mock.patch('asymmzoo.export.max_abs_diff', return_value=0.5):
        assert main(['export', 'mobilenetv3_small_0.35', '--format', 'symbol', '--out',
                     str(tmp_path / 's2')] + shape) == 2
    assert 'differs from the network by 0.5 (> --atol 0.0001)' in capsys.readouterr().err
    (tmp_path / 'afile').write_text('x')
    for argv, needle in [
        (['--params', str(tmp_path / 'r20.params')], 'r20.params does not fit mobilenetv3_small_0.35'),
        (['--params', str(tmp_path / 'junk.params')], 'not a readable MXNet params file (MXNetError: Check failed'),
        (['--params', str(tmp_path / 's' / 'mobilenetv3_small_0.35-0000.params')], 'is a symbol export'),
        (['--out', str(tmp_path / 'afile')], 'is a file; give a folder'),
        (['--out', str(tmp_path / 'afile' / 'sub')], 'cannot make the folder'),
    ]:
        if '--out' not in argv:
            argv = argv + ['--out', str(tmp_path / 'o2')]
        assert main(['export', 'mobilenetv3_small_0.35'] + argv + shape) == 2, argv
        err = capsys.readouterr().err
        assert needle in err and 'Traceback' not in err and 'allow_missing' not in err, err
    assert main(['export', 'gluoncv:mobilenetv3_small']) == 2
    assert 'bench comparisons' in capsys.readouterr().err
    # output files that cannot be written are refused before the benchmark / training runs
    assert main(['bench', 'mobilenetv3_small_0.35', '--json', str(tmp_path / 'afile' / 'r.json')] + shape) == 2
    assert 'cannot make its folder' in capsys.readouterr().err
    assert main(['quantize', 'mobilenetv3_small_0.35', '--json', str(tmp_path)]) == 2
    assert 'is a folder; give a file name' in capsys.readouterr().err
    assert main(['quantize', 'mobilenetv3_small_0.35', '--save-params', str(tmp_path / 'afile' / 'w.params')]) == 2
    assert 'cannot make its folder' in capsys.readouterr().err
    for argv in (['--batch-sizes', '0'], ['--rounds', '0'], ['--threads', '-1'], ['--batch-sizes', 'x']):
        with pytest.raises(SystemExit):
            main(['bench', 'mobilenetv3_small_0.35'] + argv)
        assert 'is not a positive integer' in capsys.readouterr().err


def test_export_and_bench_detector_and_video_heads(tmp_path, capsys):
    """The heads in the registry go through the same verbs: a YOLOv3 detector exports as symbol files
    (ONNX refused: its NMS does not translate) and benchmarks in MXNet; a TSN video model's batch
    items are its frames (num_segments each), in export, its ONNX check and the benchmark."""
    import onnx
    yolo = ['yolo3_asymmnet_small_0.35_voc', '--input-shape', '1', '3', '64', '64', '--out', str(tmp_path)]
    assert main(['export'] + yolo[:1] + ['--format', 'symbol'] + yolo[1:]) == 0
    assert 'reloaded as SymbolBlock: max abs diff 0' in capsys.readouterr().out
    assert main(['export'] + yolo) == 2
    assert 'is a detector' in capsys.readouterr().err
    tsn = 'tsn_asymmnet_small_0.35_ucf101'
    assert main(['export', tsn, '--input-shape', '1', '3', '64', '64', '--out', str(tmp_path)]) == 0
    assert 'max abs diff' in capsys.readouterr().out
    m = onnx.load(str(tmp_path / (tsn + '.onnx')))
    onnx.checker.check_model(m, full_check=True)   # the declared opset is the one written for
    assert [o.version for o in m.opset_import if o.domain in ('', 'ai.onnx')] == [14]
    rows = B.benchmark(['yolo3_asymmnet_small_0.35_voc', tsn], batch_sizes=(1, 2), rounds=1, warmup=1,
                       input_shape=(1, 3, 64, 64))
    assert [r['input_shape'] for r in rows] == [[1, 3, 64, 64], [3, 3, 64, 64]]
    rows = B.benchmark([tsn], engines=('onnxruntime',), batch_sizes=(1, 2), rounds=1, warmup=1,
                       input_shape=(1, 3, 64, 64))   # static sessions of 3 and 6 frames
    assert rows[0]['onnx_max_abs_diff'] <= 1e-4
    with pytest.raises(ValueError, match='is a detector'):
        B.benchmark(['yolo3_asymmnet_small_0.35_voc'], engines=('onnxruntime',), batch_sizes=(1,),
                    rounds=1, warmup=0, input_shape=(1, 3, 64, 64))
    with pytest.raises(ValueError, match='a fixed batch of this video model is a multiple of its 3'):
        net, _ = E.prepare_model(tsn, input_shape=(1, 3, 64, 64))
        E.export_onnx(net, str(tmp_path / 'v.onnx'), (2, 3, 64, 64), dynamic_batch=False)
    with pytest.raises(ValueError, match='is a detector, whose training step needs its targets'):
        B.benchmark(['yolo3_asymmnet_small_0.35_voc'], batch_sizes=(1,), rounds=1, warmup=0,
                    train_step=True, train_batch=2, input_shape=(1, 3, 64, 64))
    with pytest.raises(ValueError, match='is an embedding network'):
        B.benchmark(['arcface_asymmnet_small_0.35'], batch_sizes=(1,), rounds=1, warmup=0,
                    train_step=True, train_batch=2)
