"""CARL: frame-wise video representations by sequence contrastive learning
(Chen, Wei, Li, Cai, CVPR 2022)."""

from tfaction.models.carl.model import CARL
from tfaction.models.carl.model import build_frame_trunk
from tfaction.models.carl.whole_videos import embed_whole_videos

__all__ = ["CARL", "build_frame_trunk", "embed_whole_videos"]
