"""SimplePose / MobilePose human pose estimation on the zoo's backbones."""
from .simple_pose import SimplePose, get_simple_pose, get_mobile_pose
