"""The weights table: where each model's published weights come from.

One :class:`~asymmzoo.download.WeightSource` per model name with published weights: the pinned
URL(s), the integrity hash and its kind, the conversion into our structure, the preprocessing the
weights were trained with, the published accuracy with its citation, and the license.
``get_model(name, pretrained=True)`` downloads, verifies and converts into the store when the file is
absent; ``asymmzoo fetch PATTERN`` does it ahead of time; ``asymmzoo store list`` shows the table.

Conversions registered here:

* ``gluoncv``: a file of GluonCV's model store; GluonCV's own networks (ResNet, DenseNet, CIFAR
  ResNets, MobilePose) take it as is, our AsymmNet-structured MobileNetV3 moves GluonCV's
  ``features`` tail (global pool, 1280 conv) to ``head``. Every key and shape is checked.
* ``asymmnet_official``: the AsymmNet authors' checkpoint (:func:`asymmzoo.models.official.convert_official`).
"""
from ..download import Preprocess, WeightSource, register_conversion
from ..io import WeightsError, atomic_save_params, read_params, _misfit
from ..registry import get_model, is_registered, set_weight_source
from .official import convert_official, official_to_ours

__all__ = ['WEIGHTS', 'GLUONCV_SHA1', 'ASYMMNET_PREPROCESS', 'CIFAR_PREPROCESS', 'apply_weight_sources']

# the authors' run (their utils/utils.py, as GluonCV's RecordIO training script): mean / std in pixel
# units, not the 123.675 / 116.28 / 103.53 of GluonCV's ImageNet presets
ASYMMNET_PREPROCESS = Preprocess(mean=(123.68, 116.779, 103.939), std=(58.393, 57.12, 57.375))
IMAGENET = Preprocess()
# GluonCV's pose models: person boxes resized to 256x192, no centre crop
POSE_PREPROCESS = Preprocess(input_size=256, crop_ratio=1.0, input_hw=(256, 192))
CIFAR_PREPROCESS = Preprocess(mean=(0.4914 * 255, 0.4822 * 255, 0.4465 * 255),
                              std=(0.2023 * 255, 0.1994 * 255, 0.2010 * 255), input_size=32, crop_ratio=1.0)

# GluonCV 0.11's model-store sha1 table (gluoncv/model_zoo/model_store.py), pinned here
GLUONCV_SHA1 = {
    'mobilenetv3_large': 'eaa44578554ddffaf2a2630ced9093181ff79688',
    'mobilenetv3_small': '10430433698d18f49991e4a366c9fce8f9286298',
    'resnet18_v1': 'a0666292f0a30ff61f857b0b66efc0228eb6a54b',
    'densenet121': 'f27dbf2dbd5ce9a80b102d89c7483342cd33cb31',
    'cifar_resnet20_v1': '121e1579d811b091940b3b1fa033e1f0d1dca40f',
    'cifar_resnet56_v1': '2fb251e60babdceb103e9659b3baa0dea20a14d7',
    'mobile_pose_mobilenetv3_large': '1ca004dc5ab2bd0e10d782734d3efbefff23180c',
    'mobile_pose_mobilenetv3_small': 'c2a11fae8970c2c2e79e2b77a4c4d62e3d3e054f',
}
GLUONCV_CITATION = "GluonCV model zoo (Guo et al., GluonCV and GluonNLP, JMLR 21(23), 2020), %s table"
GLUONCV_LICENSE = 'Apache-2.0 (GluonCV)'


def _gluoncv(gname, preprocess, top1, table, metric='top-1'):
    sha1 = GLUONCV_SHA1[gname]
    file_name = '%s-%s' % (gname, sha1[:8])
    return WeightSource(urls=('{gluon_repo}gluon/models/%s.zip' % file_name,), hash=sha1, hash_kind='sha1',
                        conversion='gluoncv', preprocess=preprocess, top1=top1, metric=metric,
                        citation=GLUONCV_CITATION % table, license=GLUONCV_LICENSE,
                        archive_member=file_name + '.params', origin='GluonCV %s' % gname)


ASYMMNET_FILE = 'checkpoints/0.7542-imagenet-modifiedv3-358-best.params'

WEIGHTS = {
    'asymmnet_large_1.0': WeightSource(
        urls=('{asymmnet_repo}' + ASYMMNET_FILE,), hash='a2ee7b4f3161cd32595a67c9ec9c64764b914f00',
        hash_kind='git-blob-sha1', conversion='asymmnet_official', preprocess=ASYMMNET_PREPROCESS,
        top1=75.42, citation="Yang et al., AsymmNet (CVPR Workshops 2021); the released run "
        "0.7542-imagenet-modifiedv3-358-best of github.com/Spark001/AsymmNet",
        license='Apache-2.0 (the LICENSE of Spark001/AsymmNet)',
        origin='Spark001/AsymmNet@3b04821 ' + ASYMMNET_FILE),
    'mobilenetv3_large_1.0': _gluoncv('mobilenetv3_large', IMAGENET, 75.32, 'ImageNet MobileNet'),
    'mobilenetv3_small_1.0': _gluoncv('mobilenetv3_small', IMAGENET, 67.72, 'ImageNet MobileNet'),
    'resnet18_v1': _gluoncv('resnet18_v1', IMAGENET, 70.93, 'ImageNet ResNet'),
    'densenet121': _gluoncv('densenet121', IMAGENET, 74.97, 'ImageNet DenseNet'),
    'cifar_resnet20_v1': _gluoncv('cifar_resnet20_v1', CIFAR_PREPROCESS, 92.1, 'CIFAR-10',
                                  metric='CIFAR-10 accuracy'),
    'cifar_resnet56_v1': _gluoncv('cifar_resnet56_v1', CIFAR_PREPROCESS, 93.6, 'CIFAR-10',
                                  metric='CIFAR-10 accuracy'),
    'mobile_pose_mobilenetv3_large_1.0': _gluoncv('mobile_pose_mobilenetv3_large', POSE_PREPROCESS, 63.7,
                                                  'COCO Mobile-Pose', metric='COCO OKS AP'),
    'mobile_pose_mobilenetv3_small_1.0': _gluoncv('mobile_pose_mobilenetv3_small', POSE_PREPROCESS, 54.3,
                                                  'COCO Mobile-Pose', metric='COCO OKS AP'),
}


def convert_gluoncv(src, dst, model):
    """A GluonCV model-store file -> the file ``get_model(model, pretrained=dst)`` loads; every key
    and shape checked against ``model``."""
    arrays = read_params(src)
    net = get_model(model)
    ours = net._collect_params_with_prefix()
    if hasattr(net, 'head') and hasattr(net, 'features'):   # our AsymmNet / MobileNetV3 layout
        n = len(net.features)
        arrays = {official_to_ours(k, n): v for k, v in arrays.items()}
    lines, _, _ = _misfit(ours, arrays, classifier_prefix=None)
    if lines:
        raise WeightsError("%s does not hold %s's weights in GluonCV's layout:\n  %s"
                           % (src, model, "\n  ".join(lines)))
    return atomic_save_params(arrays, dst)


def _convert_official(src, dst, model):
    return convert_official(src, dst, model=model)


register_conversion('gluoncv', convert_gluoncv)
register_conversion('asymmnet_official', _convert_official)


def apply_weight_sources():
    """Attach every row whose model is registered (the heads' rows once the heads are imported)."""
    for name, source in WEIGHTS.items():
        if is_registered(name):
            set_weight_source(name, source)
