"""Tests of the pipeline benchmark (`benchmarks/data_pipeline.py`): its
`rows` follow the `make bench` contract, the demand ratio and target are
worked out from the two rates, the synthetic split lists grow by symlinked
copies, and the former sections run end to end on tiny sizes."""

import json

import pytest

from benchmarks import data_pipeline as bench

ROW_KEYS = {"family", "measure", "ours", "reference", "unit", "ratio",
            "reference_name", "target", "met"}


def test_demand_row_ratio_and_target():
    result = {"pipeline_examples_per_s": 12.0, "step_examples_per_s": 3.0}
    row = bench.demand_row("adafocus_v2", result)
    assert set(row) == ROW_KEYS
    assert row["family"] == "Pipelines"
    assert (row["ours"], row["reference"], row["ratio"]) == (12.0, 3.0, 4.0)
    assert row["target"] == ">= 3x" and row["met"] is True
    low = bench.demand_row("actionformer",
                           dict(result, pipeline_examples_per_s=8.97))
    assert (low["ratio"], low["met"]) == (2.99, False)
    assert "THUMOS" in low["measure"] and "quick" not in low["measure"]
    quick = bench.demand_row("actionformer", dict(result, quick=True))
    assert quick["measure"].endswith("[--quick: small shapes]")


def test_former_rows():
    frames = {"pipeline_frames_per_s": 90.0, "python_loop_frames_per_s":
              100.0, "ratio_pipeline_over_loop": 0.9, "decoded_per_video": 16,
              "frames_per_video": 48, "frame_size": [256, 340]}
    features = {"shape": [2304, 2048], "tensor_videos_per_s": 8.0,
                "floats_videos_per_s": 4.0, "npy_load_videos_per_s": 10.0,
                "tensor_over_npy": 0.8, "floats_over_npy": 0.4}
    rows = bench.former_rows(frames, features)
    assert [set(r) for r in rows] == [ROW_KEYS] * 3
    assert rows[0]["met"] is True and rows[0]["target"] == ">= 0.8x"
    assert "TSN 16 of 48 frames, 256x340 JPEGs" in rows[0]["measure"]
    assert [r["ratio"] for r in rows[1:]] == [0.8, 0.4]
    assert bench.former_rows(None, None) == []


def test_replicate_videos(tmp_path):
    frames = tmp_path / "frames"
    for video in ("v_a", "v_b"):
        (frames / video).mkdir(parents=True)
        (frames / video / "image_00001.jpg").write_bytes(b"x")
    split = tmp_path / "train.txt"
    split.write_text("v_a,1,0\nv_b,1,1\n")
    bench._replicate_videos(split, frames, 5)
    rows = split.read_text().splitlines()
    assert rows == ["v_a,1,0", "v_b,1,1", "v_a_copy2,1,0", "v_b_copy3,1,1",
                    "v_a_copy4,1,0"]
    assert (frames / "v_b_copy3").resolve() == (frames / "v_b").resolve()
    # HMDB51 rows ("<class>/<video> <n> <id>"); a longer list is cut.
    (frames / "run" / "v_c").mkdir(parents=True)
    hmdb = tmp_path / "train_split1.txt"
    hmdb.write_text("run/v_c 1 0\nrun/v_c 1 0\nrun/v_c 1 0\n")
    bench._replicate_videos(hmdb, frames, 2, sep=" ")
    assert hmdb.read_text() == "run/v_c 1 0\nrun/v_c 1 0\n"
    bench._replicate_videos(hmdb, frames, 3, sep=" ")
    assert hmdb.read_text().splitlines()[-1] == "run/v_c_copy2 1 0"
    assert (frames / "run" / "v_c_copy2").is_symlink()


def test_unknown_consumer_is_a_usage_error(capsys):
    with pytest.raises(SystemExit):
        bench.main(["--consumers", "slowfast", "--sections", "demand"])
    assert "--consumers" in capsys.readouterr().err


def test_former_sections_quick(capsys):
    result = bench.main(["--quick", "--sections",
                         "frames_loop,features_encodings"])
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert line["rows"] == result["rows"] and len(result["rows"]) == 3
    assert result["frames"]["decoded_frames"] == 4 * 4
    assert "load_average" in result and "demand" not in result


@pytest.mark.slow
def test_demand_quick_adafocus(capsys):
    """The whole demand path (data, task, trainer step, pipeline passes) on
    the CPU-sized AdaFocus V2 recipe."""
    result = bench.main(["--quick", "--sections", "demand", "--consumers",
                         "adafocus_v2"])
    (row,) = result["rows"]
    demand = result["demand"]["adafocus_v2"]
    assert set(row) == ROW_KEYS
    assert demand["examples_per_pass"] == 2 * demand["pipeline_batch"]
    assert row["ratio"] == round(row["ours"] / row["reference"], 2)
    assert row["ours"] == demand["pipeline_examples_per_s"]
