"""Tests of the AdaFocus benchmark (`benchmarks/adafocus.py`): its case
names, its GFLOPs (each part worked out by hand from the recipe's layer
widths, the trunks through `flops.trunk_macs`) and its JSON line, on tiny
frames with the real trunks."""

import argparse
import json

import pytest

from benchmarks import adafocus as bench
from tfaction.models.adafocus import common
from tfaction.models.adafocus import flops

# Tiny videos: T frames of S x S, C classes, V2 patch sizes.
T, S, C = 2, 32, 5
PATCHES = (16, 24)
# MobileNet-V2 and ResNet-50 pooled feature widths.
GLANCE_CHANNELS, FOCUS_CHANNELS = 1280, 2048


def _gru(inputs, units):
    """MACs of one GRU step: input and recurrent kernels, 3 gates."""
    return 3 * inputs * units + 3 * units * units


def _v2_rest(positions, classes):
    """MACs per frame of the V2 recipe's policy (1x1 conv to 64, dense
    2048, GRU 2048, 2 outputs), classifier (3328 -> 4096, one head) and
    auxiliary heads, on a glance map of `positions` cells."""
    policy = (positions * GLANCE_CHANNELS * 64 + positions * 64 * 2048
              + _gru(2048, 2048) + 2048 * 2)
    joint = GLANCE_CHANNELS + FOCUS_CHANNELS
    classifier = joint * 4096 + 4096 * classes
    heads = (GLANCE_CHANNELS + FOCUS_CHANNELS) * classes
    return policy + classifier + heads


def test_case_names():
    assert bench.parse_case("full_frame") == ("full_frame", None, None)
    assert bench.parse_case("v2_mbv2_p160") == ("v2", "mbv2", 160)
    assert bench.parse_case("v2_res50_p96") == ("v2", "res50", 96)
    assert bench.parse_case("v1_mbv2_p128") == ("v1", "mbv2", 128)
    for case in bench.CASES:
        bench.parse_case(case)
    for bad, match in (("v3_mbv2_p128", "unknown"), ("v2", "unknown"),
                       ("v2_vgg_p128", "unknown"), ("v2_mbv2_128", "unknown"),
                       ("v1_res50_p128", "MobileNet-V2"),
                       ("v2_mbv2_p256", "exceeds the frame size 224")):
        with pytest.raises(ValueError, match=match):
            bench.parse_case(bad)


def test_unknown_case_is_a_usage_error(capsys):
    with pytest.raises(SystemExit):
        bench.main(["--cases", "v2_mbv2_p300"])
    assert "patch size 300 exceeds" in capsys.readouterr().err


def test_v1_gflops_by_hand_and_the_paper():
    """V1 at P = 128, 16 frames of 224: 26.6 GFLOPs in the paper, whose
    0.02 per frame for the policy and GRUs is rounded."""
    built = bench.build_case("v1_mbv2_p128", num_classes=200)
    model, gflops = built["model"], built["gflops"]
    assert built["description"]["focus_input"] == [128, 128]
    policy = (49 * GLANCE_CHANNELS * 32 + 49 * 32 * 1024
              + _gru(1024, 1024) + 1024 * 49 + 1024)
    classifier = _gru(GLANCE_CHANNELS + FOCUS_CHANNELS, 1024) + 1024 * 200
    assert gflops["policy"] * 1e9 == pytest.approx(policy, abs=1)
    assert gflops["classifier"] * 1e9 == pytest.approx(classifier, abs=1)
    assert gflops["heads"] * 1e9 == pytest.approx(
        (GLANCE_CHANNELS + FOCUS_CHANNELS) * 200, abs=1)
    assert gflops["focus"] * 1e9 == pytest.approx(
        flops.trunk_macs(model.focus, (128, 128)), abs=1)
    assert gflops["per_video"] == pytest.approx(26.6, abs=0.1)


@pytest.fixture(scope="module")
def trunks():
    """`(ResNet-50, MobileNet-V2)` trunks, for their MACs on tiny frames."""
    return (common.build_trunk("resnet50", name="focus", dtype=None),
            common.build_trunk("mobilenet_v2", name="glance", dtype=None))


def _v2_per_frame(trunks, patch):
    """MACs per frame of the V2 recipe on S x S frames with P = patch (a
    1 x 1 glance map at 32 x 32)."""
    resnet, mobilenet = trunks
    return (flops.trunk_macs(mobilenet, (S, S))
            + flops.trunk_macs(resnet, (patch, patch)) + _v2_rest(1, C))


def test_built_v2_case_is_the_recipe_at_its_patch_size(trunks):
    patch = PATCHES[1]
    built = bench.build_case(f"v2_mbv2_p{patch}", T, S, C)
    model = built["model"]
    assert (model.patch_size, model.num_frames, model.frame_size) == (
        patch, T, [S, S])
    assert built["description"]["focus_input"] == [patch, patch]
    assert built["gflops"]["per_frame"] * 1e9 == pytest.approx(
        _v2_per_frame(trunks, patch), abs=1)
    assert built["gflops"]["per_video"] == pytest.approx(
        T * _v2_per_frame(trunks, patch) / 1e9, abs=1e-9)


# Three fresh TensorFlow processes (about 30-50 s on 2 cores): `make
# test-slow`.
@pytest.mark.slow
def test_json_line_and_its_gflops(trunks, tmp_path, capsys):
    patch = PATCHES[0]
    case = f"v2_mbv2_p{patch}"
    output = tmp_path / "result.json"
    result = bench.main(["--cases", case, "--num_frames", str(T),
                         "--frame_size", str(S), "--num_classes", str(C),
                         "--quick", "--output", str(output)])
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert json.loads(line) == result == json.loads(output.read_text())
    for key in ("tensorflow", "devices", "cpu", "date", "load_average",
                "seconds", "iterations", "warmup"):
        assert key in result
    assert (result["num_frames"], result["frame_size"], result["batch_size"],
            result["num_classes"]) == (T, [S, S], 1, C)
    # The baseline runs first even when not asked for.
    assert list(result["cases"]) == ["full_frame", case]

    base = result["cases"]["full_frame"]
    base_macs = flops.trunk_macs(trunks[0], (S, S)) + FOCUS_CHANNELS * C
    assert base["gflops_per_video"] == pytest.approx(T * base_macs / 1e9,
                                                     abs=1e-6)
    assert (base["glance"], base["focus_input"]) == (None, [S, S])
    row = result["cases"][case]
    assert (row["model"], row["glance"], row["glance_input"],
            row["focus_input"]) == ("AdaFocusV2", "mobilenet_v2", [S, S],
                                    [patch, patch])
    per_frame = _v2_per_frame(trunks, patch)
    assert row["gflops_per_frame"] == pytest.approx(per_frame / 1e9,
                                                    abs=1e-6)
    assert row["gflops_per_video"] == pytest.approx(T * per_frame / 1e9,
                                                    abs=1e-6)
    assert sum(row["gflops_parts"].values()) == pytest.approx(
        row["gflops_per_frame"], abs=1e-5)
    assert row["gflops_ratio"] == pytest.approx(
        row["gflops_per_video"] / base["gflops_per_video"], abs=1e-3)
    # The speed-up of the baseline and the case timed in one process (from
    # the unrounded medians; the latencies are rounded to 1e-4 s).
    pair, pair_base = row["paired_latency_s"], row["paired_baseline_latency_s"]
    assert ((pair_base - 5e-5) / (pair + 5e-5) - 1e-3 <= row["speedup"]
            <= (pair_base + 5e-5) / (pair - 5e-5) + 1e-3)
    assert (base["speedup"], base["gflops_ratio"]) == (1.0, 1.0)
    for row in result["cases"].values():
        assert row["outputs_finite"] is True
        assert row["latency_s"] > 0 and row["first_call_s"] > 0
        assert row["peak_mb"] >= row["peak_build_mb"] > 0
        assert row["params"] > 0


# ------------------------------------------------------------ training


def test_train_case_names():
    assert bench.parse_train_case("v2_mbv2_p128") == ("v2", None, 128)
    assert bench.parse_train_case("v1_stage1_p96") == ("v1", 1, 96)
    assert bench.parse_train_case("v1_stage2_p128") == ("v1", 2, 128)
    for case in bench.TRAIN_CASES + tuple(
            bench.BENCH_TRAIN_CASES.split(",")):
        bench.parse_train_case(case)
    for bad, match in (("v2_res50_p128", "unknown"),
                       ("v1_stage3_p128", "unknown"),
                       ("v1_stage1_128", "unknown"),
                       ("v2_mbv2_p0", "unknown"),
                       ("v2_mbv2_p256", "exceeds the frame size 224")):
        with pytest.raises(ValueError, match=match):
            bench.parse_train_case(bad)


def test_bad_training_case_and_lone_reference_are_usage_errors(capsys):
    with pytest.raises(SystemExit):
        bench.main(["--section", "train", "--train_cases", "v1_stage0_p96"])
    assert "unknown AdaFocus training case" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        bench.main(["--reference_repo", "/nowhere"])
    assert "needs --reference_python" in capsys.readouterr().err


def test_both_sides_draw_the_same_inputs():
    from benchmarks import adafocus_torch

    first = adafocus_torch.frames_and_labels(2, T, S, C)
    again = adafocus_torch.frames_and_labels(2, T, S, C)
    shapes = [(2, T, S, S, 3), (2,), (2, T, 2), (2, T, 49)]
    for a, b, shape in zip(first, again, shapes):
        assert a.shape == shape and (a == b).all()
    frames, labels, locations, noise = first
    assert ((labels >= 0) & (labels < C)).all()
    assert ((locations >= 0) & (locations < 1)).all()
    assert ((noise > 0) & (noise < 1)).all()
    features, step_labels = bench.step_inputs("v1_stage2_p16", 2, T, S, C)
    assert (features["frames"].numpy() == frames).all()
    assert (features["random_locations"].numpy() == locations).all()
    assert (features["action_noise"].numpy() == noise).all()
    assert (step_labels["label"].numpy() == labels).all()
    features, _ = bench.step_inputs("v2_mbv2_p16", 2, T, S, C)
    assert sorted(features) == ["frames", "random_locations"]


class _FakeReference:
    """Stands for the authors' server: fixed seconds per step."""

    def __init__(self, seconds):
        self.seconds, self.steps, self.closed = seconds, 0, False

    def step(self):
        self.steps += 1
        return self.seconds[min(self.steps - 1, len(self.seconds) - 1)]

    def close(self):
        self.closed = True
        return {"torch": "x", "torch_threads": 2, "commit": None}


def test_timed_against_alternates_with_the_reference():
    calls = []
    args = argparse.Namespace(iterations=3, warmup=2)
    reference = _FakeReference([9.0, 8.0, 4.0, 2.0, 3.0])
    result, outputs = bench.timed_against(
        lambda: calls.append(1) or {"loss": 1.0}, reference, args)
    assert outputs == {"loss": 1.0}
    # 1 first + 1 warm-up + 3 timed calls each; the reference's first two
    # answers are its warm-up, the median of the other three its time.
    assert (len(calls), reference.steps, reference.closed) == (5, 5, True)
    assert result["reference_first_call_s"] == 9.0
    assert result["reference_s"] == 3.0
    assert result["ratio"] == pytest.approx(result["seconds"] / 3.0,
                                            abs=1e-3)
    alone, _ = bench.timed_against(lambda: None, None, args)
    assert set(alone) == {"first_call_s", "seconds"}


def test_table_rows():
    facts = {"torch": "2.14.1", "torch_threads": 2,
             "commit": "e97987c225e029162f28605bda5f02b1e1f9dd2c"}
    result = {
        "train_cases": {
            "v2_mbv2_p128": {"batch_size": 1, "seconds": 6.0,
                             "reference_s": 10.0, "reference": facts,
                             "floor_s": 4.0},
            "v1_stage2_p128": {"batch_size": 1, "seconds": 9.0,
                               "reference_s": 10.0,
                               "reference": dict(facts, commit=None)},
            "v1_stage1_p128": {"batch_size": 1, "seconds": 2.0}},
        "cases": {
            "full_frame": {"latency_s": 3.0, "speedup": 1.0},
            "v2_mbv2_p128": {"latency_s": 1.0, "speedup": 3.1,
                             "latency_vs_reference_s": 1.2,
                             "reference_latency_s": 2.4,
                             "reference": facts},
            "v1_mbv2_p128": {"latency_s": 1.5, "speedup": 2.0}}}
    rows = bench.table_rows(result, 16, 224)
    keys = {"family", "measure", "ours", "reference", "unit", "ratio",
            "reference_name", "target", "met"}
    assert all(set(row) == keys and row["family"] == "AdaFocus"
               and row["unit"] == "s" for row in rows)
    v2, v2_floor, v1s2, v1s1, v2_infer, v1_infer = rows
    # the floor is compared with the authors' step, without a target
    assert "contraction floor" in v2_floor["measure"]
    assert (v2_floor["ours"], v2_floor["reference"], v2_floor["ratio"],
            v2_floor["target"]) == (4.0, 10.0, 0.4, None)
    assert (v2["ours"], v2["reference"], v2["ratio"], v2["target"],
            v2["met"]) == (6.0, 10.0, 0.6, "<= 0.8x", True)
    assert v2["reference_name"] == ("authors' PyTorch code (AdaFocusV2 @ "
                                    "e97987c, torch 2.14.1, 2 threads)")
    assert "P=128" in v2["measure"] and "B=1" in v2["measure"]
    assert (v1s2["ratio"], v1s2["met"]) == (0.9, False)
    assert v1s2["reference_name"].startswith(
        "authors' PyTorch code (AdaFocus @ unknown commit")
    assert (v1s1["reference"], v1s1["ratio"], v1s1["met"],
            v1s1["reference_name"]) == (None, None, None, None)
    # Inference: ours as timed alternating with theirs; no target.
    assert (v2_infer["ours"], v2_infer["ratio"], v2_infer["target"],
            v2_infer["met"]) == (1.2, 0.5, None, None)
    assert (v1_infer["ours"], v1_infer["reference"]) == (1.5, None)


def test_train_config_builds_the_recipes_tasks(tmp_path):
    from tfaction import tasks

    config = bench.train_config("v2_mbv2_p16", tmp_path / "v2",
                                batch_size=2, num_frames=T, frame_size=S,
                                num_classes=C)
    assert (config.task.model.patch_size, config.optimizer.name,
            config.trainer.global_batch_size) == (16, "sgd", 2)
    task = tasks.build_task(config)
    assert (task.num_classes, task.num_frames, task.frame_size) == (
        C, T, (S, S))
    config = bench.train_config("v1_stage2_p16", tmp_path / "v1",
                                num_frames=T, frame_size=S, num_classes=C)
    task = tasks.build_task(config)  # checks the previous stage's run
    assert (task.stage, config.optimizer.name) == (2, "adam")
    assert json.loads((tmp_path / "v1" / "previous_stage" /
                       "config.json").read_text())["task"]["stage"] == 1


# One fresh TensorFlow process per case (minutes on 2 cores): `make
# test-slow`.
@pytest.mark.slow
def test_training_section_json_line(tmp_path, capsys):
    cases = "v2_mbv2_p16,v1_stage1_p16,v1_stage2_p16"
    result = bench.main(["--section", "train", "--train_cases", cases,
                         "--num_frames", str(T), "--frame_size", str(S),
                         "--num_classes", str(C), "--quick"])
    assert "cases" not in result
    assert list(result["train_cases"]) == cases.split(",")
    for row in result["train_cases"].values():
        assert row["loss_finite"] is True
        assert row["seconds"] > 0 and row["first_call_s"] > 0
        assert "reference_s" not in row
    assert [row["reference"] for row in result["rows"]] == [None] * 3
