"""Loads the ActionVLAD authors' TF-slim checkpoints into `ActionVLAD`.

The released models of rohitgirdhar/ActionVLAD (`get_models.sh`) are TF1
checkpoints saved by its `train_image_classifier.py`, one network per
stream scope (`stream0/` for a one-stream model). Under the scope
(`nets/nets_factory.py`, `nets/frame_pooling.py: netvlad`, `nets/vgg.py`):

* `vgg_16/conv{X}/conv{X}_{Y}/weights` `[3, 3, in, out]` and `.../biases`
  -> trunk layer `block{X}_conv{Y}`;
* `NetVLAD/centers` `[K, D]` -> `netvlad.centers`;
* `NetVLAD/vlad_W` `[1, 1, D, K]` (a 1x1 conv) ->
  `netvlad.assignment_kernel` `[D, K]`;
* `NetVLAD/vlad_B` `[K]` -> `netvlad.assignment_bias`;
* `classifier/logits/weights` `[K * D, C]`, `.../biases` `[C]` ->
  `classifier` kernel and bias.

Both pool cluster-major (`[B, K, D]` flattened), so the classifier kernel
loads as it is. The trunk is read by
`tfaction.models.backbones.vgg16.load_slim_vgg16_checkpoint`; unlike that
loader (an ImageNet initialisation) the first conv must already have the
model's input channels. Other variables of the file (optimizer slots,
`global_step`) are ignored. Loading is all-or-nothing: every variable is
read and shape-checked before any is assigned.

Example:

```python
from tfaction.checkpoints.actionvlad import load_actionvlad_checkpoint
from tfaction.models.actionvlad.model import ActionVLAD

model = ActionVLAD(51, num_clusters=64)
load_actionvlad_checkpoint(model, "models/ActionVLAD-pretrained/hmdb51/"
                                  "rgb/split1.ckpt")
```
"""

import numpy as np
import tensorflow as tf

from tfaction import errors
from tfaction.checkpoints.errors import CheckpointError
from tfaction.data import filesystems
from tfaction.models.backbones import vgg16

CENTERS = "NetVLAD/centers"
VLAD_W = "NetVLAD/vlad_W"
# (checkpoint name under the scope, layer, weight attribute).
_HEAD = ((CENTERS, "netvlad", "centers"),
         (VLAD_W, "netvlad", "assignment_kernel"),
         ("NetVLAD/vlad_B", "netvlad", "assignment_bias"),
         ("classifier/logits/weights", "classifier", "kernel"),
         ("classifier/logits/biases", "classifier", "bias"))
_TRUNK_SCOPE = "vgg_16"
_FIRST_CONV = "vgg_16/conv1/conv1_1/weights"


def _stream_scope(available, path, scope):
    """The prefix the network's variables share (e.g. "stream0/")."""
    found = sorted(name[:-len(CENTERS)] for name in available
                   if name.endswith(CENTERS))
    if scope is not None:
        scope = scope.rstrip("/") + "/" if scope else ""
        if scope not in found:
            raise CheckpointError(
                f"no variable {scope}{CENTERS}; the file's NetVLAD scopes: "
                f"{found or 'none'}", path=path, key=scope + CENTERS)
        return scope
    if len(found) != 1:
        what = ("no NetVLAD layer (not an ActionVLAD checkpoint)" if not found
                else f"several NetVLAD layers under {found}; pass scope= "
                "to choose one")
        raise CheckpointError(f"{what}: expected one variable named "
                              f"[<stream>/]{CENTERS}", path=path)
    return found[0]


def load_actionvlad_checkpoint(model, path, *, scope=None):
    """Assigns an authors' ActionVLAD checkpoint to a built `ActionVLAD`.

    Args:
        model: a `tfaction.models.actionvlad.model.ActionVLAD` with the
            VGG16 trunk, built with the checkpoint's endpoint, number of
            clusters, input channels and classes.
        path: checkpoint prefix (`split1.ckpt`, `model.ckpt-150000`) or
            its directory, local or remote.
        scope: the stream scope of the network in the file ("stream0");
            None: the only scope holding a `NetVLAD/centers` variable.

    Returns:
        The NetVLAD and classifier variables loaded (checkpoint names,
        sorted), then the trunk layers loaded (`block1_conv1`, ...).

    Raises:
        ConfigError: the model's trunk is not VGG16.
        CheckpointError: unreadable file; no (or, without `scope`, more
            than one) NetVLAD layer; a variable missing or of the wrong
            shape (the message names the file, the variable and both
            shapes). The model's weights are then unchanged.

    Example:

    ```python
    names = load_actionvlad_checkpoint(model, "rgb/split1.ckpt")
    ```
    """
    if model.trunk != "vgg16":
        raise errors.ConfigError(
            f"the ActionVLAD checkpoints hold a VGG16 trunk; this model's "
            f"trunk is {model.trunk!r} (task.model.trunk)")
    path = filesystems.ensure_filesystem(path)
    try:
        reader = tf.train.load_checkpoint(path)
        available = reader.get_variable_to_shape_map()
    except (tf.errors.OpError, ValueError, OSError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else e
        raise CheckpointError(f"cannot read TF checkpoint: {first}",
                              path=path) from e
    prefix = _stream_scope(available, path, scope)

    def read(name, want):
        key = prefix + name
        if key not in available:
            raise CheckpointError("variable missing", path=path, key=key)
        stored = (1, 1, *want) if name == VLAD_W else want  # 1x1 conv
        if tuple(available[key]) != stored:
            raise CheckpointError(
                f"expected shape {stored} for this model, got "
                f"{tuple(available[key])}", path=path, key=key)
        return reader.get_tensor(key).reshape(want)

    first = model.trunk_model.get_layer("block1_conv1").kernel
    if prefix + _FIRST_CONV in available:
        read(_FIRST_CONV, tuple(first.shape))  # no RGB -> flow adaptation
    updates = []
    for name, layer_name, attribute in _HEAD:
        variable = getattr(model.get_layer(layer_name), attribute)
        updates.append((prefix + name, variable,
                        read(name, tuple(variable.shape))))
    try:  # checks the whole trunk, then assigns it
        trunk = vgg16.load_slim_vgg16_checkpoint(
            model.trunk_model, path, scope=prefix + _TRUNK_SCOPE)
    except errors.MalformedFileError as e:
        raise CheckpointError(e.message, path=path, key=e.key) from e
    for _, variable, value in updates:
        variable.assign(np.asarray(value, variable.dtype))
    return sorted(name for name, _, _ in updates) + trunk
