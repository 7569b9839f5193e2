import subprocess
import sys

import mxnet as mx
from mxnet.gluon import nn

import asymmzoo
from asymmzoo.utils import count_buffers, count_madds, count_params, layer_madds


def test_counts_of_known_layers():
    net = nn.HybridSequential()
    net.add(nn.Conv2D(8, 3, padding=1, in_channels=3),          # 32*32*8 * 3*3*3 = 221184
            nn.BatchNorm(in_channels=8),
            nn.Conv2D(8, 3, strides=2, padding=1, groups=8, in_channels=8),  # 16*16*8*9 = 18432
            nn.Conv2DTranspose(4, 4, strides=2, padding=1, in_channels=8),  # 16*16*8 * 4*16 = 131072
            nn.Dense(10, in_units=4 * 32 * 32))                 # 4096*10 = 40960
    net.initialize()
    assert count_madds(net, (1, 3, 32, 32)) == 221184 + 18432 + 131072 + 40960
    assert count_madds(net, (4, 3, 32, 32)) == 221184 + 18432 + 131072 + 40960  # per sample
    assert [op for _, op, _ in layer_madds(net, (1, 3, 32, 32))] == [
        'Convolution', 'Convolution', 'Deconvolution', 'FullyConnected']
    # trainable: conv 216+8, bn gamma/beta 16, dw 72+8, deconv 8*4*16+4, dense 40960+10
    assert count_params(net) == 224 + 16 + 80 + 516 + 40970
    assert count_buffers(net) == 16


def test_summary_cli():
    r = subprocess.run([sys.executable, '-m', 'asymmzoo.cli', 'summary', 'asymmnet_large_1.0*', '-q'],
                       capture_output=True, text=True, check=True)
    lines = r.stdout.strip().splitlines()
    assert lines[0].startswith('| model | params | MAdds')
    row = [l for l in lines if l.startswith('| asymmnet_large_1.0 |')][0]
    assert '| 6,076,608 | 216.9M | 3x224x224 | (1, 1000) |' in row
    r = subprocess.run([sys.executable, '-m', 'asymmzoo.cli', 'summary', 'nothing_like_this*'],
                       capture_output=True, text=True)
    assert r.returncode == 2 and 'no registered model matches' in r.stderr
