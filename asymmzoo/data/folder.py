"""ImageFolder layout (``root/train/<class>/*.jpg``, ``root/val/<class>/*.jpg``) and RecordIO packing.

* :func:`scan_split` / :func:`check_image_folder` list the images and refuse, with a message naming the
  problem and the fix, a missing or empty folder or class folders that differ between train and val.
* :class:`SafeImageFolder` decodes lazily; an image that does not decode (a corrupt JPEG) yields
  ``None`` and :func:`safe_batchify` drops it from the batch and counts it, so the run continues.
* :func:`pack_folder` writes ``prefix.rec`` / ``prefix.idx`` / ``prefix.lst`` with MXNet's own
  ``mx.recordio`` (the format of ``im2rec.py``; ``mx.io.ImageRecordIter`` reads it), skipping and
  counting images that do not decode.
"""
import os

import numpy as np

__all__ = ['IMG_EXTS', 'DataError', 'scan_split', 'check_image_folder', 'SafeImageFolder',
           'safe_batchify', 'pack_folder', 'read_lst', 'image_header_problem', 'check_image_headers',
           'undecodable']

IMG_EXTS = ('.jpg', '.jpeg', '.png', '.bmp', '.ppm', '.pgm', '.tif', '.tiff', '.webp')


class DataError(ValueError):
    """The data given to training is missing, empty or inconsistent."""


def scan_split(folder):
    """``(classes, items)`` for one split folder: sorted class sub-folders, ``[(path, label), ...]``."""
    if not os.path.isdir(folder):
        raise DataError("data folder %s does not exist. Expected the ImageFolder layout "
                        "<data-dir>/train/<class>/*.jpg and <data-dir>/val/<class>/*.jpg" % folder)
    classes = sorted(d for d in os.listdir(folder)
                     if os.path.isdir(os.path.join(folder, d)) and not d.startswith('.'))
    if not classes:
        raise DataError("%s has no class folders; put each class's images in its own sub-folder "
                        "(<split>/<class>/*.jpg)" % folder)
    items = []
    for label, c in enumerate(classes):
        d = os.path.join(folder, c)
        for f in sorted(os.listdir(d)):
            if f.lower().endswith(IMG_EXTS) and not f.startswith('.'):
                items.append((os.path.join(d, f), label))
    if not items:
        raise DataError("%s has %d class folders but no images (%s) in them"
                        % (folder, len(classes), '/'.join(IMG_EXTS)))
    return classes, items


def check_image_folder(data_dir):
    """Scan ``data_dir/train`` and ``data_dir/val``; return ``(classes, train_items, val_items)``."""
    if not data_dir or not os.path.isdir(data_dir):
        raise DataError("--data-dir %s does not exist (expected <dir>/train/<class>/*.jpg and "
                        "<dir>/val/<class>/*.jpg; leave --data-dir out to train on the embedded "
                        "digits)" % data_dir)
    if not os.listdir(data_dir):
        raise DataError("--data-dir %s is empty: expected train/ and val/ sub-folders with one "
                        "folder per class" % data_dir)
    tc, train = scan_split(os.path.join(data_dir, 'train'))
    empty = sorted(set(tc) - {tc[label] for _, label in train})
    if empty:
        raise DataError("%s/train has class folders without images: %s. A class with no training "
                        "image cannot be learned; add images or remove the folder(s) from train/ and "
                        "val/" % (data_dir, ', '.join(empty[:10]) + (' ...' if len(empty) > 10 else '')))
    vc, val = scan_split(os.path.join(data_dir, 'val'))
    if tc != vc:
        only_t = sorted(set(tc) - set(vc))
        only_v = sorted(set(vc) - set(tc))
        raise DataError("class folders differ between %s/train and %s/val (labels would not match): "
                        "only in train: %s; only in val: %s. Give both splits the same class folders"
                        % (data_dir, data_dir, only_t or '-', only_v or '-'))
    return tc, train, val


def truncation_problem(buf):
    """Why the encoded image ``buf`` is cut short, or ``None``. Decoders accept a JPEG cut anywhere
    in its scan data (libjpeg warns "Premature end of JPEG file" and fills the rest with grey), so a
    JPEG must hold an end-of-image marker after its last start-of-scan (an EXIF thumbnail's own end
    marker comes before the main scan and does not count)."""
    if not buf:
        return 'empty file'
    if buf[:2] == b'\xff\xd8':
        sos = buf.rfind(b'\xff\xda')
        if sos < 0:
            return 'truncated JPEG (cut before its image data)'
        if buf.rfind(b'\xff\xd9') < sos:
            return 'truncated JPEG (no end-of-image marker after the image data)'
    return None


def image_header_problem(path):
    """Why the image file ``path`` cannot be decoded, judged from its header and ends (cheap: the
    pixels are not decoded), or ``None``: missing, empty, not an image format PIL recognises, or a
    JPEG cut short (:func:`truncation_problem`)."""
    import io
    from PIL import Image
    try:
        with open(path, 'rb') as f:
            buf = f.read()
    except OSError as e:
        return e.strerror or str(e)
    problem = truncation_problem(buf)
    if problem:
        return problem
    try:
        with Image.open(io.BytesIO(buf)) as im:
            w, h = im.size
    except Exception as e:   # PIL: UnidentifiedImageError, SyntaxError, ...
        return 'not a readable image (%s)' % (str(e).splitlines()[0][:80] if str(e) else type(e).__name__)
    if not (w > 0 and h > 0):
        return 'an image of size %dx%d' % (w, h)
    return None


def undecodable(path, why):
    """The DataError naming an image that cannot be decoded and the fix."""
    return DataError("%s cannot be decoded (%s): remove or replace the file (or drop it from the "
                     "dataset's list)" % (os.path.normpath(path), why))


def check_image_headers(paths):
    """Before training: the first image of ``paths`` whose header shows it cannot be decoded is
    refused (:class:`DataError` naming the file and the fix), instead of an anonymous MXNet
    "Decoding failed" mid-epoch."""
    for path in paths:
        why = image_header_problem(path)
        if why:
            raise undecodable(path, why)


def _read_checked(path):
    with open(path, 'rb') as f:
        buf = f.read()
    problem = truncation_problem(buf)
    if problem:
        raise ValueError(problem)
    return buf


def _decode(path, flag=1):
    import mxnet as mx
    buf = _read_checked(path)
    img = mx.image.imdecode(buf, flag=flag)
    if img.size == 0:
        raise ValueError('decoded to an empty image')
    return img


class SafeImageFolder(object):
    """A Gluon dataset over ``[(path, label)]``; undecodable images give ``None`` (see safe_batchify)."""

    def __init__(self, items, transform=None):
        self.items = list(items)
        self.transform = transform

    def __len__(self):
        return len(self.items)

    def __getitem__(self, idx):
        path, label = self.items[idx]
        try:
            img = _decode(path)
        except Exception:  # corrupt / truncated / not an image: skipped and counted by the batchify
            return None
        if self.transform is not None:
            img = self.transform(img)
        return img, np.int32(label)


def safe_batchify(samples):
    """Stack the good samples; returns ``(data, label, n_skipped)``."""
    import mxnet as mx
    good = [s for s in samples if s is not None]
    nbad = len(samples) - len(good)
    if not good:
        return None, None, nbad
    data = mx.nd.stack(*[mx.nd.array(s[0]) if not isinstance(s[0], mx.nd.NDArray) else s[0]
                         for s in good])
    label = mx.nd.array(np.array([s[1] for s in good], dtype=np.float32))
    return data, label, nbad


def read_lst(path):
    """``[(index, label, relpath)]`` of an im2rec ``.lst`` file."""
    out = []
    with open(path) as f:
        for line in f:
            parts = line.rstrip('\n').split('\t')
            if len(parts) >= 3:
                out.append((int(parts[0]), float(parts[1]), parts[-1]))
    return out


def pack_folder(src, prefix, resize=0, quality=95, shuffle=False, seed=0, progress=True):
    """Pack one split folder (``src/<class>/*.jpg``) into ``prefix.rec`` / ``.idx`` / ``.lst``.

    ``resize`` > 0 resizes the shorter side first (like im2rec ``--resize``). Images that do not decode
    are skipped and counted. Files are written under temporary names and renamed at the end.
    Returns a dict: ``rec``, ``idx``, ``lst``, ``classes``, ``packed``, ``skipped`` (paths).
    """
    import cv2
    import mxnet as mx
    classes, items = scan_split(src)
    if shuffle:
        order = np.random.RandomState(seed).permutation(len(items))
        items = [items[i] for i in order]
    d = os.path.dirname(os.path.abspath(prefix))
    os.makedirs(d, exist_ok=True)
    final = {ext: prefix + ext for ext in ('.rec', '.idx', '.lst')}
    tmp = {ext: '%s.tmp-%d%s' % (prefix, os.getpid(), ext) for ext in final}
    skipped, n = [], 0
    it = items
    if progress:
        from tqdm import tqdm
        it = tqdm(items, desc='pack %s' % os.path.basename(os.path.normpath(src)), unit='img')

    def drop_temporaries():
        try:
            writer.close()
        except mx.base.MXNetError:
            pass
        for p in tmp.values():
            if os.path.exists(p):
                os.remove(p)
    writer = mx.recordio.MXIndexedRecordIO(tmp['.idx'], tmp['.rec'], 'w')
    try:
        with open(tmp['.lst'], 'w') as lst:
            for path, label in it:
                try:
                    img = cv2.imdecode(np.frombuffer(_read_checked(path), np.uint8), cv2.IMREAD_COLOR)
                except (OSError, ValueError):
                    img = None
                if img is None or img.size == 0:
                    skipped.append(path)
                    continue
                if resize:
                    h, w = img.shape[:2]
                    s = float(resize) / min(h, w)
                    img = cv2.resize(img, (max(1, int(round(w * s))), max(1, int(round(h * s)))),
                                     interpolation=cv2.INTER_AREA)
                header = mx.recordio.IRHeader(0, float(label), n, 0)
                writer.write_idx(n, mx.recordio.pack_img(header, img, quality=quality, img_fmt='.jpg'))
                lst.write('%d\t%f\t%s\n' % (n, float(label), os.path.relpath(path, src)))
                n += 1
    except mx.base.MXNetError as e:   # MXNet's writer: a full disk, a folder that stopped being writable
        drop_temporaries()
        raise OSError("cannot write %s (disk full or not writable: %s); nothing packed"
                      % (final['.rec'], str(e).strip().splitlines()[-1][:160])) from None
    except BaseException:
        drop_temporaries()
        raise
    try:
        writer.close()
    except mx.base.MXNetError as e:
        drop_temporaries()
        raise OSError("cannot write %s (disk full or not writable: %s); nothing packed"
                      % (final['.rec'], str(e).strip().splitlines()[-1][:160])) from None
    if n == 0:
        drop_temporaries()
        raise DataError("no image in %s could be decoded; nothing packed" % src)
    for ext in final:
        os.replace(tmp[ext], final[ext])
    return dict(rec=final['.rec'], idx=final['.idx'], lst=final['.lst'], classes=classes,
                packed=n, skipped=skipped)
