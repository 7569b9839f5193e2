"""Task heads on the zoo's backbones, registered once each as a name template.

=============================  ==========  ============================================================
name                           task        model
=============================  ==========  ============================================================
``yolo3_{backbone}_{dataset}``  detection   GluonCV's YOLOv3 (``dataset``: voc, coco, custom)
``simple_pose_{backbone}``      pose        SimplePose: three deconvolutions on the stride-32 map
``mobile_pose_{backbone}``      pose        GluonCV's MobilePose, built by its own builder on our backbone
``tsn_{backbone}_{dataset}``    action      TSN (``dataset``: hmdb51, ucf101, kinetics400)
``arcface_{backbone}``          face        MobileFaceNet-style GDC embedding (train with ArcFace)
=============================  ==========  ============================================================

``{backbone}`` is any of :func:`head_backbones` (AsymmNet / MobileNetV3 L and S at every width and
their ``_acb`` forms); names are parsed on lookup and ``list_models`` lists every one. Every head takes
``backbone_kwargs`` (a dict for the backbone's builder, e.g. ``dict(r=2)``) and ``pretrained_base``.
Training pipelines, data and evaluation live in the repository's ``downstream/`` scripts.
"""
from ..registry import ModelTemplate, register_template
from .backbone import build_backbone, head_backbones, backbone_stages
from .yolo3 import YOLOV3, get_yolo3
from .pose import SimplePose, get_simple_pose, get_mobile_pose
from .tsn import TSN, get_tsn, DATASET_CLASSES as ACTION_DATASETS
from .arcface import FaceEmbedding, get_arcface, embed_images

__all__ = ['build_backbone', 'head_backbones', 'backbone_stages', 'YOLOV3', 'get_yolo3', 'SimplePose',
           'get_simple_pose', 'get_mobile_pose', 'TSN', 'get_tsn', 'FaceEmbedding', 'get_arcface',
           'embed_images', 'TEMPLATES']

TEMPLATES = [
    ModelTemplate('yolo3_{backbone}_{dataset}', get_yolo3, head_backbones,
                  choices={'dataset': ('voc', 'coco', 'custom')}, task='detection', family='yolo3',
                  input_shape=(1, 3, 416, 416), min_input_shape=(2, 3, 128, 128)),
    ModelTemplate('simple_pose_{backbone}', get_simple_pose, head_backbones, task='pose',
                  family='simple_pose', input_shape=(1, 3, 256, 192), min_input_shape=(2, 3, 128, 96)),
    ModelTemplate('mobile_pose_{backbone}', get_mobile_pose, head_backbones, task='pose',
                  family='mobile_pose', input_shape=(1, 3, 256, 192), min_input_shape=(2, 3, 128, 96)),
    ModelTemplate('tsn_{backbone}_{dataset}', get_tsn, head_backbones,
                  choices={'dataset': tuple(ACTION_DATASETS)}, task='action', family='tsn',
                  input_shape=(1, 3, 224, 224), frames=3),
    ModelTemplate('arcface_{backbone}', get_arcface, head_backbones, task='face', family='arcface',
                  input_shape=(1, 3, 112, 112)),
]

for _t in TEMPLATES:
    register_template(_t)

from ..models.sources import apply_weight_sources as _apply_weight_sources
_apply_weight_sources()   # the heads' rows of the weights table (mobile_pose_*)
