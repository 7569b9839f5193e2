"""The AsymmNet paper's parameter counter, to check our heads against its Tables 9 and 10.

The paper's Params columns came from a counter that counts each k x k convolution kernel as k
weights (``out * in/groups * k`` instead of ``* k * k``; see docs/asymmnet.md, "Counts against the
paper (Table 5)"). Applied to our heads it reproduces Table 10 (YOLOv3, VOC) to the printed digit:
AsymmNet-s 9.33M, MBV3-s 9.16M, AsymmNet-L 11.97M, MBV3-L 11.39M, and GluonCV's MobileNetV1 YOLOv3
11.83M. Table 9 (pose) is GluonCV's MobilePose head (``mobile_pose_*``) at a 256x256 input. Use
:func:`asymmzoo.utils.count_params` for the true count.
"""
import numpy as np

__all__ = ['paper_count_params']


def paper_count_params(net, input_shape=None):
    """Trainable parameters with every 4-d (conv) weight counted as ``shape[0] * shape[1] * shape[2]``."""
    from asymmzoo.utils.counting import _ensure_shapes
    params = _ensure_shapes(net, input_shape)
    total = 0
    for p in params.values():
        if p.grad_req == 'null':
            continue
        s = p.shape
        total += int(s[0] * s[1] * s[2]) if len(s) == 4 else int(np.prod(s))
    return total
