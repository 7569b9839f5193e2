"""Python 3.11 / 3.12 support: the numpy compatibility module, the start-up hook, run.sh's choice of
interpreter and its message when there is none."""
import os
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_compat_restores_exactly_the_removed_aliases():
    import asymmzoo  # noqa: F401  (runs compat.apply before mxnet)
    from asymmzoo import compat
    assert compat.removed_numpy_aliases() == []
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        for name, builtin in (('bool', bool), ('int', int), ('float', float), ('complex', complex),
                              ('object', object), ('str', str)):
            assert getattr(np, name) is builtin, name
    assert compat.apply() == []          # idempotent: nothing left to restore


def test_compat_on_a_numpy_without_the_aliases(tmp_path):
    """A stand-in numpy that lacks the aliases (as numpy >= 1.24 does) gets exactly those six."""
    fake = tmp_path / 'numpy'
    fake.mkdir()
    (fake / '__init__.py').write_text("__version__ = '9.9'\n")
    code = ("import sys; sys.path.insert(0, %r)\n"
            "import importlib.util\n"
            "spec = importlib.util.spec_from_file_location('c', %r)\n"
            "c = importlib.util.module_from_spec(spec); spec.loader.exec_module(c)\n"
            "print(sorted(c.apply()))\n"
            "import numpy; assert numpy.bool is bool and numpy.object is object\n"
            "print(sorted(k for k in vars(numpy) if not k.startswith('_')))\n"
            % (str(tmp_path), os.path.join(ROOT, 'asymmzoo', 'compat.py')))
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    first, second = out.stdout.splitlines()[:2]
    want = "['bool', 'complex', 'float', 'int', 'object', 'str']"
    assert first == want and second == want


def test_plain_import_mxnet_works_in_a_fresh_interpreter():
    """On numpy >= 1.24 (Python 3.12) this needs the start-up hook; on 3.11 it must stay harmless."""
    out = subprocess.run([sys.executable, '-c', 'import mxnet, numpy; print(mxnet.__version__)'],
                         capture_output=True, text=True, timeout=120, cwd=str(ROOT))
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().endswith('1.9.1')


def _fake_path(tmp_path, pythons):
    """A PATH with the shell tools run.sh uses and only the given python3.X links."""
    bin_ = tmp_path / 'bin'
    bin_.mkdir()
    for tool in ('bash', 'cat', 'sha1sum', 'cut', 'dirname', 'env'):
        os.symlink(shutil.which(tool), str(bin_ / tool))
    for name, target in pythons.items():
        os.symlink(target, str(bin_ / name))
    return str(bin_)


def _python(version):
    out = subprocess.run(['bash', os.path.join(ROOT, 'run.sh'), 'python', version],
                         capture_output=True, text=True, timeout=30)
    return out.stdout.strip() if out.returncode == 0 else None


def _run_sh(tmp_path, path, extra_env=None, args=('main',)):
    env = {'PATH': path, 'HOME': str(tmp_path / 'home'), 'VENV': str(tmp_path / 'venv')}
    env.update(extra_env or {})
    t = time.time()
    out = subprocess.run([os.path.join(path, 'bash'), os.path.join(ROOT, 'run.sh')] + list(args),
                         capture_output=True, text=True, timeout=30, env=env)
    return out, time.time() - t


def test_run_sh_takes_a_supported_python3(tmp_path):
    """A machine whose only interpreter is `python3` = 3.11 or 3.12 is served (setup is not run
    here: `run.sh python` only names the interpreter)."""
    path = _fake_path(tmp_path, {'python3': sys.executable})
    me = '%d.%d' % sys.version_info[:2]
    out, _ = _run_sh(tmp_path, path, args=('python', me))
    assert out.returncode == 0 and out.stdout.strip() == 'python3', out.stderr


def test_run_sh_finds_this_python():
    me = '%d.%d' % sys.version_info[:2]
    found = _python(me)
    assert found, 'run.sh did not find Python %s' % me
    v = subprocess.run([found, '-c', 'import sys; print("%d.%d" % sys.version_info[:2])'],
                       capture_output=True, text=True).stdout.strip()
    assert v == me


def test_run_sh_stops_at_once_without_a_supported_python(tmp_path):
    """Only an unsupported python3 on the machine: one clear message within a second, before pip."""
    fake = tmp_path / 'python3.13'
    fake.write_text('#!/bin/sh\necho 3.13\n')            # answers run.sh's version question
    fake.chmod(0o755)
    path = _fake_path(tmp_path, {'python3': str(fake), 'python3.13': str(fake)})
    out, secs = _run_sh(tmp_path, path)
    assert out.returncode == 2, out
    assert secs < 5
    assert 'needs Python 3.11 or 3.12' in out.stderr and 'pyenv install 3.11' in out.stderr
    assert 'python3 is 3.13' in out.stderr              # says what it did find
    assert not (tmp_path / 'venv').exists()              # nothing was set up


@pytest.mark.parametrize('version', ['3.10', '3.13'])
def test_run_sh_refuses_an_unsupported_python(tmp_path, version):
    fake = tmp_path / ('python%s' % version)
    fake.write_text('#!/bin/sh\necho %s\n' % version)   # answers run.sh's version question
    fake.chmod(0o755)
    path = _fake_path(tmp_path, {})
    out, secs = _run_sh(tmp_path, path, {'PYTHON': str(fake)})
    assert out.returncode == 2 and 'is Python %s' % version in out.stderr, out.stderr
    assert secs < 5 and not (tmp_path / 'venv').exists()
