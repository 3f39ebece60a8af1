"""AdaFocus (ICCV 2021) and AdaFocus V2 (CVPR 2022): efficient video
recognition that glances at every frame cheaply and focuses a large network
on one learned patch per frame."""

from tfaction.models.adafocus.v1 import AdaFocusV1
from tfaction.models.adafocus.v2 import AdaFocusV2

__all__ = ["AdaFocusV1", "AdaFocusV2"]
