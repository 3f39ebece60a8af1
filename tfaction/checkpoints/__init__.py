"""PyTorch checkpoints read without PyTorch and without executing them.

* `load_torch_checkpoint(path)`: the object in a `torch.save` file (zip
  format), tensors as NumPy arrays, through a restricted unpickler
  (`torch_unpickler`) that refuses any callable outside a small table.
* `state_dict(path, key)` / `select_state_dict(checkpoint, key)`: one
  state dict of it (`state_dict_ema`, `state_dict`, `model`, ...), with the
  `nn.DataParallel` `module.` prefix removed.
* `tfaction.checkpoints.actionformer.load_actionformer_checkpoint`: the
  ActionFormer authors' `.pth.tar` into a built `ActionFormer`;
  `tfaction.checkpoints.actionvlad.load_actionvlad_checkpoint`: the
  ActionVLAD authors' TF-slim checkpoint into a built `ActionVLAD`;
  `tfaction.checkpoints.i3d`: DeepMind's I3D TF1 checkpoints and the
  keras-kinetics-i3d `.h5` into the Action Transformer's I3D;
  `tfaction.checkpoints.resnet50.load_resnet50_checkpoint`: a torchvision /
  BYOL / MoCo / SimCLR / CARL ResNet-50 `.pth` into a `ResNet50`, and
  `load_keras_resnet50_weights`: keras.applications' v1 `.h5`
  (each imported on its own: they need TensorFlow).
* `python -m tfaction.checkpoints.import --family=... --checkpoint=...
  --config=... --workdir=...` (`tfaction.checkpoints.import_cli`): a
  released checkpoint written as a run directory that
  `experiments.train --mode=eval` and `export.export_saved_model` restore.

Example:

```python
from tfaction.checkpoints import state_dict
weights = state_dict("epoch_035.pth.tar", "state_dict_ema")
```
"""

from tfaction.checkpoints.errors import CheckpointError
from tfaction.checkpoints.errors import UnsafeCheckpointError
from tfaction.checkpoints.state_dicts import select_state_dict
from tfaction.checkpoints.state_dicts import state_dict
from tfaction.checkpoints.state_dicts import summary
from tfaction.checkpoints.torch_zip import load_torch_checkpoint

__all__ = ["CheckpointError", "UnsafeCheckpointError", "load_torch_checkpoint",
           "select_state_dict", "state_dict", "summary"]
