"""Downstream heads that reuse the zoo's backbones (GluonCV pipelines).

* ``downstream.detection``  YOLOv3 (``yolo3_{backbone}_{voc,coco,custom}``) and its training script
* ``downstream.pose``       SimplePose (``simple_pose_{backbone}``), GluonCV's MobilePose on our names
* ``downstream.action`` / ``downstream.face``: TSN and ArcFace (see their own packages)

Importing this package registers every head in :mod:`asymmzoo`'s registry; ``import asymmzoo`` does
that for you (``asymmzoo/models/heads.py``). Sub-packages present in the checkout are imported; one
that is absent is skipped, one that fails to import raises.
"""
import importlib
import importlib.util

_SUBPACKAGES = ('detection', 'pose', 'action', 'face')

for _sub in _SUBPACKAGES:
    if importlib.util.find_spec(__name__ + '.' + _sub) is not None:
        importlib.import_module(__name__ + '.' + _sub)
