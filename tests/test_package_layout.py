"""The package layout: which of asymmzoo's packages may import which, `import asymmzoo` staying light
(export / quantize / bench load on first use), and the old module paths (asymmzoo.utils.export,
.quantize, .benchmark, .nchwc) still giving the same objects."""
import ast
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PKG = os.path.join(ROOT, 'asymmzoo')
TOOLS = ('export', 'quantize', 'bench')
# what each tool package may import from asymmzoo, besides itself
BASE = {'nn', 'models', 'registry', 'store', 'deploy', 'data', 'utils', 'compat'}
ALLOWED = {'export': BASE, 'quantize': BASE | {'export'}, 'bench': BASE | {'export'}}
LOWER = ('nn', 'models', 'registry.py', 'store.py', 'deploy.py', 'data', 'utils')
# the deprecated re-exports of the old paths: the only lower-layer modules that import the tools
SHIMS = {os.path.join('utils', f) for f in ('export.py', 'quantize.py', 'benchmark.py', 'nchwc.py')}


def _modules(top):
    path = os.path.join(PKG, top)
    if top.endswith('.py'):
        yield top
        return
    for d, _, files in os.walk(path):
        for f in files:
            if f.endswith('.py'):
                yield os.path.relpath(os.path.join(d, f), PKG)


def _asymmzoo_imports(rel):
    """The asymmzoo packages / modules (first component under asymmzoo) that ``asymmzoo/rel`` imports,
    function-level imports included."""
    with open(os.path.join(PKG, rel)) as f:
        tree = ast.parse(f.read())
    here = ['asymmzoo'] + rel[:-3].split(os.sep)
    if here[-1] == '__init__':
        here = here[:-1]
    else:
        here = here[:-1]   # the package the module is in
    out = set()
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = here[:len(here) - node.level + 1] if node.level else []
            mod = base + (node.module.split('.') if node.module else [])
            names = ['.'.join(mod + [a.name]) for a in node.names] + ['.'.join(mod)]
        for n in names:
            parts = n.split('.')
            if parts[0] == 'asymmzoo' and len(parts) > 1:
                out.add(parts[1])
    return out


def test_lower_layers_do_not_import_the_tool_packages():
    bad = {}
    for top in LOWER:
        for rel in _modules(top):
            if rel in SHIMS:
                continue
            found = _asymmzoo_imports(rel) & set(TOOLS)
            if found:
                bad[rel] = sorted(found)
    assert not bad, bad


def test_tool_packages_import_only_what_their_layer_allows():
    bad = {}
    for tool in TOOLS:
        for rel in _modules(tool):
            found = _asymmzoo_imports(rel) - ALLOWED[tool] - {tool}
            if found:
                bad[rel] = sorted(found)
    assert not bad, bad   # export imports neither quantize nor bench; quantize and bench not each other


def test_the_layer_check_sees_function_level_and_relative_imports():
    assert {'export', 'store', 'utils'} <= _asymmzoo_imports(os.path.join('quantize', 'save.py'))
    assert _asymmzoo_imports(os.path.join('utils', 'export.py')) >= {'export'}


def test_import_asymmzoo_stays_light_and_the_tools_load_on_first_use():
    code = ('import sys, asymmzoo\n'
            'print(sorted(m for m in sys.modules if m.split(".")[:2] in '
            '[["asymmzoo", t] for t in ("export", "quantize", "bench")]))\n'
            'print(asymmzoo.export.fastest_predictor.__module__, asymmzoo.quantize.layer_sqnr.__module__, '
            'asymmzoo.bench.benchmark.__module__)\n'
            'print(asymmzoo.utils.export.fastest_predictor is asymmzoo.export.fastest_predictor)\n')
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split('\n')[:3] == [
        '[]', 'asymmzoo.export.predictor asymmzoo.quantize.sqnr asymmzoo.bench.timing', 'True']
    import asymmzoo
    with pytest.raises(AttributeError, match="has no attribute 'no_such_package'"):
        asymmzoo.no_such_package


def test_old_module_paths_give_the_same_objects():
    import asymmzoo
    import asymmzoo.utils.benchmark as old_bench
    import asymmzoo.utils.export as old_export
    import asymmzoo.utils.nchwc as old_nchwc
    import asymmzoo.utils.quantize as old_quantize
    from asymmzoo.utils.export import fastest_predictor, OnnxPredictor   # as the docs used to show
    from asymmzoo.utils.quantize import layer_sqnr
    from asymmzoo.utils.nchwc import pad_channels
    assert fastest_predictor is asymmzoo.export.fastest_predictor
    assert OnnxPredictor is asymmzoo.export.OnnxPredictor
    assert layer_sqnr is asymmzoo.quantize.layer_sqnr
    assert pad_channels is asymmzoo.export.pad_channels is asymmzoo.export.nchwc.pad_channels
    for old, new in ((old_export, asymmzoo.export), (old_quantize, asymmzoo.quantize),
                     (old_bench, asymmzoo.bench), (old_nchwc, asymmzoo.export)):
        assert 'Deprecated location' in old.__doc__
        for name in old.__all__:   # everything the old module exported, the same object
            assert getattr(old, name) is getattr(new, name), (old.__name__, name)
    assert asymmzoo.utils.benchmark is old_bench and asymmzoo.utils.nchwc is old_nchwc
    # the old modules' other public names still import
    from asymmzoo.utils.quantize import first_last_layers, DIGITS_MEAN, MIN_SIZE  # noqa: F401
    from asymmzoo.utils.export import MIN_STAT_VALUES, max_abs_finite  # noqa: F401
    from asymmzoo.utils.benchmark import host_gflops, host_note, HOST_PROBE_SIZE  # noqa: F401
