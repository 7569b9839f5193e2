"""Face recognition: MobileFaceNet-style GDC embedding on AsymmNet / MobileNetV3 (and ACB) backbones,
the ArcFace loss, face data and LFW-protocol verification.

Registered names: ``arcface_{backbone}`` for every backbone in
:func:`asymmzoo.heads.head_backbones` (the model is :mod:`asymmzoo.heads.arcface`).
Training: ``python -m downstream.face.train_arcface``.
"""
from asymmzoo.heads.arcface import FaceEmbedding, get_arcface
from .loss import ArcMarginHead, ArcFaceLoss, arcface_logits_numpy, arcface_loss_numpy
from .verification import read_pairs, load_face, embed_images, kfold_accuracy, evaluate_pairs, preprocess
from .data import face_dataset, augmented_views, write_identity_folder

__all__ = ['FaceEmbedding', 'get_arcface', 'ArcMarginHead', 'ArcFaceLoss', 'arcface_logits_numpy',
           'arcface_loss_numpy', 'read_pairs', 'load_face', 'embed_images', 'kfold_accuracy',
           'evaluate_pairs', 'preprocess', 'face_dataset', 'augmented_views', 'write_identity_folder']
