"""ArcFace (Deng et al., CVPR 2019): additive angular margin, as a Gluon loss.

``ArcMarginHead`` holds the identity centres W (classes x embedding) and returns the cosines
``cos(theta_j) = <x/|x|, W_j/|W_j|>``; ``ArcFaceLoss`` turns the target cosine into ``cos(theta_y + m)``,
scales every logit by ``s`` and applies softmax cross-entropy.

Guards, as in insightface's original MXNet code (``fmobilefacenet`` / ``train.py``, loss type 'arcface'):

* the cosine is **clipped to [-1 + eps, 1 - eps] before arccos**, so cosines at exactly +-1 (which a
  normalised embedding equal to its centre produces) give finite values and gradients (an MXNet
  ArcFace loss on PyPI takes arccos of the raw cosine and returns NaN there);
* **theta + m > pi guard** (default): ``cos(theta + m)`` is not monotonic past pi, so when
  ``cos(theta) <= cos(pi - m)`` the target logit becomes ``cos(theta) - m*sin(pi - m)`` instead;
* **easy margin** (``easy_margin=True``): the margin is applied only where ``cos(theta) > 0``.
"""
import math

import mxnet as mx
from mxnet.gluon import nn
from mxnet.gluon.loss import Loss

__all__ = ['ArcMarginHead', 'ArcFaceLoss', 'arcface_logits_numpy', 'arcface_loss_numpy']


class ArcMarginHead(nn.HybridBlock):
    """Cosine similarities between L2-normalised embeddings and L2-normalised class centres."""

    def __init__(self, classes, embedding_size=512, weight_initializer=None, **kwargs):
        super(ArcMarginHead, self).__init__(**kwargs)
        self.classes, self.embedding_size = int(classes), int(embedding_size)
        with self.name_scope():
            self.weight = self.params.get('weight', shape=(self.classes, self.embedding_size),
                                          init=weight_initializer or mx.init.Normal(0.01))

    def hybrid_forward(self, F, x, weight):
        x = F.L2Normalization(x, mode='instance')
        w = F.L2Normalization(weight, mode='instance')
        return F.FullyConnected(x, w, no_bias=True, num_hidden=self.classes)


class ArcFaceLoss(Loss):
    """Additive angular margin softmax loss on cosines (N, classes) and integer labels (N,).

    Parameters
    ----------
    s : float, scale (64)
    m : float, angular margin in radians (0.5)
    easy_margin : bool, apply the margin only where cos(theta) > 0
    eps : float, cosines are clipped to [-1 + eps, 1 - eps] before arccos
    """

    def __init__(self, s=64.0, m=0.5, easy_margin=False, eps=1e-6, weight=None, batch_axis=0,
                 **kwargs):
        super(ArcFaceLoss, self).__init__(weight, batch_axis, **kwargs)
        if not 0 <= m < math.pi / 2:
            raise ValueError("margin m must be in [0, pi/2) radians, got %r" % (m,))
        self.s, self.m, self.easy_margin, self.eps = float(s), float(m), bool(easy_margin), float(eps)
        self.threshold = math.cos(math.pi - self.m)
        self.mm = math.sin(math.pi - self.m) * self.m

    def logits(self, F, cos, label):
        cos_c = F.clip(cos, -1.0 + self.eps, 1.0 - self.eps)
        target_cos = F.pick(cos_c, label, axis=1)                       # (N,)
        theta = F.arccos(target_cos)
        new_t = F.cos(theta + self.m)
        if self.easy_margin:
            new_t = F.where(target_cos > 0, new_t, target_cos)
        else:
            new_t = F.where(target_cos > self.threshold, new_t, target_cos - self.mm)
        diff = F.expand_dims(new_t - target_cos, axis=1)                # (N, 1)
        cols = F.contrib.arange_like(cos, axis=1)                       # (classes,)
        mask = F.broadcast_equal(F.expand_dims(cols, axis=0),
                                 F.expand_dims(F.cast(label, 'float32'), axis=1))
        return (cos_c + F.broadcast_mul(mask, diff)) * self.s

    def forward(self, cos, label, sample_weight=None):
        shape = getattr(cos, 'shape', None)
        if shape is not None:
            if len(shape) != 2:
                raise ValueError("ArcFaceLoss expects cosines of shape (N, classes), got %s" % (shape,))
            if getattr(label, 'shape', (shape[0],))[0] != shape[0]:
                raise ValueError("ArcFaceLoss: %d cosine rows but %d labels"
                                 % (shape[0], label.shape[0]))
        return super(ArcFaceLoss, self).forward(cos, label, sample_weight)

    def hybrid_forward(self, F, cos, label, sample_weight=None):
        label = label.reshape((-1,)) if hasattr(label, 'reshape') else label
        z = self.logits(F, cos, label)
        logp = F.log_softmax(z, axis=-1)
        loss = -F.pick(logp, label, axis=-1, keepdims=True)
        from mxnet.gluon.loss import _apply_weighting
        loss = _apply_weighting(F, loss, self._weight, sample_weight)
        return F.mean(loss, axis=self._batch_axis, exclude=True)


def arcface_logits_numpy(cos, label, s=64.0, m=0.5, easy_margin=False, eps=1e-6):
    """Reference: insightface's arcface logits in numpy (float64), with the same clip."""
    import numpy as np
    cos = np.clip(np.asarray(cos, dtype=np.float64), -1 + eps, 1 - eps)
    label = np.asarray(label).astype(int).ravel()
    rows = np.arange(len(label))
    zy = cos[rows, label]
    sin_t = np.sqrt(1.0 - zy * zy)
    new_zy = zy * math.cos(m) - sin_t * math.sin(m)            # cos(theta + m)
    if easy_margin:
        new_zy = np.where(zy > 0, new_zy, zy)
    else:
        new_zy = np.where(zy - math.cos(math.pi - m) > 0, new_zy, zy - math.sin(math.pi - m) * m)
    out = cos.copy()
    out[rows, label] = new_zy
    return out * s


def arcface_loss_numpy(cos, label, **kw):
    import numpy as np
    z = arcface_logits_numpy(cos, label, **kw)
    z = z - z.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    label = np.asarray(label).astype(int).ravel()
    return -logp[np.arange(len(label)), label]
