"""The authors' ActionFormer config and weights -> `ActionFormer`.

Two bridges to happyharrycn/actionformer_release (commit 61ea7eb):

* `model_kwargs_from_reference_config(model_cfg, train_cfg=None)` turns the
  `model` section of the authors' YAML config (after their
  `libs/core/config.py` merged the defaults; as stored in the anchors'
  `config.json`) into `ActionFormer(**kwargs)` arguments. Every key is
  either honoured, checked against the one value the port supports, or
  rejected: a key this port cannot honour (`use_rel_pe: true`,
  `fpn_type` other than `identity`, `backbone_type` other than
  `convTransformer`, ...) or
  does not know raises `tfaction.errors.ConfigError` naming the key. Nothing
  is silently ignored, except the documented keys in `_INFORMATIONAL_KEYS`
  that do not change the network. Missing optional model keys take the
  authors' defaults (kernel sizes 3, `*_with_ln` true, 3 head layers,
  `fpn_dim = embd_dim`); of `train_cfg` the four network keys
  `cls_prior_prob`, `head_empty_cls`, `dropout`, `droppath` are required
  and the loss / optimiser keys are left to the trainer.
* `load_reference_weights(model, state_dict)` copies the authors' full
  PyTorch `state_dict` (`backbone.*`, `neck.*`, `cls_head.*`,
  `reg_head.*`; numpy arrays) onto a built `ActionFormer`, using the
  conversions of `backbone_weights` and `head_weights`. All-or-nothing:
  every key must be used, every model variable must be set and every shape
  must match, otherwise `ValueError` and no variable changes.

Key mapping (authors' name -> `ActionFormer` argument):

| authors' key | argument |
|---|---|
| `input_dim` (int) | `input_dim` |
| `input_dim` (list: one entry per feature set) | `input_splits`, `input_dim` = their sum |
| `embd_dim` (list, with a list `input_dim`) | `projection_dims`, `embed_dim` = their sum |
| `num_classes` | `num_classes` |
| `max_seq_len` | `max_seq_len` (required with `use_abs_pe: true`) |
| `use_abs_pe` | `use_abs_pe` |
| `embd_dim` | `embed_dim` (`fpn_dim` must equal it: identity neck) |
| `n_head` | `num_heads` |
| `backbone_arch` | `arch` |
| `n_mha_win_size` (int or list of `1 + arch[2]`) | `window_size` |
| `embd_kernel_size`, `embd_with_ln` | `embed_kernel_size`, `embed_with_ln` |
| `fpn_with_ln` | `fpn_with_ln` |
| `head_dim`, `head_kernel_size` | same names |
| `head_num_layers`, `head_with_ln` | same names |
| `regression_range` | `regression_range` |
| `train_cfg.cls_prior_prob` | `prior_prob` |
| `train_cfg.head_empty_cls` | `empty_classes` |
| `train_cfg.dropout`, `train_cfg.droppath` | `dropout`, `drop_path_rate` |

Checked keys: `backbone_type == "convTransformer"`, `fpn_type ==
"identity"`, `use_abs_pe` a boolean, `use_rel_pe` false, `scale_factor == 2`,
`fpn_start_level == 0`, `fpn_dim == embd_dim`, optional `fpn_strides` equal
to `[2**l for l in range(1 + arch[2])]`.

Example:

```python
cfg = json.load(open("config.json"))["config"]
model = ActionFormer.from_reference_config(
    cfg["model"], train_cfg=cfg["train_cfg"])
load_reference_weights(model, dict(np.load("weights.npz")))
```
"""

from collections.abc import Mapping

import numpy as np

from tfaction.errors import ConfigError
from tfaction.models.actionformer.backbone_weights import (
    backbone_weight_entries)
from tfaction.models.actionformer.head_weights import (
    classification_head_weight_map)
from tfaction.models.actionformer.head_weights import neck_weight_map
from tfaction.models.actionformer.head_weights import (
    regression_head_weight_map)

# Model keys that do not change the network:
# * `max_buffer_len_factor`: the reference pre-allocates its point buffer
#   for `max_seq_len * factor` steps and fails beyond; the port generates
#   points for any length, so the factor is only a (removed) limit.
# * `test_cfg`: post-processing settings, used by the caller's decoding.
_INFORMATIONAL_KEYS = ("max_buffer_len_factor", "test_cfg")

_HONOURED_KEYS = (
    "backbone_type", "fpn_type", "backbone_arch", "scale_factor",
    "input_dim", "max_seq_len", "n_head", "n_mha_win_size",
    "embd_kernel_size", "embd_dim", "embd_with_ln", "fpn_dim",
    "fpn_with_ln", "fpn_start_level", "head_dim", "regression_range",
    "head_num_layers", "head_kernel_size", "head_with_ln", "use_abs_pe",
    "use_rel_pe", "num_classes", "train_cfg", "fpn_strides")

_REQUIRED_KEYS = (
    "backbone_arch", "input_dim", "num_classes", "embd_dim", "n_head",
    "n_mha_win_size", "head_dim", "regression_range")

# train_cfg keys the network uses; the other train_cfg keys configure
# the losses / optimiser and are left to the trainer.
_TRAIN_KEYS = ("cls_prior_prob", "head_empty_cls", "dropout", "droppath")


def _get(cfg, key, default):
    return cfg[key] if key in cfg else default


def _require(cfg, key, where="model"):
    if key not in cfg:
        raise ConfigError(f"{where}.{key}: required key is missing")
    return cfg[key]


def _expect(cfg, key, allowed, default, why):
    value = _get(cfg, key, default)
    if value not in allowed:
        raise ConfigError(
            f"model.{key}: {value!r} is not supported ({why}); supported: "
            f"{list(allowed)}")
    return value


def _as_int(value, key):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ConfigError(f"model.{key}: expected an integer, got {value!r}")
    return int(value)


def model_kwargs_from_reference_config(model_cfg, train_cfg=None):
    """`ActionFormer` keyword arguments from the authors' `model` config.

    Args:
        model_cfg: the `model` section of the authors' config (a mapping
            with their key names, see the module docstring).
        train_cfg: the authors' `train_cfg` section. Default:
            `model_cfg["train_cfg"]` (the authors' config loader copies it
            into the model section). Only `cls_prior_prob`,
            `head_empty_cls`, `dropout` and `droppath` are used (all four
            required; the other keys configure losses and optimiser).

    Returns:
        dict of `ActionFormer.__init__` keyword arguments.

    Raises:
        ConfigError: a key is missing, unknown, or has a value the port
            cannot honour; the message names the key.
    """
    if not isinstance(model_cfg, Mapping):
        raise ConfigError(f"model: expected a mapping, got "
                          f"{type(model_cfg).__name__}")
    unknown = sorted(set(model_cfg) - set(_HONOURED_KEYS)
                     - set(_INFORMATIONAL_KEYS))
    if unknown:
        raise ConfigError(f"model.{unknown[0]}: unknown key, not supported "
                          f"by the tfaction ActionFormer (unknown keys: "
                          f"{unknown})")
    for key in _REQUIRED_KEYS:
        _require(model_cfg, key)

    if train_cfg is None:
        train_cfg = _get(model_cfg, "train_cfg", None)
        if not isinstance(train_cfg, Mapping):
            raise ConfigError(
                f"model.train_cfg: expected the train_cfg mapping (or pass "
                f"train_cfg=...), got {train_cfg!r}")
    elif not isinstance(train_cfg, Mapping):
        raise ConfigError(f"train_cfg: expected a mapping, got "
                          f"{type(train_cfg).__name__}")

    for key in _TRAIN_KEYS:
        _require(train_cfg, key, where="train_cfg")

    _expect(model_cfg, "backbone_type", ("convTransformer",),
            "convTransformer",
            "only the ConvTransformerBackbone is implemented")
    _expect(model_cfg, "fpn_type", ("identity",), "identity",
            "only the identity neck (FPNIdentity) is implemented")
    use_abs_pe = _get(model_cfg, "use_abs_pe", False)
    if not isinstance(use_abs_pe, (bool, np.bool_)):
        raise ConfigError(f"model.use_abs_pe: expected true or false, got "
                          f"{use_abs_pe!r}")
    _expect(model_cfg, "use_rel_pe", (False,), False,
            "the relative position embedding is not implemented")
    _expect(model_cfg, "scale_factor", (2,), 2,
            "the backbone downsamples by 2 per level")
    _expect(model_cfg, "fpn_start_level", (0,), 0,
            "every backbone level feeds the heads")

    input_dim = model_cfg["input_dim"]
    embed_dim = model_cfg["embd_dim"]
    input_splits = projection_dims = None
    if isinstance(input_dim, (list, tuple)):
        # One feature set per entry, each projected by its own 1x1 conv to
        # the matching `embd_dim` entry (the three-feature Ego4D config).
        if (not isinstance(embed_dim, (list, tuple))
                or len(embed_dim) != len(input_dim)):
            raise ConfigError(
                f"model.embd_dim: a list input_dim {input_dim!r} needs a "
                f"list embd_dim of the same length (one projection per "
                f"feature set), got {embed_dim!r}")
        input_splits = [_as_int(c, "input_dim") for c in input_dim]
        projection_dims = [_as_int(c, "embd_dim") for c in embed_dim]
        input_dim, embed_dim = sum(input_splits), sum(projection_dims)
    elif isinstance(embed_dim, (list, tuple)):
        raise ConfigError(f"model.embd_dim: a list {embed_dim!r} needs a "
                          f"list input_dim (one entry per feature set)")
    input_dim = _as_int(input_dim, "input_dim")

    arch = model_cfg["backbone_arch"]
    if not isinstance(arch, (list, tuple)) or len(arch) != 3:
        raise ConfigError(f"model.backbone_arch: expected 3 counts, got "
                          f"{arch!r}")
    arch = [_as_int(a, "backbone_arch") for a in arch]
    num_levels = 1 + arch[2]

    windows = model_cfg["n_mha_win_size"]
    if isinstance(windows, (list, tuple)):
        windows = [_as_int(w, "n_mha_win_size") for w in windows]
        if len(windows) != num_levels:
            raise ConfigError(
                f"model.n_mha_win_size: needs 1 + backbone_arch[2] = "
                f"{num_levels} entries, got {len(windows)}")
    else:
        windows = _as_int(windows, "n_mha_win_size")

    embed_dim = _as_int(embed_dim, "embd_dim")
    fpn_dim = _as_int(_get(model_cfg, "fpn_dim", embed_dim), "fpn_dim")
    if fpn_dim != embed_dim:
        raise ConfigError(
            f"model.fpn_dim: {fpn_dim} != embd_dim {embed_dim}; the identity "
            f"neck keeps the channel count")

    strides = [2 ** level for level in range(num_levels)]
    if "fpn_strides" in model_cfg:
        given = [_as_int(s, "fpn_strides") for s in model_cfg["fpn_strides"]]
        if given != strides:
            raise ConfigError(f"model.fpn_strides: {given} does not match "
                              f"the backbone's strides {strides}")

    ranges = model_cfg["regression_range"]
    if (not isinstance(ranges, (list, tuple)) or len(ranges) != num_levels
            or any(len(r) != 2 for r in ranges)):
        raise ConfigError(
            f"model.regression_range: expected {num_levels} [lo, hi] pairs "
            f"(one per level), got {ranges!r}")

    max_seq_len = _get(model_cfg, "max_seq_len", None)
    if use_abs_pe and max_seq_len is None:
        raise ConfigError("model.max_seq_len: required with use_abs_pe: true "
                          "(the rows of the position table)")
    kwargs = dict(
        input_dim=input_dim,
        num_classes=_as_int(model_cfg["num_classes"], "num_classes"),
        embed_dim=embed_dim,
        num_heads=_as_int(model_cfg["n_head"], "n_head"),
        arch=arch,
        window_size=windows,
        embed_kernel_size=_as_int(_get(model_cfg, "embd_kernel_size", 3),
                                  "embd_kernel_size"),
        embed_with_ln=bool(_get(model_cfg, "embd_with_ln", True)),
        fpn_with_ln=bool(_get(model_cfg, "fpn_with_ln", True)),
        head_dim=_as_int(model_cfg["head_dim"], "head_dim"),
        head_kernel_size=_as_int(_get(model_cfg, "head_kernel_size", 3),
                                 "head_kernel_size"),
        head_num_layers=_as_int(_get(model_cfg, "head_num_layers", 3),
                                "head_num_layers"),
        head_with_ln=bool(_get(model_cfg, "head_with_ln", True)),
        regression_range=[[float(lo), float(hi)] for lo, hi in ranges],
        prior_prob=float(train_cfg["cls_prior_prob"]),
        empty_classes=[int(c) for c in train_cfg["head_empty_cls"]],
        dropout=float(train_cfg["dropout"]),
        drop_path_rate=float(train_cfg["droppath"]),
        max_seq_len=(None if max_seq_len is None
                     else _as_int(max_seq_len, "max_seq_len")),
        use_abs_pe=bool(use_abs_pe),
        input_splits=input_splits,
        projection_dims=projection_dims,
    )
    return kwargs


def reference_weight_entries(model):
    """`(state_dict key, variable, convert)` for every `ActionFormer` weight.

    Args:
        model: a built `ActionFormer`.

    Returns:
        List covering the backbone (`backbone.*`), the neck (`neck.*`) and
        both heads (`cls_head.*`, `reg_head.*`).
    """
    return (backbone_weight_entries(model.backbone, "backbone.")
            + neck_weight_map(model.neck, "neck")
            + classification_head_weight_map(model.cls_head, "cls_head")
            + regression_head_weight_map(model.reg_head, "reg_head"))


def load_reference_weights(model, state_dict):
    """Loads the authors' full PyTorch `state_dict` into an `ActionFormer`.

    Args:
        model: a built `ActionFormer` whose configuration matches the
            checkpoint (e.g. from `ActionFormer.from_reference_config`).
        state_dict: mapping PyTorch key -> array (numpy arrays, an
            `np.load`-ed `.npz`, or CPU tensors convertible by
            `np.asarray`). For a released checkpoint use its
            `state_dict_ema` (the weights the authors evaluate).

    Returns:
        Sorted list of the loaded keys (= every key of `state_dict`).

    Raises:
        ValueError: a key is missing or left over, a converted shape does
            not match its variable, or a model variable has no key. Nothing
            is assigned unless everything matches.
    """
    entries = reference_weight_entries(model)
    problems = []
    covered = {id(v) for _, v, _ in entries}
    unmapped = [v.path for v in model.weights if id(v) not in covered]
    if unmapped:
        problems.append(f"model variables without a key: {unmapped}")
    wanted = [k for k, _, _ in entries]
    if len(set(wanted)) != len(wanted):
        problems.append("duplicate keys in the weight map")
    keys = set(state_dict.keys()) if hasattr(state_dict, "keys") else set(
        state_dict)
    missing = sorted(set(wanted) - keys)
    extra = sorted(keys - set(wanted))
    if missing:
        problems.append(f"missing keys {missing}")
    if extra:
        problems.append(f"unexpected keys {extra}")
    values = []
    for key, variable, convert in entries:
        if key not in keys:
            continue
        value = convert(np.asarray(state_dict[key], np.float32))
        if tuple(value.shape) != tuple(variable.shape):
            problems.append(
                f"{key}: converted shape {tuple(value.shape)} != "
                f"{variable.path} {tuple(variable.shape)}")
            continue
        values.append((variable, value))
    if problems:
        raise ValueError("load_reference_weights: the state dict does not "
                         "match the model: " + "; ".join(problems))
    for variable, value in values:
        variable.assign(value.astype(variable.dtype))
    return sorted(wanted)
