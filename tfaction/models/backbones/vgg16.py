"""VGG16 conv trunk for ActionVLAD, with weight loaders.

ActionVLAD (Girdhar et al., CVPR 2017) pools VGG16 conv5_3 features taken
*before* their ReLU (`nets/vgg.py`, `conv_only=True` in
rohitgirdhar/ActionVLAD). `keras.applications.VGG16` fuses the ReLU into
`block5_conv3`, so this module builds the same conv stack with the same
layer names (`block1_conv1` ... `block5_conv3`, `block1_pool` ...) but a
linear endpoint conv, and loads weights into it by layer name from:

* a `keras.applications.VGG16` weights file (`..._notop.h5`, a full-model
  `.h5`, or a Keras 3 `.weights.h5`), see `load_keras_vgg16_weights`;
* a TF-slim VGG16 checkpoint (`vgg_16/convX/convX_Y/{weights,biases}`, the
  format of the ActionVLAD and two-stream releases), see
  `load_slim_vgg16_checkpoint`.

Both loaders initialise a flow trunk (`input_channels = 2 * stack`) from
RGB weights by cross-modality averaging (`adapt_first_conv_kernel`).

Preprocessing is not part of the trunk: Keras ImageNet weights and the
CUHK/ActionVLAD checkpoints both expect BGR, mean-subtracted pixels in
[0, 255] (see the ActionVLAD spec, section 5).
"""

import os
import re
import zipfile

import h5py
import keras
import numpy as np
import tensorflow as tf

from tfaction import errors
from tfaction.data import filesystems

ENDPOINTS = ("conv4_3", "conv5_3")

# (block, convs per block, filters) of VGG16 ("configuration D").
_BLOCKS = ((1, 2, 64), (2, 2, 128), (3, 3, 256), (4, 3, 512), (5, 3, 512))
_CONV_NAME = re.compile(r"^block(\d)_conv(\d)$")
_FIRST_CONV = "block1_conv1"


def build_vgg16_trunk(input_channels=3, endpoint="conv5_3", pre_relu=True,
                      weight_decay=0.0, name="vgg16_trunk", *, dtype=None):
    """Builds the VGG16 conv trunk up to `endpoint`.

    The layers are those of `keras.applications.VGG16(include_top=False)`
    (names, 3x3 "same" convs, 2x2 max pools) up to the endpoint conv; the
    pool after the endpoint is left out.

    Args:
        input_channels: image channels: 3 for RGB, 2·S for S stacked flow
            fields (ActionVLAD: 20).
        endpoint: "conv5_3" (`block5_conv3`, stride 16, 512 channels) or
            "conv4_3" (`block4_conv3`, stride 8, 512 channels).
        pre_relu: leave the endpoint conv linear, since ActionVLAD attaches
            NetVLAD before the ReLU. Every other conv has a ReLU.
        weight_decay: Keras `L2` factor on conv kernels (0 = none; biases
            are never decayed, as in slim's `vgg_arg_scope`). TF-slim's
            `l2_regularizer(w)` adds `w * sum(k**2) / 2` while Keras
            `L2(l)` adds `l * sum(k**2)`, so slim's 4e-5 is `2e-5` here.
        name: model name.
        dtype: dtype policy of every layer; None uses the global policy
            (e.g. "mixed_float16": float16 compute, float32 variables).

    Returns:
        A functional `keras.Model` mapping `images` `[N, H, W,
        input_channels]` (H, W may be None) to `[N, H / 16, W / 16, 512]`
        (conv5_3) or `[N, H / 8, W / 8, 512]` (conv4_3).

    Raises:
        ConfigError: unknown endpoint, or a bad channel count / decay.

    Example:

    >>> trunk = build_vgg16_trunk(input_channels=20)
    >>> trunk.output_shape
    (None, None, None, 512)
    >>> trunk.get_layer("block5_conv3").get_config()["activation"]
    'linear'
    """
    if endpoint not in ENDPOINTS:
        raise errors.ConfigError(f"unknown VGG16 endpoint {endpoint!r}; "
                                 f"expected one of {ENDPOINTS}")
    if int(input_channels) < 1:
        raise errors.ConfigError(f"input_channels must be >= 1, got "
                                 f"{input_channels}")
    if weight_decay < 0:
        raise errors.ConfigError(f"weight_decay must be >= 0, got "
                                 f"{weight_decay}")
    last_block = int(endpoint[4])
    regularizer = (keras.regularizers.L2(weight_decay) if weight_decay
                   else None)
    inputs = keras.Input((None, None, int(input_channels)), name="images")
    x = inputs
    for block, num_convs, filters in _BLOCKS[:last_block]:
        if block > 1:
            x = keras.layers.MaxPooling2D(
                (2, 2), strides=(2, 2), name=f"block{block - 1}_pool",
                dtype=dtype)(x)
        for i in range(1, num_convs + 1):
            is_endpoint = block == last_block and i == num_convs
            x = keras.layers.Conv2D(
                filters, (3, 3), padding="same",
                activation=None if (is_endpoint and pre_relu) else "relu",
                kernel_regularizer=regularizer, name=f"block{block}_conv{i}",
                dtype=dtype)(x)
    return keras.Model(inputs, x, name=name)


def conv_layer_names(trunk):
    """Names of the trunk's `block{i}_conv{j}` layers, in model order."""
    return [layer.name for layer in trunk.layers
            if _CONV_NAME.match(layer.name)]


def conv5_layer_names(trunk):
    """Names of the trunk's block-5 convs (conv5_1..5_3).

    ActionVLAD's stage 2 fine-tunes only these (`vgg_16/conv5`) together
    with NetVLAD and the classifier.

    Args:
        trunk: a `build_vgg16_trunk` model.

    Returns:
        `["block5_conv1", "block5_conv2", "block5_conv3"]`, or `[]` for a
        conv4_3 trunk.

    Example:

    ```python
    for name in conv5_layer_names(trunk):
        trunk.get_layer(name).trainable = True
    ```
    """
    return [n for n in conv_layer_names(trunk) if n.startswith("block5_")]


def adapt_first_conv_kernel(kernel, channels):
    """Turns an RGB first-layer kernel into one for `channels` inputs.

    Cross-modality initialisation (Wang et al., "Temporal Segment
    Networks"; ActionVLAD `convert_first_layer_for_flow.py`): average the
    kernel over its input channels and repeat the mean `channels` times, so
    a flow stack starts from the RGB filters' spatial structure.

    Args:
        kernel: `[kh, kw, c, out]` array (HWIO).
        channels: input channels of the new kernel.

    Returns:
        `[kh, kw, channels, out]` numpy array, same dtype as `kernel`; every
        input slice equals `mean(kernel, axis=2)`.

    Raises:
        ConfigError: `kernel` is not 4-D or `channels < 1`.

    Example:

    >>> k = np.arange(2 * 3, dtype="float32").reshape(1, 1, 3, 2)
    >>> adapt_first_conv_kernel(k, 4)[0, 0]
    array([[2., 3.],
           [2., 3.],
           [2., 3.],
           [2., 3.]], dtype=float32)
    """
    kernel = np.asarray(kernel)
    if kernel.ndim != 4:
        raise errors.ConfigError(f"expected a [kh, kw, in, out] kernel, got "
                                 f"shape {kernel.shape}")
    if int(channels) < 1:
        raise errors.ConfigError(f"channels must be >= 1, got {channels}")
    mean = kernel.mean(axis=2, keepdims=True, dtype=np.float64)
    return np.repeat(mean, int(channels), axis=2).astype(kernel.dtype)


def load_keras_vgg16_weights(trunk, path):
    """Loads `keras.applications.VGG16` weights into the trunk by name.

    Accepts the Keras ImageNet files (`..._notop.h5` and the full-model
    `.h5`, legacy HDF5 layout), Keras 3 `.weights.h5` files and `.keras`
    archives saved from `keras.applications.VGG16(weights=None,
    include_top=...)`. Layers are
    matched by name (`block1_conv1` ...), so extra layers in the file
    (block5 for a conv4_3 trunk, the fully connected top) are ignored. A
    file whose layout is not recognised is loaded through a
    `keras.applications.VGG16` model (no top, then top) and copied by name.
    Nothing is assigned unless every layer loads.

    Args:
        trunk: a `build_vgg16_trunk` model (any `input_channels`; if not
            3, an RGB `block1_conv1` kernel is adapted with
            `adapt_first_conv_kernel`).
        path: weights file, local or remote (`s3://`, `gs://`, ...; read
            through a temporary local copy).

    Returns:
        The names of the layers that were loaded.

    Raises:
        MalformedFileError: the file is missing or unreadable, lacks a conv
            layer of the trunk, or a weight has the wrong shape (the
            message names the file, the layer and both shapes).

    Example:

    ```python
    trunk = build_vgg16_trunk(input_channels=20)
    load_keras_vgg16_weights(
        trunk, "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5")
    ```
    """
    path = os.fspath(path)
    _check_exists(path)
    with filesystems.local_copy(path) as local:
        if not h5py.is_hdf5(local) and not zipfile.is_zipfile(local):
            raise errors.MalformedFileError(
                "not an HDF5 weights file or a .keras archive", path=path)
        try:
            legacy, weights = ((False, {}) if zipfile.is_zipfile(local)
                               else _read_h5_by_name(local))
        except (OSError, KeyError) as e:
            raise errors.MalformedFileError(
                f"corrupt weights file: {_first_line(e)}", path=path) from e
        if not weights and not legacy:
            weights = _read_via_keras_application(path, local)
    return _assign(trunk, path, weights,
                   lambda name, what: f"{name}/{what}")


def load_slim_vgg16_checkpoint(trunk, path, *, scope="vgg_16"):
    """Loads a TF-slim VGG16 checkpoint into the trunk.

    Variables `{scope}/conv{X}/conv{X}_{Y}/weights` (`[3, 3, in, out]`,
    the same HWIO layout as Keras) and `.../biases` go to `block{X}_conv{Y}`.
    A checkpoint whose first conv has 3 channels initialises a trunk with
    other `input_channels` by `adapt_first_conv_kernel`; one that already
    has `input_channels` channels (e.g. the two-stream flow VGG16) loads
    directly. Nothing is assigned unless every layer loads.

    Args:
        trunk: a `build_vgg16_trunk` model.
        path: checkpoint prefix (`model.ckpt-1234`) or its directory
            (TF1 `V2` format as written by `tf.compat.v1.train.Saver`).
        scope: variable scope of the network in the checkpoint.

    Returns:
        The names of the layers that were loaded.

    Raises:
        MalformedFileError: no readable checkpoint at `path`, a variable
            is missing, or its shape is wrong (the message names the
            checkpoint, the variable and both shapes).

    Example:

    ```python
    trunk = build_vgg16_trunk(input_channels=3)
    load_slim_vgg16_checkpoint(trunk, "vgg_16_action_rgb_pretrain.ckpt")
    ```
    """
    path = filesystems.ensure_filesystem(path)
    try:
        reader = tf.train.load_checkpoint(path)
        available = reader.get_variable_to_shape_map()
    except (tf.errors.OpError, ValueError, OSError) as e:
        raise errors.MalformedFileError(
            f"cannot read TF checkpoint: {_first_line(e)}", path=path) from e

    def slim_name(layer_name):
        block, conv = _CONV_NAME.match(layer_name).groups()
        return f"{scope}/conv{block}/conv{block}_{conv}"

    weights = {}
    for layer_name in conv_layer_names(trunk):
        prefix = slim_name(layer_name)
        pair = []
        for leaf in ("weights", "biases"):
            key = f"{prefix}/{leaf}"
            if key not in available:
                raise errors.MalformedFileError(
                    f"variable missing (needed by layer {layer_name!r})",
                    path=path, key=key)
            try:
                pair.append(reader.get_tensor(key))
            except tf.errors.OpError as e:
                raise errors.MalformedFileError(
                    f"cannot read variable: {_first_line(e)}", path=path,
                    key=key) from e
        weights[layer_name] = tuple(pair)

    def source_key(layer_name, what):
        leaf = "weights" if what == "kernel" else "biases"
        return f"{slim_name(layer_name)}/{leaf}"

    return _assign(trunk, path, weights, source_key)


# --- helpers ---------------------------------------------------------------


def _check_exists(path):
    if not filesystems.isfile(path):
        raise errors.MalformedFileError("weights file not found", path=path)


def _first_line(error):
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _read_h5_by_name(path):
    """`(is_legacy, {layer name: (kernel, bias)})` of an HDF5 file's convs.

    Two layouts: legacy Keras (`layer_names` attribute on the root or on
    `model_weights`, one group per layer listing its `weight_names`), and
    Keras 3 `.weights.h5` (groups `.../vars` whose `name` attribute is the
    layer name, holding datasets `0` (kernel) and `1` (bias)). The dict
    is empty when neither is found.
    """
    found = {}
    with h5py.File(path, "r") as f:
        root = f["model_weights"] if "model_weights" in f else f
        if "layer_names" in root.attrs:
            for layer_name in root.attrs["layer_names"]:
                layer_name = _to_str(layer_name)
                if not _CONV_NAME.match(layer_name):
                    continue
                group = root[layer_name]
                arrays = [np.asarray(group[_to_str(w)])
                          for w in group.attrs.get("weight_names", [])]
                found[layer_name] = _kernel_and_bias(arrays)
            return True, found

        def visit(_, obj):
            if not isinstance(obj, h5py.Group):
                return
            layer_name = _to_str(obj.attrs.get("name", ""))
            if not _CONV_NAME.match(layer_name) or "0" not in obj:
                return
            arrays = [np.asarray(obj[k])
                      for k in sorted((k for k in obj if k.isdigit()), key=int)
                      if isinstance(obj[k], h5py.Dataset)]
            if layer_name in found:
                raise errors.MalformedFileError(
                    f"layer {layer_name!r} occurs more than once; cannot "
                    f"tell which to load", path=path, key=layer_name)
            found[layer_name] = _kernel_and_bias(arrays)

        f.visititems(visit)
    return False, found


def _read_via_keras_application(path, local=None):
    """Loads `path` into `keras.applications.VGG16` and reads it by name.

    Uses Keras' own loaders for layouts `_read_h5_by_name` does not know;
    tries the headless model first, then the one with the 224x224 top.
    `local` is the local file holding `path` (default: `path` itself).
    """
    failures = []
    for include_top, shape in ((False, (None, None, 3)), (True, (224, 224, 3))):
        model = keras.applications.VGG16(weights=None,
                                         include_top=include_top,
                                         input_shape=shape)
        try:
            model.load_weights(local or path)
        except Exception as e:  # noqa: BLE001 - reported below
            failures.append(f"include_top={include_top}: {_first_line(e)}")
            continue
        return {layer.name: tuple(layer.get_weights())
                for layer in model.layers if _CONV_NAME.match(layer.name)}
    raise errors.MalformedFileError(
        "not a keras.applications.VGG16 weights file (" +
        "; ".join(failures) + ")", path=path)


def _to_str(value):
    return value.decode("utf8") if isinstance(value, bytes) else str(value)


def _kernel_and_bias(arrays):
    # Identify by rank rather than by name: old Keras files name weights
    # `block1_conv1_W_1:0`, newer ones `block1_conv1/kernel:0`.
    kernels = [a for a in arrays if a.ndim == 4]
    biases = [a for a in arrays if a.ndim == 1]
    return (kernels[0] if kernels else None, biases[0] if biases else None)


def _assign(trunk, path, weights, source_key):
    """Checks every conv's weights against the trunk, then assigns them."""
    updates = []
    for layer_name in conv_layer_names(trunk):
        key = source_key(layer_name, "kernel")
        if layer_name not in weights:
            raise errors.MalformedFileError(
                f"no weights for layer {layer_name!r}", path=path, key=key)
        kernel, bias = weights[layer_name]
        layer = trunk.get_layer(layer_name)
        want_k = tuple(layer.kernel.shape)
        want_b = tuple(layer.bias.shape)
        if kernel is None or bias is None:
            raise errors.MalformedFileError(
                f"layer {layer_name!r} lacks a kernel or a bias", path=path,
                key=key)
        if (layer_name == _FIRST_CONV and kernel.ndim == 4
                and kernel.shape[2] == 3 and want_k[2] != 3):
            # RGB source, flow (or other) trunk: cross-modality init. The
            # other dimensions are checked below.
            kernel = adapt_first_conv_kernel(kernel, want_k[2])
        for what, got, want in (("kernel", kernel, want_k),
                                ("bias", bias, want_b)):
            if tuple(got.shape) != want:
                raise errors.MalformedFileError(
                    f"layer {layer_name!r} {what}: expected shape {want}, "
                    f"got {tuple(got.shape)}", path=path,
                    key=source_key(layer_name, what))
        updates.append((layer, kernel, bias))
    for layer, kernel, bias in updates:
        layer.kernel.assign(np.asarray(kernel, layer.kernel.dtype))
        layer.bias.assign(np.asarray(bias, layer.bias.dtype))
    return [layer.name for layer, _, _ in updates]
