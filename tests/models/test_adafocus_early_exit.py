"""AdaFocus V2+ early exit (`tfaction.models.adafocus.early_exit`).

Hand-computed thresholds, exits and expected GFLOPs of the authors'
procedure (`ops/early_exit.py`: geometric exit fractions, thresholds on
the sorted max logits of the training videos still left, the last step
takes all), the sweep over budgets, the JSON form of the thresholds and
the accuracy-vs-GFLOPs figure.
"""

import json

import cv2
import numpy as np
import pytest

from tfaction import errors
from tfaction.models.adafocus import early_exit


def _logits(max_logits):
    """`[N, T]` max logits -> `[N, T, 2]` logits (class 1 is 1 below)."""
    top = np.asarray(max_logits, np.float32)
    return np.stack([top, top - 1], axis=-1)


# Step-1 / step-2 max logits of 10 training videos (step 3 never matters).
TRAIN = _logits(np.array([
    [9, 1, 8, 2, 7, 3, 6, 4, 5, 0],
    [10, 10, 10, 5, 1, 6, 2, 7, 3, 4],
    [0] * 10]).T)


def test_exit_fractions_are_geometric():
    np.testing.assert_allclose(early_exit.exit_fractions(1.0, 3),
                               [1 / 3] * 3, rtol=1e-6)
    np.testing.assert_allclose(early_exit.exit_fractions(0.5, 3),
                               [4 / 7, 2 / 7, 1 / 7], rtol=1e-6)
    np.testing.assert_allclose(early_exit.exit_fractions(2.0, 3),
                               [2 / 14, 4 / 14, 8 / 14], rtol=1e-6)
    assert early_exit.exit_fractions(1.5, 16).dtype == np.float32
    assert early_exit.AUTHORS_BUDGETS[0] == 0.5
    assert early_exit.AUTHORS_BUDGETS[-1] == 3.9
    assert len(early_exit.AUTHORS_BUDGETS) == 35


def test_thresholds_by_hand():
    # q = 1: floor(10 / 3) = 3 videos leave after step 1 and after step 2.
    # Step 1: 9, 8, 7 (videos 0, 2, 4) -> T_1 = 7. Step 2 among the other
    # seven (10, 5, 6, 2, 7, 3, 4): 10, 7, 6 -> T_2 = 6.
    thresholds = early_exit.calibrate_thresholds(TRAIN, 1.0)
    assert thresholds.tolist() == [7.0, 6.0, -np.inf]
    # q = 0.5: floor(10 * 4/7) = 5 -> T_1 = 5 (9, 8, 7, 6, 5);
    # floor(10 * 2/7) = 2 of videos 1, 3, 5, 7, 9 (10, 5, 6, 7, 4) -> 7.
    assert early_exit.calibrate_thresholds(TRAIN, 0.5).tolist() == [
        5.0, 7.0, -np.inf]


def test_a_step_nobody_leaves_gets_an_infinite_threshold():
    # 3 videos, q = 0.5: floor(3 * 4/7) = 1, floor(3 * 2/7) = 0.
    thresholds = early_exit.calibrate_thresholds(TRAIN[:3], 0.5)
    assert thresholds.tolist() == [9.0, np.inf, -np.inf]


def test_tied_videos_leave_in_pytorch_order():
    # Step 1 ties videos 0 and 1 at 5; one leaves (floor(4 / 3) = 1).
    # PyTorch's sort keeps short ties in input order: video 0 leaves, so
    # step 2 picks video 1 (9), not video 0 (9.5).
    train = _logits([[5, 9.5, 0], [5, 9, 0], [1, 3, 0], [1, 2, 0]])
    assert early_exit.calibrate_thresholds(train, 1.0).tolist() == [
        5.0, 9.0, -np.inf]


def test_exits_predictions_and_expected_gflops_by_hand():
    thresholds = np.array([7.0, 6.0, -np.inf])
    val = _logits([[7.0, 0, 0],       # == T_1: leaves after step 1
                   [6.9, 6.0, 0],     # after step 2
                   [0, 5.9, -50],     # the last step takes it
                   [8, 9, 9]])        # after step 1
    val[1, 1] = [1.0, 6.0]            # class 1 wins at step 2
    steps, logits = early_exit.apply_thresholds(val, thresholds)
    assert steps.tolist() == [1, 2, 3, 1]
    np.testing.assert_array_equal(logits, val[[0, 1, 2, 3], [0, 1, 2, 0]])
    assert logits.argmax(-1).tolist() == [0, 1, 0, 0]
    # (1 + 2 + 3 + 1) / 4 frames at 2 GFLOPs per frame.
    assert early_exit.expected_gflops(steps, 2.0) == pytest.approx(3.5)
    np.testing.assert_allclose(early_exit.exit_histogram(steps, 3),
                               [0.5, 0.25, 0.25])


def test_the_training_videos_leave_in_the_target_numbers():
    rng = np.random.RandomState(0)
    train = rng.randn(500, 8, 5).astype(np.float32)  # no ties
    for q in (0.5, 1.0, 2.3):
        thresholds = early_exit.calibrate_thresholds(train, q)
        steps, _ = early_exit.apply_thresholds(train, thresholds)
        counts = np.bincount(steps - 1, minlength=8)
        want = np.floor(500 * early_exit.exit_fractions(q, 8)[:-1])
        np.testing.assert_array_equal(counts[:-1], want)
        assert counts.sum() == 500


def test_sweep_points():
    rng = np.random.RandomState(1)
    train = rng.randn(300, 4, 3).astype(np.float32)
    val = rng.randn(50, 4, 3).astype(np.float32)
    labels = rng.randint(0, 3, 50)
    calls = []

    def score(logits):
        calls.append(logits)
        return {"top1": 100.0 * np.mean(logits.argmax(-1) == labels)}

    curve = early_exit.sweep(train, val, (0.5, 1.0, 3.9), 0.25, score)
    assert [p["budget"] for p in curve] == [0.5, 1.0, 3.9]
    for point, predictions in zip(curve, calls):
        thresholds = np.array(point["thresholds"])
        steps, want = early_exit.apply_thresholds(val, thresholds)
        np.testing.assert_array_equal(predictions, want)
        assert point["expected_gflops"] == pytest.approx(
            0.25 * steps.mean())
        assert point["mean_frames"] == pytest.approx(steps.mean())
        assert sum(point["exit_fractions"]) == pytest.approx(1.0)
        assert point["top1"] == pytest.approx(
            100.0 * np.mean(want.argmax(-1) == labels))
    # Larger q: later exits, more GFLOPs.
    gflops = [p["expected_gflops"] for p in curve]
    assert gflops[0] < gflops[1] < gflops[2] <= 0.25 * 4


def test_thresholds_json_round_trip():
    thresholds = np.array([7.5, np.inf, 2.0, -np.inf])
    values = early_exit.thresholds_to_json(thresholds)
    assert values == [7.5, None, 2.0, None]
    assert json.loads(json.dumps(values)) == values
    back = early_exit.thresholds_from_json(values)
    assert back.tolist() == thresholds.tolist()


@pytest.mark.parametrize("values", [[], "1,2", [1.0, "x"], [True, None],
                                    [float("nan"), None]])
def test_malformed_thresholds_json_is_named(values):
    with pytest.raises(errors.MalformedFileError,
                       match=r"ee\.json: key 'thresholds'.*one threshold "
                             r"per step"):
        early_exit.thresholds_from_json(values, path="ee.json")


def test_bad_inputs_raise_config_errors():
    with pytest.raises(errors.ConfigError, match=r"\[N videos, T steps"):
        early_exit.calibrate_thresholds(np.zeros([4, 3]), 1.0)
    with pytest.raises(errors.ConfigError, match="q must be"):
        early_exit.calibrate_thresholds(TRAIN, 0.0)
    with pytest.raises(errors.ConfigError, match=r"shape \(3,\)"):
        early_exit.apply_thresholds(TRAIN, [1.0, 2.0])
    with pytest.raises(errors.ConfigError, match="differ in T or C"):
        early_exit.sweep(TRAIN, TRAIN[:, :2], (1.0,), 1.0, lambda x: {})
    with pytest.raises(errors.ConfigError, match="no budget"):
        early_exit.sweep(TRAIN, TRAIN, (), 1.0, lambda x: {})


def test_curve_figure():
    curve = [{"expected_gflops": g, "mAP": m}
             for g, m in ((2.0, 60.0), (1.0, 40.0), (3.0, 70.0))]
    png = early_exit.render_curve_png(curve, "mAP", full_model=(4.0, 72.0),
                                      title="early exit")
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    image = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
    assert image.shape == (480, 640, 3)
    line = np.all(image == early_exit._LINE, axis=-1)
    marker = np.all(image == early_exit._REF, axis=-1)
    assert line.sum() > 200 and marker.sum() > 20
    # The points run from the lower left to the upper right.
    rows, cols = np.nonzero(line)
    assert rows[cols.argmin()] > rows[cols.argmax()]
    with pytest.raises(errors.ConfigError, match="'top1'"):
        early_exit.render_curve_png(curve, "top1")
