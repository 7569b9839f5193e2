"""The package layout: `import asymmzoo` staying light (export / quantize / bench load on first use),
and the old module paths (asymmzoo.utils.export, .quantize, .benchmark, .nchwc) still giving the same
objects. Which package may import which is the layer contract of .importlinter (tests/test_layers.py)."""
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# names the new packages give under another name: (old module, old name) -> new name
RENAMED = {('asymmzoo.utils.quantize', 'evaluate'): 'top1_and_labels'}


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
            renamed = RENAMED.get((old.__name__, name), name)
            assert getattr(old, name) is getattr(new, renamed), (old.__name__, name)
    assert asymmzoo.utils.benchmark is old_bench and asymmzoo.utils.nchwc is old_nchwc
    # the old modules' other public names still import
    from asymmzoo.utils.quantize import first_last_layers, DIGITS_MEAN, MIN_SIZE  # noqa: F401
    from asymmzoo.utils.export import MIN_STAT_VALUES, max_abs_finite  # noqa: F401
    from asymmzoo.utils.benchmark import host_gflops, host_note, HOST_PROBE_SIZE  # noqa: F401
