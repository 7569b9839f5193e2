"""Face embedding network (MobileFaceNet-style GDC head) on the zoo's backbones.

``arcface_{backbone}``: 112x112 face crop -> the backbone's ``features`` up to its **stride-16** tap
(a 7x7 map at 112x112, the map MobileFaceNet's GDC works on; the stride-32 map would be 4x4 and
carries the three widest blocks, ~2.6M extra parameters for AsymmNet-L) -> MobileFaceNet's
``conv_6_sep`` (1x1 conv to 512, BN, h-swish) -> **GDC** (global depthwise 7x7 conv, no padding, BN)
-> linear 1x1 conv to the embedding (no bias) -> BN (fixed gamma, insightface's ``fc1``) -> flatten.

Output: the (un-normalised) embedding, ``(N, embedding_size)``; ArcFace (``ArcMarginHead`` +
``ArcFaceLoss``) normalises it. ``embedding_size`` defaults to 512 (insightface's default); with 128
(MobileFaceNet's) the head reproduces the paper's Table 7 complexity exactly: AsymmNet-L x1.0
41.6M MAdds / 1.1M params, AsymmNet-s 10.3M MAdds (see docs/downstream-action-face.md).
"""
import math

import numpy as np

from mxnet.gluon import nn

from ..nn import HardSwish, make_norm

__all__ = ['FaceEmbedding', 'get_arcface', 'preprocess', 'load_face', 'embed_images']


class FaceEmbedding(nn.HybridBlock):
    """Backbone trunk + GDC embedding head.

    Parameters
    ----------
    base : contract backbone (``features`` and ``feature_taps``)
    embedding_size : int, output width (default 512)
    feature_stride : 16 (default, 7x7 map at 112) or 32 (4x4 map)
    expand : int, width of the 1x1 conv before the GDC (MobileFaceNet's 512); 0 = none
    input_size : int, side of the (square) face crop the GDC kernel is sized for (112)
    """


    def __init__(self, base, embedding_size=512, feature_stride=16, expand=512, input_size=112,
                 norm_layer=None, norm_kwargs=None, **kwargs):
        super(FaceEmbedding, self).__init__(**kwargs)
        for key, v, low in (('embedding_size', embedding_size, 1), ('expand', expand, 0),
                            ('input_size', input_size, 8)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < low:
                raise ValueError("%s must be an integer >= %d, got %r" % (key, low, v))
        tap = base.tap(feature_stride)  # raises a clear error for a missing stride
        self.feature_stride = feature_stride
        self.embedding_size = int(embedding_size)
        self.input_size = int(input_size)
        self.in_channels = getattr(base, 'in_channels', 3)
        self.backbone_name = getattr(base, 'name_in_zoo', type(base).__name__)
        # the map side after `feature_stride` stride-2 stages with padding k//2: ceil at every halving
        side = self.input_size
        for _ in range(int(round(math.log2(feature_stride)))):
            side = (side + 1) // 2
        self.map_size = side
        self.min_input_shape = (2, self.in_channels, self.input_size, self.input_size)
        self.default_input_shape = (1, self.in_channels, self.input_size, self.input_size)
        c = tap.channels
        nk = dict(norm_layer=norm_layer, norm_kwargs=norm_kwargs)
        with self.name_scope():
            self.features = nn.HybridSequential(prefix='')
            for blk in base.features[:tap.end]:
                self.features.add(blk)
            self.embed = nn.HybridSequential(prefix='embed_')
            with self.embed.name_scope():
                if expand:
                    self.embed.add(nn.Conv2D(expand, 1, use_bias=False, in_channels=c),
                                   make_norm(norm_layer, norm_kwargs, expand), HardSwish())
                    c = expand
                # GDC: one k x k filter per channel covering the whole map
                self.embed.add(nn.Conv2D(c, side, groups=c, use_bias=False, in_channels=c),
                               make_norm(norm_layer, norm_kwargs, c),
                               nn.Conv2D(self.embedding_size, 1, use_bias=False, in_channels=c))
                fkw = dict(norm_kwargs or {})
                fkw['scale'] = False  # insightface's fc1: BatchNorm(fix_gamma=True)
                self.embed.add(make_norm(norm_layer, fkw, self.embedding_size), nn.Flatten())

    @property
    def classes(self):
        return self.embedding_size

    def forward(self, x, *args):
        shape = getattr(x, 'shape', None)
        if shape is not None:
            if len(shape) != 4:
                raise ValueError("FaceEmbedding expects an NCHW batch, got shape %s" % (shape,))
            if shape[2] != self.input_size or shape[3] != self.input_size:
                raise ValueError("FaceEmbedding was built for %dx%d face crops (the GDC kernel is %dx%d) "
                                 "but got %dx%d; resize the crops or build it with input_size=%d"
                                 % (self.input_size, self.input_size, self.map_size, self.map_size,
                                    shape[2], shape[3], shape[2]))
        return super(FaceEmbedding, self).forward(x, *args)

    def hybrid_forward(self, F, x):
        return self.embed(self.features(x))


def get_arcface(backbone='asymmnet_large_1.0', embedding_size=512, feature_stride=16, expand=512,
                input_size=112, norm_layer=None, norm_kwargs=None, classes=None, **kwargs):
    """Build the face embedding net on registered ``backbone`` (uninitialised).

    ``classes`` is accepted for registry uniformity and ignored (identities live in the margin head,
    :class:`downstream.face.ArcMarginHead`, not in the embedding network).
    """
    from .backbone import build_backbone
    base = build_backbone(backbone, norm_layer=norm_layer, norm_kwargs=norm_kwargs, **kwargs)
    net = FaceEmbedding(base, embedding_size=embedding_size, feature_stride=feature_stride,
                        expand=expand, input_size=input_size, norm_layer=norm_layer,
                        norm_kwargs=norm_kwargs)
    return net


MEAN, SCALE = 127.5, 1.0 / 128  # insightface's input normalisation


def preprocess(img, size=112):
    """HxWx3 RGB uint8 (or HxW gray) -> (3, size, size) float32, insightface normalisation."""
    import cv2
    img = np.asarray(img)
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    if img.shape[0] != size or img.shape[1] != size:
        img = cv2.resize(img, (size, size), interpolation=cv2.INTER_LINEAR)
    return ((img.astype('float32') - MEAN) * SCALE).transpose(2, 0, 1)


def load_face(path, size=112):
    import cv2
    img = cv2.imread(path, cv2.IMREAD_COLOR)
    if img is None:
        raise FileNotFoundError("cannot read image %s (missing or not an image)" % path)
    return preprocess(img[:, :, ::-1], size)


def embed_images(net, images, batch_size=32, flip=True, ctx=None, size=None):
    """L2-normalised embeddings of ``images`` (paths or (3, H, W) arrays), inference mode.

    ``flip``: add the mirror image's embedding before normalising (insightface's test-time habit).
    """
    import mxnet as mx
    ctx = ctx or mx.cpu()
    size = size or getattr(net, 'input_size', 112)
    out = []
    for i in range(0, len(images), batch_size):
        chunk = images[i:i + batch_size]
        arr = np.stack([load_face(p, size) if isinstance(p, str) else np.asarray(p, 'float32')
                        for p in chunk])
        x = mx.nd.array(arr, ctx=ctx)
        with mx.autograd.predict_mode():
            e = net(x)
            if flip:
                e = e + net(x.flip(axis=3))
        out.append(e.asnumpy())
    emb = np.concatenate(out, axis=0).astype('float64')
    return emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
