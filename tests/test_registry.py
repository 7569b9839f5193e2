import gluoncv
import pytest

import asymmzoo
from asymmzoo.registry import register_model, list_models


def test_names_and_natural_sort():
    names = [n for n in list_models('asymmnet_large_*') if not n.endswith('_acb')]
    assert names[:4] == ['asymmnet_large_0.35', 'asymmnet_large_0.35_pruned', 'asymmnet_large_0.5',
                         'asymmnet_large_0.5_pruned']
    assert names[-2:] == ['asymmnet_large_1.25', 'asymmnet_large_1.25_pruned']
    from asymmzoo.registry import _REGISTRY, register_builder
    for n in ('zz_nat_10', 'zz_nat_9', 'zz_nat_9_b'):
        register_builder(n, lambda **kw: None)
    try:
        assert list_models('zz_nat_*') == ['zz_nat_9', 'zz_nat_9_b', 'zz_nat_10']  # not '10' < '9'
    finally:
        for n in ('zz_nat_10', 'zz_nat_9', 'zz_nat_9_b'):
            del _REGISTRY[n]
            gluoncv.model_zoo.model_zoo._models.pop(n, None)
    for arch in ('large', 'small'):
        for mult in ('0.35', '0.5', '0.75', '1.0', '1.25'):
            for fmt in ('asymmnet_%s_%s', 'asymmnet_%s_%s_pruned', 'mobilenetv3_%s_%s'):
                assert asymmzoo.is_registered(fmt % (arch, mult))
    assert list_models('ASYMMNET_SMALL_1.?') == ['asymmnet_small_1.0']


def test_case_insensitive_and_visible_through_gluoncv():
    a = asymmzoo.get_model('AsymmNet_Small_0.5')
    b = gluoncv.model_zoo.get_model('asymmnet_small_0.5', classes=3)
    assert type(a) is type(b) and b.classes == 3
    # GluonCV's own names stay GluonCV's
    assert type(gluoncv.model_zoo.get_model('mobilenetv3_small')).__module__.startswith('gluoncv')


def test_duplicates_refused():
    @register_model(name='zz_test_dummy_model')
    def _dummy(**kwargs):
        return None
    with pytest.raises(ValueError, match='already registered'):
        register_model(_dummy, name='ZZ_test_dummy_model')
    from asymmzoo.registry import _REGISTRY
    del _REGISTRY['zz_test_dummy_model']
    del gluoncv.model_zoo.model_zoo._models['zz_test_dummy_model']
