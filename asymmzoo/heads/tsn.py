"""Temporal Segment Network (Wang et al., ECCV 2016) on the zoo's backbones.

``tsn_{backbone}_{hmdb51,ucf101,kinetics400}``: every frame of every segment goes through the
backbone's ``features`` and ``head`` (global average pool, the 1x1 conv to 1280 and h-swish, i.e.
the backbone contract up to the classifier), the per-frame 1280-d features of one video are averaged
over its ``num_segments * num_crop`` frames (GluonCV's :class:`gluoncv.nn.block.Consensus`), then
dropout and a fresh linear classifier. Averaging features before a linear classifier equals
averaging the per-frame class scores (the TSN "average consensus").

Input: ``(N * num_segments * num_crop, 3, H, W)`` with the frames of one video contiguous (what
:class:`downstream.action.VideoClsCV2` yields, stacked by a DataLoader and reshaped); output
``(N, classes)``. Frames are 224x224 in the paper; any size >= 32 works.

With the backbone's 1280-wide head kept, this reproduces the paper's Table 8 complexity column:
AsymmNet-L x1.0 215.7M MAdds per frame / 4.8M parameters (see docs/downstream-action-face.md).
"""
from mxnet import init as mx_init
from mxnet.gluon import nn
from gluoncv.nn.block import Consensus

__all__ = ['TSN', 'get_tsn', 'DATASET_CLASSES']

DATASET_CLASSES = {'hmdb51': 51, 'ucf101': 101, 'kinetics400': 400}


class TSN(nn.HybridBlock):
    """TSN head on a contract backbone (an :class:`asymmzoo.models.Backbone`).

    Parameters
    ----------
    base : Backbone whose ``features`` / ``head`` are reused (its classifier is dropped)
    classes : int, number of action classes
    num_segments : int, frames sampled per video (one per segment)
    num_crop : int, crops per frame at test time (1 for training; 3 or 10 for multi-crop evaluation:
        their scores are averaged with the segments)
    dropout : float, dropout before the classifier (TSN uses heavy dropout: 0.5 here, as GluonCV)
    init_std : float, std of the classifier's normal initialiser (GluonCV: 0.01)
    feat_ext : bool, return the (N, feat_dim) consensus features instead of class scores
    """


    def __init__(self, base, classes, num_segments=3, num_crop=1, dropout=0.5, init_std=0.01,
                 feat_ext=False, **kwargs):
        super(TSN, self).__init__(**kwargs)
        if int(num_segments) < 1 or int(num_crop) < 1:
            raise ValueError("num_segments and num_crop must be >= 1, got %r, %r"
                             % (num_segments, num_crop))
        self.num_segments, self.num_crop = int(num_segments), int(num_crop)
        self.feat_ext = bool(feat_ext)
        self._classes = int(classes)
        self.backbone_name = getattr(base, 'name_in_zoo', type(base).__name__)
        self.feat_dim = base.classifier_in_channels
        self.in_channels = getattr(base, 'in_channels', 3)
        self.frames_per_video = self.num_segments * self.num_crop
        self.rows_per_sample = self.frames_per_video  # input rows of one video (`asymmzoo summary`)
        self.min_input_shape = (2 * self.frames_per_video, self.in_channels, 64, 64)
        self.default_input_shape = (self.frames_per_video, self.in_channels, 224, 224)
        with self.name_scope():
            self.features = base.features
            self.head = base.head
            self.consensus = Consensus(self.feat_dim, self.frames_per_video)
            self.drop = nn.Dropout(dropout) if dropout else None
            self.output = nn.Dense(self._classes, in_units=self.feat_dim,
                                   weight_initializer=mx_init.Normal(sigma=init_std))

    @property
    def classes(self):
        return self._classes

    def forward(self, x, *args):
        shape = getattr(x, 'shape', None)
        if shape is not None:  # NDArray (also when hybridized): check before MXNet's reshape does
            if len(shape) != 4:
                raise ValueError("TSN expects frames as a 4-d (N*num_segments*num_crop, C, H, W) batch, "
                                 "got shape %s; reshape a (N, T, C, H, W) clip batch with "
                                 "x.reshape((-1,) + x.shape[2:])" % (shape,))
            if shape[0] % self.frames_per_video:
                raise ValueError(
                    "got %d frames, not a multiple of num_segments*num_crop = %d*%d = %d; feed the "
                    "frames of whole videos (N*%d rows), or build the model with num_segments=%d"
                    % (shape[0], self.num_segments, self.num_crop, self.frames_per_video,
                       self.frames_per_video, shape[0]))
        return super(TSN, self).forward(x, *args)

    def hybrid_forward(self, F, x):
        x = self.head(self.features(x))      # (N*T, feat_dim, 1, 1) after pool / conv / h-swish
        x = F.flatten(x)
        x = self.consensus(x)                # (N, feat_dim): average over segments and crops
        if self.feat_ext:
            return x
        if self.drop is not None:
            x = self.drop(x)
        return self.output(x)


def _freeze_bn_stats(net, skip_first):
    """``use_global_stats`` on the BatchNorm layers of ``net`` (all, or all but the first): their
    running mean / var stay as loaded and are used in training too (GluonCV's partial BN / frozen BN).
    Returns the number of layers changed."""
    bns, stack = [], [net]
    while stack:
        b = stack.pop(0)
        if isinstance(b, nn.BatchNorm):   # SyncBatchNorm too
            bns.append(b)
        stack = list(b._children.values()) + stack
    for b in bns[1 if skip_first else 0:]:
        b._kwargs['use_global_stats'] = True
    return len(bns) - (1 if skip_first and bns else 0)


def get_tsn(backbone='asymmnet_large_1.0', classes=None, dataset='hmdb51', num_segments=3,
            num_crop=1, dropout=0.5, init_std=0.01, norm_layer=None, norm_kwargs=None, nclass=None,
            pretrained_base=False, use_tsn=True, partial_bn=False, bn_frozen=False, feat_ext=False,
            ctx=None, backbone_kwargs=None, **kwargs):
    """Build ``TSN`` on the registered backbone ``backbone``, initialised on ``ctx``, with the
    signature of GluonCV's action-recognition builders (so GluonCV's ``train_recognizer.py`` runs it).

    classes / nclass : number of classes (``nclass`` is GluonCV's name); default: the dataset's
        (hmdb51: 51, ucf101: 101, kinetics400: 400)
    pretrained_base : False, True (the store's weights of ``backbone``) or a path: the backbone starts
        from them, the classifier from N(0, init_std)
    use_tsn : accepted for GluonCV's scripts; every ``tsn_*`` model is a TSN (segment consensus), so
        ``use_tsn=False`` is refused
    partial_bn : every BatchNorm but the first keeps its running statistics in training (TSN's
        partial BN); bn_frozen : all of them do
    feat_ext : the network returns the (N, 1280) consensus features instead of class scores
    ctx : one device or a list (GluonCV's builders return the network initialised there)

    The backbone's own dropout is switched off (TSN's ``dropout`` sits before the classifier).
    """
    import mxnet as mx
    from .backbone import build_backbone
    if nclass is not None:
        if classes is not None and classes != nclass:
            raise ValueError("classes=%r and nclass=%r disagree: pass one of them" % (classes, nclass))
        classes = nclass
    if not use_tsn:
        raise ValueError("tsn_* models are Temporal Segment Networks (features averaged over the "
                         "segments); use_tsn=False has no other model to give: drop it")
    if classes is None:
        if dataset not in DATASET_CLASSES:
            raise ValueError("unknown dataset %r; pass classes= or one of %s"
                             % (dataset, sorted(DATASET_CLASSES)))
        classes = DATASET_CLASSES[dataset]
    ctx = ctx if ctx is not None else mx.cpu()
    base = build_backbone(backbone, norm_layer=norm_layer, norm_kwargs=norm_kwargs, dropout=0,
                          classes=classes, pretrained=pretrained_base, ctx=ctx,
                          backbone_kwargs=backbone_kwargs, **kwargs)
    for attr in ('features', 'head', 'classifier_in_channels'):
        if not hasattr(base, attr):
            raise TypeError("backbone %r has no %r: TSN needs the classifier contract "
                            "(features / head / output)" % (backbone, attr))
    net = TSN(base, classes, num_segments=num_segments, num_crop=num_crop, dropout=dropout,
              init_std=init_std, feat_ext=feat_ext)
    net.dataset = dataset
    # initialised on ctx, as GluonCV's action builders return it: what pretrained_base loaded stays
    for p in net.collect_params().values():
        if p._data is None and p._deferred_init == ():
            p.initialize(default_init=mx.init.MSRAPrelu(), ctx=ctx)
    net.collect_params().reset_ctx(ctx)
    if partial_bn or bn_frozen:
        _freeze_bn_stats(net, skip_first=not bn_frozen)
    return net
