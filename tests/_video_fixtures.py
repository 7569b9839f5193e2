"""Tiny synthetic videos written with OpenCV (shared by tests/test_action.py)."""
import os

import numpy as np


def write_video(path, label, frames=16, size=(80, 64), seed=0, fps=10):
    """A moving shape: label 0 = red disc moving right, label 1 = green square moving down.
    Frame t also carries its index as the grey level 12 * t of the top-left 16x16 block."""
    import cv2
    rng = np.random.RandomState(seed)
    w, h = size
    vw = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*'mp4v'), fps, (w, h))
    if not vw.isOpened():
        raise RuntimeError("OpenCV cannot write mp4 here")
    x0, y0 = rng.randint(8, 20), rng.randint(8, 20)
    for t in range(frames):
        f = np.full((h, w, 3), 40, np.uint8)
        f[:16, :16, :] = min(12 * t, 255)
        if label == 0:
            cv2.circle(f, ((x0 + 4 * t) % w, h // 2), 9, (0, 0, 255), -1)
        else:
            y = (y0 + 3 * t) % h
            cv2.rectangle(f, (w // 2 - 8, y - 8), (w // 2 + 8, y + 8), (0, 255, 0), -1)
        vw.write(f)
    vw.release()
    return path


def write_video_set(root, per_class=3, frames=16, seed=0, list_name='train.txt', bad=()):
    """Write per_class videos of each of the 2 classes and a GluonCV list file; ``bad`` adds extra
    list lines naming broken / missing files: each entry is (relative name, bytes or None)."""
    os.makedirs(root, exist_ok=True)
    lines = []
    for label in (0, 1):
        for i in range(per_class):
            name = 'c%d_v%d_s%d.mp4' % (label, i, seed)
            write_video(os.path.join(root, name), label, frames=frames, seed=seed * 100 + i * 2 + label)
            lines.append('%s %d %d' % (name, frames, label))
    for name, content in bad:
        if content is not None:
            with open(os.path.join(root, name), 'wb') as f:
                f.write(content)
        lines.append('%s %d %d' % (name, frames, 0))
    lst = os.path.join(root, list_name)
    with open(lst, 'w') as f:
        f.write('\n'.join(lines) + '\n')
    return lst
