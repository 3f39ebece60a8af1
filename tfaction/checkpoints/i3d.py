"""Loads pretrained I3D weights into `InceptionI3D` models, by name.

Two sources, both read by variable / layer name:

* DeepMind's TF1 checkpoints (deepmind/kinetics-i3d, `data/checkpoints/
  {rgb,flow}_{imagenet,scratch}/model.ckpt`, `rgb_scratch_kin600`), written
  by a `tf.train.Saver` from Sonnet modules: under a stream scope
  (`RGB/inception_i3d/`, `Flow/inception_i3d/`; none in the Kinetics-600
  file), every `Unit3D` scope (`Conv3d_1a_7x7`,
  `Mixed_4f/Branch_1/Conv3d_0b_3x3`, ...; `tfaction.models.backbones.
  i3d.UNIT_SCOPES`) holds `conv_3d/w` `[kt, kh, kw, in, out]` and
  `batch_norm/{beta, moving_mean, moving_variance}` (`[C]`, or
  `[1, 1, 1, 1, C]` in the Kinetics-600 file). `load_i3d_checkpoint`.
* The HDF5 files of `dlpbc/keras-kinetics-i3d` (Keras 2 port of the same
  weights, `..._tf_kernels[_no_top].h5`): layers `<unit>_conv` (`kernel`)
  and `<unit>_bn` (`beta`, `moving_mean`, `moving_variance`), where
  `<unit>` is the stem name (`Conv3d_1a_7x7`) or
  `Conv3d_<block>_<branch slot>_<kernel>` for branch units
  (`Mixed_4f/Branch_1/Conv3d_0b_3x3` -> `Conv3d_4f_1b_3x3`; the slots are
  `0a`, `1a`, `1b`, `2a`, `2b`, `3b`, so Mixed_5b's quirky
  `Branch_2/Conv3d_0a_3x3` is `Conv3d_5b_2b_3x3`). `load_keras_i3d_weights`.

Both take one model or several (the Action Transformer's trunk and head
load from one file in one call) and find their `Unit3D` layers by name,
also inside nested models. Loading is all-or-nothing: every variable is
found and shape-checked, for every model, before any is assigned; a
missing or wrongly shaped variable raises `CheckpointError` naming the
file, the variable and both shapes, and leaves the models unchanged.

The report (`I3DImport`) lists what was loaded and every variable of the
file that was not, with the reason. With DeepMind's files the unused ones
are I3D's classifier `Logits/Conv3d_0c_1x1/conv_3d/{w,b}` (not built
here), the units after the model's last endpoint (e.g. Mixed_5b/5c when
only the trunk loads), optimiser slots (`.../Momentum` in the Kinetics-600
file) and variables outside the stream scope (`global_step`, the other
stream); with keras-kinetics-i3d files the classifier `Conv3d_6a_1x1_conv`.

Example:

```python
from tfaction.checkpoints.i3d import load_i3d_checkpoint
from tfaction.models.backbones.i3d import build_i3d_head
from tfaction.models.backbones.i3d import build_i3d_trunk

trunk, head = build_i3d_trunk(), build_i3d_head()
report = load_i3d_checkpoint([trunk, head],
                             "kinetics-i3d/data/checkpoints/rgb_imagenet/"
                             "model.ckpt")
print(report.summary())  # 228 loaded; unused: 2 Logits variables
```
"""

import collections
import dataclasses
import os

import h5py
import numpy as np
import tensorflow as tf

from tfaction import errors
from tfaction.checkpoints.errors import CheckpointError
from tfaction.data import filesystems
from tfaction.layers.unit3d import Unit3D
from tfaction.models.backbones.i3d import UNIT_SCOPES

STREAM_SCOPES = ("RGB", "Flow")
_NETWORK_SCOPE = "inception_i3d"
# Keras weight attribute -> (DeepMind leaf under the unit scope,
# keras-kinetics-i3d (layer suffix, weight name)).
_LEAVES = (
    ("kernel", "conv_3d/w", ("_conv", "kernel")),
    ("bias", "conv_3d/b", ("_conv", "bias")),
    ("gamma", "batch_norm/gamma", ("_bn", "gamma")),
    ("beta", "batch_norm/beta", ("_bn", "beta")),
    ("moving_mean", "batch_norm/moving_mean", ("_bn", "moving_mean")),
    ("moving_variance", "batch_norm/moving_variance",
     ("_bn", "moving_variance")),
)
_DEEPMIND_LEAVES = tuple(leaf for _, leaf, _ in _LEAVES)
_KERAS_WEIGHTS = tuple(weight for _, _, (_, weight) in _LEAVES)
# Branch units of an Inception block in DeepMind's scope order -> the
# keras-kinetics-i3d slot.
_SLOTS = {"Branch_0/Conv3d_0a_1x1": "0a", "Branch_1/Conv3d_0a_1x1": "1a",
          "Branch_1/Conv3d_0b_3x3": "1b", "Branch_2/Conv3d_0a_1x1": "2a",
          "Branch_2/Conv3d_0b_3x3": "2b", "Branch_2/Conv3d_0a_3x3": "2b",
          "Branch_3/Conv3d_0b_1x1": "3b"}
_KERAS_LOGITS = "Conv3d_6a_1x1"

# Reasons given for unused variables.
LOGITS = "I3D classifier (Logits), not built by tfaction"
NOT_IN_MODEL = "I3D unit of an endpoint the model(s) do not compute"
OPTIMIZER_SLOT = "optimizer slot"
OUTSIDE_SCOPE = "outside the network scope"
UNKNOWN = "not an I3D variable"


@dataclasses.dataclass(frozen=True)
class I3DImport:
    """What an I3D weight import loaded and what it left unused.

    Attributes:
        path: the file read.
        scope: the prefix of the network's variables in a TF checkpoint
            ("RGB/inception_i3d/", "" for the Kinetics-600 file); None for
            an HDF5 file.
        loaded: names (in the file) of the variables assigned, in network
            order.
        unused: `{name: reason}` for every variable of the file that was
            not assigned; the reasons are the module constants `LOGITS`,
            `NOT_IN_MODEL`, `OPTIMIZER_SLOT`, `OUTSIDE_SCOPE`, `UNKNOWN`.
    """

    path: str
    scope: object
    loaded: tuple
    unused: dict

    @property
    def unexpected(self):
        """Unused variables that are not I3D at all (reason `UNKNOWN`)."""
        return sorted(k for k, why in self.unused.items() if why == UNKNOWN)

    def summary(self):
        """One line: how many variables were loaded, unused per reason.

        Example:

        >>> I3DImport("ck", "RGB/inception_i3d/", ("a", "b"),
        ...           {"x": LOGITS, "y": LOGITS}).summary()
        'ck: 2 variables loaded; unused: 2 I3D classifier (Logits), not \
built by tfaction'
        """
        counts = collections.Counter(self.unused.values())
        unused = "; ".join(f"{n} {why}" for why, n in sorted(counts.items()))
        return (f"{self.path}: {len(self.loaded)} variables loaded; unused: "
                f"{unused or 'none'}")


def keras_i3d_layer_name(scope):
    """The keras-kinetics-i3d name of the unit with DeepMind scope `scope`.

    Args:
        scope: a value of `UNIT_SCOPES` (e.g.
            "Mixed_4f/Branch_1/Conv3d_0b_3x3").

    Returns:
        The unit's layer-name stem in keras-kinetics-i3d (add `_conv` /
        `_bn` for its two layers).

    Example:

    >>> keras_i3d_layer_name("Mixed_5b/Branch_2/Conv3d_0a_3x3")
    'Conv3d_5b_2b_3x3'
    >>> keras_i3d_layer_name("Conv3d_1a_7x7")
    'Conv3d_1a_7x7'

    Reference:
        dlpbc/keras-kinetics-i3d, `i3d_inception.py` (`conv3d_bn` names).
    """
    block, sep, branch = scope.partition("/")
    if not sep:
        return scope
    return f"Conv3d_{block[len('Mixed_'):]}_{_SLOTS[branch]}_{scope[-3:]}"


def find_units(models):
    """The I3D `Unit3D` layers of `models`, by layer name.

    Walks the layers of each model, nested models, wrappers and layers
    holding models included, and keeps the `Unit3D` layers whose names are
    I3D units (`UNIT_SCOPES`). A model reached twice counts once.

    Args:
        models: a Keras model or layer, or a list of them.

    Returns:
        `{layer name: Unit3D}` in network order (that of `UNIT_SCOPES`).

    Raises:
        ConfigError: no I3D unit found, or a unit name occurs twice (e.g.
            two streams in one model: load each stream's model on its own).

    Example:

    >>> from tfaction.models.backbones.i3d import build_i3d_head
    >>> list(find_units(build_i3d_head()))[:2]
    ['Mixed_5b_Branch_0_Conv3d_0a_1x1', 'Mixed_5b_Branch_1_Conv3d_0a_1x1']
    """
    if not isinstance(models, (list, tuple)):
        models = [models]
    found, seen = {}, set()

    def walk(layer):
        if id(layer) in seen:
            return
        seen.add(id(layer))
        if isinstance(layer, Unit3D):
            if layer.name in UNIT_SCOPES:
                if layer.name in found:
                    raise errors.ConfigError(
                        f"the I3D unit {layer.name!r} occurs twice in the "
                        f"given model(s); load each I3D network on its own")
                found[layer.name] = layer
            return
        # The layers Keras tracks on `layer`: a functional model's nodes, a
        # subclassed model's or layer's attributes, a wrapper's inner
        # layer (the same walk `keras.Model.layers` does, one level).
        for child in layer._flatten_layers(include_self=False,
                                           recursive=False):
            walk(child)

    for model in models:
        walk(model)
    if not found:
        raise errors.ConfigError(
            "no I3D Unit3D layer (named as in UNIT_SCOPES) in the given "
            "model(s); build them with tfaction.models.backbones.i3d")
    order = {name: i for i, name in enumerate(UNIT_SCOPES)}
    return dict(sorted(found.items(), key=lambda item: order[item[0]]))


def _unit_targets(unit):
    """`[(attribute, variable)]` of a built unit, in `_LEAVES` order."""
    if not unit.built:
        raise errors.ConfigError(f"the I3D unit {unit.name!r} is not built")
    variables = {"kernel": unit.conv.kernel,
                 "bias": unit.conv.bias if unit.use_bias else None}
    bn = unit.batch_norm
    if bn is not None:
        variables.update(gamma=bn.gamma, beta=bn.beta,
                         moving_mean=bn.moving_mean,
                         moving_variance=bn.moving_variance)
    return [(attribute, variables[attribute]) for attribute, _, _ in _LEAVES
            if variables.get(attribute) is not None]


def _check_shape(got, variable, path, key, layer_name, attribute):
    """Raises CheckpointError unless a stored shape fits the variable.

    Per-channel vectors may be stored as `[C]` or broadcastable
    `[1, ..., 1, C]` (Sonnet's batch norm); kernels must match exactly.
    """
    want = tuple(variable.shape)
    got = tuple(int(d) for d in got)
    vector_ok = (len(want) == 1 and len(got) >= 1 and got[-1] == want[0]
                 and all(d == 1 for d in got[:-1]))
    if got != want and not vector_ok:
        raise CheckpointError(
            f"layer {layer_name!r} {attribute}: expected shape {want}, got "
            f"{got}", path=path, key=key)


def _fit(value, variable, path, key, layer_name, attribute):
    """`value` reshaped to the variable's shape (after `_check_shape`)."""
    value = np.asarray(value)
    _check_shape(value.shape, variable, path, key, layer_name, attribute)
    return value.reshape(tuple(variable.shape))


def _assign_all(updates):
    for variable, value in updates:
        variable.assign(np.asarray(value, dtype=variable.dtype))


def _first_line(error):
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


# --- DeepMind TF1 checkpoints ----------------------------------------------


def _resolve_scope(available, path, units, scope):
    """The prefix of the network's variables, e.g. "RGB/inception_i3d/"."""
    first = f"{UNIT_SCOPES[next(iter(units))]}/{_DEEPMIND_LEAVES[0]}"
    if scope is not None:
        scope = scope.strip("/")
        candidates = ([""] if not scope else
                      [f"{scope}/", f"{scope}/{_NETWORK_SCOPE}/"])
        for prefix in candidates:
            if prefix + first in available:
                return prefix
        raise CheckpointError(
            f"no variable {candidates[-1] + first!r} (scope {scope!r}); the "
            f"file's I3D scopes: {_scopes_of(available, first) or 'none'}",
            path=path, key=candidates[-1] + first)
    found = _scopes_of(available, first)
    if len(found) != 1:
        what = ("no I3D variables (not a kinetics-i3d checkpoint?)"
                if not found else f"I3D variables under several scopes "
                f"{found}; pass scope= (e.g. 'RGB' or 'Flow') to choose one")
        raise CheckpointError(f"{what}: looked for [<scope>/]{first}",
                              path=path, key=first)
    return found[0]


def _scopes_of(available, first):
    return sorted(name[:-len(first)] for name in available
                  if name.endswith(first)
                  and (name == first or name[-len(first) - 1] == "/"))


def _deepmind_reason(name, prefix, unit_scopes):
    if not name.startswith(prefix):
        return OUTSIDE_SCOPE
    rest = name[len(prefix):]
    if rest.startswith("Logits/"):
        is_slot = not any(rest.endswith("/" + leaf)
                          for leaf in ("conv_3d/w", "conv_3d/b"))
        return OPTIMIZER_SLOT if is_slot else LOGITS
    for leaf in _DEEPMIND_LEAVES:
        marker = f"/{leaf}"
        if marker in rest:
            unit, _, tail = rest.partition(marker)
            if unit in unit_scopes:
                return OPTIMIZER_SLOT if tail else NOT_IN_MODEL
    return UNKNOWN


def load_i3d_checkpoint(models, path, *, scope=None):
    """Assigns a DeepMind kinetics-i3d TF1 checkpoint to I3D models.

    Args:
        models: an `InceptionI3D` (e.g. `build_i3d_trunk()`), a list of them
            (trunk and head), or any Keras model containing them. Their
            input channels must match the file (3 for RGB, 2 for Flow).
        path: checkpoint prefix (`.../rgb_imagenet/model.ckpt`) or its
            directory, local or remote.
        scope: the stream scope: "RGB", "Flow", a full prefix such as
            "RGB/inception_i3d", or "" (variables at the top level, as in
            `rgb_scratch_kin600`); None: the only scope holding I3D
            variables.

    Returns:
        An `I3DImport` report.

    Raises:
        ConfigError: no I3D unit in `models`, or one not built.
        CheckpointError: unreadable file; no (or, without `scope`, more
            than one) I3D scope; a variable missing or of the wrong shape
            (the message names the file, the variable and both shapes).
            The models are then unchanged.

    Example:

    ```python
    report = load_i3d_checkpoint(build_i3d_trunk(input_channels=2),
                                 "flow_imagenet/model.ckpt", scope="Flow")
    assert not report.unexpected
    ```

    Reference:
        deepmind/kinetics-i3d (`i3d.py`: variable scopes; its
        `evaluate_sample.py` restores the files by these names).
    """
    units = find_units(models)
    path = filesystems.ensure_filesystem(path)
    try:
        reader = tf.train.load_checkpoint(path)
        available = reader.get_variable_to_shape_map()
    except (tf.errors.OpError, ValueError, OSError) as e:
        raise CheckpointError(f"cannot read TF checkpoint: {_first_line(e)}",
                              path=path) from e
    prefix = _resolve_scope(available, path, units, scope)

    planned = []  # (key, variable, layer name, attribute)
    for layer_name, unit in units.items():
        leaves = {attribute: leaf for attribute, leaf, _ in _LEAVES}
        for attribute, variable in _unit_targets(unit):
            key = f"{prefix}{UNIT_SCOPES[layer_name]}/{leaves[attribute]}"
            if key not in available:
                raise CheckpointError(
                    f"variable missing (needed by layer {layer_name!r} "
                    f"{attribute}, shape {tuple(variable.shape)})",
                    path=path, key=key)
            _check_shape(available[key], variable, path, key, layer_name,
                         attribute)
            planned.append((key, variable, layer_name, attribute))
    updates = []
    for key, variable, layer_name, attribute in planned:
        try:
            value = reader.get_tensor(key)
        except tf.errors.OpError as e:
            raise CheckpointError(f"cannot read variable: {_first_line(e)}",
                                  path=path, key=key) from e
        updates.append((variable, _fit(np.asarray(value), variable, path,
                                       key, layer_name, attribute)))
    _assign_all(updates)
    loaded = tuple(key for key, _, _, _ in planned)
    unit_scopes = set(UNIT_SCOPES.values())
    unused = {name: _deepmind_reason(name, prefix, unit_scopes)
              for name in sorted(set(available) - set(loaded))}
    return I3DImport(path=path, scope=prefix, loaded=loaded, unused=unused)


# --- keras-kinetics-i3d HDF5 files -----------------------------------------


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


def _weight_leaf(weight_name):
    """"Conv3d_1a_7x7_bn/beta:0" -> "beta" (also "..._bn_beta:0")."""
    leaf = weight_name.rsplit("/", 1)[-1].split(":", 1)[0]
    for known in _KERAS_WEIGHTS:
        if leaf == known or leaf.endswith("_" + known):
            return known
    return leaf


def _read_keras_h5(path, local):
    """`{layer name: {weight leaf: (full weight name, array)}}`."""
    layers = {}
    with h5py.File(local, "r") as f:
        root = f["model_weights"] if "model_weights" in f else f
        layer_names = _h5_attribute_list(root, "layer_names")
        if not layer_names:
            raise CheckpointError(
                "not a Keras HDF5 weights file of the keras-kinetics-i3d "
                "layout (no 'layer_names' attribute)", path=path)
        for layer_name in layer_names:
            if layer_name not in root:
                raise CheckpointError("layer listed in 'layer_names' but "
                                      "absent", path=path, key=layer_name)
            group = root[layer_name]
            weights = {}
            for weight_name in _h5_attribute_list(group, "weight_names"):
                leaf = _weight_leaf(weight_name)
                if leaf in weights:
                    raise CheckpointError(
                        f"two weights named {leaf!r}; cannot tell which to "
                        f"load", path=path, key=f"{layer_name}/{weight_name}")
                weights[leaf] = (weight_name, np.asarray(group[weight_name]))
            layers[layer_name] = weights
    return layers


def load_keras_i3d_weights(models, path):
    """Assigns a keras-kinetics-i3d HDF5 weights file to I3D models.

    Reads the Keras 2 HDF5 layout (`layer_names` on the root or on
    `model_weights`, one group per layer with its `weight_names`) of the
    `dlpbc/keras-kinetics-i3d` releases, with or without the classifier
    ("_no_top"), by layer name: `<unit>_conv/kernel` and
    `<unit>_bn/{beta,moving_mean,moving_variance}` (`keras_i3d_layer_name`).

    Args:
        models: an `InceptionI3D`, a list of them (trunk and head), or any
            Keras model containing them; input channels must match the file
            (3 RGB, 2 flow).
        path: the `.h5` file, local or remote.

    Returns:
        An `I3DImport` report (`scope` None; names are the file's weight
        names, e.g. "Conv3d_1a_7x7_bn/beta:0").

    Raises:
        ConfigError: no I3D unit in `models`, or one not built.
        CheckpointError: missing or unreadable file, not this layout, or a
            layer / weight missing or of the wrong shape (the message names
            the file, the weight and both shapes). The models are then
            unchanged.

    Example:

    ```python
    load_keras_i3d_weights(
        build_i3d_trunk(),
        "rgb_inception_i3d_imagenet_and_kinetics_tf_dim_ordering_tf_kernels"
        "_no_top.h5")
    ```

    Reference:
        dlpbc/keras-kinetics-i3d (`i3d_inception.py`: layer names; release
        v0.2: the weight files).
    """
    units = find_units(models)
    path = os.fspath(path)
    if not filesystems.isfile(path):
        raise CheckpointError("weights file not found", path=path)
    with filesystems.local_copy(path) as local:
        if not h5py.is_hdf5(local):
            raise CheckpointError("not an HDF5 file", path=path)
        try:
            layers = _read_keras_h5(path, local)
        except (OSError, KeyError) as e:
            raise CheckpointError(f"corrupt weights file: {_first_line(e)}",
                                  path=path) from e

    updates, loaded, used_layers = [], [], set()
    for layer_name, unit in units.items():
        stem = keras_i3d_layer_name(UNIT_SCOPES[layer_name])
        sources = {attribute: (stem + suffix, weight)
                   for attribute, _, (suffix, weight) in _LEAVES}
        for attribute, variable in _unit_targets(unit):
            source_layer, weight = sources[attribute]
            key = f"{source_layer}/{weight}"
            stored = layers.get(source_layer, {}).get(weight)
            if stored is None:
                raise CheckpointError(
                    f"weight missing (needed by layer {layer_name!r} "
                    f"{attribute}, shape {tuple(variable.shape)})",
                    path=path, key=key)
            key, value = stored  # e.g. "Conv3d_1a_7x7_bn/beta:0"
            updates.append((variable, _fit(value, variable, path, key,
                                           layer_name, attribute)))
            loaded.append(key)
            used_layers.add((source_layer, weight))
    _assign_all(updates)

    unit_stems = {keras_i3d_layer_name(s) for s in UNIT_SCOPES.values()}
    unused = {}
    for layer_name, weights in layers.items():
        for leaf, (full_name, _) in weights.items():
            if (layer_name, leaf) in used_layers:
                continue
            stem = layer_name.rsplit("_", 1)[0]
            reason = (LOGITS if stem == _KERAS_LOGITS else
                      NOT_IN_MODEL if stem in unit_stems else UNKNOWN)
            unused[full_name] = reason
    return I3DImport(path=path, scope=None, loaded=tuple(loaded),
                     unused=dict(sorted(unused.items())))
