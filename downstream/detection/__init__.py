"""YOLOv3 detection pipeline on the zoo's backbones: VOC / COCO / folder data, GluonCV's transforms,
loss and metrics, ``train_yolo3.py``. The model itself is :mod:`asymmzoo.heads.yolo3`."""
from asymmzoo.heads.yolo3 import YOLOV3, get_yolo3  # noqa: F401
