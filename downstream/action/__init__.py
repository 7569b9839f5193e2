"""Action recognition: TSN on AsymmNet / MobileNetV3 (and their ACB forms), and video data.

Registered names: ``tsn_{backbone}_{hmdb51,ucf101,kinetics400}`` for every backbone in
:func:`asymmzoo.heads.head_backbones` (``asymmnet_{large,small}_{mult}``,
``mobilenetv3_{large,small}_{mult}`` and their ``*_acb`` forms); the model is :mod:`asymmzoo.heads.tsn`.
Training: ``python -m downstream.action.train_tsn --help``.
"""
from asymmzoo.heads.tsn import TSN, get_tsn, DATASET_CLASSES
from .data import (VideoClsCV2, VideoDecodeError, read_video_frames, count_video_frames,
                   video_transforms)

__all__ = ['TSN', 'get_tsn', 'DATASET_CLASSES', 'VideoClsCV2', 'VideoDecodeError',
           'read_video_frames', 'count_video_frames', 'video_transforms']
