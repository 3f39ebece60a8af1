"""Synthetic AdaFocus-layout data: the authors' files, byte-identical reruns,
and the class readable only in the red glyph at full resolution."""

import hashlib

import numpy as np
import pytest

from tfaction.data.formats import adafocus_lists
from tfaction.data.formats import jpeg
from tfaction.data.synthetic import adafocus


def _digest(root):
    h = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        if path.is_file():
            h.update(str(path.relative_to(root)).encode())
            h.update(path.read_bytes())
    return h.hexdigest()


def test_layout_and_determinism(tmp_path):
    kwargs = dict(num_videos=8, seed=3, num_classes=2, height=41, width=49,
                  min_frames=4, max_frames=6)
    summary = adafocus.generate_adafocus(tmp_path / "a", **kwargs)
    again = adafocus.generate_adafocus(tmp_path / "b", **kwargs)
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    assert summary["videos"] == again["videos"]
    root = tmp_path / "a"
    assert (root / "classInd.txt").read_text() == "pattern_0\npattern_1\n"
    train = adafocus_lists.read_split_list(root / "actnet_train_split.txt",
                                           "actnet")
    val = adafocus_lists.read_split_list(root / "actnet_val_split.txt",
                                         "actnet")
    assert len(train) == summary["num_train"] == 6
    assert len(val) == summary["num_val"] == 2
    assert {e.labels for e in val} == {(0,), (1,)}
    entry = train[0]
    assert len(list((root / "frames" / entry.video_path).glob("*.jpg"))) == (
        entry.num_frames)


def test_the_target_glyph_carries_the_class(tmp_path):
    summary = adafocus.generate_adafocus(tmp_path, num_videos=8, seed=1,
                                         num_classes=4, height=49, width=65,
                                         min_frames=3, max_frames=3)
    patterns = adafocus.class_patterns(4)
    side = summary["glyph_size"]
    assert side == 13
    lattice = []
    for video in summary["videos"]:
        image = jpeg.decode_jpeg((tmp_path / "frames" / video["video"] /
                                  "image_00002.jpg").read_bytes())
        y, x = video["target"][1]
        assert y % 4 == 0 and x % 4 == 0
        glyph = image[y:y + side, x:x + side].astype(float)
        plate = glyph[0, side // 2]  # red (even labels) or orange (odd)
        assert plate[0] - plate[2] > 80
        assert (plate[1] > 100) == (video["label"] % 2 == 1)
        cells = glyph[1:, 1:].reshape(3, 4, 3, 4, 3)[:, :3, :, :3]
        np.testing.assert_array_equal(cells.mean((1, 3, 4)) > 128,
                                      patterns[video["label"]])
        # What a 4x glance samples: border and grey lines only.
        lattice.append(glyph[::4, ::4].mean(-1))
    inner = np.stack(lattice)[:, 1:3, 1:3]
    assert np.abs(inner - 128).max() < 20
    # Every pair of patterns (and mirror images) differs in >= 4 cells.
    for i in range(4):
        for j in range(i):
            assert (patterns[i] != patterns[j]).sum() >= 4
            assert (patterns[i] != patterns[j][:, ::-1]).sum() >= 4
    with pytest.raises(ValueError, match="too many"):
        adafocus.class_patterns(40)
