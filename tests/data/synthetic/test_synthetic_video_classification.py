"""Tests for the synthetic HMDB51-style colour x motion dataset."""

import cv2
import numpy as np
import pytest

from tfaction.data.synthetic import dequantize_flow
from tfaction.data.synthetic import generate_video_classification
from tfaction.data.synthetic import quantize_flow
from tfaction.data.synthetic import video_classification as vc


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("vc") / "data"
    summary = generate_video_classification(out, seed=0)
    classes = (out / "actions.txt").read_text().splitlines()
    videos = {}
    for split in ("train", "test"):
        lines = (out / "train_test_lists" / f"{split}_split1.txt"
                 ).read_text().splitlines()
        for line in lines:
            path, num_frames, class_id = line.split(" ")
            videos[path] = (int(num_frames), int(class_id), split)
    return out, summary, classes, videos


def _read_rgb(path):
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert image is not None, path
    return image[..., ::-1].astype(np.float32)


def _read_flow(folder, k):
    axes = []
    for axis in "xy":
        image = cv2.imread(str(folder / f"flow_{axis}_{k:05d}.jpg"),
                           cv2.IMREAD_UNCHANGED)
        assert image is not None and image.ndim == 2
        axes.append(dequantize_flow(image))
    return axes


def _leave_one_out_predictions(features, labels):
    """Nearest class centroid on z-scored features, leaving each video out."""
    f = (features - features.mean(0)) / (features.std(0) + 1e-9)
    predictions = []
    for i in range(len(labels)):
        rest = np.arange(len(labels)) != i
        centroids = np.stack([f[rest & (labels == k)].mean(0)
                              for k in range(labels.max() + 1)])
        predictions.append(((f[i] - centroids) ** 2).sum(1).argmin())
    return np.array(predictions)


def _leave_one_out_accuracy(features, labels):
    return (_leave_one_out_predictions(features, labels) == labels).mean()


def test_quantisation_matches_dense_flow_convention():
    f = np.array([-25.0, -20.0, 0.0, 1.0, 20.0, 30.0])
    np.testing.assert_array_equal(quantize_flow(f),
                                  [0, 0, 128, 134, 255, 255])
    assert np.abs(dequantize_flow(quantize_flow(f[1:5])) - f[1:5]).max() \
        <= 20.0 / 255 + 1e-6


def test_same_seed_gives_identical_bytes(tmp_path):
    kwargs = dict(num_videos=8, classes=("red_pan", "green_zoom"), height=48,
                  width=48, min_frames=8, max_frames=10)
    trees = []
    for name, seed in (("a", 5), ("b", 5), ("c", 6)):
        generate_video_classification(tmp_path / name, seed=seed, **kwargs)
        root = tmp_path / name
        trees.append({p.relative_to(root).as_posix(): p.read_bytes()
                      for p in sorted(root.rglob("*")) if p.is_file()})
    assert trees[0] == trees[1]
    assert trees[0] != trees[2]


def test_layout(dataset):
    out, summary, classes, videos = dataset
    assert classes == list(vc.CLASSES) == summary["classes"]
    assert sorted(p.name for p in out.iterdir()) == [
        "README.md", "actions.txt", "frames", "train_test_lists"]
    assert len(videos) == summary["num_videos"] == 32
    splits = [v[2] for v in videos.values()]
    assert splits.count("train") == 24 and splits.count("test") == 8
    for split in ("train", "test"):  # every class in both splits
        assert {c for n, c, s in videos.values() if s == split} == set(
            range(len(classes)))
    lengths = set()
    for path, (num_frames, class_id, _) in videos.items():
        class_name, _ = path.split("/")
        assert classes[class_id] == class_name
        assert 24 <= num_frames <= 40
        lengths.add(num_frames)
        folder = out / "frames" / path
        names = sorted(p.name for p in folder.iterdir())
        expected = sorted(
            [f"image_{i:05d}.jpg" for i in range(1, num_frames + 1)]
            + [f"flow_{a}_{i:05d}.jpg" for a in "xy"
               for i in range(1, num_frames)])
        assert names == expected, path
    assert len(lengths) > 5
    # Every frame / flow image of one video decodes with the right shape.
    path = next(iter(videos))
    folder = out / "frames" / path
    for i in range(1, videos[path][0] + 1):
        assert _read_rgb(folder / f"image_{i:05d}.jpg").shape == (64, 80, 3)
    for k in range(1, videos[path][0]):
        assert [f.shape for f in _read_flow(folder, k)] == [(64, 80)] * 2


def test_flow_is_the_motion_of_the_rendering(dataset):
    """Warping frame k+1 back by flow k reproduces frame k on the blob."""
    out, _, _, videos = dataset
    err_flow = err_still = 0.0
    for path, (num_frames, _, _) in list(videos.items())[::2]:
        folder = out / "frames" / path
        for k in range(1, num_frames, 4):
            a = _read_rgb(folder / f"image_{k:05d}.jpg")
            b = _read_rgb(folder / f"image_{k + 1:05d}.jpg")
            fx, fy = _read_flow(folder, k)
            zero = dequantize_flow(np.uint8(128))
            moving = np.hypot(fx - zero, fy - zero) > 0.2
            # Skip the blob's rim, where pixels are (dis)occluded.
            moving = cv2.erode(moving.astype(np.uint8),
                               np.ones((5, 5), np.uint8)).astype(bool)
            assert not moving[[0, -1]].any()  # static background at borders
            yy, xx = np.mgrid[0:64, 0:80].astype(np.float32)
            warped = cv2.remap(b, xx + fx, yy + fy, cv2.INTER_LINEAR)
            err_flow += np.abs(warped - a).mean(-1)[moving].sum()
            err_still += np.abs(b - a).mean(-1)[moving].sum()
    assert err_flow < 0.6 * err_still, (err_flow, err_still)


def test_mean_flow_points_in_the_drawn_direction(dataset):
    out, summary, classes, _ = dataset
    zero = dequantize_flow(np.uint8(128))
    translations = [v for v in summary["videos"]
                    if v["motion"] in vc._DIRECTIONS]
    assert {v["motion"] for v in translations} == set(vc._DIRECTIONS)
    for v in summary["videos"]:  # the drawn motion belongs to the class
        group = classes[v["class_id"]].split("_")[1]
        assert v["motion"] in vc.MOTION_GROUPS[group], v
    for v in translations:
        fx, fy = _read_flow(out / "frames" / v["path"], v["num_frames"] // 2)
        moving = np.hypot(fx - zero, fy - zero) > 0.3
        mean = np.array([fx[moving].mean(), fy[moving].mean()]) - zero
        expected = np.array(vc._DIRECTIONS[v["motion"]])
        assert mean @ expected > 0.5, (v["path"], mean)
        assert abs(mean @ expected[::-1]) < 0.2, (v["path"], mean)


def _frame_statistics(folder, num_frames):
    """Hue histogram of the saturated pixels of the middle frame."""
    image = _read_rgb(folder / f"image_{num_frames // 2:05d}.jpg")
    hsv = cv2.cvtColor(image / 255, cv2.COLOR_RGB2HSV)  # hue in degrees
    saturated = hsv[..., 1] > 0.4
    hist = np.histogram(hsv[..., 0][saturated], bins=12, range=(0, 360))[0]
    return hist / max(1, saturated.sum())


def _flow_statistics(folder, num_frames):
    """Mean flow, divergence and curl of an affine fit, averaged over time."""
    zero = dequantize_flow(np.uint8(128))
    stats = []
    for k in range(1, num_frames, 3):
        fx, fy = _read_flow(folder, k)
        moving = np.hypot(fx - zero, fy - zero) > 0.3
        yy, xx = np.nonzero(moving)
        design = np.stack([xx - xx.mean(), yy - yy.mean(),
                           np.ones(len(xx))], 1)
        ax = np.linalg.lstsq(design, fx[moving], rcond=None)[0]
        ay = np.linalg.lstsq(design, fy[moving], rcond=None)[0]
        stats.append([ax[2], ay[2], ax[0] + ay[1], ay[0] - ax[1]])
    return np.abs(np.mean(stats, 0))  # the direction is random per video


def test_colour_and_motion_each_explain_half_of_the_label(dataset):
    """A frame tells the colour, the flow the motion group; each is shared
    by two classes, so only both together tell the class."""
    out, _, classes, videos = dataset
    labels = np.array([v[1] for v in videos.values()])
    families = np.array([list(vc.FAMILIES).index(classes[k].split("_")[0])
                         for k in labels])
    groups = np.array([list(vc.MOTION_GROUPS).index(classes[k].split("_")[1])
                       for k in labels])
    frame = np.stack([_frame_statistics(out / "frames" / p, v[0])
                      for p, v in videos.items()])
    flow = np.stack([_flow_statistics(out / "frames" / p, v[0])
                     for p, v in videos.items()])
    assert np.bincount(families).tolist() == [8] * 4
    assert np.bincount(groups).tolist() == [8] * 4
    # Each colour and each motion group belongs to exactly two classes.
    for cue in (families, groups):
        assert [len(set(labels[cue == c])) for c in range(4)] == [2] * 4
    # Frames tell the colour, flow the motion group ...
    family_hat = _leave_one_out_predictions(frame, families)
    group_hat = _leave_one_out_predictions(flow, groups)
    assert (family_hat == families).mean() > 0.9
    assert (group_hat == groups).mean() > 0.9
    # ... so either alone is right about the class about half of the time
    # (chance 1/8), ...
    assert _leave_one_out_accuracy(frame, labels) < 0.5 + 0.2
    assert _leave_one_out_accuracy(flow, labels) < 0.5 + 0.2
    # ... and both together name it.
    pair_to_class = {(f, g): k for k, f, g in zip(labels, families, groups)}
    assert len(pair_to_class) == len(classes)
    combined = [pair_to_class.get(pair, -1)
                for pair in zip(family_hat, group_hat)]
    assert (np.array(combined) == labels).mean() > 0.9


def test_arguments_are_checked(tmp_path):
    with pytest.raises(ValueError, match="classes"):
        generate_video_classification(tmp_path / "a", classes=("jump",))
    with pytest.raises(ValueError, match="per class"):
        generate_video_classification(tmp_path / "a", num_videos=8)
    with pytest.raises(ValueError, match="height"):
        generate_video_classification(tmp_path / "a", height=16)
    assert not (tmp_path / "a").exists()
