"""Authors' ActionFormer neck / head weights -> tfaction layers.

Maps the PyTorch `state_dict` of happyharrycn/actionformer_release (keys
`neck.*`, `cls_head.*`, `reg_head.*`, as numpy arrays, e.g. from a `.npz`
or `{k: v.numpy() for k, v in sd.items()}`) onto `IdentityNeck`,
`ClassificationHead` and `RegressionHead`. The layers must be built.

PyTorch key (shape) -> tfaction variable, conversion:

* `neck.fpn_norms.{l}.weight` / `.bias` (1, C, 1) -> `neck.norms[l]`
  gamma / beta, `reshape(C)`.
* `{h}.head.{i}.conv.weight` (H, C_in, k) -> `{h}.convs[i].kernel`
  (k, C_in, H), `transpose(2, 1, 0)`; `.bias` (H,) only without LayerNorm.
* `{h}.norm.{i}.weight` / `.bias` (1, H, 1) -> `{h}.norms[i]` gamma / beta,
  `reshape(H)`.
* `cls_head.cls_head.conv.weight` / `.bias` (K, H, k) / (K,) ->
  `cls_head.classifier` kernel (`transpose(2, 1, 0)`) / bias.
* `reg_head.offset_head.conv.weight` / `.bias` (2, H, k) / (2,) ->
  `reg_head.offset_conv` kernel (`transpose(2, 1, 0)`) / bias.
* `reg_head.scale.{l}.scale` () -> `reg_head.scales[l].scale`.

`{h}` is `cls_head` or `reg_head`. `nn.Identity` norms (`head_with_ln`
false) have no parameters. Every key under the three prefixes must be used
and every variable of the three layers must be set, otherwise `ValueError`.

Example:

```python
sd = dict(np.load("weights.npz"))
load_head_weights(sd, neck=neck, cls_head=cls_head, reg_head=reg_head)
```
"""

import numpy as np


def _conv_kernel(w):
    """PyTorch Conv1d weight (out, in, k) -> kernel (k, in, out)."""
    return np.transpose(w, (2, 1, 0))


def _channel_param(w):
    """Channel LayerNorm parameter (1, C, 1) -> (C,)."""
    return np.reshape(w, (-1,))


def _identity(w):
    return np.asarray(w)


def _conv_variables(conv):
    """(kernel, bias or None) of a conv sublayer, found by variable name."""
    kernel = bias = None
    for v in conv.weights:
        name = v.name.split("/")[-1].split(":")[0]
        if name == "kernel":
            kernel = v
        elif name == "bias":
            bias = v
    if kernel is None:
        raise ValueError(f"conv {conv.name!r} has no kernel; is it built?")
    return kernel, bias


def _conv_entries(prefix, conv):
    kernel, bias = _conv_variables(conv)
    entries = [(f"{prefix}.weight", kernel, _conv_kernel)]
    if bias is not None:
        entries.append((f"{prefix}.bias", bias, _identity))
    return entries


def _norm_entries(prefix, norm):
    return [(f"{prefix}.weight", norm.gamma, _channel_param),
            (f"{prefix}.bias", norm.beta, _channel_param)]


def _trunk_entries(prefix, head):
    entries = []
    for i, conv in enumerate(head.convs):
        entries += _conv_entries(f"{prefix}.head.{i}.conv", conv)
    for i, norm in enumerate(head.norms):
        entries += _norm_entries(f"{prefix}.norm.{i}", norm)
    return entries


def neck_weight_map(neck, prefix="neck"):
    """[(torch_key, keras_variable, convert)] for an `IdentityNeck`."""
    entries = []
    for level, norm in enumerate(neck.norms):
        entries += _norm_entries(f"{prefix}.fpn_norms.{level}", norm)
    return entries


def classification_head_weight_map(head, prefix="cls_head"):
    """[(torch_key, keras_variable, convert)] for a `ClassificationHead`."""
    return (_trunk_entries(prefix, head)
            + _conv_entries(f"{prefix}.cls_head.conv", head.classifier))


def regression_head_weight_map(head, prefix="reg_head"):
    """[(torch_key, keras_variable, convert)] for a `RegressionHead`."""
    entries = (_trunk_entries(prefix, head)
               + _conv_entries(f"{prefix}.offset_head.conv",
                               head.offset_conv))
    for level, scale in enumerate(head.scales):
        entries.append((f"{prefix}.scale.{level}.scale", scale.scale,
                        _identity))
    return entries


def load_head_weights(state_dict, neck=None, cls_head=None, reg_head=None):
    """Assigns the authors' neck / head weights to built tfaction layers.

    Args:
        state_dict: mapping PyTorch key -> numpy array (other prefixes,
            e.g. `backbone.*`, are ignored).
        neck: an `IdentityNeck` (keys `neck.*`), or `None` to skip.
        cls_head: a `ClassificationHead` (keys `cls_head.*`), or `None`.
        reg_head: a `RegressionHead` (keys `reg_head.*`), or `None`.

    Returns:
        Sorted list of the keys that were loaded.

    Raises:
        ValueError: a key under a loaded prefix is missing, unused, or has
            a shape that does not match its variable after conversion, or a
            layer variable is not covered by the mapping.
    """
    plan = []
    for prefix, layer, mapper in (
            ("neck", neck, neck_weight_map),
            ("cls_head", cls_head, classification_head_weight_map),
            ("reg_head", reg_head, regression_head_weight_map)):
        if layer is None:
            continue
        entries = mapper(layer, prefix)
        covered = {id(v) for _, v, _ in entries}
        missed = [v.path for v in layer.weights if id(v) not in covered]
        if missed:
            raise ValueError(f"{prefix}: variables not mapped: {missed}")
        keys = {k for k in state_dict if k.startswith(prefix + ".")}
        wanted = {k for k, _, _ in entries}
        if keys - wanted or wanted - keys:
            raise ValueError(
                f"{prefix}: state_dict keys not used: "
                f"{sorted(keys - wanted)}; missing: {sorted(wanted - keys)}")
        plan += entries
    values = []
    for key, variable, convert in plan:  # check everything before assigning
        value = convert(np.asarray(state_dict[key], np.float32))
        if tuple(value.shape) != tuple(variable.shape):
            raise ValueError(
                f"{key}: converted shape {value.shape} does not match "
                f"{variable.path} {tuple(variable.shape)}")
        values.append(value)
    for (_, variable, _), value in zip(plan, values):
        variable.assign(value)
    return sorted(k for k, _, _ in plan)
