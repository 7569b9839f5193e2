"""The package's layers (.importlinter): no import cycle between layers, no import running back up a
layer, and the library never imports the downstream pipelines."""
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_layer_contract_holds():
    out = subprocess.run([sys.executable, '-c', 'from importlinter.cli import lint_imports_command; '
                          'lint_imports_command()', '--no-cache'],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
    assert 'Contracts: 2 kept, 0 broken' in out.stdout, out.stdout[-2000:]


def test_contract_catches_an_upward_import(tmp_path):
    """The check can fail: a copy of the package in which a low layer imports a high one breaks it."""
    import shutil
    pkg = tmp_path / 'asymmzoo'
    shutil.copytree(os.path.join(ROOT, 'asymmzoo'), str(pkg),
                    ignore=shutil.ignore_patterns('__pycache__', '*.json'))
    with open(str(pkg / 'io.py'), 'a') as f:
        f.write('\n\ndef _bad():\n    from .registry import get_model  # noqa\n')
    shutil.copy(os.path.join(ROOT, '.importlinter'), str(tmp_path / '.importlinter'))
    out = subprocess.run([sys.executable, '-c', 'from importlinter.cli import lint_imports_command; '
                          'lint_imports_command()', '--no-cache'],
                         cwd=str(tmp_path), capture_output=True, text=True, timeout=300,
                         env=dict(os.environ, PYTHONPATH=str(tmp_path)))
    assert out.returncode != 0 and 'asymmzoo.io -> asymmzoo.registry' in out.stdout, out.stdout[-3000:]
