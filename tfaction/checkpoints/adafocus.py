"""Loads the AdaFocus authors' PyTorch checkpoints into tfaction's models.

Files are read by tfaction's restricted reader
(`tfaction.checkpoints.torch_zip`: no PyTorch, nothing in the file
executed). Three loaders, and one for keras.applications' weights:

* `load_mobilenet_v2_checkpoint(model, path)`: ImageNet MobileNet-V2
  weights into a `MobileNetV2` (or the one glance trunk of a model), in
  either of the two layouts the authors use: torchvision's
  (`mobilenet_v2-b0353104.pth`, AdaFocus V1's glancer) and the
  `tonylins/pytorch-mobilenet-v2` one that AdaFocus V2 builds
  (`mobilenetv2_1.0-f2a8633.pth.tar`; same network, flat `conv.{0,1,3,
  4,6,7}` indices inside each block and a bare `classifier` Linear).
* `load_adafocus_v1_checkpoint(model, path, parts=None)`: a checkpoint of
  `blackfeather-wang/AdaFocus` (its released `globalcnn.pth.tar`,
  `localcnn.pth.tar`, `128checkpoint.pth.tar`, `128s3_checkpoint.pth.tar`,
  ...) into an `AdaFocusV1`. Such a file holds one state dict per part:

  - `glancer`: `net.features.*` (torchvision MobileNet-V2) -> `glance`,
    `net.classifier.1.*` -> `glance_head`;
  - `focuser`: `net.*` (torchvision ResNet-50) -> `focus`, `net.fc.*` ->
    `focus_head`;
  - `fc`: `gru.{weight,bias}_{ih,hh}_l0`, `fc.*` -> `classifier`
    (`RecurrentClassifier`);
  - `policy`: `state_encoder.0.weight` (1x1 conv), `state_encoder.3.*`
    (Linear), `gru.*`, `actor.0.*`, `critic.0.*` -> `policy`
    (`ActorCritic`).

  (`policy` is None in files trained with random patches; the stage-2 / 3
  files also hold the policy as `focuser` keys `policy.policy.*`, used when
  the `policy` entry is absent, and PPO's behaviour copy
  `policy.policy_old.*`, which is left out.)
* `load_adafocus_v2_checkpoint(model, path)`: a checkpoint of
  `LeapLabTHU/AdaFocusV2` (`actnet_p128_mbv2.pth.tar`, ...;
  entry `state_dict` of the `nn.DataParallel` model, `module.` removed)
  into an `AdaFocusV2`: `global_CNN.*` -> `glance` (MobileNet-V2 in either
  layout, or ResNet-50), `global_CNN_fc.1.*` -> `glance_head`,
  `local_CNN.*` -> `focus`, `local_CNN_fc.1.*` -> `focus_head`,
  `policy_stn.*` -> `policy` (`encoder.0` conv, `encoder.1` BN,
  `encoder.4` Linear, `encoder.5` BN, `gru`, `fc.0`) and `classifier.*`
  -> `classifier` (`mlp.layers.0` Linear, `mlp.layers.1` BN,
  `classifiers.{t}.1` the per-step heads, stacked).
* `load_keras_mobilenet_v2_weights(model, path)`: keras.applications'
  ImageNet MobileNetV2 (`mobilenet_v2_weights_tf_dim_ordering_tf_kernels_
  1.0_224_no_top.h5`, HDF5, by layer name: `keras_mobilenet_v2_name`) into
  a `MobileNetV2(variant="keras")`, the alternative glance weights (a
  different network and other numbers than the authors'). Its ResNet-50
  counterpart for the focus (and the ResNet-50 glance) is
  `tfaction.checkpoints.resnet50.load_keras_resnet50_weights` into a v1
  `ResNet50`.

Conversions: conv weights `[out, in, kh, kw]` -> Keras `[kh, kw, in,
out]`; depthwise `[C, 1, kh, kw]` -> `[kh, kw, C, 1]`; `Linear` weights
transposed; batch norm `weight`, `bias`, `running_mean`, `running_var` ->
`gamma`, `beta`, `moving_mean`, `moving_variance`; GRU gate blocks
reordered from PyTorch's (r, z, n) to Keras' (z, r, n)
(`tfaction.layers.torch_gru.torch_gru_weights`). The policies flatten
their conv features in PyTorch's channels-first order, so the `Linear`
weights load unpermuted.

Loading is all-or-nothing: every tensor is found, converted and
shape-checked before any is assigned; a missing or wrongly shaped tensor
raises `CheckpointError` naming the file and the key, and leaves the model
unchanged. Every tensor of the entries read is either loaded or listed as
unused with a reason (ImageNet classifiers of the backbones, batch-norm
counters, PPO's `policy_old`); any other tensor is an error
(`strict=True`) or reported as unexpected.

Example:

```python
from tfaction.checkpoints.adafocus import load_adafocus_v2_checkpoint
from tfaction.models.adafocus import AdaFocusV2

model = AdaFocusV2(num_classes=200, patch_size=128)
report = load_adafocus_v2_checkpoint(model, "actnet_p128_mbv2.pth.tar")
print(report.summary())
```
"""

import collections
import dataclasses
import os
import re
from collections.abc import Mapping

import keras
import numpy as np

from tfaction import errors
from tfaction.checkpoints.errors import CheckpointError
from tfaction.checkpoints.resnet50 import keras_unused
from tfaction.checkpoints.resnet50 import load_keras_application_weights
from tfaction.checkpoints.resnet50 import read_keras_application_weights
from tfaction.checkpoints.resnet50 import torchvision_targets
from tfaction.checkpoints.state_dicts import strip_parallel_prefix
from tfaction.checkpoints.state_dicts import summary
from tfaction.checkpoints.torch_zip import load_torch_checkpoint
from tfaction.layers.actor_critic import ActorCritic
from tfaction.layers.policy_stn import PolicySTN
from tfaction.layers.pooling_classifier import PoolingClassifier
from tfaction.layers.recurrent_classifier import RecurrentClassifier
from tfaction.layers.torch_gru import torch_gru_weights
from tfaction.models.backbones.mobilenet_v2 import MobileNetV2
from tfaction.models.backbones.resnet50 import ResNet50

# Reasons given for unused tensors.
IMAGENET_CLASSIFIER = "ImageNet classifier of the backbone, not used"
BATCH_COUNTER = "batch-norm counter num_batches_tracked, not needed"
POLICY_OLD = "PPO's behaviour copy policy_old (equals policy after updates)"
POLICY_IN_FOCUSER = "the policy inside the focuser (part 'policy')"
UNEXPECTED = "unexpected tensor (not part of the AdaFocus module)"
# keras.applications MobileNetV2's classifier layer.
KERAS_TOP = "predictions"

V1_PARTS = ("glancer", "focuser", "fc", "policy")
LAYOUTS = ("torchvision", "tonylins")
_BN_LEAVES = ("weight", "bias", "running_mean", "running_var")
# Inside each inverted-residual block: torchvision's nested module path ->
# the flat index of tonylins' `nn.Sequential` (expand ratio 1 / > 1).
_TONYLINS_RATIO_1 = {"0.0": "0", "0.1": "1", "1": "3", "2": "4"}
_TONYLINS_EXPANDED = {"0.0": "0", "0.1": "1", "1.0": "3", "1.1": "4",
                      "2": "6", "3": "7"}
# Inside each block: our layer-name tail -> keras.applications' suffix
# (expand ratio 1 / > 1).
_KERAS_RATIO_1 = {"0_0": "depthwise", "0_1": "depthwise_BN",
                  "1": "project", "2": "project_BN"}
_KERAS_EXPANDED = {"0_0": "expand", "0_1": "expand_BN", "1_0": "depthwise",
                   "1_1": "depthwise_BN", "2": "project", "3": "project_BN"}


@dataclasses.dataclass(frozen=True)
class AdaFocusImport:
    """What an AdaFocus weight import loaded and what it left unused.

    Attributes:
        path: the file read (None when a loaded checkpoint was passed).
        source: where the weights were found (entries, prefix, layout).
        parts: the parts loaded, e.g. ("glance", "glance_head", "focus").
        loaded: keys (as in the file, without `module.`; V1:
            `<entry>/<key>`) of the tensors assigned, in model order.
        unused: `{key: reason}` for every other tensor of the entries read
            (same naming).
    """

    path: object
    source: str
    parts: tuple
    loaded: tuple
    unused: dict

    def summary(self):
        """One line: parts and tensors loaded, unused tensors per reason.

        Example:

        >>> AdaFocusImport("m.pth", "entry 'state_dict'", ("policy",),
        ...                ("a", "b"), {"c": BATCH_COUNTER}).summary()
        "m.pth (entry 'state_dict'): policy: 2 tensors loaded; unused: 1 \
batch-norm counter num_batches_tracked, not needed"
        """
        counts = collections.Counter(self.unused.values())
        unused = "; ".join(f"{n} {why}" for why, n in sorted(counts.items()))
        return (f"{self.path} ({self.source}): {', '.join(self.parts)}: "
                f"{len(self.loaded)} tensors loaded; unused: "
                f"{unused or 'none'}")


@dataclasses.dataclass
class _Entry:
    """Tensors `keys` of the file -> `variables`, through `convert`."""

    part: str
    keys: tuple
    variables: tuple
    convert: object  # list of arrays -> list of arrays


# --- conversions -------------------------------------------------------------


def _conv(arrays):
    return [arrays[0].transpose(2, 3, 1, 0)]


def _depthwise(arrays):
    return [arrays[0].transpose(2, 3, 0, 1)]


def _same(arrays):
    return list(arrays)


def _dense(arrays):
    return [arrays[0].T, arrays[1]]


def _gru(arrays):
    return torch_gru_weights(*arrays)


def _stack_heads(arrays):
    half = len(arrays) // 2
    return [np.stack([w.T for w in arrays[:half]]), np.stack(arrays[half:])]


# --- per-module plans --------------------------------------------------------


def _bn_entry(part, layer, key):
    return _Entry(part, tuple(f"{key}.{leaf}" for leaf in _BN_LEAVES),
                  (layer.gamma, layer.beta, layer.moving_mean,
                   layer.moving_variance), _same)


def _dense_entry(part, layer, key):
    return _Entry(part, (f"{key}.weight", f"{key}.bias"),
                  (layer.kernel, layer.bias), _dense)


def _gru_entry(part, gru, key):
    cell = gru.cell
    return _Entry(part, tuple(f"{key}.{name}" for name in (
        "weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")),
        (cell.kernel, cell.recurrent_kernel, cell.bias), _gru)


def _block_ratios(model):
    """`{block index: True if the expand ratio is 1}` of a MobileNetV2."""
    ratios = {}
    for layer in model.layers:
        match = re.fullmatch(r"features_(\d+)_conv_0_0", layer.name)
        if match:
            ratios[int(match.group(1))] = isinstance(
                layer, keras.layers.DepthwiseConv2D)
    return ratios


def mobilenet_v2_targets(model, layout="torchvision"):
    """The variables of a `MobileNetV2` under their PyTorch names.

    Args:
        model: a `MobileNetV2`.
        layout: "torchvision" (`features.3.conv.1.0.weight`, ...) or
            "tonylins" (`features.3.conv.3.weight`, ...).

    Returns:
        `{key: (variable, "conv" | "depthwise" | "bn")}` in model order;
        a batch norm contributes its four keys with kind "bn".

    Example:

    >>> model = MobileNetV2(width_multiplier=0.25)
    >>> list(mobilenet_v2_targets(model))[:2]
    ['features.0.0.weight', 'features.0.1.weight']
    >>> "features.2.conv.3.weight" in mobilenet_v2_targets(model, "tonylins")
    True
    """
    if layout not in LAYOUTS:
        raise ValueError(f"MobileNet-V2 layout must be one of {LAYOUTS}, "
                         f"got {layout!r}")
    ratios = _block_ratios(model)
    targets = {}

    def module_of(name):
        module = name.replace("_", ".")
        match = re.fullmatch(r"features\.(\d+)\.conv\.(.+)", module)
        if layout == "torchvision" or not match:
            return module
        block, inner = int(match.group(1)), match.group(2)
        table = _TONYLINS_RATIO_1 if ratios[block] else _TONYLINS_EXPANDED
        return f"features.{block}.conv.{table[inner]}"

    for layer in model.layers:
        if isinstance(layer, keras.layers.DepthwiseConv2D):
            targets[module_of(layer.name) + ".weight"] = (
                layer.kernel, "depthwise")
        elif isinstance(layer, keras.layers.Conv2D):
            targets[module_of(layer.name) + ".weight"] = (layer.kernel,
                                                          "conv")
        elif isinstance(layer, keras.layers.BatchNormalization):
            module = module_of(layer.name)
            for leaf, variable in zip(_BN_LEAVES, (
                    layer.gamma, layer.beta, layer.moving_mean,
                    layer.moving_variance)):
                targets[f"{module}.{leaf}"] = (variable, "bn")
    return targets


def _mobilenet_entries(part, model, prefix, layout):
    convert = {"conv": _conv, "depthwise": _depthwise, "bn": _same}
    return [_Entry(part, (prefix + key,), (variable,), convert[kind])
            for key, (variable, kind) in mobilenet_v2_targets(
                model, layout).items()]


def _resnet_entries(part, model, prefix):
    return [_Entry(part, (prefix + key,), (variable,),
                   _conv if len(variable.shape) == 4 else _same)
            for key, variable in torchvision_targets(model).items()]


def _check_torchvision_mobilenet(network, part):
    if network.variant != "torchvision":
        raise errors.ConfigError(
            f"the {part} trunk {network.name!r} is a MobileNet-V2 of variant "
            f"{network.variant!r}; PyTorch checkpoints hold torchvision's "
            f"layout: build it with variant='torchvision', or load "
            f"keras.applications weights with load_keras_mobilenet_v2_"
            f"weights")


def _trunk_entries(part, trunk, prefix, weights, path):
    """Entries of a glance / focus trunk under `prefix`; its description."""
    if isinstance(trunk, MobileNetV2):
        _check_torchvision_mobilenet(trunk, part)
        layout = _mobilenet_layout(weights, prefix, path)
        return _mobilenet_entries(part, trunk, prefix, layout), \
            f"{prefix}* ({layout} MobileNet-V2)"
    if isinstance(trunk, ResNet50):
        if trunk.variant != "v1.5":
            raise errors.ConfigError(
                f"the {part} trunk is a ResNet-50 {trunk.variant}; AdaFocus "
                f"checkpoints hold torchvision (v1.5) weights")
        return _resnet_entries(part, trunk, prefix), \
            f"{prefix}* (torchvision ResNet-50)"
    raise errors.ConfigError(
        f"the model's {part} trunk {trunk.name!r} ({type(trunk).__name__}) "
        f"has no counterpart in AdaFocus checkpoints; build the model with "
        f"a 'mobilenet_v2' or 'resnet50' {part}")


def _actor_critic_entries(part, layer, prefix):
    return [
        _Entry(part, (prefix + "state_encoder.0.weight",),
               (layer.state_conv.kernel,), _conv),
        _dense_entry(part, layer.state_dense, prefix + "state_encoder.3"),
        _gru_entry(part, layer.gru, prefix + "gru"),
        _dense_entry(part, layer.actor, prefix + "actor.0"),
        _dense_entry(part, layer.critic, prefix + "critic.0")]


def _policy_stn_entries(part, layer, prefix):
    return [
        _Entry(part, (prefix + "encoder.0.weight",),
               (layer.state_conv.kernel,), _conv),
        _bn_entry(part, layer.conv_bn, prefix + "encoder.1"),
        _dense_entry(part, layer.state_dense, prefix + "encoder.4"),
        _bn_entry(part, layer.dense_bn, prefix + "encoder.5"),
        _gru_entry(part, layer.gru, prefix + "gru"),
        _dense_entry(part, layer.location, prefix + "fc.0")]


def _recurrent_classifier_entries(part, layer, prefix):
    return [_gru_entry(part, layer.gru, prefix + "gru"),
            _dense_entry(part, layer.classifier, prefix + "fc")]


def _pooling_classifier_entries(part, layer, prefix):
    heads = range(layer.num_segments)
    return [
        _dense_entry(part, layer.embedding, prefix + "mlp.layers.0"),
        _bn_entry(part, layer.embedding_bn, prefix + "mlp.layers.1"),
        _Entry(part,
               tuple(f"{prefix}classifiers.{t}.1.weight" for t in heads)
               + tuple(f"{prefix}classifiers.{t}.1.bias" for t in heads),
               (layer.head_kernel, layer.head_bias), _stack_heads)]


def _expect(layer, cls, what):
    if not isinstance(layer, cls):
        raise errors.ConfigError(f"expected the model's {what} to be a "
                                 f"{cls.__name__}, got "
                                 f"{type(layer).__name__}")
    return layer


# --- finding things in a checkpoint ------------------------------------------


def _read(checkpoint):
    if isinstance(checkpoint, Mapping):
        return None, checkpoint
    path = os.fspath(checkpoint)
    return path, load_torch_checkpoint(path)


def _is_state_dict(value):
    return (isinstance(value, Mapping) and len(value) > 0
            and all(isinstance(k, str) and isinstance(v, np.ndarray)
                    for k, v in value.items()))


def _entry(checkpoint, key, path):
    """The state dict under `key`, `module.` removed; None if absent."""
    if not isinstance(checkpoint, Mapping):
        raise CheckpointError(f"expected a dict of entries, the file holds "
                              f"{'; '.join(summary(checkpoint))}", path=path)
    value = checkpoint.get(key)
    if value is None:
        return None
    if not _is_state_dict(value):
        raise CheckpointError("expected a state dict (name -> tensor)",
                              path=path, key=key)
    return strip_parallel_prefix(value)


def _mobilenet_layout(weights, prefix, path):
    if prefix + "features.1.conv.0.0.weight" in weights:
        return "torchvision"
    if prefix + "features.1.conv.0.weight" in weights:
        return "tonylins"
    raise CheckpointError(
        f"no MobileNet-V2 under {prefix!r}: neither "
        f"{prefix}features.1.conv.0.0.weight (torchvision) nor "
        f"{prefix}features.1.conv.0.weight (tonylins) is present",
        path=path, key=prefix + "features.1.conv.0.0.weight")


def _plan(entries, weights, path):
    """`[(variable, value)]` and the keys used, after every check."""
    updates, loaded = [], []
    for entry in entries:
        for key in entry.keys:
            if key not in weights:
                raise CheckpointError(
                    f"tensor missing (needed by the model's {entry.part})",
                    path=path, key=key)
        arrays = [np.asarray(weights[key]) for key in entry.keys]
        try:
            values = entry.convert(arrays)
        except (ValueError, IndexError) as e:
            raise CheckpointError(
                f"cannot convert for the model's {entry.part}: {e} (shapes "
                f"{[a.shape for a in arrays]})", path=path,
                key=entry.keys[0]) from None
        for variable, value in zip(entry.variables, values):
            if tuple(value.shape) != tuple(variable.shape):
                shapes = ", ".join(f"{k} {tuple(a.shape)}" for k, a in zip(
                    entry.keys, arrays))
                raise CheckpointError(
                    f"{entry.part}: the model's {variable.path} has shape "
                    f"{tuple(variable.shape)}, the file's tensors convert "
                    f"to {tuple(value.shape)} ({shapes[:300]})", path=path,
                    key=entry.keys[0])
            updates.append((variable, value))
        loaded.extend(entry.keys)
    return updates, loaded


def _unused(weights, loaded, reason_of, strict, path, where):
    used, unused = set(loaded), {}
    for key in weights:
        if key in used:
            continue
        reason = reason_of(key)
        if reason is None:
            if strict:
                raise CheckpointError(
                    f"unexpected tensor in {where} (pass strict=False to "
                    f"ignore it)", path=path, key=key)
            reason = UNEXPECTED
        unused[key] = reason
    return unused


def _assign(updates):
    for variable, value in updates:
        variable.assign(np.asarray(value, dtype=variable.dtype))


def _common_reason(key):
    if key.endswith(".num_batches_tracked"):
        return BATCH_COUNTER
    return None


# --- public loaders -----------------------------------------------------------


def find_mobilenet_v2(model):
    """The one `MobileNetV2` in `model` (itself, or nested in it).

    Raises:
        ConfigError: none or several found.
    """
    found = [layer for layer in model._flatten_layers(include_self=True,
                                                      recursive=True)
             if isinstance(layer, MobileNetV2)]
    if len(found) != 1:
        raise errors.ConfigError(
            f"expected one tfaction MobileNetV2 in {model.name!r}, found "
            f"{len(found)}; pass the MobileNetV2 itself")
    return found[0]


def load_mobilenet_v2_checkpoint(model, checkpoint, *, key=None,
                                 prefix=None, strict=True):
    """ImageNet MobileNet-V2 weights (either layout) into a model.

    Args:
        model: a `MobileNetV2`, or a model containing exactly one (e.g. an
            `AdaFocusV1` / `AdaFocusV2` with a MobileNet-V2 glance).
        checkpoint: local path or URL of the `torch.save` file, or the
            object `load_torch_checkpoint` returned.
        key: entry holding the state dict (None: the bare file, or the
            first of `state_dict`, `model` present).
        prefix: key prefix of the network (None: found from
            `<prefix>features.0.0.weight`).
        strict: unknown tensors under the prefix are an error.

    Returns:
        An `AdaFocusImport` (unused: the ImageNet `classifier`, counters).

    Raises:
        ConfigError: no (or several) `MobileNetV2` in `model`, or one of
            the "keras" variant.
        CheckpointError: no MobileNet-V2 found, a tensor missing or of the
            wrong shape (the model is then unchanged).

    Example:

    ```python
    glance = build_mobilenet_v2()
    load_mobilenet_v2_checkpoint(glance, "mobilenet_v2-b0353104.pth")
    ```
    """
    network = find_mobilenet_v2(model)
    _check_torchvision_mobilenet(network, "glance")
    path, loaded = _read(checkpoint)
    if key is not None:
        weights, where = _entry(loaded, key, path), f"entry {key!r}"
        if weights is None:
            raise CheckpointError("no such entry", path=path, key=key)
    elif _is_state_dict(loaded):
        weights, where = strip_parallel_prefix(loaded), "the bare state dict"
    else:
        found = [k for k in ("state_dict", "model")
                 if isinstance(loaded, Mapping) and k in loaded]
        if not found:
            raise CheckpointError(
                f"no state dict: the file holds "
                f"{'; '.join(summary(loaded))[:600]}", path=path)
        weights, where = _entry(loaded, found[0], path), \
            f"entry {found[0]!r}"
    if prefix is None:
        prefixes = sorted(k[:-len("features.0.0.weight")] for k in weights
                          if k.endswith("features.0.0.weight"))
        if len(prefixes) != 1:
            raise CheckpointError(
                f"expected one MobileNet-V2 (a key ending in "
                f"features.0.0.weight), found prefixes {prefixes}",
                path=path)
        prefix = prefixes[0]
    layout = _mobilenet_layout(weights, prefix, path)
    entries = _mobilenet_entries("glance", network, prefix, layout)
    updates, keys = _plan(entries, weights, path)

    def reason_of(name):
        if not name.startswith(prefix):
            return "outside the MobileNet-V2 prefix"
        if name[len(prefix):].startswith("classifier."):
            return IMAGENET_CLASSIFIER
        return _common_reason(name)

    unused = _unused(weights, keys, reason_of, strict, path, where)
    _assign(updates)
    return AdaFocusImport(path, f"{where}, prefix {prefix!r} ({layout})",
                          ("glance",), tuple(keys), dict(sorted(
                              unused.items())))


def keras_mobilenet_v2_name(layer_name, expand_ratio_one=False):
    """The keras.applications MobileNetV2 layer of a `MobileNetV2` layer.

    Args:
        layer_name: a conv, depthwise conv or batch-norm layer name of
            `MobileNetV2` (torchvision's module names, `.` -> `_`).
        expand_ratio_one: the layer's block has expand ratio 1 (no 1x1
            expansion; block 1 of the standard table).

    Returns:
        The keras.applications layer name.

    Raises:
        ValueError: not a conv or batch-norm layer name of `MobileNetV2`.

    Example:

    >>> keras_mobilenet_v2_name("features_0_1")
    'bn_Conv1'
    >>> keras_mobilenet_v2_name("features_1_conv_1", expand_ratio_one=True)
    'expanded_conv_project'
    >>> keras_mobilenet_v2_name("features_3_conv_1_0")
    'block_2_depthwise'
    >>> keras_mobilenet_v2_name("features_18_1")
    'Conv_1_bn'
    """
    match = re.fullmatch(r"features_(\d+)_conv_(.+)", layer_name)
    if match:
        block, tail = int(match.group(1)), match.group(2)
        table = _KERAS_RATIO_1 if expand_ratio_one else _KERAS_EXPANDED
        if tail in table:
            prefix = "expanded_conv_" if block == 1 else f"block_{block - 1}_"
            return prefix + table[tail]
    match = re.fullmatch(r"features_(\d+)_([01])", layer_name)
    if match:
        stem = match.group(1) == "0"
        return (("Conv1", "bn_Conv1") if stem else ("Conv_1", "Conv_1_bn"))[
            int(match.group(2))]
    raise ValueError(f"{layer_name!r} is not a conv or batch-norm layer of "
                     f"tfaction's MobileNetV2")


def _keras_mobilenet_v2(**kwargs):
    return keras.applications.MobileNetV2(weights=None, alpha=1.0, **kwargs)


def load_keras_mobilenet_v2_weights(model, path):
    """keras.applications' MobileNetV2 weights into a "keras" `MobileNetV2`.

    Reads the ImageNet file Keras downloads for `alpha=1.0`
    (`mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5`,
    or the one with the classifier) by layer name
    (`keras_mobilenet_v2_name`), and any other file Keras loads into
    `keras.applications.MobileNetV2(alpha=1.0)` (Keras 3 `.weights.h5`,
    also renamed to the download's name, `.keras`) through such a model
    (`tfaction.checkpoints.resnet50.read_keras_application_weights`).

    The weights expect keras.applications' "tf" input (`x / 127.5 - 1`);
    build the model with `input_normalization="imagenet"` to feed it
    torchvision-normalised RGB.

    Args:
        model: a `MobileNetV2(variant="keras", width_multiplier=1.0)`, or a
            model containing exactly one (an `AdaFocusV2` with a keras
            glance).
        path: the weights file, local or remote.

    Returns:
        An `AdaFocusImport` (names like "block_1_expand/kernel"; unused:
        the classifier `predictions`).

    Raises:
        ConfigError: no (or several) `MobileNetV2`, or one of the
            "torchvision" variant (keras.applications pads and normalises
            differently).
        CheckpointError: missing or unreadable file, a weight missing or
            of the wrong shape (naming the file, the weight and both
            shapes); the model is then unchanged.

    Example:

    ```python
    glance = build_mobilenet_v2(variant="keras",
                                input_normalization="imagenet")
    load_keras_mobilenet_v2_weights(
        glance,
        "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5")
    ```

    Reference:
        keras.applications `mobilenet_v2.py` (layer names, padding).
    """
    network = find_mobilenet_v2(model)
    if network.variant != "keras":
        raise errors.ConfigError(
            f"load_keras_mobilenet_v2_weights loads keras.applications' "
            f"layout, but {network.name!r} is variant {network.variant!r}; "
            f"build it with variant='keras'")
    path = os.fspath(path)
    ratios = _block_ratios(network)

    def name_of(layer_name):
        match = re.match(r"features_(\d+)_conv_", layer_name)
        return keras_mobilenet_v2_name(
            layer_name, bool(match) and ratios[int(match.group(1))])

    needed = [name_of(layer.name) for layer in network.layers
              if isinstance(layer, (keras.layers.Conv2D,
                                    keras.layers.DepthwiseConv2D,
                                    keras.layers.BatchNormalization))]
    stored = read_keras_application_weights(path, _keras_mobilenet_v2,
                                            needed, "MobileNetV2")
    loaded, used = load_keras_application_weights(network.layers, name_of,
                                                  stored, path)
    unused = keras_unused(stored, used, lambda layer_name: (
        IMAGENET_CLASSIFIER if layer_name == KERAS_TOP else UNEXPECTED))
    return AdaFocusImport(path, "keras.applications MobileNetV2",
                          ("glance",), tuple(loaded), unused)


def load_adafocus_v1_checkpoint(model, checkpoint, *, parts=None,
                                strict=True):
    """An AdaFocus (V1) authors' checkpoint into an `AdaFocusV1`.

    Args:
        model: an `AdaFocusV1` with a "mobilenet_v2" glance and a
            "resnet50" focus (for the parts loaded), sized as the file.
        checkpoint: local path or URL of the `.pth.tar`, or the object
            `load_torch_checkpoint` returned.
        parts: entries to load, a subset of `V1_PARTS` ("glancer",
            "focuser", "fc", "policy"); None: every one the file holds
            (the policy only where it is not None). The authors' stage 1
            combines "glancer" of `globalcnn.pth.tar` with "focuser" of
            `localcnn.pth.tar`: call this twice.
        strict: a tensor of a read entry that is neither loaded nor known
            to be unused is an error.

    Returns:
        An `AdaFocusImport`.

    Raises:
        ConfigError: unknown parts, or a trunk without PyTorch counterpart.
        CheckpointError: a requested entry is absent, a tensor missing,
            unexpected or of the wrong shape (nothing is then assigned).

    Example:

    ```python
    model = AdaFocusV1(num_classes=200, patch_size=128)
    load_adafocus_v1_checkpoint(model, "128s3_checkpoint.pth.tar")
    ```
    """
    path, loaded = _read(checkpoint)
    if parts is None:
        requested = None
    else:
        requested = tuple(parts)
        unknown = [p for p in requested if p not in V1_PARTS]
        if unknown or not requested:
            raise errors.ConfigError(f"unknown AdaFocus V1 parts {unknown}; "
                                     f"expected a subset of {V1_PARTS}")
    entries_of = {name: _entry(loaded, name, path) for name in V1_PARTS}
    focuser = entries_of["focuser"]
    policy_source, policy_prefix = "policy", ""
    if entries_of["policy"] is None and focuser is not None and any(
            k.startswith("policy.policy.") for k in focuser):
        policy_source, policy_prefix = "focuser", "policy.policy."
    available = [p for p in V1_PARTS
                 if (entries_of[p] is not None if p != "policy"
                     else entries_of[policy_source] is not None
                     and any(k.startswith(policy_prefix + "actor.")
                             for k in entries_of[policy_source]))]
    if requested is None:
        requested = tuple(available)
        if not requested:
            raise CheckpointError(
                f"no AdaFocus V1 entry ({', '.join(V1_PARTS)}) in the file;"
                f" it holds {'; '.join(summary(loaded))[:600]}", path=path)
    for part in requested:
        if part not in available:
            raise CheckpointError("entry absent (or None) in the file",
                                  path=path, key=part)

    updates, keys, unused, sources, names = [], [], {}, [], []
    plans = collections.defaultdict(list)   # entry name -> [_Entry]
    if "glancer" in requested:
        trunk_entries, where = _trunk_entries(
            "glance", model.glance, "net.", entries_of["glancer"], path)
        plans["glancer"] += trunk_entries + [_dense_entry(
            "glance_head", model.glance_head, "net.classifier.1")]
        sources.append(f"glancer: {where}")
        names += ["glance", "glance_head"]
    if "focuser" in requested:
        trunk_entries, where = _trunk_entries(
            "focus", model.focus, "net.", focuser, path)
        plans["focuser"] += trunk_entries + [_dense_entry(
            "focus_head", model.focus_head, "net.fc")]
        sources.append(f"focuser: {where}")
        names += ["focus", "focus_head"]
    if "fc" in requested:
        plans["fc"] += _recurrent_classifier_entries(
            "classifier", _expect(model.classifier, RecurrentClassifier,
                                  "classifier"), "")
        sources.append("fc")
        names.append("classifier")
    if "policy" in requested:
        plans[policy_source] += _actor_critic_entries(
            "policy", _expect(model.policy, ActorCritic, "policy"),
            policy_prefix)
        sources.append(f"policy from {policy_source!r}"
                       + (f" ({policy_prefix}*)" if policy_prefix else ""))
        names.append("policy")

    for entry_name, entries in plans.items():
        weights = entries_of[entry_name]
        entry_updates, entry_keys = _plan(entries, weights, path)
        updates += entry_updates
        keys += [f"{entry_name}/{k}" for k in entry_keys]

        def reason_of(name):
            if name.startswith("policy.policy_old."):
                return POLICY_OLD
            if name.startswith("policy.policy."):
                return POLICY_IN_FOCUSER
            return _common_reason(name)

        for name, reason in _unused(weights, entry_keys, reason_of, strict,
                                    path, f"entry {entry_name!r}").items():
            unused[f"{entry_name}/{name}"] = reason
    _assign(updates)
    return AdaFocusImport(path, "; ".join(sources), tuple(names),
                          tuple(keys), dict(sorted(unused.items())))


def load_adafocus_v2_checkpoint(model, checkpoint, *, key="state_dict",
                                strict=True):
    """An AdaFocus V2 authors' checkpoint into an `AdaFocusV2`.

    Args:
        model: an `AdaFocusV2` with a "mobilenet_v2" or "resnet50" glance
            and a "resnet50" focus, sized as the file (classes, policy and
            classifier widths, `num_frames` heads).
        checkpoint: local path or URL of the `.pth.tar`, or the object
            `load_torch_checkpoint` returned.
        key: the entry holding the state dict ("state_dict"); None: the
            file is a bare state dict.
        strict: a tensor that is neither loaded nor known to be unused is
            an error.

    Returns:
        An `AdaFocusImport`.

    Raises:
        ConfigError: a trunk without PyTorch counterpart, or layers of
            other types.
        CheckpointError: the entry is absent, a tensor missing, unexpected
            or of the wrong shape (nothing is then assigned).

    Example:

    ```python
    model = AdaFocusV2(num_classes=200, patch_size=128)
    load_adafocus_v2_checkpoint(model, "actnet_p128_mbv2.pth.tar")
    ```
    """
    path, loaded = _read(checkpoint)
    if key is None:
        if not _is_state_dict(loaded):
            raise CheckpointError("expected a bare state dict", path=path)
        weights, where = strip_parallel_prefix(loaded), "the bare state dict"
    else:
        weights, where = _entry(loaded, key, path), f"entry {key!r}"
        if weights is None:
            raise CheckpointError(
                f"no such entry; the file holds "
                f"{'; '.join(summary(loaded))[:600]}", path=path, key=key)
    glance_entries, glance_where = _trunk_entries(
        "glance", model.glance, "global_CNN.", weights, path)
    focus_entries, focus_where = _trunk_entries(
        "focus", model.focus, "local_CNN.", weights, path)
    entries = (
        glance_entries
        + [_dense_entry("glance_head", model.glance_head, "global_CNN_fc.1")]
        + focus_entries
        + [_dense_entry("focus_head", model.focus_head, "local_CNN_fc.1")]
        + _policy_stn_entries("policy", _expect(model.policy, PolicySTN,
                                                "policy"), "policy_stn.")
        + _pooling_classifier_entries(
            "classifier", _expect(model.classifier, PoolingClassifier,
                                  "classifier"), "classifier."))
    updates, keys = _plan(entries, weights, path)

    def reason_of(name):
        if name.startswith(("global_CNN.classifier.", "global_CNN.fc.",
                            "local_CNN.fc.")):
            return IMAGENET_CLASSIFIER
        return _common_reason(name)

    unused = _unused(weights, keys, reason_of, strict, path, where)
    _assign(updates)
    return AdaFocusImport(
        path, f"{where}: glance {glance_where}, focus {focus_where}",
        ("glance", "glance_head", "focus", "focus_head", "policy",
         "classifier"), tuple(keys), dict(sorted(unused.items())))
