"""Action recognition: TSN on AsymmNet / MobileNetV3 (and their ACB forms), and video data.

Registered names: ``tsn_{backbone}_{hmdb51,ucf101,kinetics400}`` for every backbone in
:func:`downstream._backbone.head_backbones` (``asymmnet_{large,small}_{mult}``,
``mobilenetv3_{large,small}_{mult}``, and ``*_acb`` where those are registered).
Training: ``python -m downstream.action.train_tsn --help``.
"""
from asymmzoo.registry import register_builder, is_registered

from .tsn import TSN, get_tsn, DATASET_CLASSES
from .data import (VideoClsCV2, VideoDecodeError, read_video_frames, count_video_frames,
                   video_transforms)

__all__ = ['TSN', 'get_tsn', 'DATASET_CLASSES', 'VideoClsCV2', 'VideoDecodeError',
           'read_video_frames', 'count_video_frames', 'video_transforms', 'register_heads']


def register_heads():
    """Register ``tsn_{backbone}_{dataset}`` for every head backbone not yet covered (idempotent:
    call it again after registering new backbones, e.g. ``*_acb``)."""
    from .._backbone import head_backbones
    added = []
    for bb in head_backbones():
        for ds in DATASET_CLASSES:
            name = 'tsn_%s_%s' % (bb, ds)
            if not is_registered(name):
                register_builder(name, get_tsn, backbone=bb, dataset=ds)
                added.append(name)
    return added


register_heads()
