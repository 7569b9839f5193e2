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
    """

    zoo_test = False  # output is per video, not per input row: covered by tests/test_action.py

    def __init__(self, base, classes, num_segments=3, num_crop=1, dropout=0.5, init_std=0.01,
                 **kwargs):
        super(TSN, self).__init__(**kwargs)
        if int(num_segments) < 1 or int(num_crop) < 1:
            raise ValueError("num_segments and num_crop must be >= 1, got %r, %r"
                             % (num_segments, num_crop))
        self.num_segments, self.num_crop = int(num_segments), int(num_crop)
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
        if self.drop is not None:
            x = self.drop(x)
        return self.output(x)


def get_tsn(backbone='asymmnet_large_1.0', classes=None, dataset='hmdb51', num_segments=3,
            num_crop=1, dropout=0.5, init_std=0.01, norm_layer=None, norm_kwargs=None, **kwargs):
    """Build ``TSN`` on the registered backbone ``backbone`` (uninitialised, GluonCV habit).

    ``classes`` defaults to the dataset's class count (hmdb51: 51, ucf101: 101, kinetics400: 400).
    The backbone's own dropout is switched off (TSN's ``dropout`` sits before the classifier).
    """
    from .._backbone import build_backbone
    if classes is None:
        if dataset not in DATASET_CLASSES:
            raise ValueError("unknown dataset %r; pass classes= or one of %s"
                             % (dataset, sorted(DATASET_CLASSES)))
        classes = DATASET_CLASSES[dataset]
    base = build_backbone(backbone, norm_layer=norm_layer, norm_kwargs=norm_kwargs, dropout=0,
                          classes=classes, **kwargs)
    for attr in ('features', 'head', 'classifier_in_channels'):
        if not hasattr(base, attr):
            raise TypeError("backbone %r has no %r: TSN needs the classifier contract "
                            "(features / head / output)" % (backbone, attr))
    net = TSN(base, classes, num_segments=num_segments, num_crop=num_crop, dropout=dropout,
              init_std=init_std)
    net.dataset = dataset
    return net
