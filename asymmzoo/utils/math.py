"""Small arithmetic helpers shared by the model tables."""
import math

__all__ = ['make_divisible']


def make_divisible(x, divisor=8):
    """Round ``x`` up to a multiple of ``divisor`` (AsymmNet / GluonCV MobileNetV3 rule)."""
    return int(math.ceil(x * 1.0 / divisor) * divisor)
