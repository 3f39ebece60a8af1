"""CARL: per-frame embeddings from a 2-D trunk and a temporal transformer.

Every frame of a sequence goes through a 2-D trunk (frames folded into the
batch axis, `BoxAxis` merge / split: one trunk pass on all `B * T`
frames), is max-pooled over space, and the embedder maps the frame features
to a 128-d per-frame embedding with a pre-LN transformer over time (Chen,
Wei, Li, Cai, CVPR 2022):

1. trunk: `"resnet50"` (torchvision ResNet-50 v1.5 up to layer4; conv1
   ... layer3 frozen with frozen batch-norm statistics, layer4 trained,
   `[N, 7, 7, 2048]` at 224 x 224; `trunk_variant="v1"`: keras.applications'
   ResNet-50 v1 for its ImageNet weights, a different network with other
   numbers) or `"small"` (a tiny conv stack for CPU-sized recipes and
   tests);
2. spatial max pool;
3. `len(fc_units)` x [Dropout -> Dense -> BatchNorm -> ReLU] (512 units);
4. Dense to `hidden_size` (256) -> `InterpolatedPositionEncoding` ->
   Dropout;
5. `PreLNTransformerEncoder` (`num_layers`, 8 heads, FFN 1024, identical
   initial layers) with the frame mask as key-padding mask;
6. Dense to `embedding_size` (128): the embedding `e`.

Outputs: `embeddings` = `e / ||e||` (CARL evaluates on L2-normalised
embeddings) and `projections` = `ProjectionHead(e)` (Dense -> BN -> ReLU ->
Dense -> L2-normalise), which only the sequence contrastive loss uses.

Layer names: `fold_frames`, `trunk`, `spatial_max_pool`, `unfold_frames`,
`fc{i}_dropout`, `fc{i}`, `fc{i}_bn`, `fc{i}_relu` (i = 1, 2, ...),
`frame_projection`, `position_encoding`, `position_dropout`,
`transformer`, `embedding`, `embedding_normalization` (or
`embedding_output` without normalisation), `projection_head`.

Correspondence with the authors' PyTorch module names (for weight
conversion; `Dense` kernels are the transposed `Linear` weights):

* `trunk` (torchvision names, `.` -> `_`): `backbone.0`, `.1` (conv1,
  bn1), `backbone.4`, `.5`, `.6` (layer1 ... layer3, `nn.Sequential`
  indices) and `res_finetune` (layer4);
* `fc1`, `fc1_bn`, `fc2`, `fc2_bn`: `embed.fc_layers.1`, `.2`, `.5`, `.6`;
* `frame_projection`: `embed.video_emb`;
* `transformer/layer_{i}/query`, `key`, `value`, `attention_output`:
  `embed.video_encoder.enc_layers.{i}.self_att.linear_Q2d`, `linear_K2d`,
  `linear_V2d`, `linear_d2Q`;
* `transformer/layer_{i}/attention_norm`, `ffn_norm`:
  `...enc_layers.{i}.res_layer0.norm`, `res_layer1.norm`;
* `transformer/layer_{i}/ffn_inner`, `ffn_output`:
  `...enc_layers.{i}.feed_forward.fc1`, `fc2`;
* `embedding`: `embed.embedding_layer`;
* `projection_head/hidden`, `batch_norm`, `output`: `ssl_projection.net.0`,
  `.1`, `.3`.
"""

import keras

from tfaction import errors
from tfaction.layers import torch_initializers
from tfaction.layers.box_axis import BoxAxis
from tfaction.layers.interpolated_position_encoding import (
    InterpolatedPositionEncoding)
from tfaction.layers.l2_normalization import L2Normalization
from tfaction.layers.pre_ln_transformer_encoder import PreLNTransformerEncoder
from tfaction.layers.projection_head import ProjectionHead
from tfaction.models.backbones import small_convnet

TRUNKS = ("resnet50", "small")
# ResNet-50 variants (`tfaction.models.backbones.resnet50.VARIANTS`):
# torchvision / BYOL weights, keras.applications weights.
TRUNK_VARIANTS = ("v1.5", "v1")
BN_MOMENTUM = 0.9  # PyTorch momentum 0.1
BN_EPSILON = 1e-5


def build_frame_trunk(trunk="resnet50", *, frozen_stages=3,
                      small_filters=(16, 32), trunk_variant="v1.5",
                      dtype=None, name="trunk"):
    """The per-frame trunk `[N, H, W, 3] -> [N, h, w, C]` of CARL.

    Args:
        trunk: "resnet50": torchvision-layout ResNet-50 v1.5 up to layer4
            (`tfaction.models.backbones.resnet50.build_resnet50`), with the
            stem and layer1 ... layer{frozen_stages} frozen (weights and
            batch-norm statistics) and the rest trained with batch
            statistics; `[N, 7, 7, 2048]` at 224 x 224. "small": a VGG-shaped
            conv stack (`build_small_convnet`, ReLU output) of widths
            `small_filters`, stride `2 ** (len(small_filters) - 1)`.
        frozen_stages: ResNet-50 stages frozen (CARL: 3); ignored by "small".
        small_filters: block widths of the "small" trunk.
        trunk_variant: ResNet-50 "v1.5" (torchvision layout, for
            torchvision / BYOL `.pth` weights) or "v1" (keras.applications'
            layout, for its ImageNet `.h5` weights). Either takes ImageNet
            mean / std-normalised RGB: "v1" converts it to the "caffe"
            input its weights expect in the graph (`input_normalization=
            "imagenet"`). Ignored by "small".
        dtype: dtype policy of every layer.
        name: model name.

    Returns:
        A functional `keras.Model`.

    Raises:
        ConfigError: unknown trunk or variant (or bad ResNet-50 settings).

    Example:

    >>> build_frame_trunk("small", small_filters=(8, 16)).output_shape
    (None, None, None, 16)
    """
    if trunk_variant not in TRUNK_VARIANTS:
        raise errors.ConfigError(f"unknown CARL trunk_variant "
                                 f"{trunk_variant!r}; expected one of "
                                 f"{TRUNK_VARIANTS}")
    if trunk == "resnet50":
        from tfaction.models.backbones import resnet50
        return resnet50.build_resnet50(
            variant=trunk_variant, endpoint="layer4",
            frozen_stages=frozen_stages, input_normalization="imagenet",
            name=name, dtype=dtype)
    if trunk == "small":
        return small_convnet.build_small_convnet(
            3, filters=tuple(int(f) for f in small_filters), pre_relu=False,
            name=name, dtype=dtype)
    raise errors.ConfigError(f"unknown CARL trunk {trunk!r}; expected one of "
                             f"{TRUNKS}")


def _sequence_embedding(frame_layers, transformer, embedding, features,
                        mask, training=None):
    """Frame features `[B, T, C]` -> embeddings `e` `[B, T, D]` (steps 3-6)
    through `frame_layers` (fc blocks, projection, position encoding and
    its dropout, in order), the transformer and the embedding layer; one
    definition for the functional graph and `embed_frame_features`."""
    x = features
    for layer in frame_layers:
        x = layer(x, training=training)
    return embedding(transformer(x, mask=mask, training=training))




@keras.saving.register_keras_serializable(package="tfaction")
class CARL(keras.Model):
    """CARL frame-wise representation model (trunk + transformer embedder).

    A functional model `{"frames": [B, T, H, W, 3], "mask": [B, T] bool}` ->
    `{"embeddings": [B, T, embedding_size], "projections": [B, T,
    embedding_size]}`, both float32 and L2-normalised per frame (see the
    module docstring for the layers). `T` is dynamic. Frames are RGB
    normalised by the ImageNet mean and std (torchvision's convention) for
    both trunk variants: the "v1" trunk converts them in the graph to the
    "caffe" input (BGR, minus the mean, no scaling) that keras.applications'
    weights expect.

    * `embeddings`: the per-frame representation (CARL's evaluation
      output, `normalize(emb)`; unnormalised with
      `normalize_embeddings=False`).
    * `projections`: `normalize(MLPHead(emb))`, the input of the sequence
      contrastive loss in training.

    Both come from one graph, so one call serves training (use
    `projections`) and evaluation (use `embeddings`; `embedding_model()`
    gives a model without the head, e.g. for export).

    Masking: the mask is the transformer's key-padding mask, so in
    inference mode a valid frame's embedding does not depend on the padded
    frames. As in the reference, the batch statistics of every training-mode
    batch norm (the trainable trunk stage, the embedder's fc blocks and the
    projection head) are taken over all `B * T` frames, padded ones
    included, and the position encoding is added at every step. Position
    `t` of a `T = num_frames` input is `t`; any other `T` spreads the
    positions over `[0, num_frames - 1]` (`InterpolatedPositionEncoding`),
    as CARL does for evaluation chunks of whole videos.

    Args:
        num_layers: transformer layers (CARL: 2 for Pouring, 3 for
            PennAction and FineGym).
        trunk: "resnet50" or "small" (`build_frame_trunk`).
        num_frames: training sequence length (`TRAIN.NUM_FRAMES`: 240
            Pouring / FineGym, 80 PennAction).
        crop_size: (height, width) of the frames.
        frozen_stages: ResNet-50 stages frozen (3).
        small_filters: block widths of the "small" trunk.
        trunk_variant: ResNet-50 "v1.5" (torchvision / BYOL weights) or
            "v1" (keras.applications weights; `build_frame_trunk`).
        fc_units: units of the fc blocks after pooling ((512, 512)).
        hidden_size: transformer width `d_model` (256).
        num_heads: attention heads (8).
        ffn_units: transformer feed-forward units (1024).
        dropout: rate of every dropout: before each fc block, after the
            position encoding and on the transformer sublayer outputs (0.1).
        embedding_size: per-frame embedding size (128).
        projection_hidden_units: hidden units of the projection head (128).
        normalize_embeddings: L2-normalise the `embeddings` output
            (`MODEL.L2_NORMALIZE`).
        identical_layer_init: all transformer layers start from identical
            weights (as the reference's deep copies).
        **kwargs: base `keras.Model` arguments (`name`, default "carl";
            `dtype`, passed on to every sublayer).

    Raises:
        ConfigError: unknown trunk or bad sizes.

    Example:

    >>> import numpy as np
    >>> model = CARL(num_layers=1, trunk="small", num_frames=4,
    ...              crop_size=(32, 32), small_filters=(8, 16),
    ...              fc_units=(32,), hidden_size=16, num_heads=2,
    ...              ffn_units=32, embedding_size=8,
    ...              projection_hidden_units=8)
    >>> out = model({"frames": np.zeros((2, 4, 32, 32, 3), "float32"),
    ...              "mask": np.ones((2, 4), bool)})
    >>> tuple(out["embeddings"].shape), tuple(out["projections"].shape)
    ((2, 4, 8), (2, 4, 8))

    Reference:
        Chen, Wei, Li, Cai, "Frame-wise Action Representations for Long
        Videos via Sequence Contrastive Learning", CVPR 2022.
    """

    def __init__(self, num_layers=3, trunk="resnet50", num_frames=240,
                 crop_size=(224, 224), frozen_stages=3,
                 small_filters=(16, 32), trunk_variant="v1.5",
                 fc_units=(512, 512),
                 hidden_size=256, num_heads=8, ffn_units=1024, dropout=0.1,
                 embedding_size=128, projection_hidden_units=128,
                 normalize_embeddings=True, identical_layer_init=True,
                 **kwargs):
        kwargs.setdefault("name", "carl")
        # A functional model ignores `dtype`: it is set below and passed to
        # every sublayer.
        dtype = kwargs.pop("dtype", None)
        crop_size = [int(s) for s in crop_size]
        small_filters = [int(f) for f in small_filters]
        fc_units = [int(u) for u in fc_units]
        sizes = {"num_layers": num_layers, "num_frames": num_frames,
                 "hidden_size": hidden_size, "num_heads": num_heads,
                 "ffn_units": ffn_units, "embedding_size": embedding_size,
                 "projection_hidden_units": projection_hidden_units}
        for key, value in sizes.items():
            if int(value) < (0 if key == "num_layers" else 1):
                raise errors.ConfigError(f"CARL {key} must be positive, got "
                                         f"{value!r}")
        if int(hidden_size) % int(num_heads):
            raise errors.ConfigError(
                f"CARL hidden_size ({hidden_size}) must be divisible by "
                f"num_heads ({num_heads})")
        if len(crop_size) != 2 or min(crop_size) < 1 or min(
                fc_units + [1]) < 1:
            raise errors.ConfigError(
                f"CARL crop_size must be (height, width) and fc_units "
                f"positive, got {crop_size}, {fc_units}")

        # === Layers ===
        frame_trunk = build_frame_trunk(
            trunk, frozen_stages=frozen_stages, small_filters=small_filters,
            trunk_variant=trunk_variant, dtype=dtype, name="trunk")
        channels = int(frame_trunk.output_shape[-1])
        fold = BoxAxis("merge", dtype=dtype, name="fold_frames")
        unfold = BoxAxis("split", dtype=dtype, name="unfold_frames")
        pool = keras.layers.GlobalMaxPooling2D(dtype=dtype,
                                               name="spatial_max_pool")
        fc_blocks = []
        fan_in = channels
        for index, units in enumerate(fc_units, start=1):
            fc_blocks.append([
                keras.layers.Dropout(dropout, dtype=dtype,
                                     name=f"fc{index}_dropout"),
                torch_initializers.linear_layer(units, fan_in, f"fc{index}",
                                                dtype),
                keras.layers.BatchNormalization(
                    momentum=BN_MOMENTUM, epsilon=BN_EPSILON, dtype=dtype,
                    name=f"fc{index}_bn"),
                keras.layers.ReLU(dtype=dtype, name=f"fc{index}_relu")])
            fan_in = units
        frame_projection = torch_initializers.linear_layer(
            int(hidden_size), fan_in, "frame_projection", dtype)
        position_encoding = InterpolatedPositionEncoding(
            int(num_frames), dtype=dtype, name="position_encoding")
        position_dropout = keras.layers.Dropout(dropout, dtype=dtype,
                                                name="position_dropout")
        transformer = PreLNTransformerEncoder(
            int(num_layers), num_heads=int(num_heads),
            ffn_units=int(ffn_units), dropout=float(dropout),
            identical_initialization=bool(identical_layer_init),
            dtype=dtype, name="transformer")
        embedding = torch_initializers.linear_layer(
            int(embedding_size), int(hidden_size), "embedding", dtype)
        if normalize_embeddings:
            embedding_output = L2Normalization(
                dtype="float32", name="embedding_normalization")
        else:
            embedding_output = keras.layers.Activation(
                "linear", dtype="float32", name="embedding_output")
        projection_head = ProjectionHead(
            int(projection_hidden_units), int(embedding_size),
            momentum=BN_MOMENTUM, epsilon=BN_EPSILON, dtype=dtype,
            name="projection_head")

        # === Functional Model ===
        inputs = {
            "frames": keras.Input((None, *crop_size, 3), name="frames"),
            "mask": keras.Input((None,), dtype="bool", name="mask")}
        features = pool(frame_trunk(fold(inputs["frames"])))
        x = unfold([features, inputs["frames"]])            # [B, T, C]
        emb = _sequence_embedding(
            [layer for block in fc_blocks for layer in block]
            + [frame_projection, position_encoding, position_dropout],
            transformer, embedding, x, inputs["mask"])
        outputs = {"embeddings": embedding_output(emb),
                   "projections": projection_head(emb)}
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)
        if dtype is not None:
            self.dtype_policy = dtype

        # === Config ===
        self.num_layers = int(num_layers)
        self.trunk = trunk
        self.num_frames = int(num_frames)
        self.crop_size = crop_size
        self.frozen_stages = int(frozen_stages)
        self.small_filters = small_filters
        self.trunk_variant = trunk_variant
        self.fc_units = fc_units
        self.hidden_size = int(hidden_size)
        self.num_heads = int(num_heads)
        self.ffn_units = int(ffn_units)
        self.dropout = float(dropout)
        self.embedding_size = int(embedding_size)
        self.projection_hidden_units = int(projection_hidden_units)
        self.normalize_embeddings = bool(normalize_embeddings)
        self.identical_layer_init = bool(identical_layer_init)

    # ------------------------------------------------------------- parts
    @property
    def trunk_model(self):
        """The per-frame trunk `[N, H, W, 3] -> [N, h, w, C]`."""
        return self.get_layer("trunk")

    @property
    def transformer(self):
        """The `PreLNTransformerEncoder`."""
        return self.get_layer("transformer")

    @property
    def projection_head(self):
        """The `ProjectionHead` used by the contrastive loss."""
        return self.get_layer("projection_head")

    def frame_features(self, frames):
        """Spatially pooled trunk features of single frames (inference).

        Args:
            frames: `[N, H, W, 3]`, normalised as for the model.

        Returns:
            `[N, C]` (C = 2048 for the ResNet-50).

        Example:

        >>> model.frame_features(tf.zeros([3, 64, 64, 3])).shape
        TensorShape([3, 64])
        """
        return self.get_layer("spatial_max_pool")(
            self.trunk_model(frames, training=False))

    def embed_frame_features(self, features, mask):
        """Embeddings from `frame_features` output (inference mode).

        With `frame_features`, the model's forward pass in two parts, so
        that a long video's frames can go through the trunk a few at a
        time (`embed_whole_videos`) and the transformer over all of them.

        Args:
            features: `[B, T, C]` frame features.
            mask: bool `[B, T]`, True on real frames.

        Returns:
            float32 `[B, T, embedding_size]`: the model's `embeddings`.

        Example:

        >>> feats = model.frame_features(frames)[None]   # [1, T, C]
        >>> model.embed_frame_features(feats, tf.ones([1, T], bool))
        """
        fc_layers = [self.get_layer(f"fc{index}{part}")
                     for index in range(1, len(self.fc_units) + 1)
                     for part in ("_dropout", "", "_bn", "_relu")]
        emb = _sequence_embedding(
            fc_layers + [self.get_layer(name) for name in (
                "frame_projection", "position_encoding",
                "position_dropout")],
            self.transformer, self.get_layer("embedding"), features, mask,
            training=False)
        output = self.get_layer("embedding_normalization"
                                if self.normalize_embeddings
                                else "embedding_output")
        return output(emb)

    def embedding_model(self):
        """A model sharing these weights that outputs only the embeddings.

        Returns:
            A functional `keras.Model` `{"frames", "mask"}` ->
            `[B, T, embedding_size]` (no projection head), e.g. for
            evaluation and export.
        """
        return keras.Model(self.input, self.output["embeddings"],
                           name=f"{self.name}_embeddings")

    # ------------------------------------------------------------ config
    def get_config(self):
        config = super().get_config()
        config.update(
            num_layers=self.num_layers, trunk=self.trunk,
            num_frames=self.num_frames, crop_size=list(self.crop_size),
            frozen_stages=self.frozen_stages,
            small_filters=list(self.small_filters),
            trunk_variant=self.trunk_variant,
            fc_units=list(self.fc_units), hidden_size=self.hidden_size,
            num_heads=self.num_heads, ffn_units=self.ffn_units,
            dropout=self.dropout, embedding_size=self.embedding_size,
            projection_hidden_units=self.projection_hidden_units,
            normalize_embeddings=self.normalize_embeddings,
            identical_layer_init=self.identical_layer_init)
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**config)
