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

    def forward_features(self, x):
        """The stride-32 feature map before pooling, shape (N, num_features, H/32, W/32)."""
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
