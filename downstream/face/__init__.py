"""Face recognition: MobileFaceNet-style GDC embedding on AsymmNet / MobileNetV3 (and ACB) backbones,
the ArcFace loss, face data and LFW-protocol verification.

Registered names: ``arcface_{backbone}`` for every backbone in
:func:`downstream._backbone.head_backbones`. Training: ``python -m downstream.face.train_arcface``.
"""
from asymmzoo.registry import register_builder, is_registered

from .arcface import FaceEmbedding, get_arcface
from .loss import ArcMarginHead, ArcFaceLoss, arcface_logits_numpy, arcface_loss_numpy
from .verification import read_pairs, load_face, embed_images, kfold_accuracy, evaluate_pairs, preprocess
from .data import face_dataset, augmented_views, write_identity_folder

__all__ = ['FaceEmbedding', 'get_arcface', 'ArcMarginHead', 'ArcFaceLoss', 'arcface_logits_numpy',
           'arcface_loss_numpy', 'read_pairs', 'load_face', 'embed_images', 'kfold_accuracy',
           'evaluate_pairs', 'preprocess', 'face_dataset', 'augmented_views', 'write_identity_folder',
           'register_heads']


def register_heads():
    """Register ``arcface_{backbone}`` for every head backbone not yet covered (idempotent)."""
    from .._backbone import head_backbones
    added = []
    for bb in head_backbones():
        name = 'arcface_%s' % bb
        if not is_registered(name):
            register_builder(name, get_arcface, backbone=bb)
            added.append(name)
    return added


register_heads()
