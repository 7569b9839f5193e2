"""SimplePose / MobilePose pipeline: COCO keypoint data, ``train_simple_pose.py``. The models are
:mod:`asymmzoo.heads.pose`."""
from asymmzoo.heads.pose import SimplePose, get_simple_pose, get_mobile_pose  # noqa: F401
