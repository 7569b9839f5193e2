"""Tiny synthetic datasets in the *real* on-disk formats, for tests, demos and smoke runs.

* :func:`make_voc_folder`: a VOC-format folder (``Annotations/*.xml``, ``JPEGImages/*.jpg``,
  ``ImageSets/Main/{split}.txt``) of noisy images with filled rectangles ('square') and disks ('disk')
  whose boxes are known exactly.
* :func:`make_coco_detection`: a COCO detection folder (``annotations/instances_{split}.json`` with COCO's
  80 categories, ``{split}/*.jpg``), the same shapes labelled with COCO class names.
* :func:`make_coco_keypoints`: a COCO keypoint folder (``annotations/person_keypoints_{split}.json``,
  ``{split}/000000000001.jpg``...) of stick figures whose 17 joints are drawn as coloured dots.

``python -m downstream.synthetic voc DIR`` / ``python -m downstream.synthetic coco DIR`` write one.
"""
import json
import os
import sys

import numpy as np

__all__ = ['make_voc_folder', 'make_coco_detection', 'make_coco_keypoints', 'VOC_CLASSES', 'JOINT_COLOURS']

VOC_CLASSES = ('square', 'disk')


def _save_jpeg(path, img):
    from PIL import Image
    Image.fromarray(img.astype('uint8')).save(path, quality=95)


def _background(rng, h, w):
    base = rng.randint(90, 150)
    return np.clip(base + rng.normal(0, 12, size=(h, w, 3)), 0, 255)


def _voc_xml(img_id, w, h, objects):
    objs = ''.join(
        '<object><name>%s</name><pose>Unspecified</pose><truncated>0</truncated><difficult>0</difficult>'
        '<bndbox><xmin>%d</xmin><ymin>%d</ymin><xmax>%d</xmax><ymax>%d</ymax></bndbox></object>'
        % (name, x0 + 1, y0 + 1, x1 + 1, y1 + 1) for name, (x0, y0, x1, y1) in objects)
    return ('<annotation><folder>synthetic</folder><filename>%s.jpg</filename>'
            '<size><width>%d</width><height>%d</height><depth>3</depth></size>'
            '<segmented>0</segmented>%s</annotation>' % (img_id, w, h, objs))


def _draw_scene(rng, h, w, max_objects, classes):
    """A noisy image with 1..max_objects non-overlapping shapes: class 0, 2, ... filled rectangles,
    class 1, 3, ... filled ellipses. Returns (img, [(class name, (x0, y0, x1, y1) 0-based inclusive)])."""
    img = _background(rng, h, w)
    objects, taken = [], []
    for _ in range(rng.randint(1, max_objects + 1)):
        for _try in range(20):
            bw, bh = rng.randint(w // 5, w // 2), rng.randint(h // 5, h // 2)
            x0, y0 = rng.randint(0, w - bw), rng.randint(0, h - bh)
            box = (x0, y0, x0 + bw - 1, y0 + bh - 1)
            if all(box[2] < t[0] or box[0] > t[2] or box[3] < t[1] or box[1] > t[3] for t in taken):
                break
        else:
            continue
        taken.append(box)
        k = rng.randint(len(classes))
        if k % 2 == 0:
            img[box[1]:box[3] + 1, box[0]:box[2] + 1] = (220, 40, 40)
        else:
            yy, xx = np.mgrid[0:h, 0:w]
            cy, cx = (box[1] + box[3]) / 2.0, (box[0] + box[2]) / 2.0
            ry, rx = (box[3] - box[1] + 1) / 2.0, (box[2] - box[0] + 1) / 2.0
            img[((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1.0] = (40, 60, 230)
        objects.append((classes[k], box))
    return img, objects


def make_voc_folder(root, splits=(('train', 8), ('val', 4)), size=(128, 128), max_objects=2, seed=0,
                    same_images=False, classes=VOC_CLASSES):
    """Write a VOC-format folder under ``root`` and return ``{split: [(id, [(class, box)...])]}``.

    Boxes are 0-based ``(xmin, ymin, xmax, ymax)``; the XML holds VOC's 1-based values.
    ``same_images=True`` makes every split list the same images (the split of the first entry):
    handy to check that a net can overfit what it was trained on. ``classes``: the names given to
    rectangles (even indices) and ellipses (odd indices), e.g. real VOC names for ``VOCDetection``.
    """
    rng = np.random.RandomState(seed)
    h, w = size
    for d in ('Annotations', 'JPEGImages', os.path.join('ImageSets', 'Main')):
        os.makedirs(os.path.join(root, d), exist_ok=True)
    out, counter = {}, 0
    first_ids = None
    for split, n in splits:
        if same_images and first_ids is not None:
            ids = first_ids
        else:
            ids = []
            for _ in range(n):
                img_id = '%06d' % counter
                counter += 1
                img, objects = _draw_scene(rng, h, w, max_objects, classes)
                _save_jpeg(os.path.join(root, 'JPEGImages', img_id + '.jpg'), img)
                with open(os.path.join(root, 'Annotations', img_id + '.xml'), 'w') as f:
                    f.write(_voc_xml(img_id, w, h, objects))
                ids.append((img_id, objects))
            first_ids = first_ids or ids
        with open(os.path.join(root, 'ImageSets', 'Main', split + '.txt'), 'w') as f:
            f.write(''.join(i + '\n' for i, _ in ids))
        out[split] = ids
    return out


def make_coco_detection(root, splits=(('train2017', 6), ('val2017', 4)), size=(128, 128), max_objects=2,
                        seed=0, classes=('tv', 'sports ball')):
    """Write a COCO detection folder (``annotations/instances_{split}.json`` with COCO's 80 categories,
    ``{split}/*.jpg``) whose shapes are labelled with the given COCO class names; returns the json paths."""
    from gluoncv.data import COCODetection
    names = list(COCODetection.CLASSES)
    for c in classes:
        if c not in names:
            raise ValueError("%r is not a COCO class" % (c,))
    cat_id = {c: i + 1 for i, c in enumerate(names)}
    rng = np.random.RandomState(seed)
    h, w = size
    os.makedirs(os.path.join(root, 'annotations'), exist_ok=True)
    out, img_counter, ann_counter = {}, 1, 1
    for split, n in splits:
        os.makedirs(os.path.join(root, split), exist_ok=True)
        images, annos = [], []
        for _ in range(n):
            img, objects = _draw_scene(rng, h, w, max_objects, classes)
            fname = '%012d.jpg' % img_counter
            _save_jpeg(os.path.join(root, split, fname), img)
            images.append({'id': img_counter, 'file_name': fname, 'width': w, 'height': h,
                           'coco_url': 'http://images.cocodataset.org/%s/%s' % (split, fname)})
            for name, (x0, y0, x1, y1) in objects:
                bw, bh = x1 - x0 + 1, y1 - y0 + 1
                annos.append({'id': ann_counter, 'image_id': img_counter, 'category_id': cat_id[name],
                              'iscrowd': 0, 'bbox': [float(x0), float(y0), float(bw), float(bh)],
                              'area': float(bw * bh), 'segmentation': []})
                ann_counter += 1
            img_counter += 1
        data = {'info': {'description': 'asymmzoo synthetic detection'}, 'licenses': [],
                'images': images, 'annotations': annos,
                'categories': [{'id': cat_id[c], 'name': c, 'supercategory': 'thing'} for c in names]}
        path = os.path.join(root, 'annotations', 'instances_%s.json' % split)
        with open(path, 'w') as f:
            json.dump(data, f)
        out[split] = path
    return out


# a standing figure in a unit box (x right, y down): COCO's 17 joints
_TEMPLATE = np.array([
    (0.50, 0.08), (0.45, 0.05), (0.55, 0.05), (0.40, 0.07), (0.60, 0.07),   # nose, eyes, ears
    (0.30, 0.22), (0.70, 0.22), (0.20, 0.40), (0.80, 0.40), (0.15, 0.58),   # shoulders, elbows, wrists
    (0.85, 0.58), (0.38, 0.55), (0.62, 0.55), (0.36, 0.76), (0.64, 0.76),   # hips, knees
    (0.35, 0.96), (0.65, 0.96)])                                            # ankles
JOINT_COLOURS = np.array([
    (255, 255, 255), (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0), (255, 0, 255),
    (0, 255, 255), (128, 0, 0), (0, 128, 0), (0, 0, 128), (128, 128, 0), (128, 0, 128),
    (0, 128, 128), (255, 128, 0), (255, 0, 128), (128, 255, 0), (0, 128, 255)], dtype='float64')
_LIMBS = [(5, 7), (7, 9), (6, 8), (8, 10), (5, 6), (11, 12), (5, 11), (6, 12), (11, 13), (13, 15),
          (12, 14), (14, 16)]
_KP_NAMES = ['nose', 'left_eye', 'right_eye', 'left_ear', 'right_ear', 'left_shoulder',
             'right_shoulder', 'left_elbow', 'right_elbow', 'left_wrist', 'right_wrist', 'left_hip',
             'right_hip', 'left_knee', 'right_knee', 'left_ankle', 'right_ankle']
_SKELETON = [[16, 14], [14, 12], [17, 15], [15, 13], [12, 13], [6, 12], [7, 13], [6, 7], [6, 8],
             [7, 9], [8, 10], [9, 11], [2, 3], [1, 2], [1, 3], [2, 4], [3, 5], [4, 6], [5, 7]]


def make_coco_keypoints(root, splits=(('train2017', 8), ('val2017', 4)), size=(160, 128), seed=0,
                        dot=3, same_images=False):
    """Write a COCO keypoint folder under ``root``; returns ``{split: annotation json path}``.

    One stick figure per image, joints as coloured dots (radius ``dot``), all visible (v=2); the
    figure's box is the joints' extent plus a margin. ``size`` is (height, width).
    """
    rng = np.random.RandomState(seed)
    h, w = size
    os.makedirs(os.path.join(root, 'annotations'), exist_ok=True)
    out, img_counter, first = {}, 1, None
    for split, n in splits:
        os.makedirs(os.path.join(root, split), exist_ok=True)
        images, annos = [], []
        if same_images and first is not None:
            src_split, images0, annos0 = first
            import shutil
            for im in images0:
                shutil.copyfile(os.path.join(root, src_split, im['file_name']),
                                os.path.join(root, split, im['file_name']))
                im = dict(im, coco_url='http://images.cocodataset.org/%s/%s' % (split, im['file_name']))
                images.append(im)
            annos = annos0
        else:
            for _ in range(n):
                fh = rng.uniform(0.55, 0.85) * h
                fw = fh * rng.uniform(0.45, 0.7)
                x0, y0 = rng.uniform(2, w - fw - 2), rng.uniform(2, h - fh - 2)
                pts = _TEMPLATE * (fw, fh) + (x0, y0) + rng.normal(0, 1.0, _TEMPLATE.shape)
                img = _background(rng, h, w)
                yy, xx = np.mgrid[0:h, 0:w]
                for a, b in _LIMBS:  # grey limbs
                    for t in np.linspace(0, 1, 24):
                        p = pts[a] * (1 - t) + pts[b] * t
                        img[(yy - p[1]) ** 2 + (xx - p[0]) ** 2 <= 1.5] = (70, 70, 70)
                for j, (px, py) in enumerate(pts):
                    img[(yy - py) ** 2 + (xx - px) ** 2 <= dot ** 2] = JOINT_COLOURS[j]
                fname = '%012d.jpg' % img_counter
                _save_jpeg(os.path.join(root, split, fname), img)
                bx0, by0 = max(0.0, pts[:, 0].min() - 6), max(0.0, pts[:, 1].min() - 6)
                bx1, by1 = min(w - 1.0, pts[:, 0].max() + 6), min(h - 1.0, pts[:, 1].max() + 6)
                images.append({'id': img_counter, 'file_name': fname, 'width': w, 'height': h,
                               'coco_url': 'http://images.cocodataset.org/%s/%s' % (split, fname)})
                kps = []
                for px, py in pts:
                    kps += [float(round(px, 2)), float(round(py, 2)), 2]
                annos.append({'id': img_counter, 'image_id': img_counter, 'category_id': 1,
                              'iscrowd': 0, 'num_keypoints': 17, 'keypoints': kps,
                              'bbox': [float(bx0), float(by0), float(bx1 - bx0), float(by1 - by0)],
                              'area': float((bx1 - bx0) * (by1 - by0))})
                img_counter += 1
            first = first or (split, images, annos)
        data = {'info': {'description': 'asymmzoo synthetic keypoints'}, 'licenses': [],
                'images': images, 'annotations': annos,
                'categories': [{'id': 1, 'name': 'person', 'supercategory': 'person',
                                'keypoints': _KP_NAMES, 'skeleton': _SKELETON}]}
        path = os.path.join(root, 'annotations', 'person_keypoints_%s.json' % split)
        with open(path, 'w') as f:
            json.dump(data, f)
        out[split] = path
    return out


if __name__ == '__main__':  # pragma: no cover
    if len(sys.argv) != 3 or sys.argv[1] not in ('voc', 'coco'):
        sys.exit('usage: python -m downstream.synthetic {voc,coco} DIR')
    (make_voc_folder if sys.argv[1] == 'voc' else make_coco_keypoints)(sys.argv[2])
    print('wrote', sys.argv[2])
