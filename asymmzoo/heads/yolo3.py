"""YOLOv3 on the zoo's backbones, built from GluonCV's own :class:`gluoncv.model_zoo.yolo.yolo3.YOLOV3`.

The three stages are the backbone's contract slices (``backbone.stages()``: up to the stride-8 tap,
to the stride-16 tap, to the stride-32 pre-pool map) and their channel counts come from
``backbone.stage_channels()``; no slice indices are hard-coded here. Anchors, strides and the
detection-block widths (512, 256, 128) are GluonCV's (``yolo3_mobilenet1_0_voc``), which is what the
AsymmNet paper's Table 10 used (its parameter column is reproduced by its k-weights-per-kxk counter).

Names: ``yolo3_{backbone}_voc`` (20 VOC classes), ``yolo3_{backbone}_coco`` (80), and
``yolo3_{backbone}_custom`` (``classes=[...]`` or a count), for every ``asymmnet_*`` / ``mobilenetv3_*``
backbone and their ``_acb`` forms.

Outputs (GluonCV's contract):
* inference: ``ids (B, post_nms, 1)``, ``scores (B, post_nms, 1)``, ``bboxes (B, post_nms, 4)``
  (corner format, input pixels; padded with -1);
* training (``autograd.record()`` + the 6 targets of ``YOLO3DefaultTrainTransform``): the four losses
  ``obj, center, scale, cls``, each of shape ``(B,)``.
A hybridized YOLOV3 caches one of these graphs: call ``net.hybridize()`` again when switching.
"""
from mxnet.gluon.nn import BatchNorm
from gluoncv.model_zoo.yolo.yolo3 import YOLOV3 as _GluonYOLOV3

from .backbone import build_backbone, backbone_stages

__all__ = ['YOLOV3', 'get_yolo3', 'ANCHORS', 'STRIDES', 'FILTERS', 'DATASET_CLASSES']

ANCHORS = [[10, 13, 16, 30, 33, 23], [30, 61, 62, 45, 59, 119], [116, 90, 156, 198, 373, 326]]
STRIDES = [8, 16, 32]
FILTERS = [512, 256, 128]


def DATASET_CLASSES(dataset):
    """Class names of 'voc' / 'coco' (GluonCV's dataset classes; no data is touched)."""
    from gluoncv.data import VOCDetection, COCODetection
    table = {'voc': VOCDetection.CLASSES, 'coco': COCODetection.CLASSES}
    if dataset not in table:
        raise ValueError("dataset must be one of %s (or use the _custom builder with classes=[...]), "
                         "got %r" % (sorted(table), dataset))
    return list(table[dataset])


def _class_names(classes):
    if classes is None:
        raise ValueError("the _custom YOLOv3 builders need classes=[names] (or a number of classes)")
    if isinstance(classes, int):
        if classes < 1:
            raise ValueError("classes must be >= 1, got %d" % classes)
        return ['class%d' % i for i in range(classes)]
    classes = [str(c) for c in classes]
    if not classes:
        raise ValueError("classes is empty: give at least one class name")
    if len(set(classes)) != len(classes):
        raise ValueError("duplicate class names in %s" % classes)
    return classes


class YOLOV3(_GluonYOLOV3):
    """GluonCV's YOLOV3, unchanged in behaviour, remembering its backbone; ``reset_class`` also works
    before the network is initialised and accepts a number of classes."""


    def deploy_check_outputs(self, x):
        """What :func:`asymmzoo.deploy` compares: every raw detection (NMS off), because NMS turns a
        1e-6 difference between two near-equal boxes into a different ordering."""
        saved = (self.nms_thresh, self.nms_topk, self.post_nms)
        self.set_nms(nms_thresh=-1, nms_topk=-1, post_nms=-1)
        try:
            return self(x)
        finally:
            self.set_nms(*saved)

    def reset_class(self, classes, reuse_weights=None):
        classes = _class_names(classes)
        preds = [o.prediction for o in self.yolo_outputs]
        if any(p.weight._data is None and p.weight._deferred_init for p in preds):
            # initialised but not materialised yet: one small forward pass gives the weights shapes
            import mxnet as mx
            ctx = preds[0].weight._deferred_init[1][0]
            with mx.autograd.predict_mode():
                self(mx.nd.zeros((1, 3, 128, 128), ctx=ctx))
        if all(p.weight._data is not None for p in preds):
            return super(YOLOV3, self).reset_class(classes, reuse_weights=reuse_weights)
        if reuse_weights:
            raise ValueError("reuse_weights needs an initialised network (there are no weights yet)")
        # uninitialised: swap the class count and the predictors, nothing to copy
        from mxnet.gluon import nn
        from gluoncv.model_zoo.yolo.yolo_target import YOLOV3TargetMerger
        self._clear_cached_op()
        self._classes = classes
        self._target_generator = YOLOV3TargetMerger(len(classes), self._ignore_iou_thresh)
        for out in self.yolo_outputs:
            out._clear_cached_op()
            out._classes = len(classes)
            out._num_pred = 1 + 4 + len(classes)
            old = out.prediction
            out.prediction = nn.Conv2D(out._num_pred * out._num_anchors, kernel_size=1, padding=0,
                                       strides=1, in_channels=old.weight.shape[1] if old.weight.shape else 0,
                                       prefix=old.prefix)
        return None


class _HeadNorm(object):
    """GluonCV's head cells call ``norm_layer(epsilon=1e-5, momentum=0.9, **norm_kwargs)``, which
    breaks on a user ``momentum`` / ``epsilon``: let the user's kwargs win over those defaults."""

    def __init__(self, norm_layer, norm_kwargs):
        self.norm_layer, self.norm_kwargs = norm_layer, dict(norm_kwargs)

    def __call__(self, **kwargs):
        kwargs.update(self.norm_kwargs)
        return self.norm_layer(**kwargs)


def _head_norm(norm_layer, norm_kwargs):
    norm_layer = norm_layer or BatchNorm
    if norm_kwargs and ('momentum' in norm_kwargs or 'epsilon' in norm_kwargs):
        return _HeadNorm(norm_layer, norm_kwargs), None
    return norm_layer, norm_kwargs


def get_yolo3(backbone, classes=None, dataset='custom', filters=FILTERS, anchors=ANCHORS,
              strides=STRIDES, norm_layer=None, norm_kwargs=None, pretrained_base=False,
              transfer=None, backbone_kwargs=None, **kwargs):
    """YOLOv3 on a registered zoo backbone.

    Parameters
    ----------
    backbone : str, a registered backbone name (``asymmnet_large_1.0``, ``asymmnet_small_0.35_acb``...)
    classes : list of str, or int; default: the ``dataset``'s classes ('voc' / 'coco')
    dataset : 'voc' | 'coco' | 'custom'
    filters, anchors, strides : GluonCV's YOLOv3 settings (defaults: GluonCV's)
    norm_layer, norm_kwargs : reach every BN, backbone and head
    pretrained_base : False, or a path to / True for the store's backbone weights
    transfer : None or 'voc' / 'coco': start from ``yolo3_{backbone}_{transfer}`` in the local store
        and keep the weights of the classes both share (GluonCV's ``transfer``)
    kwargs : YOLOV3 options (``alloc_size``, ``nms_thresh``, ``nms_topk``, ``post_nms``,
        ``ignore_iou_thresh``)
    """
    if classes is None:
        classes = DATASET_CLASSES(dataset) if dataset != 'custom' else None
    classes = _class_names(classes)
    if transfer is not None:
        from ..registry import get_model
        net = get_model('yolo3_%s_%s' % (backbone, transfer), pretrained=True, norm_layer=norm_layer,
                        norm_kwargs=norm_kwargs, backbone_kwargs=backbone_kwargs, **kwargs)
        reuse = [c for c in classes if c in net.classes]
        net.reset_class(classes, reuse_weights=reuse or None)
        return net
    if len(anchors) != len(strides) or len(filters) != len(strides):
        raise ValueError("anchors (%d), filters (%d) and strides (%d) need one entry per stage"
                         % (len(anchors), len(filters), len(strides)))
    base = build_backbone(backbone, norm_layer=norm_layer, norm_kwargs=norm_kwargs,
                          backbone_kwargs=backbone_kwargs,
                          pretrained=pretrained_base)
    stages = backbone_stages(base, strides)
    head_norm, head_norm_kwargs = _head_norm(norm_layer, norm_kwargs)
    net = YOLOV3(stages, list(filters), anchors, list(strides), classes=classes,
                 norm_layer=head_norm, norm_kwargs=head_norm_kwargs, **kwargs)
    net.backbone_name = backbone
    net.stage_channels = base.stage_channels(tuple(strides))
    net.dataset = dataset
    return net
