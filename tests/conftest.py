import os

import pytest

os.environ.setdefault('MPLBACKEND', 'Agg')
import shutil
import tempfile
_MXNET_HOME = tempfile.mkdtemp(prefix='asymmzoo-test-mxnet-home-')
os.environ['MXNET_HOME'] = _MXNET_HOME  # never touch ~/.mxnet
# published weights are never fetched from the internet by a test: a closed loopback port (the fetch
# tests serve their own files and point these at their server)
os.environ['MXNET_GLUON_REPO'] = 'http://127.0.0.1:9/'
os.environ['ASYMMZOO_ASYMMNET_URL'] = 'http://127.0.0.1:9/'


def pytest_unconfigure(config):
    shutil.rmtree(_MXNET_HOME, ignore_errors=True)   # a test session leaves nothing in /tmp


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
