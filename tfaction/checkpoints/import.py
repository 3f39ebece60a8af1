"""`python -m tfaction.checkpoints.import`: a released checkpoint as a run.

`import` is a Python keyword, so this module only runs the command; the
code, flags and the family registry are `tfaction.checkpoints.import_cli`.

Example:

```
python -m tfaction.checkpoints.import --family=actionformer \
    --checkpoint=epoch_034.pth.tar \
    --config=experiments/configs/actionformer_thumos_i3d.py \
    --workdir=runs/thumos_release
```
"""

from tfaction.checkpoints import import_cli

if __name__ == "__main__":
    import_cli.main()
