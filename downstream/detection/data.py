"""Detection datasets: GluonCV's VOC / COCO classes, and any VOC-format folder.

A *VOC-format folder* is ``root/Annotations/*.xml``, ``root/JPEGImages/*.jpg`` and
``root/ImageSets/Main/{split}.txt`` (one image id per line), i.e. one ``VOC2007`` directory.
:class:`VOCFolder` reads it through GluonCV's :class:`~gluoncv.data.VOCDetection` (same label layout:
``[xmin, ymin, xmax, ymax, class_id, difficult]``, VOC's 1-based pixel coordinates shifted to 0-based)
but refuses, with the file named, what GluonCV silently skips or crashes on: a missing annotation or
image, an unknown class, a box outside the image.
"""
import os
import xml.etree.ElementTree as ET

import mxnet as mx
import numpy as np
from gluoncv.data import VOCDetection

__all__ = ['VOCFolder', 'DatasetError']


class DatasetError(ValueError):
    """A dataset folder is incomplete or one of its annotations is wrong."""


def _field(elem, tag, anno_path, what):
    """The stripped text of ``elem``'s child ``tag``; a DatasetError naming the file if it is missing."""
    child = elem.find(tag)
    if child is None or child.text is None or not child.text.strip():
        raise DatasetError("%s: %s has no <%s>; every VOC object needs <name> and <bndbox> with "
                           "<xmin>, <ymin>, <xmax>, <ymax>" % (anno_path, what, tag))
    return child.text.strip()


def _number(elem, tag, anno_path, what):
    text = _field(elem, tag, anno_path, what)
    try:
        return float(text)
    except ValueError:
        raise DatasetError("%s: %s <%s> is %r, not a number" % (anno_path, what, tag, text))


def _read_ids(path):
    with open(path) as f:
        return [line.strip().split()[0] for line in f if line.strip()]


class VOCFolder(VOCDetection):
    """Any VOC-format folder as a GluonCV detection dataset.

    Parameters
    ----------
    root : str, the folder holding Annotations/, JPEGImages/, ImageSets/Main/
    split : str, name of ``ImageSets/Main/{split}.txt``
    classes : list of str, default: ``root/classes.txt`` if present, else every class name found in
        the split's annotations (sorted)
    transform : callable(img, label), as in GluonCV
    invalid_boxes : 'error' (default) | 'clip' (clip to the image, drop empty boxes) | 'skip'
        (GluonCV's behaviour: drop the box)
    """

    def __init__(self, root, split='trainval', classes=None, transform=None, invalid_boxes='error',
                 preload_label=True):
        if invalid_boxes not in ('error', 'clip', 'skip'):
            raise ValueError("invalid_boxes must be 'error', 'clip' or 'skip', got %r" % (invalid_boxes,))
        root = os.path.abspath(os.path.expanduser(root))
        self._invalid_boxes = invalid_boxes
        split_file = os.path.join(root, 'ImageSets', 'Main', split + '.txt')
        if not os.path.isfile(split_file):
            raise DatasetError(
                "%s is not a VOC-format folder for split %r: %s is missing (expected "
                "Annotations/<id>.xml, JPEGImages/<id>.jpg and ImageSets/Main/<split>.txt)"
                % (root, split, split_file))
        ids = _read_ids(split_file)
        if not ids:
            raise DatasetError("%s lists no images" % split_file)
        missing = []
        for i in ids:
            for sub, ext in (('Annotations', '.xml'), ('JPEGImages', '.jpg')):
                p = os.path.join(root, sub, i + ext)
                if not os.path.isfile(p):
                    missing.append(p)
        if missing:
            raise DatasetError(
                "%d file(s) listed by %s are missing, e.g. %s; add them or remove their ids from "
                "the split file" % (len(missing), split_file, ', '.join(missing[:3])))
        if classes is None:
            cfile = os.path.join(root, 'classes.txt')
            if os.path.isfile(cfile):
                classes = _read_ids(cfile)
            else:
                found = set()
                for i in ids:
                    path = os.path.join(root, 'Annotations', i + '.xml')
                    try:
                        objects = ET.parse(path).getroot().iter('object')
                    except ET.ParseError as e:
                        raise DatasetError("%s is not valid XML: %s" % (path, e))
                    for k, obj in enumerate(objects):
                        found.add(_field(obj, 'name', path, 'object %d' % k).lower())
                classes = sorted(found)
        self._classes = tuple(str(c).strip().lower() for c in classes)
        if not self._classes:
            raise DatasetError("no classes given and none found in the annotations of %s" % split_file)
        self._split_name = split
        # GluonCV resolves (subfolder, split) under root; '' means root itself
        super(VOCFolder, self).__init__(root=root, splits=(('', split),), transform=transform,
                                        preload_label=preload_label)

    def __str__(self):
        return 'VOCFolder(%s, %s)' % (self._root, self._split_name)

    def check_images(self):
        """Refuse an image of the split that cannot be decoded (header check), naming it."""
        from asymmzoo.data.folder import check_image_headers
        check_image_headers(self._image_path.format(*i) for i in self._items)

    def __getitem__(self, idx):
        try:
            return super(VOCFolder, self).__getitem__(idx)
        except mx.base.MXNetError as e:   # name the file MXNet could not decode
            from asymmzoo.data.folder import undecodable
            raise undecodable(self._image_path.format(*self._items[idx]),
                              str(e).strip().splitlines()[-1] if str(e).strip() else 'MXNetError')

    @property
    def classes(self):
        return self._classes

    def _load_label(self, idx):
        img_id = self._items[idx]
        anno_path = self._anno_path.format(*img_id)
        try:
            root = ET.parse(anno_path).getroot()
        except ET.ParseError as e:
            raise DatasetError("%s is not valid XML: %s" % (anno_path, e))
        size = root.find('size')
        if size is None or size.find('width') is None or size.find('height') is None:
            raise DatasetError("%s has no <size><width>/<height>; VOC annotations need the image size"
                               % anno_path)
        width, height = (_number(size, t, anno_path, '<size>') for t in ('width', 'height'))
        self._im_shapes[idx] = (width, height)
        label = []
        for k, obj in enumerate(root.iter('object')):
            name = _field(obj, 'name', anno_path, 'object %d' % k).lower()
            if name not in self.index_map:
                raise DatasetError("%s: object %d has class %r, not one of %s; pass classes=[...] "
                                   "(or list it in classes.txt)" % (anno_path, k, name, list(self.classes)))
            diff = obj.find('difficult')
            try:
                difficult = int(diff.text) if diff is not None else 0
            except (TypeError, ValueError):
                difficult = 0
            bb = obj.find('bndbox')
            if bb is None:
                _field(obj, 'bndbox', anno_path, 'object %d (%s)' % (k, name))
            xmin, ymin, xmax, ymax = [_number(bb, t, anno_path, 'object %d (%s)' % (k, name)) - 1
                                      for t in ('xmin', 'ymin', 'xmax', 'ymax')]
            ok = 0 <= xmin < xmax <= width and 0 <= ymin < ymax <= height
            if not ok:
                if self._invalid_boxes == 'error':
                    raise DatasetError(
                        "%s: object %d (%s) box (xmin=%g, ymin=%g, xmax=%g, ymax=%g, 1-based) lies outside "
                        "the %gx%g image or is empty; fix the annotation, or pass invalid_boxes='clip' "
                        "(--invalid-boxes clip) to clip such boxes" % (anno_path, k, name, xmin + 1,
                                                                       ymin + 1, xmax + 1, ymax + 1,
                                                                       width, height))
                if self._invalid_boxes == 'skip':
                    continue
                xmin, xmax = np.clip([xmin, xmax], 0, width)
                ymin, ymax = np.clip([ymin, ymax], 0, height)
                if xmax <= xmin or ymax <= ymin:
                    continue
            label.append([xmin, ymin, xmax, ymax, self.index_map[name], difficult])
        if not label:
            raise DatasetError("%s has no object to learn from%s: remove its id from the split file "
                               "(a training image needs at least one box)" % (
                                   anno_path, " (every box was dropped by invalid_boxes=%r)"
                                   % self._invalid_boxes if any(True for _ in root.iter('object')) else ''))
        return np.array(label, dtype='float32').reshape(-1, 6)
