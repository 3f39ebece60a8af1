"""Loads pretrained ResNet-50 weights into `tfaction`'s `ResNet50`, by name.

Two sources:

* **PyTorch `.pth` files** of a torchvision ResNet-50 (v1.5) and of the
  self-supervised ones built on it, read by tfaction's restricted reader
  (`tfaction.checkpoints.torch_zip`: no PyTorch, nothing in the file
  executed) - `load_resnet50_checkpoint`. The ResNet-50 is found in the
  file automatically:

  - a bare `state_dict` (torchvision's `resnet50-0676ba61.pth` /
    `resnet50-19c8e357.pth`), or one nested under an entry such as
    `state_dict`, `model`, `model_state` or `online_network_state_dict`
    (any depth up to 3);
  - under any key prefix: `module.` (DataParallel), `encoder.`,
    `backbone.`, `module.encoder.` (BYOL as released for CARL,
    `BYOL_1000.pth`, entry `model`), `module.encoder_q.` (MoCo v2, entry
    `state_dict`), `encoder.` (SimCLR from lightning-bolts), `online_
    encoder.net.` ...: a prefix `P` is a ResNet-50 when `P + "conv1.weight"`
    and `P + "layer1.0.conv1.weight"` are present;
  - with the modules of an `nn.Sequential(*resnet.children())` (`P + "0.
    weight"` = conv1, `1.` = bn1, `4.` ... `7.` = layer1 ... layer4, `9.`
    = fc), as some BYOL ports save their encoder;
  - split as CARL's own model saves it (`model_state` of its
    checkpoints): `backbone.` = the children up to layer3 (or layer2 /
    layer4) and `res_finetune.` = the remaining stage(s).

  When several ResNet-50s are present, momentum / target copies (a prefix
  component `encoder_k`, `momentum_encoder`, `target_encoder`,
  `target_network`, `target_net`, `teacher`, `key_encoder`) are left out,
  which picks the query / online encoder that the CARL authors' loaders
  keep (`encoder_q` for MoCo, `encoder` for BYOL and SimCLR); if that
  still leaves several, pass `key=` / `prefix=`.

* **keras.applications' `ResNet50` weights** (`resnet50_weights_tf_dim_
  ordering_tf_kernels[_notop].h5`, legacy HDF5 layout), for the `"v1"`
  variant - `load_keras_resnet50_weights`. Layer `conv{s+1}_block{b+1}_
  {k}_conv` / `_bn` goes to `layer{s}_{b}_conv{k}` / `bn{k}`, `_0_conv` /
  `_0_bn` to the projection shortcut `layer{s}_0_downsample_0` / `_1`,
  `conv1_conv` / `conv1_bn` to `conv1` / `bn1`. Other layouts (Keras 3
  `.weights.h5`, also renamed to the download's name, `.keras`, legacy
  files with other layer names) are read through a `keras.applications.
  ResNet50` model (`read_keras_application_weights`, shared with the
  MobileNetV2 loader of `tfaction.checkpoints.adafocus`). The weights
  expect keras.applications' "caffe" input; a model built with
  `input_normalization="imagenet"` converts torchvision-normalised RGB to
  it.

Conversion: PyTorch conv weights `[out, in, kh, kw]` become Keras kernels
`[kh, kw, in, out]`; batch norm `weight`, `bias`, `running_mean`,
`running_var` become `gamma`, `beta`, `moving_mean`, `moving_variance`
(the same numbers: both normalise by `sqrt(var + eps)` with the model's
epsilon 1e-5). Loading is all-or-nothing: every weight the model needs is
found and shape-checked before any is assigned; a missing, unexpected or
wrongly shaped tensor raises `CheckpointError` naming the file and the key,
and leaves the model unchanged.

The report (`ResNet50Import`) lists what was loaded and every tensor of
the selected state dict that was not, with the reason: the ImageNet
classifier `fc.weight` / `fc.bias` (not built), the batch-norm counters
`num_batches_tracked` (not needed), stages after the model's endpoint, and
the other entries of the state dict (a BYOL projector / predictor, a
momentum encoder, CARL's embedder ...).

Example:

```python
from tfaction.checkpoints.resnet50 import load_resnet50_checkpoint
from tfaction.models.backbones.resnet50 import build_resnet50

encoder = build_resnet50(frozen_stages=3)           # CARL's frame encoder
report = load_resnet50_checkpoint(encoder, "resnet50-0676ba61.pth")
print(report.summary())  # 265 tensors loaded; unused: 53 counters, 2 fc
load_resnet50_checkpoint(encoder, "BYOL_1000.pth")  # module.encoder. found
```
"""

import collections
import contextlib
import dataclasses
import os
import tempfile
from collections.abc import Mapping

import h5py
import keras
import numpy as np

from tfaction import errors
from tfaction.checkpoints.errors import CheckpointError
from tfaction.checkpoints.state_dicts import summary
from tfaction.checkpoints.torch_zip import load_torch_checkpoint
from tfaction.data import filesystems
from tfaction.layers.frozen_batch_normalization import FrozenBatchNormalization
from tfaction.models.backbones.resnet50 import ENDPOINTS
from tfaction.models.backbones.resnet50 import EXPANSION
from tfaction.models.backbones.resnet50 import STAGES
from tfaction.models.backbones.resnet50 import ResNet50

# Reasons given for unused tensors.
CLASSIFIER = "ImageNet classifier, not built by tfaction"
BATCH_COUNTER = "batch-norm counter num_batches_tracked, not needed"
NOT_IN_MODEL = "ResNet-50 stage after the model's endpoint"
OUTSIDE = "not part of the selected ResNet-50"
UNEXPECTED = "unexpected name under the ResNet-50 prefix"

# Prefix components of momentum / target copies, left out when a file holds
# several ResNet-50s.
MOMENTUM_NAMES = ("encoder_k", "momentum_encoder", "target_encoder",
                  "target_network", "target_net", "teacher", "key_encoder")
# torchvision ResNet children, in `children()` order (relu, maxpool and
# avgpool have no tensors).
_CHILDREN = ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3",
             "layer4", "avgpool", "fc")
_TORCHVISION_SIGNATURE = ("conv1.weight", "layer1.0.conv1.weight")
_SEQUENTIAL_SIGNATURE = ("0.weight", "4.0.conv1.weight")
_CARL_BACKBONE, _CARL_FINETUNE = "backbone.", "res_finetune."
# PyTorch batch-norm tensor -> Keras weight.
_BN_LEAVES = (("weight", "gamma"), ("bias", "beta"),
              ("running_mean", "moving_mean"),
              ("running_var", "moving_variance"))
# keras.applications weight names of a batch norm.
_KERAS_BN_LEAVES = ("gamma", "beta", "moving_mean", "moving_variance")
_KERAS_TOP = "predictions"


@dataclasses.dataclass(frozen=True)
class ResNet50Import:
    """What a ResNet-50 weight import loaded and what it left unused.

    Attributes:
        path: the file read (None when a loaded checkpoint was passed).
        source: where the weights were found, e.g. "entry 'model', prefix
            'module.encoder.' (torchvision names)".
        loaded: names (in the file) of the tensors assigned, in model order.
        unused: `{name: reason}` for every other tensor of the selected
            state dict (or weight of the HDF5 file); the reasons are the
            module constants `CLASSIFIER`, `BATCH_COUNTER`, `NOT_IN_MODEL`,
            `OUTSIDE`, `UNEXPECTED`.
    """

    path: object
    source: str
    loaded: tuple
    unused: dict

    @property
    def unexpected(self):
        """Unused tensors under the ResNet-50 prefix that are not ResNet-50
        (only with `strict=False`)."""
        return sorted(k for k, why in self.unused.items() if why == UNEXPECTED)

    def summary(self):
        """One line: how many tensors were loaded, unused per reason.

        Example:

        >>> ResNet50Import("r.pth", "bare state dict", ("a", "b"),
        ...                {"fc.weight": CLASSIFIER}).summary()
        'r.pth (bare state dict): 2 tensors loaded; unused: 1 ImageNet \
classifier, not built by tfaction'
        """
        counts = collections.Counter(self.unused.values())
        unused = "; ".join(f"{n} {why}" for why, n in sorted(counts.items()))
        return (f"{self.path} ({self.source}): {len(self.loaded)} tensors "
                f"loaded; unused: {unused or 'none'}")


# --- the model side -------------------------------------------------------


def find_resnet50(model):
    """The one `ResNet50` in `model` (itself, or nested in it).

    Args:
        model: a `ResNet50`, or a Keras model / layer containing exactly one.

    Returns:
        The `ResNet50`.

    Raises:
        ConfigError: none or several found.

    Example:

    >>> encoder = ResNet50(endpoint="layer1")
    >>> find_resnet50(encoder) is encoder
    True
    """
    found, seen = [], set()

    def walk(layer):
        if id(layer) in seen:
            return
        seen.add(id(layer))
        if isinstance(layer, ResNet50):
            found.append(layer)
            return
        for child in layer._flatten_layers(include_self=False,
                                           recursive=False):
            walk(child)

    walk(model)
    if len(found) != 1:
        raise errors.ConfigError(
            f"expected one tfaction ResNet50 in {model.name!r}, found "
            f"{len(found)}; pass the ResNet50 itself")
    return found[0]


def _is_batch_norm(layer):
    return isinstance(layer, (keras.layers.BatchNormalization,
                              FrozenBatchNormalization))


def torchvision_targets(model):
    """The model's variables under their torchvision `state_dict` names.

    Args:
        model: a built `ResNet50` (any variant: the names do not depend on
            it, but only v1.5 computes torchvision's function).

    Returns:
        `{torchvision key: variable}` in model order: `conv1.weight`,
        `bn1.weight`, `bn1.bias`, `bn1.running_mean`, `bn1.running_var`,
        `layer1.0.conv1.weight`, ... (v1 convs add `<conv>.bias`).

    Example:

    >>> list(torchvision_targets(ResNet50(endpoint="maxpool")))
    ['conv1.weight', 'bn1.weight', 'bn1.bias', 'bn1.running_mean', \
'bn1.running_var']
    """
    targets = {}
    for layer in model.layers:
        module = layer.name.replace("_", ".")
        if isinstance(layer, keras.layers.Conv2D):
            targets[f"{module}.weight"] = layer.kernel
            if layer.use_bias:
                targets[f"{module}.bias"] = layer.bias
        elif _is_batch_norm(layer):
            for torch_leaf, keras_leaf in _BN_LEAVES:
                targets[f"{module}.{torch_leaf}"] = getattr(layer, keras_leaf)
    return targets


def resnet50_state_dict_shapes(endpoint="layer4", classifier=True):
    """Every tensor of a torchvision `resnet50()` state dict and its shape.

    Args:
        endpoint: the last stage to include.
        classifier: include `fc.weight` `[1000, 2048]` and `fc.bias`.

    Returns:
        `{key: PyTorch shape}`, batch-norm counters included (shape `()`).

    Example:

    >>> shapes = resnet50_state_dict_shapes()
    >>> len(shapes), shapes["layer2.0.conv2.weight"]
    (320, (128, 128, 3, 3))
    """
    shapes = {}

    def conv(name, out, inp, k):
        shapes[f"{name}.weight"] = (out, inp, k, k)

    def bn(name, c):
        for leaf, _ in _BN_LEAVES:
            shapes[f"{name}.{leaf}"] = (c,)
        shapes[f"{name}.num_batches_tracked"] = ()

    conv("conv1", 64, 3, 7)
    bn("bn1", 64)
    channels = 64
    for stage, (blocks, width, _) in enumerate(
            STAGES[:ENDPOINTS.index(endpoint)], start=1):
        for block in range(blocks):
            p = f"layer{stage}.{block}."
            conv(p + "conv1", width, channels, 1)
            bn(p + "bn1", width)
            conv(p + "conv2", width, width, 3)
            bn(p + "bn2", width)
            conv(p + "conv3", width * EXPANSION, width, 1)
            bn(p + "bn3", width * EXPANSION)
            if block == 0:
                conv(p + "downsample.0", width * EXPANSION, channels, 1)
                bn(p + "downsample.1", width * EXPANSION)
            channels = width * EXPANSION
    if classifier:
        shapes["fc.weight"] = (1000, 2048)
        shapes["fc.bias"] = (1000,)
    return shapes


_ALL_KEYS = frozenset(resnet50_state_dict_shapes())


def _torch_shape(variable):
    shape = tuple(variable.shape)
    return (shape[3], shape[2], shape[0], shape[1]) if len(shape) == 4 \
        else shape


def _to_keras(value):
    value = np.asarray(value)
    return value.transpose(2, 3, 1, 0) if value.ndim == 4 else value


# --- finding the ResNet-50 in a PyTorch checkpoint -------------------------


@dataclasses.dataclass
class _Candidate:
    entry: tuple        # keys from the checkpoint's root to the state dict
    prefix: str         # e.g. "module.encoder."
    layout: str         # "torchvision names", "nn.Sequential children", ...
    names: dict         # canonical torchvision name -> key in the file
    extra: list         # keys under the prefix that map to no ResNet name
    weights: dict       # the whole state dict

    def describe(self):
        where = ("/".join(map(str, self.entry)) if self.entry
                 else "the bare state dict")
        where = f"entry {where!r}" if self.entry else where
        return f"{where}, prefix {self.prefix!r} ({self.layout})"


def _state_dicts(obj, entry=(), depth=0):
    """`(entry, {key: array})` of every mapping holding named arrays."""
    if not isinstance(obj, Mapping):
        return
    arrays = {k: v for k, v in obj.items()
              if isinstance(k, str) and isinstance(v, np.ndarray)}
    if arrays:
        yield entry, arrays
    if depth < 3:
        for k, v in obj.items():
            if isinstance(v, Mapping):
                yield from _state_dicts(v, entry + (k,), depth + 1)


def _prefixes(weights, signature):
    first, second = signature
    found = []
    for key in weights:
        if key.endswith(second):
            prefix = key[:-len(second)]
            if ((not prefix or prefix.endswith("."))
                    and prefix + first in weights):
                found.append(prefix)
    return sorted(found)


def _under(weights, prefix):
    return {k[len(prefix):]: k for k in weights if k.startswith(prefix)}


def _sequential_names(keys, children):
    """Canonical names of `{rest: key}` whose first component indexes
    `children`; returns (names, unmapped keys)."""
    names, extra = {}, []
    for rest, key in keys.items():
        index, _, tail = rest.partition(".")
        if index.isdigit() and int(index) < len(children) and tail:
            names[f"{children[int(index)]}.{tail}"] = key
        else:
            extra.append(key)
    return names, extra


def _candidates(checkpoint):
    found = []
    for entry, weights in _state_dicts(checkpoint):
        for prefix in _prefixes(weights, _TORCHVISION_SIGNATURE):
            keys = _under(weights, prefix)
            found.append(_Candidate(entry, prefix, "torchvision names",
                                    keys, [], weights))
        for prefix in _prefixes(weights, _SEQUENTIAL_SIGNATURE):
            names, extra = _sequential_names(_under(weights, prefix),
                                             _CHILDREN)
            layout = "nn.Sequential of the ResNet children"
            if prefix.endswith(_CARL_BACKBONE):
                finetune = _under(weights, prefix[:-len(_CARL_BACKBONE)] +
                                  _CARL_FINETUNE)
                heads = [r.split(".")[0] for r in _under(weights, prefix)]
                last = max(int(h) for h in heads if h.isdigit())
                rest_stages = _CHILDREN[last + 1:8]  # up to layer4
                if finetune and rest_stages and all(
                        s.startswith("layer") for s in rest_stages):
                    if len(rest_stages) == 1:  # res_finetune = that layer
                        more = {f"{rest_stages[0]}.{r}": k
                                for r, k in finetune.items()}
                        more_extra = []
                    else:  # res_finetune = Sequential(layer3, layer4), ...
                        more, more_extra = _sequential_names(finetune,
                                                             rest_stages)
                    names.update(more)
                    extra += more_extra
                    layout = ("CARL's split: backbone children + "
                              "res_finetune")
            found.append(_Candidate(entry, prefix, layout, names, extra,
                                    weights))
    return found


def _is_momentum_copy(candidate):
    parts = candidate.prefix.split(".")
    return any(part in MOMENTUM_NAMES for part in parts)


def _choose(checkpoint, key, prefix, path):
    candidates = _candidates(checkpoint)
    wanted = []
    if key is not None:
        entry = tuple(key.split("/")) if isinstance(key, str) else (key,)
        candidates = [c for c in candidates if c.entry == entry]
        wanted.append(f"entry {key!r}")
    if prefix is not None:
        if prefix and not prefix.endswith("."):
            prefix += "."
        candidates = [c for c in candidates if c.prefix == prefix]
        wanted.append(f"prefix {prefix!r}")
    if not candidates:
        listing = "; ".join(summary(checkpoint))[:600]
        raise CheckpointError(
            f"no ResNet-50 state dict{' with ' if wanted else ''}"
            f"{' and '.join(wanted)}: looked for <prefix>conv1.weight with "
            f"<prefix>layer1.0.conv1.weight (torchvision names) or "
            f"<prefix>0.weight with <prefix>4.0.conv1.weight (nn.Sequential "
            f"of the children) in every dict of tensors; the file holds: "
            f"{listing}", path=path, key=key)
    if len(candidates) > 1:
        online = [c for c in candidates if not _is_momentum_copy(c)]
        if len(online) == 1:
            candidates = online
    if len(candidates) > 1:
        listing = "; ".join(c.describe() for c in candidates)
        raise CheckpointError(
            f"several ResNet-50s in the file: {listing}; pass key= (the "
            f"entry) and/or prefix= to choose one", path=path)
    return candidates[0]


# --- PyTorch checkpoints ---------------------------------------------------


def _check_variant(model, variant, loader):
    if model.variant != variant:
        raise errors.ConfigError(
            f"{loader} loads ResNet-50 {variant} weights, but the model "
            f"{model.name!r} is variant {model.variant!r}; build it with "
            f"build_resnet50(variant={variant!r})")


def _assign_all(updates):
    for variable, value in updates:
        variable.assign(np.asarray(value, dtype=variable.dtype))


def load_resnet50_checkpoint(model, checkpoint, *, key=None, prefix=None,
                             strict=True):
    """Assigns a torchvision-layout ResNet-50 from a `.pth` file to a model.

    Args:
        model: a built `ResNet50` of variant "v1.5" (e.g.
            `build_resnet50()`), or a model containing exactly one. Its
            stages up to its endpoint are loaded; later stages in the file
            are reported unused.
        checkpoint: local path or URL of the `torch.save` file (zip
            format), or the object `load_torch_checkpoint` returned.
        key: the entry holding the state dict (`"model"`, `"state_dict"`,
            or a nested path `"a/b"`); None: searched (module docstring).
        prefix: the key prefix of the ResNet-50 (`"module.encoder."`,
            `""` for none); None: searched.
        strict: an unknown tensor under the prefix (e.g. `layer3.6.*` of a
            ResNet-101, an extra head) is an error; with False it is
            reported as `UNEXPECTED`.

    Returns:
        A `ResNet50Import` report.

    Raises:
        ConfigError: no `ResNet50` in `model`, or a v1 model.
        CheckpointError: no (or more than one) ResNet-50 found, a tensor
            missing, unexpected or of the wrong shape (the message names the
            file, the key and both shapes); the model is then unchanged.
        UnsafeCheckpointError / OSError: as `load_torch_checkpoint`.

    Example:

    ```python
    report = load_resnet50_checkpoint(build_resnet50(frozen_stages=3),
                                      "BYOL_1000.pth")
    report.source  # "entry 'model', prefix 'module.encoder.' (...)"
    ```

    Reference:
        torchvision `models/resnet.py` (state-dict names); minghchen/
        CARL_code `models/resnet_c2d.py` (the BYOL, MoCo v2 and SimCLR
        files CARL initialises from).
    """
    resnet = find_resnet50(model)
    _check_variant(resnet, "v1.5", "load_resnet50_checkpoint")
    path = None
    if not isinstance(checkpoint, Mapping):
        path = os.fspath(checkpoint)
        checkpoint = load_torch_checkpoint(path)
    chosen = _choose(checkpoint, key, prefix, path)
    targets = torchvision_targets(resnet)

    updates, loaded = [], []
    for name, variable in targets.items():
        source = chosen.names.get(name)
        if source is None:
            raise CheckpointError(
                f"tensor missing (needed by the model's {name!r}, PyTorch "
                f"shape {_torch_shape(variable)}; found {chosen.describe()})",
                path=path, key=chosen.prefix + name)
        value = np.asarray(chosen.weights[source])
        want = _torch_shape(variable)
        if tuple(value.shape) != want:
            raise CheckpointError(
                f"{name}: expected shape {want}, got {tuple(value.shape)}",
                path=path, key=source)
        updates.append((variable, _to_keras(value)))
        loaded.append(source)

    unused = {}
    used = set(loaded)
    mapped = {source: name for name, source in chosen.names.items()}
    for source in chosen.weights:
        if source in used:
            continue
        name = mapped.get(source)
        if name is None and source not in chosen.extra:
            unused[source] = OUTSIDE
        elif name is not None and name.startswith("fc."):
            unused[source] = CLASSIFIER
        elif name is not None and name.endswith(".num_batches_tracked") \
                and name in _ALL_KEYS:
            unused[source] = BATCH_COUNTER
        elif name is not None and name in _ALL_KEYS:
            unused[source] = NOT_IN_MODEL
        elif strict:
            raise CheckpointError(
                f"unexpected tensor under the ResNet-50 prefix (not a "
                f"torchvision ResNet-50 name: another depth or an extra "
                f"module?); found {chosen.describe()}; pass strict=False "
                f"to ignore it", path=path, key=source)
        else:
            unused[source] = UNEXPECTED
    _assign_all(updates)
    return ResNet50Import(path=path, source=chosen.describe(),
                          loaded=tuple(loaded),
                          unused=dict(sorted(unused.items())))


# --- keras.applications HDF5 weights (v1) -----------------------------------


def keras_applications_name(layer_name):
    """The keras.applications ResNet50 layer of a `ResNet50` layer.

    Args:
        layer_name: a conv or batch-norm layer name of `ResNet50`.

    Returns:
        The keras.applications layer name.

    Example:

    >>> keras_applications_name("layer2_0_downsample_1")
    'conv3_block1_0_bn'
    >>> keras_applications_name("layer4_2_conv3")
    'conv5_block3_3_conv'
    >>> keras_applications_name("bn1")
    'conv1_bn'
    """
    if layer_name in ("conv1", "bn1"):
        return "conv1_" + ("conv" if layer_name == "conv1" else "bn")
    stage, block, *rest = layer_name[len("layer"):].split("_")
    head = f"conv{int(stage) + 1}_block{int(block) + 1}"
    if rest[0] == "downsample":
        return f"{head}_0_{'conv' if rest[1] == '0' else 'bn'}"
    kind, index = rest[0][:-1], rest[0][-1]
    return f"{head}_{index}_{'conv' if kind == 'conv' else 'bn'}"


def _h5_attribute_list(group, name):
    """A list attribute, also when Keras split it into `name0`, `name1`..."""
    if name in group.attrs:
        values = list(group.attrs[name])
    else:
        values, chunk = [], 0
        while f"{name}{chunk}" in group.attrs:
            values.extend(group.attrs[f"{name}{chunk}"])
            chunk += 1
    return [v.decode("utf8") if isinstance(v, bytes) else str(v)
            for v in values]


def _leaf(weight_name):
    """"conv1_bn/moving_mean:0" -> "moving_mean"."""
    return weight_name.rsplit("/", 1)[-1].split(":", 1)[0]


def _read_legacy_h5(path, local):
    """`{layer: {leaf: (weight name, array)}}`, or None if not legacy."""
    layers = {}
    with h5py.File(local, "r") as f:
        root = f["model_weights"] if "model_weights" in f else f
        layer_names = _h5_attribute_list(root, "layer_names")
        if not layer_names:
            return None
        for layer_name in layer_names:
            if layer_name not in root:
                raise CheckpointError("layer listed in 'layer_names' but "
                                      "absent", path=path, key=layer_name)
            group = root[layer_name]
            weights = {}
            for weight_name in _h5_attribute_list(group, "weight_names"):
                leaf = _leaf(weight_name)
                if leaf in weights:
                    raise CheckpointError(
                        f"two weights named {leaf!r}; cannot tell which to "
                        f"load", path=path, key=f"{layer_name}/{weight_name}")
                weights[leaf] = (f"{layer_name}/{leaf}",
                                 np.asarray(group[weight_name]))
            layers[layer_name] = weights
    return layers


@contextlib.contextmanager
def _keras_loadable(local):
    """`local`, or a link to it named `*.weights.h5` when it is a Keras 3
    weights file under another name (Keras picks its reader by the name;
    `save_weights` files renamed to the downloads' `.h5` names)."""
    name = os.path.basename(local)
    keras3 = False
    if not name.endswith((".weights.h5", ".keras")) and h5py.is_hdf5(local):
        with h5py.File(local, "r") as f:
            keras3 = "vars" in f or "layers" in f
    if not keras3:
        yield local
        return
    with tempfile.TemporaryDirectory() as folder:
        link = os.path.join(folder, "weights.weights.h5")
        os.symlink(os.path.abspath(local), link)
        yield link


def _read_via_keras_application(path, local, application, what):
    """Loads the file into a keras.applications model, returns its weights
    (`{layer: {leaf: (weight name, array)}}`)."""
    failures = []
    for include_top, shape in ((False, (None, None, 3)),
                               (True, (224, 224, 3))):
        app = application(include_top=include_top, input_shape=shape)
        try:
            with _keras_loadable(local) as loadable:
                app.load_weights(loadable)
        except Exception as e:  # noqa: BLE001 - reported below
            text = str(e).strip().splitlines()
            failures.append(f"include_top={include_top}: "
                            f"{text[0] if text else type(e).__name__}")
            continue
        return {layer.name: {_leaf(v.path): (f"{layer.name}/{_leaf(v.path)}",
                                             np.asarray(v.numpy()))
                             for v in layer.weights}
                for layer in app.layers if layer.weights}
    raise CheckpointError(f"not a keras.applications.{what} weights file ("
                          + "; ".join(failures) + ")", path=path)


def _keras_attributes(layer):
    """`[(attribute, variable, stored leaves)]` of a conv / batch norm, or
    [] for a layer without weights to load."""
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        # Keras 2 files name it "depthwise_kernel", Keras 3 "kernel".
        return [("kernel", layer.kernel, ("depthwise_kernel", "kernel"))]
    if isinstance(layer, keras.layers.Conv2D):
        found = [("kernel", layer.kernel, ("kernel",))]
        if layer.use_bias:
            found.append(("bias", layer.bias, ("bias",)))
        return found
    if _is_batch_norm(layer):
        return [(leaf, getattr(layer, leaf), (leaf,))
                for leaf in _KERAS_BN_LEAVES]
    return []


def read_keras_application_weights(path, application, needed, what):
    """Reads a keras.applications ImageNet weights file.

    The files Keras downloads are legacy HDF5 (`layer_names` on the root
    or on `model_weights`, one group per layer with its `weight_names`):
    read by layer name. A legacy file that lacks one of the `needed`
    layers (e.g. older layer names), a Keras 3 `.weights.h5` (also under
    the downloads' `.h5` names) or a `.keras` file is loaded into
    `application` by Keras and read back from it.

    Args:
        path: the weights file, local or remote.
        application: `callable(include_top=, input_shape=)` building the
            keras.applications model with `weights=None`.
        needed: layer names (keras.applications') the caller loads.
        what: the application's name, for messages ("ResNet50").

    Returns:
        `{layer name: {leaf: (weight name "layer/leaf", array)}}` (of a
        legacy file that fits neither way: as read, for the caller to name
        the missing weight).

    Raises:
        CheckpointError: missing or unreadable file, or not a weights file
            of the application.

    Example:

    ```python
    layers = read_keras_application_weights(
        "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5",
        lambda **kw: keras.applications.ResNet50(weights=None, **kw),
        ["conv1_conv"], "ResNet50")
    ```
    """
    path = os.fspath(path)
    if not filesystems.isfile(path):
        raise CheckpointError("weights file not found", path=path)
    with filesystems.local_copy(path) as local:
        try:
            layers = (_read_legacy_h5(path, local) if h5py.is_hdf5(local)
                      else None)
            missing = [] if layers is None else [
                name for name in needed if name not in layers]
            if layers is not None and not missing:
                return layers
            try:
                return _read_via_keras_application(path, local, application,
                                                   what)
            except CheckpointError:
                if not missing:
                    raise
            # Neither way fits: the caller reports the first weight missing.
            return layers
        except (OSError, KeyError) as e:
            raise CheckpointError(f"corrupt weights file: {e}",
                                  path=path) from e


def load_keras_application_weights(layers, name_of, stored, path):
    """Assigns read keras.applications weights to a model's layers.

    All-or-nothing: every weight is found and shape-checked before any is
    assigned.

    Args:
        layers: the model's layers (those without weights are skipped).
        name_of: `callable(layer name) -> keras.applications layer name`.
        stored: `read_keras_application_weights`' result.
        path: the file, for messages.

    Returns:
        `(loaded, used)`: the weight names assigned, in model order, and
        the set of `(layer, leaf)` of `stored` they came from.

    Raises:
        CheckpointError: a weight missing or of the wrong shape (naming
            the file, the weight and both shapes); nothing is assigned.
    """
    updates, loaded, used = [], [], set()
    for layer in layers:
        attributes = _keras_attributes(layer)
        if not attributes:
            continue
        source_layer = name_of(layer.name)
        weights = stored.get(source_layer, {})
        for attribute, variable, leaves in attributes:
            leaf = next((leaf for leaf in leaves if leaf in weights), None)
            if leaf is None:
                raise CheckpointError(
                    f"weight missing (needed by layer {layer.name!r} "
                    f"{attribute}, shape {tuple(variable.shape)})",
                    path=path, key=f"{source_layer}/{leaves[0]}")
            name, value = weights[leaf]
            if tuple(value.shape) != tuple(variable.shape):
                raise CheckpointError(
                    f"layer {layer.name!r} {attribute}: expected shape "
                    f"{tuple(variable.shape)}, got {tuple(value.shape)}",
                    path=path, key=name)
            updates.append((variable, value))
            loaded.append(name)
            used.add((source_layer, leaf))
    _assign_all(updates)
    return loaded, used


def keras_unused(stored, used, reason_of):
    """`{weight name: reason}` of the stored weights not loaded.

    Args:
        stored: `read_keras_application_weights`' result.
        used: the `(layer, leaf)` pairs loaded.
        reason_of: `callable(layer name) -> reason`.

    Returns:
        A dict sorted by name.
    """
    unused = {}
    for layer_name, weights in stored.items():
        for leaf, (name, _) in weights.items():
            if (layer_name, leaf) not in used:
                unused[name] = reason_of(layer_name)
    return dict(sorted(unused.items()))


def _keras_resnet50(**kwargs):
    return keras.applications.ResNet50(weights=None, **kwargs)


def load_keras_resnet50_weights(model, path):
    """Assigns `keras.applications.ResNet50` weights to a v1 `ResNet50`.

    Reads the ImageNet files Keras downloads
    (`resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5` and the one
    with the classifier) by layer name (`keras_applications_name`), and any
    other file Keras can load into `keras.applications.ResNet50` (Keras 3
    `.weights.h5`, also renamed to the downloads' names, `.keras`) through
    such a model (`read_keras_application_weights`).

    The weights expect keras.applications' "caffe" input (BGR pixels minus
    the ImageNet mean); build the model with
    `input_normalization="imagenet"` to feed it torchvision-normalised RGB.

    Args:
        model: a built `ResNet50` of variant "v1" (or a model containing
            one).
        path: the weights file, local or remote.

    Returns:
        A `ResNet50Import` report (names like "conv2_block1_1_conv/kernel";
        unused: the classifier `predictions`, stages after the endpoint).

    Raises:
        ConfigError: no `ResNet50`, or not variant "v1" (keras.applications'
            weights are for the v1 layout: loaded into v1.5 they would
            compute something else).
        CheckpointError: missing or unreadable file, or a weight missing or
            of the wrong shape (the message names the file, the weight and
            both shapes); the model is then unchanged.

    Example:

    ```python
    model = build_resnet50(variant="v1", input_normalization="imagenet")
    load_keras_resnet50_weights(
        model, "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5")
    ```

    Reference:
        keras.applications `resnet.py` (layer names, v1 bottleneck).
    """
    resnet = find_resnet50(model)
    _check_variant(resnet, "v1", "load_keras_resnet50_weights")
    path = os.fspath(path)
    needed = [keras_applications_name(layer.name) for layer in resnet.layers
              if _keras_attributes(layer)]
    stored = read_keras_application_weights(path, _keras_resnet50, needed,
                                            "ResNet50")
    loaded, used = load_keras_application_weights(
        resnet.layers, keras_applications_name, stored, path)
    unused = keras_unused(stored, used, lambda layer_name: (
        CLASSIFIER if layer_name == _KERAS_TOP else
        NOT_IN_MODEL if layer_name.startswith("conv") else UNEXPECTED))
    return ResNet50Import(path=path, source="keras.applications ResNet50",
                          loaded=tuple(loaded), unused=unused)
