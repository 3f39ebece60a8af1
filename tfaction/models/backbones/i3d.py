"""Inflated Inception-v1 (I3D): the trunk and head of the Action Transformer.

The network of Carreira & Zisserman as DeepMind's `kinetics-i3d` builds it
(`InceptionI3d` in its `i3d.py`), endpoint for endpoint, as Keras layers
named after DeepMind's endpoints and variable scopes, so that its TF1
checkpoints (and the `dlpbc/keras-kinetics-i3d` Keras port of them) load
by name (`tfaction.checkpoints.i3d`):

| endpoint | op | output at `[T, H, W]` input |
|---|---|---|
| `Conv3d_1a_7x7` | Unit3D 64, 7x7x7, stride 2 | T/2, H/2, W/2, 64 |
| `MaxPool3d_2a_3x3` | max pool 1x3x3, stride 1,2,2 | T/2, H/4, W/4, 64 |
| `Conv3d_2b_1x1` | Unit3D 64, 1x1x1 | 64 |
| `Conv3d_2c_3x3` | Unit3D 192, 3x3x3 | 192 |
| `MaxPool3d_3a_3x3` | max pool 1x3x3, stride 1,2,2 | T/2, H/8, W/8, 192 |
| `Mixed_3b`, `Mixed_3c` | Inception blocks | 256, 480 |
| `MaxPool3d_4a_3x3` | max pool 3x3x3, stride 2 | T/4, H/16, W/16, 480 |
| `Mixed_4b` ... `Mixed_4f` | Inception blocks | 512, 512, 512, 528, 832 |
| `MaxPool3d_5a_2x2` | max pool 2x2x2, stride 2 | T/8, H/32, W/32, 832 |
| `Mixed_5b`, `Mixed_5c` | Inception blocks | 832, 1024 |

All convolutions and pools use SAME padding (sizes round up), every unit is
`tfaction.layers.Unit3D` (conv without bias, batch norm without scale,
epsilon 1e-3, ReLU) with frozen batch-norm statistics. An Inception block
`Mixed_X` has four branches concatenated on channels: `Branch_0` a 1x1x1
unit; `Branch_1` and `Branch_2` a 1x1x1 unit then a 3x3x3 unit; `Branch_3`
a 3x3x3 stride-1 max pool then a 1x1x1 unit.

The Video Action Transformer Network cuts I3D after `Mixed_4f` (the trunk,
`build_i3d_trunk`: 64x400x400 clips -> 16x25x25x832) and runs the rest
(`MaxPool3d_5a_2x2`, `Mixed_5b`, `Mixed_5c`; `build_i3d_head`) on the
spatio-temporal RoI features of each proposal (16x7x7x832 -> 8x4x4x1024).
I3D's classifier (`Logits`: average pool, dropout, 1x1x1 conv with bias)
is not built here.

Layer names. Keras forbids `/` in layer names, so the Unit3D layer of the
DeepMind scope `Mixed_4f/Branch_1/Conv3d_0b_3x3` is named
`Mixed_4f_Branch_1_Conv3d_0b_3x3` (`UNIT_SCOPES` maps one to the other),
the branch pool `Mixed_4f_Branch_3_MaxPool3d_0a_3x3`, and the concatenation
is the endpoint layer `Mixed_4f`; the stem units and pools carry their
endpoint names. DeepMind's naming quirk is kept: in `Mixed_5b` the second
conv of `Branch_2` is `Conv3d_0a_3x3` (`Conv3d_0b_3x3` in every other
block).

Why the Inception blocks are functional sub-graphs rather than a layer
class: every endpoint, branch and unit stays a named node of one
functional graph (any endpoint is `model.get_layer(name).output`), each
DeepMind variable scope maps to exactly one Keras layer, and the only
custom layers a `.keras` file needs are `Unit3D` and
`FrozenBatchNormalization`.

Input preprocessing is not part of the model: DeepMind's RGB checkpoints
expect pixels scaled to [-1, 1], the flow ones 2-channel flow clipped to
[-20, 20] and scaled to [-1, 1].
"""

import keras

from tfaction import errors
from tfaction.layers.unit3d import BATCH_NORMS, Unit3D

ENDPOINTS = (
    "Conv3d_1a_7x7", "MaxPool3d_2a_3x3", "Conv3d_2b_1x1", "Conv3d_2c_3x3",
    "MaxPool3d_3a_3x3", "Mixed_3b", "Mixed_3c", "MaxPool3d_4a_3x3",
    "Mixed_4b", "Mixed_4c", "Mixed_4d", "Mixed_4e", "Mixed_4f",
    "MaxPool3d_5a_2x2", "Mixed_5b", "Mixed_5c")
TRUNK_ENDPOINT = "Mixed_4f"  # where the Video Action Transformer cuts I3D

# Stem units: (filters, kernel, stride).
_UNITS = {
    "Conv3d_1a_7x7": (64, (7, 7, 7), (2, 2, 2)),
    "Conv3d_2b_1x1": (64, (1, 1, 1), (1, 1, 1)),
    "Conv3d_2c_3x3": (192, (3, 3, 3), (1, 1, 1)),
}
# Max pools between stages: (pool size, stride).
_POOLS = {
    "MaxPool3d_2a_3x3": ((1, 3, 3), (1, 2, 2)),
    "MaxPool3d_3a_3x3": ((1, 3, 3), (1, 2, 2)),
    "MaxPool3d_4a_3x3": ((3, 3, 3), (2, 2, 2)),
    "MaxPool3d_5a_2x2": ((2, 2, 2), (2, 2, 2)),
}
# Inception blocks: widths of Branch_0 1x1; Branch_1 1x1, 3x3; Branch_2
# 1x1, 3x3; Branch_3 1x1 (after the pool).
_MIXED = {
    "Mixed_3b": (64, 96, 128, 16, 32, 32),
    "Mixed_3c": (128, 128, 192, 32, 96, 64),
    "Mixed_4b": (192, 96, 208, 16, 48, 64),
    "Mixed_4c": (160, 112, 224, 24, 64, 64),
    "Mixed_4d": (128, 128, 256, 24, 64, 64),
    "Mixed_4e": (112, 144, 288, 32, 64, 64),
    "Mixed_4f": (256, 160, 320, 32, 128, 128),
    "Mixed_5b": (256, 160, 320, 32, 128, 128),
    "Mixed_5c": (384, 192, 384, 48, 128, 128),
}
# Branch units of a block, in the order of the widths above:
# (DeepMind scope under the block, kernel size).
_BRANCH_UNITS = (
    ("Branch_0/Conv3d_0a_1x1", 1), ("Branch_1/Conv3d_0a_1x1", 1),
    ("Branch_1/Conv3d_0b_3x3", 3), ("Branch_2/Conv3d_0a_1x1", 1),
    ("Branch_2/Conv3d_0b_3x3", 3), ("Branch_3/Conv3d_0b_1x1", 1))
_BRANCH_POOL = "Branch_3/MaxPool3d_0a_3x3"


def _branch_scopes(block):
    scopes = [scope for scope, _ in _BRANCH_UNITS]
    if block == "Mixed_5b":  # DeepMind's name for this one conv
        scopes[4] = "Branch_2/Conv3d_0a_3x3"
    return [f"{block}/{scope}" for scope in scopes]


def _layer_name(scope):
    return scope.replace("/", "_")


def _scaled(width, width_multiplier):
    return max(1, int(round(width * width_multiplier)))


def _endpoint_channels(width_multiplier=1.0):
    channels, width = {}, None
    for endpoint in ENDPOINTS:
        if endpoint in _UNITS:
            width = _scaled(_UNITS[endpoint][0], width_multiplier)
        elif endpoint in _MIXED:
            w = [_scaled(v, width_multiplier) for v in _MIXED[endpoint]]
            width = w[0] + w[2] + w[4] + w[5]
        channels[endpoint] = width
    return channels


def endpoint_channels(endpoint, width_multiplier=1.0):
    """Output channels of `endpoint` in an I3D of `width_multiplier`.

    Args:
        endpoint: one of `ENDPOINTS`.
        width_multiplier: the factor on every unit's filters (rounded, at
            least 1).

    Returns:
        An int (`ENDPOINT_CHANNELS[endpoint]` for 1.0).

    Example:

    >>> endpoint_channels("Mixed_4f"), endpoint_channels("Mixed_4f", 0.125)
    (832, 104)
    """
    _check_endpoint(endpoint, "endpoint")
    return _endpoint_channels(float(width_multiplier))[endpoint]


def _unit_scopes():
    scopes = {}
    for endpoint in ENDPOINTS:
        if endpoint in _UNITS:
            scopes[endpoint] = endpoint
        elif endpoint in _MIXED:
            for scope in _branch_scopes(endpoint):
                scopes[_layer_name(scope)] = scope
    return scopes


# Output channels of every endpoint (pools keep their input's channels).
ENDPOINT_CHANNELS = _endpoint_channels()
# Unit3D layer name -> DeepMind variable scope (under `inception_i3d/`),
# in network order: 3 stem units + 6 per Inception block = 57.
UNIT_SCOPES = _unit_scopes()


def _pool_dtype(dtype):
    """The dtype policy of the max pools under the model's policy `dtype`.

    TensorFlow 2.17 has no float16 `MaxPool3D` kernel on CPU, so under a
    float16 compute dtype (`mixed_float16`) the pools run in float32 (Keras
    casts their input up; the next unit casts back). A maximum is exact in
    any precision: the values are those of float16 pooling.
    """
    policy = (keras.config.dtype_policy() if dtype is None
              else keras.dtype_policies.get(dtype))
    return "float32" if policy.compute_dtype == "float16" else dtype


def _check_endpoint(endpoint, what):
    if endpoint not in ENDPOINTS:
        raise errors.ConfigError(f"unknown I3D {what} {endpoint!r}; "
                                 f"expected one of {ENDPOINTS}")
    return ENDPOINTS.index(endpoint)


@keras.saving.register_keras_serializable(package="tfaction")
class InceptionI3D(keras.Model):
    """A contiguous run of I3D endpoints as one functional Keras model.

    Maps `[B, T, H, W, C]` to the output of `final_endpoint`, starting at
    `first_endpoint` (see the module docstring for the layer list); `T`,
    `H` and `W` are dynamic. The whole network up to `Mixed_5c` is
    `InceptionI3D("Mixed_5c")`; the Action Transformer's trunk and head are
    `build_i3d_trunk` and `build_i3d_head`. Every argument is a plain
    value, so `.keras` files reload with no custom objects.

    Args:
        final_endpoint: the last endpoint computed; its output is the
            model's output.
        first_endpoint: the first endpoint computed. Its input has
            `input_channels` channels when it is `Conv3d_1a_7x7`, and the
            previous endpoint's channels (`ENDPOINT_CHANNELS`) otherwise.
        input_channels: channels of the clips (3 RGB, 2 flow) for a model
            starting at `Conv3d_1a_7x7` (default 3); for a later start it
            must be None or the previous endpoint's channels.
        weight_decay: Keras `L2` factor on every conv kernel (0 = none).
        width_multiplier: factor on every unit's filters (rounded, at least
            1). 1.0 is I3D, whose checkpoints load; smaller values keep the
            topology, strides and names at a fraction of the cost (e.g.
            0.125 for CPU-sized experiments and tests).
        batch_norm: "frozen" (statistics fixed, the fine-tuning setting)
            or "batch" (trained statistics, for training from scratch);
            see `Unit3D`.
        **kwargs: base `keras.Model` arguments: `name` (default
            "inception_i3d"), `dtype` (passed on to every layer; e.g.
            "mixed_float16" computes in float16 with float32 variables,
            batch norm in float32; under a float16 compute dtype the max
            pools run in float32, since TensorFlow has no float16 3-D max
            pool on CPU: exact, as a maximum does not round).

    Call arguments:
        inputs: `[B, T, H, W, C]` float clips or features.

    Returns:
        `[B, T', H', W', endpoint_channels(final_endpoint,
        width_multiplier)]` in the compute
        dtype (float32 for a pool endpoint under `mixed_float16`); each
        stride-2 stage rounds sizes up (SAME padding).

    Raises:
        ConfigError: an unknown endpoint, `final_endpoint` before
            `first_endpoint`, or inconsistent `input_channels`.

    Example:

    >>> model = InceptionI3D("Mixed_3c")
    >>> tuple(model(np.zeros((1, 8, 32, 32, 3), "float32")).shape)
    (1, 4, 4, 4, 480)
    >>> model.endpoints
    ['Conv3d_1a_7x7', 'MaxPool3d_2a_3x3', 'Conv3d_2b_1x1', \
'Conv3d_2c_3x3', 'MaxPool3d_3a_3x3', 'Mixed_3b', 'Mixed_3c']

    Reference:
        Carreira & Zisserman, "Quo Vadis, Action Recognition? A New Model
        and the Kinetics Dataset", CVPR 2017 (deepmind/kinetics-i3d).
    """

    def __init__(self, final_endpoint=TRUNK_ENDPOINT,
                 first_endpoint="Conv3d_1a_7x7", input_channels=None,
                 weight_decay=0.0, width_multiplier=1.0,
                 batch_norm="frozen", **kwargs):
        kwargs.setdefault("name", "inception_i3d")
        # A functional model ignores `dtype`: the policy is set below and
        # passed to every layer.
        dtype = kwargs.pop("dtype", None)
        start = _check_endpoint(first_endpoint, "first endpoint")
        stop = _check_endpoint(final_endpoint, "final endpoint")
        if stop < start:
            raise errors.ConfigError(
                f"I3D final endpoint {final_endpoint!r} comes before the "
                f"first endpoint {first_endpoint!r}")
        width_multiplier = float(width_multiplier)
        if not width_multiplier > 0:
            raise errors.ConfigError(f"width_multiplier must be > 0, got "
                                     f"{width_multiplier}")
        widths = _endpoint_channels(width_multiplier)
        if start == 0:
            channels = 3 if input_channels is None else int(input_channels)
            if channels < 1:
                raise errors.ConfigError(f"input_channels must be >= 1, "
                                         f"got {input_channels}")
        else:
            channels = widths[ENDPOINTS[start - 1]]
            if input_channels is not None and int(input_channels) != channels:
                raise errors.ConfigError(
                    f"an I3D model starting at {first_endpoint!r} takes the "
                    f"{channels} channels of {ENDPOINTS[start - 1]!r}, not "
                    f"input_channels={input_channels}")
        weight_decay = float(weight_decay)
        if weight_decay < 0:
            raise errors.ConfigError(f"weight_decay must be >= 0, got "
                                     f"{weight_decay}")
        if batch_norm not in BATCH_NORMS:
            raise errors.ConfigError(f"batch_norm must be one of "
                                     f"{BATCH_NORMS}, got {batch_norm!r}")
        regularizer = (keras.regularizers.L2(weight_decay) if weight_decay
                       else None)

        def unit(x, name, filters, kernel, stride=1):
            filters = _scaled(filters, width_multiplier)
            return Unit3D(filters, kernel_size=kernel, strides=stride,
                          kernel_regularizer=regularizer,
                          batch_norm=batch_norm, dtype=dtype, name=name)(x)

        pool_dtype = _pool_dtype(dtype)

        def pool(x, name, size, stride):
            return keras.layers.MaxPooling3D(
                size, strides=stride, padding="same", dtype=pool_dtype,
                name=name)(x)

        def inception(x, block):
            widths = _MIXED[block]
            names = [_layer_name(s) for s in _branch_scopes(block)]
            kernels = [k for _, k in _BRANCH_UNITS]
            units = {name: (w, k) for name, w, k in zip(names, widths,
                                                        kernels)}
            branch_0 = unit(x, names[0], *units[names[0]])
            branch_1 = unit(unit(x, names[1], *units[names[1]]),
                            names[2], *units[names[2]])
            branch_2 = unit(unit(x, names[3], *units[names[3]]),
                            names[4], *units[names[4]])
            branch_3 = pool(x, _layer_name(f"{block}/{_BRANCH_POOL}"),
                            (3, 3, 3), (1, 1, 1))
            branch_3 = unit(branch_3, names[5], *units[names[5]])
            return keras.layers.Concatenate(axis=-1, dtype=dtype, name=block)(
                [branch_0, branch_1, branch_2, branch_3])

        # === Functional Model ===
        inputs = keras.Input((None, None, None, channels),
                             name="clips" if start == 0 else "features")
        x = inputs
        for endpoint in ENDPOINTS[start:stop + 1]:
            if endpoint in _UNITS:
                x = unit(x, endpoint, *_UNITS[endpoint])
            elif endpoint in _POOLS:
                x = pool(x, endpoint, *_POOLS[endpoint])
            else:
                x = inception(x, endpoint)
        super().__init__(inputs=inputs, outputs=x, **kwargs)
        if dtype is not None:
            self.dtype_policy = dtype

        # === Config ===
        self.final_endpoint = final_endpoint
        self.first_endpoint = first_endpoint
        self.input_channels = channels
        self.weight_decay = weight_decay
        self.width_multiplier = width_multiplier
        self.batch_norm = batch_norm

    @property
    def endpoints(self):
        """The endpoints this model computes, in order (list of names)."""
        return list(ENDPOINTS[ENDPOINTS.index(self.first_endpoint):
                              ENDPOINTS.index(self.final_endpoint) + 1])

    def unit_layers(self):
        """The model's `Unit3D` layers, in network order.

        Returns:
            List of `Unit3D` layers; `UNIT_SCOPES[layer.name]` is each
            one's DeepMind variable scope.
        """
        order = {name: i for i, name in enumerate(UNIT_SCOPES)}
        return sorted((layer for layer in self.layers
                       if isinstance(layer, Unit3D)),
                      key=lambda layer: order[layer.name])

    def get_config(self):
        config = super().get_config()
        config.update(final_endpoint=self.final_endpoint,
                      first_endpoint=self.first_endpoint,
                      input_channels=self.input_channels,
                      weight_decay=self.weight_decay,
                      width_multiplier=self.width_multiplier,
                      batch_norm=self.batch_norm)
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def build_i3d_trunk(endpoint=TRUNK_ENDPOINT, input_channels=3,
                    weight_decay=0.0, name="i3d_trunk", *,
                    width_multiplier=1.0, batch_norm="frozen", dtype=None):
    """Builds I3D from its first layer up to `endpoint` (the trunk).

    The Video Action Transformer's trunk is I3D cut at `Mixed_4f`: a clip
    of T frames of H x W maps to a `[T/4, H/16, W/16, 832]` feature map
    (64x400x400 -> 16x25x25).

    Args:
        endpoint: the last endpoint (default "Mixed_4f"), one of
            `ENDPOINTS`.
        input_channels: 3 for RGB, 2 for optical flow (x, y).
        weight_decay: Keras `L2` factor on conv kernels (0 = none).
        name: model name.
        width_multiplier: factor on every unit's filters (`InceptionI3D`).
        batch_norm: "frozen" or "batch" (`InceptionI3D`).
        dtype: dtype policy of every layer; None uses the global policy.

    Returns:
        An `InceptionI3D` model `[B, T, H, W, input_channels]` ->
        `[B, ceil(T/4), ceil(H/16), ceil(W/16), 832]` (for "Mixed_4f").

    Raises:
        ConfigError: unknown endpoint, bad channels or decay.

    Example:

    >>> trunk = build_i3d_trunk()
    >>> trunk.output_shape
    (None, None, None, None, 832)
    >>> tuple(trunk(np.zeros((1, 8, 64, 64, 3), "float32")).shape)
    (1, 2, 4, 4, 832)

    Reference:
        Girdhar et al., "Video Action Transformer Network", CVPR 2019,
        section 3.3 (trunk); deepmind/kinetics-i3d `i3d.py` (layers).
    """
    return InceptionI3D(endpoint, first_endpoint=ENDPOINTS[0],
                        input_channels=input_channels,
                        weight_decay=weight_decay,
                        width_multiplier=width_multiplier,
                        batch_norm=batch_norm, name=name, dtype=dtype)


def build_i3d_head(trunk_endpoint=TRUNK_ENDPOINT, final_endpoint="Mixed_5c",
                   weight_decay=0.0, name="i3d_head", *,
                   width_multiplier=1.0, batch_norm="frozen", dtype=None):
    """Builds the I3D blocks after `trunk_endpoint` (the I3D head).

    The Video Action Transformer's I3D head runs the blocks the trunk
    leaves out (`MaxPool3d_5a_2x2`, `Mixed_5b`, `Mixed_5c`) on the
    spatio-temporal RoI features of each proposal (a 16x7x7 tube of
    Mixed_4f features -> 8x4x4x1024), before pooling and the box and class
    layers.

    Args:
        trunk_endpoint: the trunk's last endpoint; the head starts at the
            endpoint after it and takes its channels (832 for "Mixed_4f").
        final_endpoint: the head's last endpoint (default "Mixed_5c").
        weight_decay: Keras `L2` factor on conv kernels (0 = none).
        name: model name.
        width_multiplier: factor on every unit's filters (`InceptionI3D`).
        batch_norm: "frozen" or "batch" (`InceptionI3D`).
        dtype: dtype policy of every layer; None uses the global policy.

    Returns:
        An `InceptionI3D` model `[N, T, H, W, 832]` ->
        `[N, ceil(T/2), ceil(H/2), ceil(W/2), 1024]` (defaults).

    Raises:
        ConfigError: unknown endpoints, `trunk_endpoint` is the last
            endpoint, or `final_endpoint` is not after it.

    Example:

    >>> head = build_i3d_head()
    >>> head.endpoints
    ['MaxPool3d_5a_2x2', 'Mixed_5b', 'Mixed_5c']
    >>> tuple(head(np.zeros((2, 4, 7, 7, 832), "float32")).shape)
    (2, 2, 4, 4, 1024)

    Reference:
        Girdhar et al., "Video Action Transformer Network", CVPR 2019,
        section 3.3 (I3D head); deepmind/kinetics-i3d `i3d.py` (layers).
    """
    index = _check_endpoint(trunk_endpoint, "trunk endpoint")
    if index + 1 == len(ENDPOINTS):
        raise errors.ConfigError(f"no I3D endpoint follows {trunk_endpoint!r}"
                                 f"; the head would be empty")
    return InceptionI3D(final_endpoint, first_endpoint=ENDPOINTS[index + 1],
                        weight_decay=weight_decay,
                        width_multiplier=width_multiplier,
                        batch_norm=batch_norm, name=name, dtype=dtype)
