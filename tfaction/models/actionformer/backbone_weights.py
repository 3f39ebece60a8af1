"""Loads the authors' PyTorch backbone weights into `ConvTransformerBackbone`.

The official ActionFormer checkpoints (happyharrycn/actionformer_release)
store a PyTorch `state_dict`; the backbone's entries start with `backbone.`.
`load_backbone_state_dict` copies them onto the variables of a built
`tfaction.layers.conv_transformer_backbone.ConvTransformerBackbone`.

Layout conversions (PyTorch is channels-first, Keras channels-last); keys
are relative to `backbone.`, `<blk>` is `stem.{j}` or `branch.{j}`:

- `proj.{i}.conv.weight` (P_i, C_i, 1) / `.bias` (P_i,) (multi-feature
  input) -> `projections[i].kernel` (1, C_i, P_i) / `.bias`.
- `embd.{i}.conv.weight` (E, C_in, k) -> `embed_convs[i].kernel`
  (k, C_in, E) by `transpose(2, 1, 0)`; `embd.{i}.conv.bias` (E,) only
  without LayerNorm.
- `embd_norm.{i}.weight` / `.bias` (1, E, 1) -> `embed_norms[i].gamma` /
  `.beta` by `reshape(E)`; likewise `<blk>.ln1`, `<blk>.ln2` and
  `<blk>.attn.{query,key,value}_norm`.
- `<blk>.attn.{query,key,value}_conv.conv.weight` (E, 1, 3), depthwise ->
  `attn.{query,key,value}_conv.kernel` (3, 1, E) by `transpose(2, 1, 0)`.
- 1x1 convs `<blk>.attn.{query,key,value,proj}`, `<blk>.mlp.0` (fc1),
  `<blk>.mlp.3` (fc2): weight (out, in, 1) -> Dense kernel (in, out) =
  `w[:, :, 0].T`; bias unchanged. `proj` maps to `attn.output_proj`,
  `query` to `attn.query_proj` (and so on).
- `<blk>.drop_path_attn.scale`, `<blk>.drop_path_mlp.scale` (1, E, 1) ->
  `scale_attn.scale`, `scale_mlp.scale` (E,).

Example:

```python
import numpy as np
from tfaction.layers.conv_transformer_backbone import ConvTransformerBackbone
from tfaction.models.actionformer.backbone_weights import (
    load_backbone_state_dict)

state = dict(np.load("weights.npz"))  # or {k: v.numpy() for k, v in ...}
backbone = ConvTransformerBackbone(embed_dim=32, num_heads=4, window_size=9,
                                   drop_path_rate=0.1)
backbone.build((None, 256, 32))
load_backbone_state_dict(backbone, state)
```

Reference:
    `libs/modeling/backbones.py`, `libs/modeling/blocks.py` of
    happyharrycn/actionformer_release.
"""

import numpy as np


def _conv_kernel(w):
    """PyTorch Conv1d weight (out, in/g, k) -> Keras (k, in/g, out)."""
    return np.transpose(w, (2, 1, 0))


def _pointwise_kernel(w):
    """PyTorch 1x1 Conv1d weight (out, in, 1) -> Dense kernel (in, out)."""
    return w[:, :, 0].T


def _channel_vector(w):
    """PyTorch (1, C, 1) LayerNorm / layer-scale parameter -> (C,)."""
    return np.reshape(w, (-1,))


def _identity(w):
    return w


def _layer_norm(prefix, norm):
    return [(f"{prefix}.weight", norm.gamma, _channel_vector),
            (f"{prefix}.bias", norm.beta, _channel_vector)]


def _dense(prefix, dense):
    return [(f"{prefix}.weight", dense.kernel, _pointwise_kernel),
            (f"{prefix}.bias", dense.bias, _identity)]


def _block_entries(prefix, block):
    entries = _layer_norm(f"{prefix}.ln1", block.ln1)
    entries += _layer_norm(f"{prefix}.ln2", block.ln2)
    attn = block.attn
    for name in ("query", "key", "value"):
        entries.append((f"{prefix}.attn.{name}_conv.conv.weight",
                        getattr(attn, f"{name}_conv").kernel, _conv_kernel))
        entries += _layer_norm(f"{prefix}.attn.{name}_norm",
                               getattr(attn, f"{name}_norm"))
        entries += _dense(f"{prefix}.attn.{name}",
                          getattr(attn, f"{name}_proj"))
    entries += _dense(f"{prefix}.attn.proj", attn.output_proj)
    entries += _dense(f"{prefix}.mlp.0", block.fc1)
    entries += _dense(f"{prefix}.mlp.3", block.fc2)
    if block.scale_attn is not None:
        entries.append((f"{prefix}.drop_path_attn.scale",
                        block.scale_attn.scale, _channel_vector))
        entries.append((f"{prefix}.drop_path_mlp.scale",
                        block.scale_mlp.scale, _channel_vector))
    return entries


def backbone_weight_entries(backbone, prefix="backbone."):
    """Lists `(state_dict key, Keras variable, converter)` for a backbone.

    Args:
        backbone: a built `ConvTransformerBackbone`.
        prefix: prefix of the backbone's keys in the state dict.

    Returns:
        List of `(key, variable, fn)` where `fn(torch_array)` gives the value
        to assign to `variable`; it covers every variable of the backbone.
    """
    if not backbone.built:
        raise ValueError("load_backbone_state_dict: build the backbone first "
                         "(e.g. backbone.build((None, T, input_dim)))")
    p = prefix
    entries = []
    for i, proj in enumerate(backbone.projections):
        entries.append((f"{p}proj.{i}.conv.weight", proj.kernel,
                        _conv_kernel))
        entries.append((f"{p}proj.{i}.conv.bias", proj.bias, _identity))
    for i, conv in enumerate(backbone.embed_convs):
        entries.append((f"{p}embd.{i}.conv.weight", conv.kernel,
                        _conv_kernel))
        if conv.bias is not None:
            entries.append((f"{p}embd.{i}.conv.bias", conv.bias, _identity))
    for i, norm in enumerate(backbone.embed_norms):
        entries += _layer_norm(f"{p}embd_norm.{i}", norm)
    for i, block in enumerate(backbone.stem):
        entries += _block_entries(f"{p}stem.{i}", block)
    for i, block in enumerate(backbone.branch):
        entries += _block_entries(f"{p}branch.{i}", block)
    return entries


def load_backbone_state_dict(backbone, state_dict, prefix="backbone.",
                             strict=True):
    """Copies the authors' PyTorch backbone weights onto a Keras backbone.

    Args:
        backbone: a built
            `tfaction.layers.conv_transformer_backbone.ConvTransformerBackbone`
            whose configuration matches the checkpoint.
        state_dict: mapping from PyTorch key to array (NumPy arrays, an
            `np.load`-ed `.npz`, or CPU torch tensors).
        prefix: prefix of the backbone's keys (`"backbone."` in the full
            `PtTransformer` state dict; `""` for a bare backbone).
        strict: also fail on keys under `prefix` that the Keras backbone has
            no variable for (e.g. a checkpoint with a position embedding or
            more blocks).

    Returns:
        The list of state-dict keys that were loaded.

    Raises:
        ValueError: the backbone is not built, a key is missing, a shape does
            not match, or (with `strict`) keys are left over. Nothing is
            assigned unless every entry matches.
    """
    entries = backbone_weight_entries(backbone, prefix)
    values, problems = [], []
    for key, variable, convert in entries:
        if key not in state_dict:
            problems.append(f"missing key {key!r}")
            continue
        value = convert(np.asarray(state_dict[key]))
        if tuple(value.shape) != tuple(variable.shape):
            problems.append(
                f"{key!r}: converted shape {tuple(value.shape)} != variable "
                f"{variable.path} shape {tuple(variable.shape)}")
            continue
        values.append((variable, value))
    if strict:
        used = {key for key, _, _ in entries}
        extra = sorted(k for k in state_dict
                       if k.startswith(prefix) and k not in used)
        if extra:
            problems.append(f"unexpected keys {extra[:10]}"
                            + (f" (+{len(extra) - 10} more)"
                               if len(extra) > 10 else ""))
    if problems:
        raise ValueError("load_backbone_state_dict: the state dict does not "
                         "match the backbone: " + "; ".join(problems))
    for variable, value in values:
        variable.assign(value.astype(variable.dtype))
    return [key for key, _, _ in entries]
