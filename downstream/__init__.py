"""The task pipelines on the zoo's backbones, kept like GluonCV keeps ``scripts/``: data loaders,
training scripts and evaluation. Run them from the repository root (``python -m
downstream.detection.train_yolo3 --help``); the models they train are registered by
:mod:`asymmzoo.heads`.

* ``downstream.detection``  YOLOv3: VOC / COCO / folder data, ``train_yolo3``
* ``downstream.pose``       SimplePose / MobilePose: COCO keypoints, ``train_simple_pose``
* ``downstream.action``     TSN: video lists, ``train_tsn``
* ``downstream.face``       ArcFace loss, face data, LFW-protocol verification, ``train_arcface``
"""
