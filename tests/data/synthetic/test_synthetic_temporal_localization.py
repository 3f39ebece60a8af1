"""Tests for the synthetic ActivityNet/THUMOS-style localisation dataset."""

import json

import numpy as np
import pytest

from tfaction.data.synthetic import generate_temporal_localization
from tfaction.data.synthetic import temporal_localization as tl


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("tal") / "data"
    summary = generate_temporal_localization(out, seed=0)
    database = json.loads((out / "annotations.json").read_text())["database"]
    features = {vid: np.load(out / "features" / f"{vid}.npy")
                for vid in database}
    return out, summary, database, features


def _tree_bytes(root):
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _to_grid(seconds):
    # Inverse of ActionFormer's t = (g * stride + window / 2) / fps.
    return (np.asarray(seconds) * tl.FPS - 0.5 * tl.FEATURE_WINDOW) \
        / tl.FEATURE_STRIDE


def test_same_seed_gives_identical_bytes(tmp_path):
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        generate_temporal_localization(tmp_path / name, num_videos=9,
                                       seed=seed)
    a, b, c = (_tree_bytes(tmp_path / name) for name in "abc")
    assert len(a) == 9 + 2  # 9 feature files, annotations.json, README.md
    assert a == b
    assert a["annotations.json"] != c["annotations.json"]


def test_layout_and_feature_settings(dataset):
    out, summary, database, features = dataset
    top = json.loads((out / "annotations.json").read_text())
    assert top["version"] == "synthetic-1"
    names = [node["nodeName"] for node in top["taxonomy"]]
    assert names == summary["classes"] == sorted(names) and len(names) == 5
    assert sorted(p.name for p in out.iterdir()) == [
        "README.md", "annotations.json", "features"]
    assert len(list((out / "features").iterdir())) == len(database) == 60
    subsets = [v["subset"] for v in database.values()]
    assert subsets.count("validation") == 12
    assert subsets.count("training") == 48
    for vid, video in database.items():
        x = features[vid]
        assert x.dtype == np.float32 and x.ndim == 2 and x.shape[1] == 32
        assert 64 <= x.shape[0] <= 256
        assert np.isfinite(x).all()
        assert video["fps"] == 30.0
        assert video["duration"] == pytest.approx(
            ((x.shape[0] - 1) * 4 + 16) / 30, abs=1e-9)
    readme = (out / "README.md").read_text()
    assert "--feature_stride=4" in readme
    assert "--feature_window=16" in readme
    assert len({x.shape[0] for x in features.values()}) > 30


def test_segments_are_valid(dataset):
    _, summary, database, _ = dataset
    count = 0
    for vid, video in database.items():
        assert len(video["annotations"]) >= 2, vid
        for ann in video["annotations"]:
            start, end = ann["segment"]
            assert 0.0 <= start < end <= video["duration"], (vid, ann)
            assert summary["classes"][ann["label_id"]] == ann["label"]
            count += 1
    assert count == summary["num_segments"]


def test_segments_nest_overlap_and_vary_in_length(dataset):
    _, _, database, _ = dataset
    nested = partial = 0
    lengths = []
    for video in database.values():
        segs = [(a["segment"][0], a["segment"][1], a["label_id"])
                for a in video["annotations"]]
        lengths += [e - s for s, e, _ in segs]
        for i, (s1, e1, c1) in enumerate(segs):
            for s2, e2, c2 in segs[i + 1:]:
                if s1 < e2 and s2 < e1:
                    assert c1 != c2  # never one class on top of itself
                    inside = (s1 <= s2 and e2 <= e1) or (s2 <= s1 and e1 <= e2)
                    nested += inside
                    partial += not inside
    assert nested >= 10 and partial >= 10
    assert min(lengths) < 1.0 < 6.0 < max(lengths)  # seconds


def test_class_patterns_are_separable(dataset):
    """Nearest class mean on rows inside exactly one segment: train → val."""
    _, summary, database, features = dataset
    rows = {"training": ([], []), "validation": ([], [])}
    outside = []
    for vid, video in database.items():
        x = features[vid]
        steps = np.arange(len(x))
        cover = np.zeros(len(x), int)
        label = np.full(len(x), -1)
        for ann in video["annotations"]:
            g0, g1 = _to_grid(ann["segment"])
            inside = (steps >= g0 - 1e-6) & (steps <= g1 + 1e-6)
            cover += inside
            label[inside] = ann["label_id"]
        keep = cover == 1
        rows[video["subset"]][0].append(x[keep])
        rows[video["subset"]][1].append(label[keep])
        outside.append(x[cover == 0])
    x_train, y_train = (np.concatenate(v) for v in rows["training"])
    x_val, y_val = (np.concatenate(v) for v in rows["validation"])
    means = np.stack([x_train[y_train == k].mean(0)
                      for k in range(len(summary["classes"]))])
    dist = ((x_val[:, None] - means[None]) ** 2).sum(-1)
    accuracy = (dist.argmin(1) == y_val).mean()
    assert len(y_val) > 300
    assert accuracy > 0.9, accuracy

    # Clutter outside the actions (noise, drift, distractor bursts) does not
    # look like any class: it projects weakly on the class means.
    score_bg = np.abs(np.concatenate(outside) @ means.T).max(1).mean()
    score_action = np.abs(x_val @ means.T).max(1).mean()
    assert score_bg < 0.7 * score_action, (score_bg, score_action)


def test_arguments_are_checked(tmp_path):
    with pytest.raises(ValueError, match="feature_dim"):
        generate_temporal_localization(tmp_path / "a", feature_dim=8)
    with pytest.raises(ValueError, match="num_videos"):
        generate_temporal_localization(tmp_path / "a", num_videos=1)
    with pytest.raises(ValueError, match="min_steps"):
        generate_temporal_localization(tmp_path / "a", min_steps=300)
    assert not (tmp_path / "a").exists()


def test_existing_output_is_kept_unless_overwrite(tmp_path):
    out = tmp_path / "data"
    out.mkdir()
    (out / "keep.txt").write_text("user file")
    with pytest.raises(FileExistsError, match="not empty"):
        generate_temporal_localization(out, num_videos=3)
    assert (out / "keep.txt").exists()
    generate_temporal_localization(out, num_videos=3, overwrite=True)
    assert not (out / "keep.txt").exists()
    assert len(list((out / "features").iterdir())) == 3
    # No staging folders are left next to the output.
    assert [p.name for p in tmp_path.iterdir()] == ["data"]


def test_class_names_sort_in_label_id_order():
    for n in (2, 10, 12):
        names = tl.class_names(n)
        assert names == sorted(names) and len(set(names)) == n
