"""YOLOv3 detection on the zoo's backbones (GluonCV's YOLOV3, anchors, transforms, loss, metric)."""
from .yolo3 import YOLOV3, get_yolo3
