"""Per-frame 2-D conv trunks: VGG16 (ActionVLAD) and a small CPU-sized one."""

from tfaction.models.backbones.small_convnet import build_small_convnet
from tfaction.models.backbones.vgg16 import adapt_first_conv_kernel
from tfaction.models.backbones.vgg16 import build_vgg16_trunk
from tfaction.models.backbones.vgg16 import conv5_layer_names
from tfaction.models.backbones.vgg16 import conv_layer_names
from tfaction.models.backbones.vgg16 import load_keras_vgg16_weights
from tfaction.models.backbones.vgg16 import load_slim_vgg16_checkpoint

__all__ = [
    "adapt_first_conv_kernel",
    "build_small_convnet",
    "build_vgg16_trunk",
    "conv5_layer_names",
    "conv_layer_names",
    "load_keras_vgg16_weights",
    "load_slim_vgg16_checkpoint",
]
