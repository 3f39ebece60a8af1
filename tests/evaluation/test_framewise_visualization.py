"""Nearest-neighbour alignment pictures: path, plot, MP4, sheet and CLI."""

import json

import av
import cv2
import numpy as np
import pytest
import tensorflow as tf

from experiments import evaluate
from tfaction import errors
from tfaction.data import schemas
from tfaction.data.formats import jpeg
from tfaction.data.formats import tcc as tcc_format
from tfaction.data.synthetic import tcc
from tfaction.evaluation import framewise_alignment as align
from tfaction.evaluation import framewise_visualization as vis

EmbeddedVideo = vis.EmbeddedVideo


def _unit(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _embs(n, seed=0):
    return _unit(np.random.RandomState(seed).randn(n, 8))


def _solid(bgr, size=(16, 24)):
    return np.full((*size, 3), bgr, np.uint8)


def _decode(path):
    """Every frame of an MP4 as BGR arrays, and the codec name."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = [f.to_ndarray(format="bgr24")
                  for f in container.decode(stream)]
        return frames, stream.codec_context.name


# ------------------------------------------------------------ alignment
def test_alignment_of_identity_reversed_and_stretched():
    e = _embs(10)
    assert vis.nearest_neighbour_alignment(e, e).tolist() == list(range(10))
    rev = vis.nearest_neighbour_alignment(e, e[::-1])
    assert rev.tolist() == list(range(9, -1, -1))
    assert align.alignment_tau(rev) == pytest.approx(-1.0)
    # Every frame held for two frames: the first copy wins the tie.
    stretched = vis.nearest_neighbour_alignment(e, np.repeat(e, 2, axis=0))
    assert stretched.tolist() == list(range(0, 20, 2))
    # Slow start, fast end: the path bends away from the diagonal.
    warp = [0, 0, 0, 1, 1, 2, 3, 5, 7, 9]
    assert vis.nearest_neighbour_alignment(e[warp], e).tolist() == warp
    # The same matches as Kendall's tau's.
    q, c = _embs(12, 1), _embs(9, 2)
    nns = vis.nearest_neighbour_alignment(q, c)
    assert align.alignment_tau(nns) == pytest.approx(
        align.kendalls_tau_pairs([q, c], stride=1)[0])


def test_alignment_rejects_bad_embeddings():
    with pytest.raises(errors.FeatureShapeError, match="candidate"):
        vis.nearest_neighbour_alignment(_embs(3), np.zeros((3, 4)))
    with pytest.raises(errors.FeatureShapeError, match=r"\(T > 0"):
        vis.nearest_neighbour_alignment(np.zeros((0, 8)), _embs(3))


def test_phase_agreement_counts_labelled_query_frames():
    assert vis.phase_agreement([0, 1, 1], [0, 1, -1], [0, 0]) == 0.5


# ------------------------------------------------------------ pictures
def test_plot_png_draws_path_diagonal_and_phase_blocks(tmp_path):
    labels = np.repeat([0, 1], 10)
    nns = np.arange(20)
    image = vis.draw_alignment_plot(nns, 20, query_labels=labels,
                                    candidate_labels=labels,
                                    query_name="q", candidate_name="c",
                                    tau=1.0)
    path = tmp_path / "plot.png"
    vis.write_png(path, image)
    back = cv2.imread(str(path))
    assert back.shape == (600, 640, 3)
    np.testing.assert_array_equal(back, image)
    # Plot area: left 74, top 48, 550 x 488 pixels; frame t at column
    # 74 + (t + .5) * 27.5, candidate c at row 48 + 488 - (c + .5) * 24.4.
    x, y = 74 + int(2.5 * 27.5), 48 + 488 - int(17.5 * 24.4)
    assert np.all(back[y, x] == 255)  # query phase 0, candidate phase 1
    tinted = back[48 + 488 - int(3.5 * 24.4), 74 + int(5.5 * 27.5)]
    assert 0 < np.abs(tinted.astype(int) - 255).max() < 120  # both phase 0
    # The path passes through (t, nns[t]) in the path colour.
    px = back[48 + 488 - int(12.5 * 24.4), 74 + int(12.5 * 27.5)]
    assert np.abs(px.astype(int) - vis._PATH).max() < 40
    # Phase strip under the x axis, in phase 1's colour on the right.
    np.testing.assert_array_equal(back[48 + 488 + 6, 74 + 540],
                                  vis.PALETTE[1])


def test_plot_rejects_out_of_range_matches_and_label_lengths():
    with pytest.raises(errors.FeatureShapeError, match="nns"):
        vis.draw_alignment_plot([0, 5], 5)
    with pytest.raises(errors.FeatureShapeError, match="query_labels"):
        vis.draw_alignment_plot([0, 1], 2, query_labels=[0],
                                candidate_labels=[0, 1])


def _coloured_video(name, colours, labels=None):
    frames = [_solid(c) for c in colours]
    return EmbeddedVideo(name, _embs(len(colours), len(name)),
                         labels=labels, frames=frames)


def test_mp4_and_sheet_show_each_query_frame_beside_its_match(tmp_path):
    rng = np.random.RandomState(3)
    q_colours = rng.randint(0, 256, (7, 3))
    c_colours = rng.randint(0, 256, (5, 3))
    query = _coloured_video("query one", q_colours, np.array(
        [0, 0, 1, 1, 2, 2, 2]))
    cand = _coloured_video("cand", c_colours, np.array([0, 1, 1, 2, 2]))
    out = vis.visualize_pair(query, cand, str(tmp_path), stride=2,
                             tile_height=64, thumb_height=32)
    nns = vis.nearest_neighbour_alignment(query.embs, cand.embs)
    assert out["nearest"] == nns.tolist()
    assert out["candidate_frames"] == nns.tolist()
    assert out["files"] == {
        "plot": str(tmp_path / "query_one__cand_plot.png"),
        "video": str(tmp_path / "query_one__cand.mp4"),
        "sheet": str(tmp_path / "query_one__cand_sheet.png")}
    frames, codec = _decode(out["files"]["video"])
    assert out["codec"] == vis.video_codec()
    assert codec == ("mpeg4" if out["codec"] == "mpeg4" else "h264")
    assert len(frames) == 4  # rows 0, 2, 4, 6
    expected = vis.draw_aligned_pair(query, cand, 0, nns[0], 64)
    assert frames[0].shape == expected.shape
    tile_w = 64 * 24 // 16  # 96 pixels per tile, 4-pixel gap
    for k, t in enumerate(range(0, 7, 2)):
        left = frames[k][18 + 32, tile_w // 2].astype(int)
        right = frames[k][18 + 32, tile_w + 4 + tile_w // 2].astype(int)
        assert np.abs(left - q_colours[t]).max() < 30
        assert np.abs(right - c_colours[nns[t]]).max() < 30
    sheet = cv2.imread(out["files"]["sheet"])
    expected = vis.draw_contact_sheet(query, cand, nns, [0, 2, 4, 6], 32)
    np.testing.assert_array_equal(sheet, expected)
    # 4 cells of (48 + 2 + 48) x (32 + 5 + 18) pixels in one row.
    assert sheet.shape == (22 + 55 + 6, 4 * (98 + 6) + 6, 3)
    plot = cv2.imread(out["files"]["plot"])
    assert plot.shape == (600, 640, 3)


def test_mp4_falls_back_to_mpeg4_and_checks_sizes(tmp_path):
    frames = [_solid((i * 30, 0, 0), (16, 16)) for i in range(5)]
    assert vis.write_mp4(tmp_path / "a.mp4", frames, 10, "mpeg4") == (
        "mpeg4", 5)
    decoded, codec = _decode(tmp_path / "a.mp4")
    assert (len(decoded), codec) == (5, "mpeg4")
    with pytest.raises(errors.FeatureShapeError, match="even"):
        vis.write_mp4(tmp_path / "b.mp4", [_solid(0, (15, 16))])
    with pytest.raises(errors.FeatureShapeError, match="frame 1"):
        vis.write_mp4(tmp_path / "c.mp4", [_solid(0), _solid(0, (8, 8))])
    assert not (tmp_path / "b.mp4").exists()
    assert not (tmp_path / "c.mp4").exists()
    with pytest.raises(errors.MissingDependencyError, match="nope"):
        vis.video_codec("nope")


def test_pair_needs_frames_on_both_sides(tmp_path):
    video = _coloured_video("a", [(0, 0, 0)] * 3)
    bare = EmbeddedVideo("b", _embs(3))
    with pytest.raises(errors.ConfigError, match="both"):
        vis.visualize_pair(video, bare, str(tmp_path))
    with pytest.raises(errors.ConfigError, match="stride"):
        vis.visualize_pair(bare, bare, str(tmp_path), stride=0)
    out = vis.visualize_pair(bare, bare, str(tmp_path))
    assert list(out["files"]) == ["plot"] and out["phase_agreement"] is None


# ------------------------------------------------------------ records
def _write_records(path, videos):
    with tf.io.TFRecordWriter(str(path)) as writer:
        for vid, colours, labels in videos:
            images = [jpeg.encode_jpeg(_solid(c[::-1], (16, 16)))
                      for c in colours]  # encode_jpeg takes RGB
            ex = schemas.frame_labels_example(vid, images=images,
                                              frame_labels=labels)
            writer.write(ex.SerializeToString())


def test_rows_map_to_the_labelled_frames_of_the_record(tmp_path):
    colours = [(0, 0, 250), (0, 250, 0), (250, 0, 0), (250, 250, 0),
               (0, 250, 250)]
    labels = [-1, 0, 0, 1, -1]
    _write_records(tmp_path / "r.tfrecord", [("other", colours[:1], [0]),
                                             ("v", colours, labels)])
    found = vis.read_record_frames(str(tmp_path / "*.tfrecord"), ["v"])
    video = EmbeddedVideo("v", _embs(3), labels=np.array([0, 0, 1]))
    video = vis.attach_frames(video, found["v"])
    assert video.frame_indices.tolist() == [1, 2, 3]
    assert [video.frame_number(r) for r in range(3)] == [1, 2, 3]
    for row, frame in enumerate((1, 2, 3)):
        assert np.abs(video.frames[row].astype(int)[8, 8]
                      - colours[frame]).max() < 20
    with pytest.raises(errors.FrameCountMismatchError,
                       match="3 labelled frames .of 5. but the "
                             "embeddings have 4"):
        vis.attach_frames(EmbeddedVideo("v", _embs(4)), found["v"])
    with pytest.raises(errors.MalformedFileError, match="at row 2"):
        vis.attach_frames(EmbeddedVideo("v", _embs(3),
                                        labels=np.array([0, 0, 0])),
                          found["v"])
    with pytest.raises(errors.DataError, match="'missing'.*no record"):
        vis.read_record_frames(str(tmp_path / "*.tfrecord"),
                               ["v", "missing"])
    (tmp_path / "bad.tfrecord").unlink(missing_ok=True)
    with tf.io.TFRecordWriter(str(tmp_path / "bad.tfrecord")) as writer:
        writer.write(b"not a proto")
    with pytest.raises(errors.MalformedFileError,
                       match="bad.tfrecord.*record 0 is not a frame-labels"):
        vis.read_record_frames(str(tmp_path / "bad.tfrecord"), ["v"])


def test_parse_and_select_pairs():
    assert vis.parse_pairs("2") == 2
    assert vis.parse_pairs(" a , b ;c,d") == [("a", "b"), ("c", "d")]
    for bad in ("0", "a", "a,b,c", "a,b;"):
        with pytest.raises(errors.ConfigError, match="alignment_pairs"):
            vis.parse_pairs(bad)
    videos = [EmbeddedVideo(f"{ds}{i}", _embs(2), dataset=ds, split=split)
              for ds in ("x", "y") for i, split in
              enumerate(["train", "val", "val", "val"])]
    names = [(q.name, c.name) for q, c in vis.select_pairs(videos, 1)]
    assert names == [("x1", "x2"), ("y1", "y2")]
    assert len(vis.select_pairs(videos, 9)) == 4
    with pytest.raises(errors.DataError, match="'zz'.*not in the"):
        vis.select_pairs(videos, [("x0", "zz")], source="ids.json")
    with pytest.raises(errors.DataError, match="two evaluation"):
        vis.select_pairs(videos[:2], 1)


# ------------------------------------------------------------ CLI
@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """Synthetic TCC videos, their converted records and an embeddings.npz
    laid out as the CARL task writes it (ids beside it)."""
    root = tmp_path_factory.mktemp("align")
    summary = tcc.generate_tcc(root / "raw", num_videos=4, seed=2, size=32,
                               min_frames=12, max_frames=16, val_every=2)
    tcc_format.convert_tcc(str(root / "raw" / "*.tfrecord"),
                           root / "records")
    arrays, ids = {}, {"train": [], "val": []}
    for video in summary["videos"]:
        labels = np.asarray(video["frame_labels"])
        n = len(labels)
        # Phase one-hot plus relative time: alignable across videos.
        emb = np.concatenate([np.eye(5)[labels], np.linspace(
            0, 1, n)[:, None]], axis=1)
        i = len(ids[video["split"]])
        arrays[f"{video['split']}_embs_{i}"] = _unit(emb).astype(np.float32)
        arrays[f"{video['split']}_labels_{i}"] = labels
        ids[video["split"]].append(video["name"])
    run = root / "run"
    run.mkdir()
    np.savez(run / "embeddings.npz", **arrays)
    (run / vis.VIDEOS_FILE).write_text(json.dumps(
        {"step": 1, "datasets": {"default": ids}}))
    return root, summary, ids, arrays


def _main(run, *extra):
    npz = run / "embeddings.npz"
    return evaluate.main(["--metric=framewise", "--variant=carl",
                          f"--ground_truth={npz}", f"--predictions={npz}",
                          "--noprogress", *extra])


def test_cli_draws_alignments_from_records(run_dir, tmp_path, capsys):
    root, summary, ids, arrays = run_dir
    out = tmp_path / "align"
    report = tmp_path / "r.json"
    assert _main(root / "run", f"--alignment_dir={out}",
                 f"--records={root / 'records' / '*.tfrecord'}",
                 f"--output_json={report}") == 0
    stdout = capsys.readouterr().out
    q, c = ids["val"]
    assert f"alignment {q} -> {c}: tau " in stdout
    result = json.loads(report.read_text())
    assert "kendalls_tau_val_stride2" in result["datasets"]["default"]
    (pair,) = result["alignment"]["pairs"]
    assert (pair["query"], pair["candidate"]) == (q, c)
    assert pair["codec"] == vis.video_codec()
    nns = vis.nearest_neighbour_alignment(arrays["val_embs_0"],
                                          arrays["val_embs_1"])
    assert pair["tau"] == pytest.approx(align.alignment_tau(nns))
    saved = json.loads((out / "alignments.json").read_text())["pairs"][0]
    assert saved["nearest"] == nns.tolist()
    frames, _ = _decode(out / f"{q}__{c}.mp4")
    assert len(frames) == len(arrays["val_embs_0"])
    assert cv2.imread(str(out / f"{q}__{c}_plot.png")).shape == (600, 640, 3)
    assert cv2.imread(str(out / f"{q}__{c}_sheet.png")) is not None
    # The query tile of the first MP4 frame is the record's first frame.
    raw = vis.read_record_frames(str(root / "records" / "*.tfrecord"), [q])
    first = cv2.resize(jpeg.check_jpeg(raw[q][1][0], path="x"), (160, 160))
    assert np.abs(frames[0][18:178, :160].astype(int)
                  - first).mean() < 12


def test_cli_named_pairs_with_stride_and_plots_only(run_dir, tmp_path,
                                                    capsys):
    root, _, ids, arrays = run_dir
    out = tmp_path / "align"
    pairs = (f"{ids['train'][0]},{ids['val'][1]};"
             f"{ids['val'][0]},{ids['train'][1]}")
    assert _main(root / "run", f"--alignment_dir={out}",
                 f"--alignment_pairs={pairs}", "--alignment_stride=3",
                 f"--records={root / 'records' / '*.tfrecord'}") == 0
    frames, _ = _decode(out / f"{ids['train'][0]}__{ids['val'][1]}.mp4")
    assert len(frames) == -(-len(arrays["train_embs_0"]) // 3)
    assert len(list(out.glob("*.mp4"))) == 2
    capsys.readouterr()
    plots = tmp_path / "plots"
    assert _main(root / "run", f"--alignment_dir={plots}") == 0
    assert sorted(p.name for p in plots.iterdir()) == [
        f"{ids['val'][0]}__{ids['val'][1]}_plot.png", "alignments.json"]


def test_cli_errors_name_the_video_and_the_records(run_dir, tmp_path,
                                                   capsys):
    root, _, ids, _ = run_dir
    records = f"--records={root / 'records' / '*.tfrecord'}"
    out = f"--alignment_dir={tmp_path / 'a'}"
    assert _main(root / "run", out,
                 f"--alignment_pairs={ids['val'][0]},nope") == 1
    err = capsys.readouterr().err
    assert "video 'nope'" in err and "not in the embeddings" in err
    assert vis.VIDEOS_FILE in err and len(err.splitlines()) == 1
    missing = tmp_path / "none" / "*.tfrecord"
    assert _main(root / "run", out, f"--records={missing}") == 1
    err = capsys.readouterr().err
    assert "no file matches" in err and str(missing) in err
    val_only = root / "records" / "val-*.tfrecord"
    assert _main(root / "run", out, f"--records={val_only}",
                 f"--alignment_pairs={ids['train'][0]},{ids['val'][0]}") == 1
    err = capsys.readouterr().err
    assert f"video '{ids['train'][0]}'" in err and "no record" in err
    assert _main(root / "run", out, "--alignment_pairs=a,b,c") == 1
    assert "alignment_pairs" in capsys.readouterr().err
    assert _main(root / "run", out, "--alignment_stride=0") == 1
    err = capsys.readouterr().err
    assert "--alignment_stride must be >= 1" in err
    # Without the ids file the frames cannot be looked up.
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "embeddings.npz").write_bytes(
        (root / "run" / "embeddings.npz").read_bytes())
    assert _main(bare, out, records) == 1
    assert vis.VIDEOS_FILE in capsys.readouterr().err
    assert _main(bare, f"--alignment_dir={tmp_path / 'b'}") == 0
    assert (tmp_path / "b" / "val_0__val_1_plot.png").is_file()
    (bare / vis.VIDEOS_FILE).write_text(json.dumps(
        {"datasets": {"default": {"train": ids["train"], "val": ["x"]}}}))
    assert _main(bare, out) == 1
    assert "datasets.default.val" in capsys.readouterr().err
    for argv in ([records], [out, "--metric=video_accuracy"]):
        with pytest.raises(SystemExit):
            _main(root / "run", *argv)
