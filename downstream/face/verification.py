"""Face verification on a pairs list: 10-fold accuracy with the best threshold (the LFW protocol).

Pairs files, one pair per line (blank lines and lines starting with '#' ignored):

* ``path_a path_b same`` with ``same`` 1 / 0 (or true / false), paths relative to ``root``;
* LFW's ``pairs.txt``: ``name i j`` (same person) / ``name_a i name_b j`` (different), resolved as
  ``root/name/name_%04d.jpg`` (``--lfw-ext`` changes the extension); its header line (folds, pairs) is
  skipped.

Protocol (insightface ``verification.py``): embeddings are L2-normalised (optionally the sum of the
image's and its mirror's), the squared distance of every pair is compared to a threshold; the pairs
are split into 10 folds; for each fold the threshold that maximises accuracy on the other 9 folds is
applied to it; reported: mean and std of the 10 fold accuracies and the mean best threshold.
"""
import os

import numpy as np

from asymmzoo.heads.arcface import preprocess, load_face, embed_images  # noqa: F401 (re-exported)

__all__ = ['read_pairs', 'load_face', 'embed_images', 'kfold_accuracy', 'evaluate_pairs',
           'preprocess']



def _parse_bool(tok, where):
    t = tok.lower()
    if t in ('1', 'true', 'same', 'yes'):
        return True
    if t in ('0', 'false', 'diff', 'no', '-1'):
        return False
    raise ValueError("%s: the third column must be 1/0 (same / different person), got %r" % (where, tok))


def read_pairs(pairs_file, root='', lfw_ext='jpg', check=True):
    """[(path_a, path_b, issame)]; raises FileNotFoundError naming the line of a missing image."""
    if not os.path.isfile(pairs_file):
        raise FileNotFoundError("pairs file %s does not exist" % pairs_file)
    pairs = []
    with open(pairs_file) as f:
        lines = f.read().splitlines()
    for lineno, line in enumerate(lines, 1):
        tok = line.split()
        if not tok or tok[0].startswith('#'):
            continue
        where = "%s line %d" % (pairs_file, lineno)
        if lineno == 1 and len(tok) == 2 and all(t.isdigit() for t in tok):
            continue  # LFW header: number of folds, pairs per fold
        if len(tok) == 3 and tok[1].isdigit() and tok[2].isdigit():
            a = os.path.join(root, tok[0], '%s_%04d.%s' % (tok[0], int(tok[1]), lfw_ext))
            b = os.path.join(root, tok[0], '%s_%04d.%s' % (tok[0], int(tok[2]), lfw_ext))
            same = True
        elif len(tok) == 4 and tok[1].isdigit() and tok[3].isdigit():
            a = os.path.join(root, tok[0], '%s_%04d.%s' % (tok[0], int(tok[1]), lfw_ext))
            b = os.path.join(root, tok[2], '%s_%04d.%s' % (tok[2], int(tok[3]), lfw_ext))
            same = False
        elif len(tok) == 3:
            a, b = os.path.join(root, tok[0]), os.path.join(root, tok[1])
            same = _parse_bool(tok[2], where)
        else:
            raise ValueError("%s: expected 'path_a path_b same' or LFW's 'name i j' / "
                             "'name_a i name_b j', got %r" % (where, line))
        if check:
            for p in (a, b):
                if not os.path.isfile(p):
                    raise FileNotFoundError("%s names a missing image: %s (root %r); fix the path or "
                                            "the root folder" % (where, p, root))
        pairs.append((a, b, same))
    if not pairs:
        raise ValueError("pairs file %s lists no pair" % pairs_file)
    return pairs


def _acc(threshold, dist, issame):
    pred = dist < threshold
    return float(np.mean(pred == issame))


def kfold_accuracy(emb_a, emb_b, issame, nfolds=10, thresholds=None):
    """LFW protocol on normalised embedding pairs. Returns a dict: accuracy, std, threshold,
    fold_accuracies."""
    issame = np.asarray(issame, dtype=bool)
    n = len(issame)
    if n < nfolds:
        raise ValueError("need at least nfolds=%d pairs, got %d" % (nfolds, n))
    if thresholds is None:
        thresholds = np.arange(0, 4, 0.01)  # squared distance of unit vectors lies in [0, 4]
    dist = np.sum((np.asarray(emb_a) - np.asarray(emb_b)) ** 2, axis=1)
    folds = np.array_split(np.arange(n), nfolds)  # contiguous folds, as sklearn's KFold(shuffle=False)
    accs, best = [], []
    for k in range(nfolds):
        test = folds[k]
        train = np.concatenate([folds[j] for j in range(nfolds) if j != k])
        tr = [_acc(t, dist[train], issame[train]) for t in thresholds]
        t_best = thresholds[int(np.argmax(tr))]
        best.append(t_best)
        accs.append(_acc(t_best, dist[test], issame[test]))
    return dict(accuracy=float(np.mean(accs)), std=float(np.std(accs)),
                threshold=float(np.mean(best)), fold_accuracies=accs)


def evaluate_pairs(net, pairs, batch_size=32, flip=True, nfolds=10, ctx=None):
    """Embed every image of ``pairs`` (from :func:`read_pairs`, or (img_a, img_b, same) with arrays)
    and run :func:`kfold_accuracy`."""
    a = embed_images(net, [p[0] for p in pairs], batch_size, flip, ctx)
    b = embed_images(net, [p[1] for p in pairs], batch_size, flip, ctx)
    return kfold_accuracy(a, b, [p[2] for p in pairs], nfolds=nfolds)
