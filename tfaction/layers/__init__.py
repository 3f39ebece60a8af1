"""Reusable Keras 3 layers (backend-agnostic, `keras.ops`), one per module."""

from tfaction.layers.action_transformer_head import ActionTransformerHead
from tfaction.layers.action_transformer_unit import ActionTransformerUnit
from tfaction.layers.actor_critic import ActorCritic
from tfaction.layers.box_axis import BoxAxis
from tfaction.layers.centre_frame import CentreFrame
from tfaction.layers.channel_affine import ChannelAffine
from tfaction.layers.classification_head import ClassificationHead
from tfaction.layers.conv_transformer_backbone import ConvTransformerBackbone
from tfaction.layers.conv_transformer_block import ConvTransformerBlock
from tfaction.layers.differentiable_patch_crop import DifferentiablePatchCrop
from tfaction.layers.frame_resize import FrameResize
from tfaction.layers.frozen_batch_normalization import FrozenBatchNormalization
from tfaction.layers.fused_batch_normalization import FusedBatchNormalization
from tfaction.layers.high_res_query import HighResQuery
from tfaction.layers.identity_neck import IdentityNeck
from tfaction.layers.interpolated_position_encoding import (
    InterpolatedPositionEncoding)
from tfaction.layers.l2_normalization import L2Normalization
from tfaction.layers.layer_scale import LayerScale
from tfaction.layers.local_self_attention import LocalSelfAttention
from tfaction.layers.location_embedding import LocationEmbedding
from tfaction.layers.low_res_query import LowResQuery
from tfaction.layers.masked_conv1d import MaskedConv1D
from tfaction.layers.netvlad import NetVLAD
from tfaction.layers.policy_stn import PolicySTN
from tfaction.layers.pooling_classifier import PoolingClassifier
from tfaction.layers.positionwise_dense import PositionwiseDense
from tfaction.layers.pre_ln_transformer_encoder import PreLNTransformerEncoder
from tfaction.layers.pre_ln_transformer_layer import PreLNTransformerLayer
from tfaction.layers.projection_head import ProjectionHead
from tfaction.layers.proposal_generator import ProposalGenerator
from tfaction.layers.recurrent_classifier import RecurrentClassifier
from tfaction.layers.region_proposal_head import RegionProposalHead
from tfaction.layers.regression_head import RegressionHead
from tfaction.layers.roi_pool import RoIPool
from tfaction.layers.scale import Scale
from tfaction.layers.sinusoid_position_encoding import SinusoidPositionEncoding
from tfaction.layers.spatio_temporal_roi_pool import SpatioTemporalRoIPool
from tfaction.layers.unit3d import Unit3D

__all__ = [
    "ActionTransformerHead",
    "ActionTransformerUnit",
    "ActorCritic",
    "BoxAxis",
    "CentreFrame",
    "ChannelAffine",
    "ClassificationHead",
    "ConvTransformerBackbone",
    "ConvTransformerBlock",
    "DifferentiablePatchCrop",
    "FrameResize",
    "FrozenBatchNormalization",
    "FusedBatchNormalization",
    "HighResQuery",
    "IdentityNeck",
    "InterpolatedPositionEncoding",
    "L2Normalization",
    "LayerScale",
    "LocalSelfAttention",
    "LocationEmbedding",
    "LowResQuery",
    "MaskedConv1D",
    "NetVLAD",
    "PolicySTN",
    "PoolingClassifier",
    "PositionwiseDense",
    "PreLNTransformerEncoder",
    "PreLNTransformerLayer",
    "ProjectionHead",
    "ProposalGenerator",
    "RecurrentClassifier",
    "RegionProposalHead",
    "RegressionHead",
    "RoIPool",
    "Scale",
    "SinusoidPositionEncoding",
    "SpatioTemporalRoIPool",
    "Unit3D",
]
