"""The registry: names, specs (task / family / base / input shape), head templates, GluonCV visibility."""
import gluoncv
import pytest

import asymmzoo
from asymmzoo.registry import (ModelSpec, UnknownModelError, get_spec, list_models, register_builder,
                               register_model, unregister)


def test_names_and_natural_sort():
    names = [n for n in list_models('asymmnet_large_*') if not n.endswith('_acb')]
    assert names[:4] == ['asymmnet_large_0.35', 'asymmnet_large_0.35_pruned', 'asymmnet_large_0.5',
                         'asymmnet_large_0.5_pruned']
    assert names[-2:] == ['asymmnet_large_1.25', 'asymmnet_large_1.25_pruned']
    for n in ('zz_nat_10', 'zz_nat_9', 'zz_nat_9_b'):
        register_builder(n, lambda **kw: None)
    try:
        assert list_models('zz_nat_*') == ['zz_nat_9', 'zz_nat_9_b', 'zz_nat_10']  # not '10' < '9'
    finally:
        for n in ('zz_nat_10', 'zz_nat_9', 'zz_nat_9_b'):
            unregister(n)
    assert 'zz_nat_9' not in gluoncv.model_zoo.model_zoo._models
    for arch in ('large', 'small'):
        for mult in ('0.35', '0.5', '0.75', '1.0', '1.25'):
            for fmt in ('asymmnet_%s_%s', 'asymmnet_%s_%s_pruned', 'mobilenetv3_%s_%s'):
                assert asymmzoo.is_registered(fmt % (arch, mult))
    assert list_models('ASYMMNET_SMALL_1.?') == ['asymmnet_small_1.0']


def test_case_insensitive_and_visible_through_gluoncv():
    a = asymmzoo.get_model('AsymmNet_Small_0.5')
    b = gluoncv.model_zoo.get_model('asymmnet_small_0.5', classes=3)
    assert type(a) is type(b) and b.classes == 3
    # head names too (parsed from their templates)
    y = gluoncv.model_zoo.get_model('yolo3_asymmnet_small_0.35_custom', classes=['a', 'b'])
    assert type(y).__name__ == 'YOLOV3' and y.classes == ['a', 'b']
    # GluonCV's own names stay GluonCV's
    assert type(gluoncv.model_zoo.get_model('mobilenetv3_small')).__module__.startswith('gluoncv')


def test_duplicates_refused():
    @register_model(name='zz_test_dummy_model')
    def _dummy(**kwargs):
        return None
    try:
        with pytest.raises(ValueError, match='already registered'):
            register_model(_dummy, name='ZZ_test_dummy_model')
        with pytest.raises(ValueError, match='already registered'):   # a template's name too
            register_builder('yolo3_asymmnet_small_0.35_voc', _dummy)
    finally:
        unregister('zz_test_dummy_model')
    assert 'zz_test_dummy_model' not in gluoncv.model_zoo.model_zoo._models
    # a weights row and an initialiser go with the name
    from asymmzoo.registry import set_pretrained_init, set_weight_source
    from asymmzoo.models.sources import WEIGHTS
    register_builder('zz_rows', lambda **kw: None)
    set_weight_source('zz_rows', WEIGHTS['resnet18_v1'])
    set_pretrained_init('zz_rows', lambda *a, **k: None)
    unregister('zz_rows')
    register_builder('zz_rows', lambda **kw: None)
    try:
        assert get_spec('zz_rows').source is None
        assert 'zz_rows' not in asymmzoo.registry._INITS
    finally:
        unregister('zz_rows')


def test_specs_describe_every_name_without_building_it():
    assert get_spec('asymmnet_large_1.0') == ModelSpec(
        'asymmnet_large_1.0', get_spec('asymmnet_large_1.0').builder,
        {'arch': 'large', 'multiplier': 1.0}, task='classification', family='asymmnet',
        min_input_shape=(2, 3, 64, 64),
        source=get_spec('asymmnet_large_1.0').source)   # the weights table's row
    assert get_spec('asymmnet_large_1.0').source.top1 == 75.42
    assert get_spec('asymmnet_large_0.75').source is None
    assert get_spec('asymmnet_small_0.5_pruned').base == 'asymmnet_small_0.5'
    assert get_spec('mobilenetv3_small_1.0').family == 'mobilenetv3'
    acb = get_spec('cifar_quick_acb')
    assert (acb.family, acb.base, acb.input_shape) == ('acnet', 'cifar_quick', (1, 3, 32, 32))
    rot = get_spec('rotate_sn_rot2')
    assert (rot.family, rot.base, rot.input_shape) == ('rotateconv', 'rotate_sn', (1, 1, 28, 28))
    tsn = get_spec('TSN_asymmnet_small_0.35_acb_ucf101')
    assert (tsn.task, tsn.family, tsn.base, tsn.frames) == ('action', 'tsn', 'asymmnet_small_0.35_acb', 3)
    assert tsn.kwargs == {'backbone': 'asymmnet_small_0.35_acb', 'dataset': 'ucf101'}
    assert get_spec('yolo3_mobilenetv3_large_1.0_coco').input_shape == (1, 3, 416, 416)
    assert get_spec('asymmnet_large_1.0').weights_file == 'asymmnet_large_1.0.params'
    assert get_spec('alexnet_bn').min_shape == (2, 3, 224, 224)      # its FC layers need 224 pixels
    assert get_spec('resnet18_v1_acb').min_shape == (2, 3, 64, 64)
    # the network carries its spec's shapes (what it does not know about itself)
    for name in ('cifar_quick', 'rotate_sn_rot4', 'alexnet_bn_acb', 'yolo3_asymmnet_small_0.35_voc'):
        net = asymmzoo.get_model(name)
        assert net.default_input_shape == get_spec(name).input_shape, name
        assert net.min_input_shape == get_spec(name).min_shape, name
    tsn = asymmzoo.get_model('tsn_asymmnet_small_0.35_hmdb51', num_segments=5)   # its own: 5 frames
    assert tsn.default_input_shape == (5, 3, 224, 224)
    tasks = {get_spec(n).task for n in list_models()}
    assert tasks == {'classification', 'detection', 'pose', 'action', 'face'}


def test_list_models_by_task_and_family():
    every = list_models()
    assert len(every) == len(set(every))
    by_task = [list_models(task=t) for t in asymmzoo.registry.TASKS]
    assert sorted(sum(by_task, [])) == sorted(every)
    assert list_models('*_small_0.35', family='asymmnet') == ['asymmnet_small_0.35']
    assert list_models(family=('yolo3', 'tsn'), task='detection') == list_models('yolo3_*')
    assert len(list_models('yolo3_*')) == 3 * 40 and len(list_models('arcface_*')) == 40
    with pytest.raises(ValueError, match='task must be one of'):
        list_models(task='segmentation')


def test_unknown_names_and_templates_parse_strictly():
    with pytest.raises(UnknownModelError, match='closest names: .*yolo3_asymmnet_small_1.0_voc'):
        asymmzoo.get_model('yolo3_asymmnet_small_1.0_vocc')
    for bad in ('yolo3_resnet18_v1_voc', 'yolo3_asymmnet_small_1.0', 'arcface_', 'tsn_asymmnet_small_1.0_hmdb'):
        assert not asymmzoo.is_registered(bad)
        with pytest.raises(UnknownModelError):
            get_spec(bad)
    assert isinstance(UnknownModelError('x'), ValueError)   # callers catching ValueError still do


def test_backbone_kwargs_reach_the_heads_backbone():
    """A backbone option (the asymmetry rate r) passes through every head to its backbone."""
    import mxnet as mx
    for name in ('yolo3_asymmnet_large_1.0_voc', 'simple_pose_asymmnet_large_1.0', 'arcface_asymmnet_large_1.0',
                 'tsn_asymmnet_large_1.0_hmdb51', 'mobile_pose_asymmnet_large_1.0'):
        counts = []
        for r in (1, 2):
            net = asymmzoo.get_model(name, backbone_kwargs=dict(r=r))
            net.initialize(mx.init.Xavier(), force_reinit=True)
            net(mx.nd.zeros(net.min_input_shape))
            counts.append(sum(p.data().size for p in net.collect_params().values()))
        assert counts[0] != counts[1], name
    with pytest.raises(TypeError, match='backbone_kwargs must be a dict'):
        asymmzoo.get_model('arcface_asymmnet_large_1.0', backbone_kwargs=2)
    with pytest.raises(TypeError, match="does not take the keyword argument 'foo'"):
        asymmzoo.get_model('arcface_asymmnet_large_1.0', backbone_kwargs=dict(foo=1))
