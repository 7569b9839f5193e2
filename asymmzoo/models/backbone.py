"""The backbone contract every classification model in the zoo follows.

A backbone has ``features`` (a HybridSequential from the input to the stride-32 map before pooling),
``head`` (pooling and whatever sits between it and the classifier) and ``output`` (the classifier).
It reports where its stride-8/16/32 outputs are: ``feature_taps`` lists :class:`FeatureTap` entries
``(stride, end, channels)`` meaning "``features[:end]`` produces a map of that stride with that many
channels"; ``stages()`` returns the chainable slices between them. Heads (YOLOv3, SimplePose, TSN,
ArcFace) read these instead of hard-coding slice indices.
"""
from collections import namedtuple

from mxnet.gluon import nn

__all__ = ['FeatureTap', 'Backbone']

FeatureTap = namedtuple('FeatureTap', ['stride', 'end', 'channels'])


class Backbone(nn.HybridBlock):
    """Base class: subclasses fill ``features``, ``head``, ``output`` and ``feature_taps``."""

    feature_taps = ()
    num_features = 0  # channels of the stride-32 pre-pool map
    classifier_in_channels = 0

    def hybrid_forward(self, F, x):
        return self.output(self.head(self.features(x)))

    def _check_input(self, x):
        shape = getattr(x, 'shape', None)
        if shape is None:  # a Symbol: shapes are checked by MXNet at bind time
            return
        want = getattr(self, 'in_channels', None)
        if len(shape) != 4:
            raise ValueError("%s expects a 4-d NCHW batch, got shape %s; add the batch axis with "
                             "x.expand_dims(0)" % (type(self).__name__, shape))
        if want and shape[1] != want:
            hint = (" (a grayscale image? repeat it: x.repeat(3, axis=1))" if shape[1] == 1 and want == 3
                    else "")
            raise ValueError("%s was built for %d input channels but got %d (images of %s)%s; or "
                             "build it with in_channels=%d" % (type(self).__name__, want, shape[1],
                                                               'x'.join(map(str, shape[1:])), hint,
                                                               shape[1]))

    def forward(self, x, *args):
        self._check_input(x)
        return super(Backbone, self).forward(x, *args)

    def forward_features(self, x):
        """The stride-32 feature map before pooling, shape (N, num_features, H/32, W/32)."""
        self._check_input(x)
        return self.features(x)

    def tap(self, stride):
        for t in self.feature_taps:
            if t.stride == stride:
                return t
        raise ValueError("%s has no stride-%d tap; available: %s"
                         % (type(self).__name__, stride, [t.stride for t in self.feature_taps]))

    def stages(self, strides=(8, 16, 32)):
        """Chainable ``features`` slices ending at the given strides (sharing this net's blocks)."""
        out, start = [], 0
        for s in strides:
            end = self.tap(s).end
            stage = nn.HybridSequential(prefix='')
            for blk in self.features[start:end]:
                stage.add(blk)
            out.append(stage)
            start = end
        return out

    def stage_channels(self, strides=(8, 16, 32)):
        return [self.tap(s).channels for s in strides]

    @property
    def classes(self):
        return self._classes

    def reset_classifier(self, classes):
        """Replace the classifier by a fresh (uninitialised) one for ``classes`` outputs."""
        import numbers
        if isinstance(classes, bool) or not isinstance(classes, numbers.Integral) or classes < 1:
            raise ValueError("reset_classifier: classes must be a positive integer (the number of "
                             "classes), got %r" % (classes,))
        classes = int(classes)
        self._classes = classes
        with self.name_scope():
            self.output = self._make_output(classes)
        return self.output

    def _make_output(self, classes):
        out = nn.HybridSequential(prefix='output_')
        with out.name_scope():
            out.add(nn.Conv2D(classes, 1, use_bias=True, in_channels=self.classifier_in_channels),
                    nn.Flatten())
        return out
