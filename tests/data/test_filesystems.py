"""Tests of the file-system helpers (remote schemes, atomic writes)."""

import os
import uuid

import pytest
import tensorflow as tf

from tfaction import errors
from tfaction.data import filesystems


@pytest.mark.parametrize("path,scheme", [
    ("/data/x.tfrecord", ""), ("relative/x", ""), ("s3://b/k", "s3"),
    ("HDFS://nn/p", "hdfs"), ("gs://b/k", "gs"), ("az://c/p", "az"),
    ("dir/with://inside", ""),
])
def test_scheme_of(path, scheme):
    assert filesystems.scheme_of(path) == scheme


@pytest.mark.parametrize("url", ["s3://bucket/a.tfrecord",
                                 "hdfs://nn:9000/a", "az://c/a"])
def test_remote_scheme_without_tensorflow_io(no_tfio, url):
    with pytest.raises(errors.MissingDependencyError) as info:
        filesystems.ensure_filesystem(url)
    message = str(info.value)
    assert "pip install tensorflow-io==0.37.1" in message
    assert url in message and isinstance(info.value, ImportError)
    assert no_tfio == ["tensorflow_io"]


def test_local_and_gcs_paths_never_import_tensorflow_io(no_tfio, tmp_path):
    assert filesystems.ensure_filesystem(tmp_path / "x") == \
        str(tmp_path / "x")
    filesystems.ensure_filesystem("gs://bucket/x")  # core TF scheme
    assert no_tfio == []


def test_tensorflow_io_is_imported_once(monkeypatch):
    calls = []
    monkeypatch.setattr(filesystems, "_tfio_loaded", False)
    monkeypatch.setattr(filesystems.importlib, "import_module",
                        lambda name: calls.append(name))
    filesystems.ensure_filesystem("s3://b/1")
    filesystems.ensure_filesystem("s3://b/2")
    assert calls == ["tensorflow_io"]


def test_atomic_write_replaces_whole_file(tmp_path):
    path = tmp_path / "out.json"
    filesystems.atomic_write_text(path, "old")
    filesystems.atomic_write_text(path, "new ✓")
    assert path.read_text(encoding="utf-8") == "new ✓"
    assert os.listdir(tmp_path) == ["out.json"]


def test_atomic_write_failure_leaves_old_content(tmp_path, monkeypatch):
    path = tmp_path / "out.bin"
    filesystems.atomic_write_bytes(path, b"old")

    def broken_commit(temp, final):
        raise tf.errors.PermissionDeniedError(None, None, "denied")

    monkeypatch.setattr(filesystems, "commit", broken_commit)
    with pytest.raises(tf.errors.PermissionDeniedError):
        filesystems.atomic_write_bytes(path, b"new")
    assert path.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["out.bin"]  # temporary removed


def test_temp_path_is_hidden_and_unique(tmp_path):
    a = filesystems.temp_path_for(tmp_path / "x.tfrecord")
    b = filesystems.temp_path_for(tmp_path / "x.tfrecord")
    assert a != b and os.path.basename(a).startswith(".x.tfrecord.tmp-")
    filesystems.remove_quietly(a)  # missing: no error


# --- reads and writes of local and remote paths ---------------------------
# `ram://` is TensorFlow's in-memory file system: a non-local scheme served
# by `tf.io.gfile` like `s3://` (tests/integration runs a real S3 server).


@pytest.fixture(params=["local", "ram"])
def root(request, tmp_path):
    if request.param == "local":
        yield str(tmp_path)
        return
    url = f"ram://tfaction-tests/{uuid.uuid4().hex}"  # fresh, glob-safe
    yield url
    for folder, _, names in tf.io.gfile.walk(url):
        for name in names:
            tf.io.gfile.remove(filesystems.join(folder, name))


def test_round_trips(root):
    import numpy as np

    filesystems.makedirs(filesystems.join(root, "sub"))
    path = filesystems.join(root, "sub", "r.json")
    filesystems.write_json(path, {"a": [1, 2.5], "b": "✓"})
    assert filesystems.read_json(path) == {"a": [1, 2.5], "b": "✓"}
    assert filesystems.read_text(path).endswith("}\n")
    filesystems.atomic_write_bytes(filesystems.join(root, "x.bin"), b"\0\1")
    assert filesystems.read_bytes(filesystems.join(root, "x.bin")) == b"\0\1"
    npz = filesystems.join(root, "a.npz")
    filesystems.save_npz(npz, x=np.arange(4), s=np.array(["v1", "v2"]))
    with filesystems.load_numpy(npz) as z:
        assert z["x"].tolist() == [0, 1, 2, 3] and z["s"].tolist() == [
            "v1", "v2"]
    npy = filesystems.join(root, "a.npy")
    filesystems.save_npy(npy, np.eye(2, dtype=np.float32))
    np.testing.assert_array_equal(filesystems.load_numpy(npy), np.eye(2))
    assert sorted(filesystems.listdir(root)) == ["a.npy", "a.npz", "sub",
                                                 "x.bin"]
    assert filesystems.glob(filesystems.join(root, "a.*")) == [
        filesystems.join(root, "a.npy"), filesystems.join(root, "a.npz")]
    assert filesystems.exists(path) and not filesystems.isdir(path)
    assert filesystems.isdir(filesystems.join(root, "sub"))


def test_missing_file_is_file_not_found_everywhere(root):
    missing = filesystems.join(root, "missing.json")
    assert not filesystems.exists(missing)
    for read in (filesystems.read_bytes, filesystems.read_json,
                 filesystems.load_numpy):
        with pytest.raises(FileNotFoundError) as info:
            read(missing)
        assert missing in str(info.value)
    with pytest.raises(FileNotFoundError):
        filesystems.listdir(filesystems.join(root, "no_folder"))


def test_pickled_numpy_is_refused(tmp_path):
    import numpy as np

    path = tmp_path / "obj.npy"
    np.save(path, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="pickle"):
        filesystems.load_numpy(path)


def test_local_copy(root):
    path = filesystems.join(root, "w.weights.h5")
    filesystems.atomic_write_bytes(path, b"weights")
    with filesystems.local_copy(path) as local:
        assert filesystems.is_local(local)
        assert os.path.basename(local) == "w.weights.h5"
        with open(local, "rb") as f:
            assert f.read() == b"weights"
    assert root.startswith("ram://") != os.path.exists(local)


def _run_python(code):
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-c", code],
                          capture_output=True, text=True, timeout=120,
                          cwd=os.path.dirname(os.path.dirname(
                              os.path.dirname(os.path.abspath(__file__)))))


def test_local_files_and_evaluate_cli_never_import_tensorflow(tmp_path):
    split = tmp_path / "split.txt"
    split.write_text("a/1 8 0\nb/2 8 1\n")
    scores = tmp_path / "s.csv"
    scores.write_text("a/1,0.9,0.1\nb/2,0.2,0.8\n")
    out = tmp_path / "out" / "r.json"
    proc = _run_python(f"""if True:
        import sys
        from tfaction.data import filesystems
        from experiments import evaluate
        filesystems.makedirs({str(out.parent)!r})
        assert evaluate.main(["--metric=video_accuracy", "--top_k=1",
            "--ground_truth={split}", "--predictions={scores}",
            "--output_json={out}"]) == 0
        assert filesystems.read_json({str(out)!r})["top1"] == 1.0
        filesystems.glob({str(tmp_path / '*.txt')!r})
        assert "tensorflow" not in sys.modules, "TensorFlow was imported"
    """)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("unsafe", [False, True])
def test_run_and_exit_keeps_the_status_and_output(unsafe):
    # With an s3:// path used, the process must end before tensorflow-io's
    # S3 teardown aborts it (exit status 134), keeping the command's status.
    proc = _run_python(f"""if True:
        import sys
        from tfaction.data import filesystems
        filesystems._unsafe_teardown = {unsafe}
        def main():
            print("result line", end="")
            sys.stderr.write("note")
            raise SystemExit(3)
        filesystems.run_and_exit(main)
    """)
    assert (proc.returncode, proc.stdout, proc.stderr) == (3, "result line",
                                                           "note")


def test_video_conversion_reads_remote_videos(root, tmp_path):
    # Folder, glob and list-file inputs on a remote file system decode the
    # same records as local files (PyAV reads a streamed file object).
    from tests.data.formats import _builders as b
    from tfaction.data.formats import videos

    local = tmp_path / "videos"
    frames = b.moving_square_frames(6, step=2)
    os.makedirs(local / "right")
    b.write_video(local / "right" / "r1.mp4", frames, fps=10)
    b.write_video(local / "l1.avi", frames[::-1], fps=10)
    src = filesystems.join(root, "videos")
    for name in ("right/r1.mp4", "l1.avi"):
        filesystems.makedirs(os.path.dirname(filesystems.join(src, name)))
        filesystems.atomic_write_bytes(filesystems.join(src, name),
                                       (local / name).read_bytes())
    filesystems.atomic_write_text(filesystems.join(src, "list.txt"),
                                  "right/r1.mp4 right\nl1.avi left\n")

    def records(input, name):
        out = tmp_path / name
        videos.convert_videos(input, out, labels=False, subset="all",
                              flow="farneback")
        return {r["video/id"]: {k: getattr(v, "tolist", lambda: v)()
                                for k, v in r.items()}
                for r in b.read_frame_records(out, "all")}

    expected = records(local, "local")
    assert sorted(expected) == [b"l1", b"right/r1"]
    assert records(src, "folder") == expected
    assert records(filesystems.join(src, "*", "*.mp4"), "glob") == {
        b"right/r1": expected[b"right/r1"]}
    assert records(filesystems.join(src, "list.txt"), "list") == expected


def test_evaluation_and_centers_readers_accept_remote_paths(root):
    import numpy as np

    from tfaction.evaluation import ava_io
    from tfaction.evaluation import charades_map
    from tfaction.evaluation import framewise_io
    from tfaction.evaluation import video_accuracy
    from tfaction.models.actionvlad import kmeans

    def put(name, text):
        path = filesystems.join(root, name)
        filesystems.atomic_write_text(path, text)
        return path

    ids, labels = video_accuracy.read_split_list(put("s.txt", "a/1 8 0\n"))
    assert ids == ["a/1"] and labels.tolist() == [0]
    csv_ids, csv_scores = video_accuracy.read_scores(put("s.csv",
                                                         "a/1,0.5,2\n"))
    npz = filesystems.join(root, "s.npz")
    filesystems.save_npz(npz, video_ids=np.array(["a/1"]),
                         scores=np.array([[0.5, 2.0]]))
    npz_ids, npz_scores = video_accuracy.read_scores(npz)
    assert csv_ids == npz_ids == ["a/1"]
    np.testing.assert_array_equal(csv_scores, npz_scores)
    assert charades_map.read_submission(put("sub.txt", "v 0.5 0.25\n"),
                                        num_classes=2)["v"].tolist() == [
        0.5, 0.25]
    assert ava_io.read_label_map(put("lm.json", '[{"id": 3, "name": "sit"}]')
                                 ) == [(3, "sit")]
    assert ava_io.read_box_csv(put("b.csv", "v,0902,0.1,0.1,0.5,0.9,3,0.8\n"),
                               "detections").scores.tolist() == [0.8]
    fw = filesystems.join(root, "fw.npz")
    filesystems.save_npz(fw, train_embs_0=np.ones((2, 3)),
                         train_labels_0=np.array([0, 1]),
                         val_embs_0=np.ones((2, 3)),
                         val_labels_0=np.array([1, 0]))
    assert list(framewise_io.load_framewise(fw)) == ["default"]
    centers = filesystems.join(root, "centers.npz")
    kmeans.save_centers(centers, np.eye(2), {"seed": 1})
    np.testing.assert_array_equal(kmeans.load_centers(centers, 2, 2),
                                  np.eye(2))


def test_synthetic_datasets_write_to_remote_folders(root, tmp_path):
    from tfaction.data import synthetic

    out = filesystems.join(root, "tal")
    local = tmp_path / "tal_local"
    synthetic.generate_temporal_localization(out, num_videos=3, seed=1)
    synthetic.generate_temporal_localization(local, num_videos=3, seed=1)
    files = sorted(os.path.relpath(os.path.join(d, n), local)
                   for d, _, names in os.walk(local) for n in names)
    assert files
    for rel in files:
        assert filesystems.read_bytes(filesystems.join(
            out, *rel.split(os.sep))) == (local / rel).read_bytes(), rel
    # A non-empty folder is kept unless overwrite is asked for.
    with pytest.raises(FileExistsError, match="not empty"):
        synthetic.generate_temporal_localization(out, num_videos=2, seed=2)
    synthetic.generate_temporal_localization(out, num_videos=2, seed=2,
                                             overwrite=True)
    annotations = filesystems.read_json(
        filesystems.join(out, "annotations.json"))
    assert len(annotations["database"]) == 2
