"""The Video Action Transformer family (Girdhar et al., CVPR 2019)."""

from tfaction.models.action_transformer.box_head import (
    ActionTransformerBoxHead,
)
from tfaction.models.action_transformer.model import ActionTransformer

__all__ = ["ActionTransformer", "ActionTransformerBoxHead"]
