"""Face training data: identity-per-folder ImageFolder or RecordIO, with insightface preprocessing.

* a folder ``root/<identity>/<image>`` -> :class:`mxnet.gluon.data.vision.ImageFolderDataset`
* a ``.rec`` file (with its ``.idx``; labels in the record headers, as written by ``im2rec``)
  -> :class:`mxnet.gluon.data.vision.ImageRecordDataset`

Items become ``((3, 112, 112) float32, label)``: resized to the crop size, (x - 127.5) / 128,
random mirror when training (insightface's only augmentation on aligned MS1M crops).

:func:`augmented_views` / :func:`write_identity_folder` make several views of one face (small
rotation, scale, shift, mirror, brightness / contrast): used to turn scikit-image's LFW subset (one
crop per person) into a tiny identity-per-folder set for tests and demos.
"""
import os

import numpy as np
from mxnet.base import MXNetError
from mxnet.gluon.data.vision import ImageFolderDataset

from .verification import preprocess

__all__ = ['face_dataset', 'augmented_views', 'write_identity_folder']


class _Transform(object):
    def __init__(self, size, train, seed=None):
        self.size, self.train = size, train
        self.rng = np.random.RandomState(seed)

    def __call__(self, img, label):
        img = img.asnumpy() if hasattr(img, 'asnumpy') else np.asarray(img)
        if self.train and self.rng.rand() < 0.5:
            img = img[:, ::-1]
        return preprocess(np.ascontiguousarray(img), self.size), np.float32(label)


class _NamedImageFolder(ImageFolderDataset):
    """ImageFolderDataset whose decode errors name the file and the fix."""

    def __getitem__(self, idx):
        try:
            return super(_NamedImageFolder, self).__getitem__(idx)
        except MXNetError as e:
            from asymmzoo.data.folder import undecodable
            raise undecodable(self.items[idx][0], str(e).strip().splitlines()[-1] if str(e).strip()
                              else 'MXNetError')


def face_dataset(path, train=True, size=112, seed=None, num_classes=None):
    """Dataset of (CHW float32 face, float label) from a folder of identity folders or a .rec file."""
    from mxnet.gluon.data.vision import ImageRecordDataset
    if path.endswith('.rec'):
        if not os.path.isfile(path):
            raise FileNotFoundError("RecordIO file %s does not exist" % path)
        if not os.path.isfile(os.path.splitext(path)[0] + '.idx'):
            raise FileNotFoundError("%s needs its index %s (im2rec writes both)"
                                    % (path, os.path.splitext(path)[0] + '.idx'))
        from asymmzoo.data.pipelines import check_recordio
        check_recordio(path, os.path.splitext(path)[0] + '.idx', flag='--data', idx_flag='its index')   # before MXNet reads it
        ds = ImageRecordDataset(path, flag=1)
        classes = None
    else:
        if not os.path.isdir(path):
            raise FileNotFoundError("face folder %s does not exist; expected root/<identity>/<image> "
                                    "or a .rec file" % path)
        ds = _NamedImageFolder(path, flag=1)
        if not ds.items:
            raise ValueError("%s holds no image in identity sub-folders (root/<identity>/<image>)" % path)
        from asymmzoo.data.folder import check_image_headers
        check_image_headers(p for p, _ in ds.items)   # before any work: an undecodable image is named
        classes = ds.synsets
    out = ds.transform(_Transform(size, train, seed), lazy=True)
    if classes is not None:
        out.synsets = classes
        out.num_classes = len(classes)
    else:   # the labels from the record headers (no image is decoded), checked against num_classes
        top = record_max_label(path)
        if num_classes and top >= int(num_classes):
            raise ValueError("%s has label %d but --num-classes is %d (labels run 0 .. num_classes-1): "
                             "pass --num-classes %d or more, or leave it out to count them"
                             % (path, top, int(num_classes), top + 1))
        out.num_classes = int(num_classes) if num_classes else top + 1
    return out


def record_max_label(path):
    """The largest label in the record headers of ``path`` (a .rec with its .idx); every label
    must be a non-negative integer (the identity), else ValueError naming the record."""
    import mxnet as mx
    rec = mx.recordio.MXIndexedRecordIO(os.path.splitext(path)[0] + '.idx', path, 'r')
    try:
        top = -1
        for key in rec.keys:
            header, _ = mx.recordio.unpack(rec.read_idx(key))
            labels = np.atleast_1d(np.asarray(header.label, dtype=np.float64))
            if not labels.size or not np.all(np.isfinite(labels)) or np.any(labels < 0) \
                    or np.any(labels != np.round(labels)):
                raise ValueError("%s: record %d has label %s; face records need one identity label, a "
                                 "non-negative integer (pack them with `asymmzoo pack`)"
                                 % (path, key, labels.tolist()))
            top = max(top, int(labels.max()))
    finally:
        rec.close()
    return top


def augmented_views(img, n, seed=0, size=112, max_rot=10.0, max_shift=0.06, scale=(0.9, 1.1)):
    """``n`` augmented RGB uint8 (size, size, 3) views of a face (HxW gray or HxWx3, float in [0, 1]
    or uint8)."""
    import cv2
    rng = np.random.RandomState(seed)
    img = np.asarray(img)
    if img.dtype != np.uint8:
        img = np.clip(img * 255.0, 0, 255).astype(np.uint8)
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    img = cv2.resize(img, (size, size), interpolation=cv2.INTER_CUBIC)
    views = []
    for _ in range(n):
        ang = rng.uniform(-max_rot, max_rot)
        sc = rng.uniform(*scale)
        m = cv2.getRotationMatrix2D((size / 2.0, size / 2.0), ang, sc)
        m[:, 2] += rng.uniform(-max_shift, max_shift, 2) * size
        v = cv2.warpAffine(img, m, (size, size), borderMode=cv2.BORDER_REFLECT)
        if rng.rand() < 0.5:
            v = v[:, ::-1]
        v = v.astype(np.float32) * rng.uniform(0.8, 1.2) + rng.uniform(-20, 20)
        views.append(np.clip(v, 0, 255).astype(np.uint8))
    return views


def write_identity_folder(root, faces, views=4, seed=0, size=112, ext='png'):
    """Write ``root/id_XXXX/view_YY.png`` with ``views`` augmented views of each face; returns the
    list of written paths per identity."""
    import cv2
    out = []
    for i, face in enumerate(faces):
        d = os.path.join(root, 'id_%04d' % i)
        os.makedirs(d, exist_ok=True)
        paths = []
        for j, v in enumerate(augmented_views(face, views, seed=seed * 100003 + i, size=size)):
            p = os.path.join(d, 'view_%02d.%s' % (j, ext))
            cv2.imwrite(p, v[:, :, ::-1])
            paths.append(p)
        out.append(paths)
    return out
