"""Video classification data: GluonCV's :class:`VideoClsCustom` with an OpenCV video decoder.

GluonCV's loader decodes videos with decord (``use_decord=True``) or mmcv; neither is part of our
pinned stack (decord 0.6.0 does install, but is not required). :class:`VideoClsCV2` keeps GluonCV's
list-file format (``path num_frames label`` per line; the frame count is ignored for videos and
re-read from the file), its TSN segment sampling (``_sample_train_indices`` / ``_sample_val_indices``
/ ``_sample_test_indices``), its frame-folder loader, transforms and output layout, and decodes videos
with ``cv2.VideoCapture`` (or decord, ``backend='decord'``, when installed).

Robustness (what GluonCV does not do):

* a video that cannot be opened / decoded is **skipped and counted** when the dataset is built
  (``dataset.skipped`` lists ``(path, reason)``); one that fails later while reading frames is
  replaced by the next sample and counted in ``dataset.failed``;
* a video with fewer frames than ``num_segments * new_length`` is skipped too (GluonCV silently
  repeats frame 1), unless ``allow_short=True``.

Each item is ``(frames, label)`` with ``frames`` of shape ``(num_crop * num_segments, 3, H, W)``
(``new_length=1``), crop-major, ready for :class:`downstream.action.TSN` after a DataLoader stacks
videos: ``x.reshape((-1,) + x.shape[2:])``.
"""
import os
import warnings

import numpy as np
from mxnet import nd
from gluoncv.data import VideoClsCustom

__all__ = ['VideoClsCV2', 'VideoDecodeError', 'read_video_frames', 'count_video_frames',
           'video_transforms']


class VideoDecodeError(RuntimeError):
    """A video file could not be opened or decoded."""


def _cv2():
    import cv2
    return cv2


def count_video_frames(path):
    """Number of decodable frames of a video file (raises VideoDecodeError if there are none)."""
    cv2 = _cv2()
    if not os.path.isfile(path):
        raise VideoDecodeError("video file %s does not exist" % path)
    cap = cv2.VideoCapture(path)
    try:
        if not cap.isOpened():
            raise VideoDecodeError("OpenCV cannot open %s (not a video, or an unsupported codec)" % path)
        n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        ok, frame = cap.read()
        if not ok or frame is None:
            raise VideoDecodeError("%s opens but has no decodable frame" % path)
        if n <= 0:  # container without a frame count: count by decoding
            n = 1
            while cap.grab():
                n += 1
        return n
    finally:
        cap.release()


def read_video_frames(path, frame_ids, size=None):
    """Decode the 0-based ``frame_ids`` of a video with OpenCV, as RGB uint8 HxWx3 arrays.

    Decodes sequentially (grab without retrieving the frames not asked for), which is exact for every
    container. If the file ends before a requested index (frame counts in headers can be wrong), the
    last decoded frame stands in. ``size=(width, height)`` resizes.
    """
    cv2 = _cv2()
    if len(frame_ids) == 0:
        return []
    want = sorted(set(int(i) for i in frame_ids))
    cap = cv2.VideoCapture(path)
    got, last, idx = {}, None, 0
    try:
        if not cap.isOpened():
            raise VideoDecodeError("OpenCV cannot open %s" % path)
        for target in want:
            while idx < target:
                if not cap.grab():
                    break
                idx += 1
            if idx < target:
                break  # file ended early
            ok, frame = cap.read()
            if not ok or frame is None:
                break
            idx += 1
            if size is not None and (frame.shape[1], frame.shape[0]) != tuple(size):
                frame = cv2.resize(frame, tuple(size))
            last = frame[:, :, ::-1]
            got[target] = last
    finally:
        cap.release()
    if last is None:
        raise VideoDecodeError("no frame of %s could be decoded (asked for frames %s)"
                               % (path, want[:8]))
    return [got.get(int(i), last) for i in frame_ids]


def video_transforms(mode, size=224, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225),
                     num_crop=1):
    """GluonCV's video transforms: 'train' (multi-scale crop + flip), 'val' (centre crop), 'test'
    with ``num_crop`` 1 (centre), 3 (:class:`VideoThreeCrop`) or 10 (:class:`VideoTenCrop`)."""
    from mxnet.gluon.data.vision import transforms as T
    from gluoncv.data.transforms import video
    size = (size, size) if isinstance(size, int) else tuple(size)
    if mode == 'train':
        return video.VideoGroupTrainTransform(size=size, scale_ratios=[1.0, 0.875, 0.75, 0.66],
                                              mean=mean, std=std)
    if mode == 'val' or num_crop == 1:
        return video.VideoGroupValTransform(size=size, mean=mean, std=std)
    if num_crop == 3:
        crop = video.VideoThreeCrop(size=size)
    elif num_crop == 10:
        crop = video.VideoTenCrop(size=size)
    else:
        raise ValueError("num_crop must be 1, 3 or 10, got %r" % (num_crop,))
    return T.Compose([crop, video.VideoToTensor(), video.VideoNormalize(mean, std)])


class VideoClsCV2(VideoClsCustom):
    """:class:`gluoncv.data.VideoClsCustom` decoding videos with OpenCV; bad videos skipped + counted.

    Same arguments as ``VideoClsCustom`` (``root``, ``setting``, ``train``, ``test_mode``,
    ``num_segments``, ``num_crop``, ``new_length``, ``new_width``/``new_height`` (resize on decode),
    ``target_width``/``target_height`` (the transform's output size), ``video_loader`` (True: the list
    names video files; False: folders of frames named ``name_pattern``), ``transform``), plus

    backend : 'opencv' (default) or 'decord' (if installed)
    allow_short : keep videos with fewer frames than ``num_segments * new_length`` (frames repeat)
    """

    def __init__(self, root, setting, video_loader=True, backend='opencv', allow_short=False,
                 **kwargs):
        if kwargs.get('slowfast'):
            raise ValueError("VideoClsCV2 serves TSN-style 2D sampling; slowfast=True is not supported")
        if backend not in ('opencv', 'decord'):
            raise ValueError("backend must be 'opencv' or 'decord', got %r" % (backend,))
        if backend == 'decord':
            try:
                import decord  # noqa: F401
            except ImportError:
                raise ImportError("backend='decord' needs `pip install decord`; or use backend='opencv'")
        kwargs.pop('use_decord', None)
        kwargs.pop('lazy_init', None)
        # lazy_init: VideoClsCustom would import mmcv for video_loader=True; we build the list ourselves
        super(VideoClsCV2, self).__init__(root, setting, video_loader=False, use_decord=False,
                                          lazy_init=True, **kwargs)
        self.video_loader = bool(video_loader)
        self.backend = backend
        self.allow_short = allow_short
        self.skipped = []
        self.failed = 0
        self.clips = self._make_checked_dataset(root, setting)

    # ---------------------------------------------------------------- list file and checks
    def _video_path(self, directory):
        if '.' in os.path.basename(directory):
            return directory
        return '{}.{}'.format(directory, self.video_ext)

    def _make_checked_dataset(self, root, setting):
        if not os.path.exists(setting):
            raise FileNotFoundError("list file %s does not exist; it needs one line per video: "
                                    "'path num_frames label'" % setting)
        clips = []
        with open(setting) as f:
            for lineno, line in enumerate(f, 1):
                if not line.strip():
                    continue
                parts = line.split()
                if len(parts) < 3:
                    raise ValueError("%s line %d: expected 'path num_frames label', got %r"
                                     % (setting, lineno, line.rstrip()))
                try:
                    duration, target = int(parts[1]), int(parts[2])
                except ValueError:
                    raise ValueError("%s line %d: num_frames and label must be integers, got %r"
                                     % (setting, lineno, line.rstrip()))
                path = os.path.join(root, parts[0])
                if self.video_loader:
                    path = self._video_path(path)
                    try:
                        duration = self._count_frames(path)
                    except VideoDecodeError as e:
                        self.skipped.append((path, str(e)))
                        continue
                elif not os.path.isdir(path):
                    self.skipped.append((path, "frame folder does not exist"))
                    continue
                need = self.num_segments * self.new_length
                if duration < need and not self.allow_short:
                    self.skipped.append((path, "has %d frames, fewer than num_segments*new_length = %d "
                                               "(lower num_segments, or pass allow_short=True to "
                                               "repeat frames)" % (duration, need)))
                    continue
                clips.append((path, duration, target))
        if self.skipped:
            warnings.warn("%s: skipped %d of %d videos: %s" % (
                setting, len(self.skipped), len(self.skipped) + len(clips),
                "; ".join("%s (%s)" % s for s in self.skipped[:3])
                + (" ..." if len(self.skipped) > 3 else "")))
        if not clips:
            raise RuntimeError("no usable video in %s (root %s); skipped: %s"
                               % (setting, root, self.skipped[:5]))
        return clips

    def _count_frames(self, path):
        if self.backend == 'decord':
            import decord
            try:
                return len(decord.VideoReader(path, num_threads=1))
            except Exception as e:  # decord raises its own DECORDError
                raise VideoDecodeError("decord cannot decode %s: %s" % (path, e))
        return count_video_frames(path)

    # ---------------------------------------------------------------- reading
    def _frame_ids(self, duration, indices, skip_offsets):
        """0-based frame ids, GluonCV's TSN arithmetic (offsets are 1-based)."""
        ids = []
        for seg_ind in indices:
            offset = int(seg_ind)
            for i, _ in enumerate(range(0, self.skip_length, self.new_step)):
                ids.append(offset + skip_offsets[i] - 1 if offset + skip_offsets[i] <= duration
                           else offset - 1)
                if offset + self.new_step < duration:
                    offset += self.new_step
        return [min(max(i, 0), duration - 1) for i in ids]

    def _read(self, path, ids):
        size = (self.new_width, self.new_height) if self.new_width > 0 and self.new_height > 0 else None
        if self.backend == 'decord':
            import decord
            try:
                vr = decord.VideoReader(path, num_threads=1)
                frames = vr.get_batch(ids).asnumpy()
            except Exception as e:
                raise VideoDecodeError("decord failed on %s: %s" % (path, e))
            cv2 = _cv2()
            return [cv2.resize(f, size) if size and (f.shape[1], f.shape[0]) != size else f
                    for f in frames]
        return read_video_frames(path, ids, size=size)

    def _load(self, index):
        directory, duration, target = self.clips[index]
        if self.train and not self.test_mode:
            indices, skips = self._sample_train_indices(duration)
        elif not self.train and not self.test_mode:
            indices, skips = self._sample_val_indices(duration)
        else:
            indices, skips = self._sample_test_indices(duration)
        if self.video_loader:
            frames = self._read(directory, self._frame_ids(duration, indices, skips))
        else:
            frames = self._image_TSN_cv2_loader(directory, duration, indices, skips)
        return frames, target

    def __getitem__(self, index):
        for attempt in range(len(self.clips)):
            i = (index + attempt) % len(self.clips)
            try:
                frames, target = self._load(i)
                break
            except (VideoDecodeError, RuntimeError) as e:
                self.failed += 1
                warnings.warn("skipping %s: %s" % (self.clips[i][0], e))
        else:
            raise VideoDecodeError("no video of %s could be read" % self.setting)
        if self.transform is not None:
            frames = self.transform(frames)
        clip = np.stack([np.asarray(f, dtype='float32') for f in frames], axis=0)
        if clip.ndim != 4 or clip.shape[1] != 3:
            raise ValueError("the transform must return CHW float frames (got a stack of shape %s); "
                             "use downstream.action.video_transforms()" % (clip.shape,))
        return nd.array(clip), target
