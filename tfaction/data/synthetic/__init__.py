"""Small deterministic datasets written in the public dataset layouts.

Each generator writes exactly the files a real dataset download has, so the
real-data path (`python -m tfaction.data.convert` → TFRecords →
`tf.data`) is the same code for synthetic and real data. The data carry
structure a model must actually learn; noise carries no label information.

- `temporal_localization` (`generate_temporal_localization`):
  ActivityNet/THUMOS JSON + per-video `.npy` features.
- `video_classification` (`generate_video_classification`): HMDB51 frame
  folders with flow JPEGs + split lists (class = blob colour x motion, each
  cue ambiguous alone).
- `charades` (`generate_charades`): Charades v1 CSVs + classes file + RGB
  frame folders, multi-label (class k = a square of colour k is visible).
- `ava` (`generate_ava`): AVA CSVs + label-map pbtxt + excluded
  timestamps + short mp4 videos; several people per keyframe whose actions
  depend on their motion and on context elsewhere in the frame.
- `adafocus` (`generate_adafocus`): the AdaFocus ActivityNet layout (frame
  folders, `classInd.txt`, comma-separated split lists); the class is the
  pattern of one small glyph on a red or orange plate drifting among
  distractor glyphs over clutter, readable only at full resolution.
- `tcc` (`generate_tcc`): TCC / CARL TFRecords (one SequenceExample per
  video, JPEG frames + a phase label per frame); a tool moving through K
  phases at a different speed in every video, under appearance nuisance.

Same arguments and seed → byte-identical files. Output is staged in a
temporary sibling folder and renamed into place, so a crash never leaves a
half-written dataset behind.

Example:

>>> from tfaction.data import synthetic
>>> summary = synthetic.generate_temporal_localization("/tmp/tal", seed=0)
>>> summary["num_videos"]
60

Command line: `python -m tfaction.data.synthetic --kind=video_classification
--out_dir=/tmp/hmdb_synth [--num_videos=N] [--seed=S] [--overwrite]`.
"""

import contextlib
import os
import pathlib
import shutil
import tempfile

from tfaction.data import filesystems


@contextlib.contextmanager
def staged_output_dir(out_dir, overwrite=False):
    """Yields a temporary folder that replaces `out_dir` on success.

    Args:
        out_dir: final dataset folder. It may be missing or empty; a non-empty
            folder is replaced only when `overwrite` is true.
        overwrite: replace an existing non-empty `out_dir`.

    Returns:
        A context manager yielding the `pathlib.Path` to write into.

    Raises:
        FileExistsError: `out_dir` is non-empty and `overwrite` is false.
    """
    if not filesystems.is_local(out_dir):
        with _staged_remote_dir(os.fspath(out_dir), overwrite) as staging:
            yield staging
        return
    out_dir = pathlib.Path(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()) and not overwrite:
        raise FileExistsError(
            f"{out_dir}: output folder is not empty; pass overwrite=True "
            "(--overwrite) to replace it")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = pathlib.Path(tempfile.mkdtemp(
        prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    # mkdtemp creates 0700 folders; give the dataset ordinary permissions.
    os.chmod(staging, 0o755)
    if out_dir.exists():
        # Move the old folder aside first so the swap is two renames.
        trash = pathlib.Path(tempfile.mkdtemp(
            prefix=f".{out_dir.name}.old-", dir=out_dir.parent))
        os.replace(out_dir, trash / "old")
        os.replace(staging, out_dir)
        shutil.rmtree(trash, ignore_errors=True)
    else:
        os.replace(staging, out_dir)


@contextlib.contextmanager
def _staged_remote_dir(out_dir, overwrite):
    """`staged_output_dir` for a remote `out_dir` (`s3://...`).

    The dataset is written to a local temporary folder, then uploaded; a
    failed upload removes what it wrote, so `out_dir` holds either the
    whole dataset or nothing.
    """
    if (filesystems.isdir(out_dir) and filesystems.listdir(out_dir)
            and not overwrite):
        raise FileExistsError(
            f"{out_dir}: output folder is not empty; pass overwrite=True "
            "(--overwrite) to replace it")
    staging = pathlib.Path(tempfile.mkdtemp(prefix=".synthetic-"))
    try:
        yield staging
        if filesystems.isdir(out_dir):
            filesystems.remove_tree(out_dir)
        try:
            filesystems.upload_tree(staging, out_dir)
        except BaseException:
            with contextlib.suppress(OSError):
                filesystems.remove_tree(out_dir)
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


# Imported after `staged_output_dir` is defined: the modules use it.
from tfaction.data.synthetic.adafocus import (  # noqa: E402
    generate_adafocus,
)
from tfaction.data.synthetic.ava import generate_ava  # noqa: E402
from tfaction.data.formats.optical_flow import dequantize_flow  # noqa: E402
from tfaction.data.formats.optical_flow import quantize_flow  # noqa: E402
from tfaction.data.synthetic.charades import (  # noqa: E402
    generate_charades,
)
from tfaction.data.synthetic.tcc import generate_tcc  # noqa: E402
from tfaction.data.synthetic.temporal_localization import (  # noqa: E402
    generate_temporal_localization,
)
from tfaction.data.synthetic.video_classification import (  # noqa: E402
    generate_video_classification,
)

GENERATORS = {
    "temporal_localization": generate_temporal_localization,
    "video_classification": generate_video_classification,
    "charades": generate_charades,
    "ava": generate_ava,
    "tcc": generate_tcc,
    "adafocus": generate_adafocus,
}

__all__ = [
    "GENERATORS",
    "dequantize_flow",
    "generate_adafocus",
    "generate_ava",
    "generate_charades",
    "generate_tcc",
    "generate_temporal_localization",
    "generate_video_classification",
    "quantize_flow",
    "staged_output_dir",
]
