import os

import pytest

os.environ.setdefault('MPLBACKEND', 'Agg')
import tempfile
os.environ['MXNET_HOME'] = tempfile.mkdtemp(prefix='asymmzoo-test-mxnet-home-')  # never touch ~/.mxnet


def pytest_addoption(parser):
    parser.addoption('--runslow', action='store_true', default=False,
                     help='also run tests marked slow (end-to-end training, multi-process jobs)')


def pytest_collection_modifyitems(config, items):
    if config.getoption('--runslow'):
        return
    skip = pytest.mark.skip(reason='slow: run with --runslow')
    for item in items:
        if 'slow' in item.keywords:
            item.add_marker(skip)
