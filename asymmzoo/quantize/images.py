"""Calibration images for a network with published weights, prepared as its weights were trained.

``quantize_net(net, calibration_images(name, folder))`` calibrates the INT8 ranges on real images
normalised with the weights' own mean / std (:func:`asymmzoo.registry.preprocess_of`: the AsymmNet
authors' values for ``asymmnet_large_1.0``, GluonCV's for its rows), resized and centre-cropped with the
weights' input size and crop ratio: ranges measured on inputs normalised otherwise would be off.
"""
import os

import numpy as np

__all__ = ['calibration_images', 'IMAGE_EXTENSIONS']

IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.ppm', '.webp')


def calibration_images(model, folder, n=500, input_size=None, seed=0):
    """Up to ``n`` images found under ``folder`` (recursively; a fixed random choice by ``seed``) as a
    float32 NCHW array: short side resized to ``input_size / crop_ratio``, centre crop ``input_size``
    (default: the weights' size), ``(pixel - mean) / std`` with the weights' preprocessing. A model
    without published weights (in its line) is refused: pass the preprocessing of the weights you
    trained."""
    import mxnet as mx
    from ..registry import preprocess_of
    pp = preprocess_of(model)
    if pp is None:
        raise ValueError("%s has no published weights, so no known preprocessing: normalise the "
                         "calibration batch as its weights were trained and pass it to quantize_net" % model)
    if not os.path.isdir(folder):
        raise FileNotFoundError("calibration folder %s does not exist" % folder)
    files = sorted(os.path.join(d, f) for d, _, fs in os.walk(folder) for f in fs
                   if f.lower().endswith(IMAGE_EXTENSIONS))
    if not files:
        raise ValueError("no images (%s) under %s" % (', '.join(IMAGE_EXTENSIONS), folder))
    if len(files) > n:
        files = [files[i] for i in sorted(np.random.RandomState(seed).choice(len(files), n, replace=False))]
    size = int(input_size or pp.input_size)
    short = int(round(size / pp.crop_ratio))
    mean = np.asarray(pp.mean, np.float32).reshape(3, 1, 1)
    std = np.asarray(pp.std, np.float32).reshape(3, 1, 1)
    out = np.empty((len(files), 3, size, size), np.float32)
    for i, f in enumerate(files):
        img = mx.image.resize_short(mx.image.imread(f), short)
        img, _ = mx.image.center_crop(img, (size, size))
        out[i] = (img.asnumpy().astype(np.float32).transpose(2, 0, 1) - mean) / std
    return out
