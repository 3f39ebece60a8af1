"""Trunks: per-frame 2-D (VGG16 for ActionVLAD; ResNet-50 in the torchvision
v1.5 or keras.applications v1 layout for CARL and AdaFocus; MobileNet-V2 in
torchvision's layout for AdaFocus' glance; a small CPU-sized one) and 3-D
(I3D, Inflated Inception-v1, for the Video Action Transformer)."""

from tfaction.models.backbones.i3d import InceptionI3D
from tfaction.models.backbones.i3d import build_i3d_head
from tfaction.models.backbones.i3d import build_i3d_trunk
from tfaction.models.backbones.mobilenet_v2 import MobileNetV2
from tfaction.models.backbones.mobilenet_v2 import build_mobilenet_v2
from tfaction.models.backbones.resnet50 import ResNet50
from tfaction.models.backbones.resnet50 import build_resnet50
from tfaction.models.backbones.small_convnet import build_small_convnet
from tfaction.models.backbones.vgg16 import adapt_first_conv_kernel
from tfaction.models.backbones.vgg16 import build_vgg16_trunk
from tfaction.models.backbones.vgg16 import conv5_layer_names
from tfaction.models.backbones.vgg16 import conv_layer_names
from tfaction.models.backbones.vgg16 import load_keras_vgg16_weights
from tfaction.models.backbones.vgg16 import load_slim_vgg16_checkpoint

__all__ = [
    "InceptionI3D",
    "MobileNetV2",
    "ResNet50",
    "adapt_first_conv_kernel",
    "build_i3d_head",
    "build_i3d_trunk",
    "build_mobilenet_v2",
    "build_resnet50",
    "build_small_convnet",
    "build_vgg16_trunk",
    "conv5_layer_names",
    "conv_layer_names",
    "load_keras_vgg16_weights",
    "load_slim_vgg16_checkpoint",
]
