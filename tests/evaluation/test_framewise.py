"""TCC / CARL frame-wise metrics against the reference bundle anchors/eval/tcc."""

import json
import math

import numpy as np
import pytest

from tfaction import errors
from tfaction.evaluation import framewise
from tfaction.evaluation import framewise_alignment as align
from tfaction.evaluation import framewise_probes as probes
from tfaction.evaluation.framewise_io import load_framewise

EXACT = 1e-9
# Progression R^2: the official LinearRegression solves in float32 (targets
# cast to the embedding dtype); we solve in float64. Observed |diff| <= 6e-8.
R2_TOL = 1e-7


@pytest.fixture(scope="module")
def bundle(anchors_dir):
    d = anchors_dir / "eval" / "tcc"
    return {name: json.loads((d / f"{name}.json").read_text())
            for name in ("tcc_results", "carl_results")}, d / "tcc_synth.json"


def _cfg(ref):
    cfg = ref["config"]
    opts = {"distance": cfg["KENDALLS_TAU_DISTANCE"],
            "fractions": cfg["CLASSIFICATION_FRACTIONS"]}
    if "FEW_SHOT_NUM_LABELED" in cfg:
        opts["few_shot_num_labeled"] = cfg["FEW_SHOT_NUM_LABELED"]
        opts["few_shot_num_episodes"] = cfg["FEW_SHOT_NUM_EPISODES"]
    if "RETRIEVAL_KS" in cfg:
        opts["retrieval_ks"] = cfg["RETRIEVAL_KS"]
    return opts


def _strides(ref):
    keys = {k for d, v in ref.items() if d != "config" for k in v}
    return sorted({int(k.rsplit("stride", 1)[1]) for k in keys
                   if k.startswith("kendalls_tau_val_stride")}, reverse=True)


def _compare(ours, ref, key, tol):
    if isinstance(ref, dict):
        assert set(ours) == set(ref), key
        for k in ref:
            _compare(ours[k], ref[k], f"{key}[{k}]", tol)
    elif math.isnan(ref):
        assert math.isnan(ours), key
    else:
        assert abs(ours - ref) <= tol, (key, ours, ref)


def _has_ties(split, strides):
    """True if some retrieval query row has exactly equal distances."""
    from scipy.spatial.distance import cdist
    for s in strides:
        feats = [e[::s] for e in split["embs"]]
        for i, q in enumerate(feats):
            cand = np.concatenate([f for j, f in enumerate(feats) if j != i])
            d = np.sort(cdist(q, cand, "sqeuclidean"), axis=1)
            if np.any(d[:, 1:] == d[:, :-1]):
                return True
    return False


@pytest.mark.parametrize("variant", ["tcc", "carl"])
def test_matches_reference_bundle(bundle, variant):
    refs, synth = bundle
    ref = refs[f"{variant}_results"]
    data = load_framewise(synth)
    names = [d for d in ref if d != "config"]
    assert set(names) == set(data)
    result = framewise.run_cli(str(synth), str(synth),
                               {"variant": variant, "strides": _strides(ref),
                                **_cfg(ref)})
    for name in names:
        ours = result["datasets"][name]
        assert set(ours) == set(ref[name])
        for key, value in ref[name].items():
            tol = R2_TOL if key.startswith("phase_progression") else EXACT
            _compare(ours[key], value, f"{name}.{key}", tol)


def test_retrieval_with_tied_distances(bundle):
    """Pouring has a constant val video -> tied distances. CARL's argsort tie
    order is NumPy's generic introsort (reference made without AVX-512);
    `numpy_sort` reproduces it in-process whatever this CPU dispatches to."""
    refs, synth = bundle
    ref = refs["carl_results"]
    data = load_framewise(synth)
    assert _has_ties(data["pouring"]["val"], _strides(ref))
    ks = ref["config"]["RETRIEVAL_KS"]
    for name, v in ref.items():
        if name == "config":
            continue
        for s in _strides(ref):
            got = align.retrieval_precision(data[name]["val"]["embs"],
                                            data[name]["val"]["labels"], ks, s)
            _compare({str(k): x for k, x in got.items()},
                     v[f"retrieval_AP_stride{s}"], f"{name}.stride{s}", EXACT)


def test_tau_of_video_against_its_copy_is_one():
    v = np.random.RandomState(1).rand(40, 6).astype(np.float32)
    for s in (1, 2, 5):
        assert align.kendalls_tau([v, v.copy()], s) == pytest.approx(1.0,
                                                                abs=1e-12)


def test_constant_video_pairs_are_nan_and_dropped(bundle):
    data = load_framewise(bundle[1])
    val = data["pouring"]["val"]["embs"]
    assert np.ptp(val[3], axis=0).max() == 0  # the constant video
    taus = align.kendalls_tau_pairs(val, 5)
    nan = np.isnan(taus)
    # Pairs (i, 3): every candidate ties -> argmin 0 -> constant nn -> NaN;
    # pairs (3, j): identical queries -> identical nn -> NaN. Order: i, j != i.
    assert np.flatnonzero(nan).tolist() == [2, 5, 8, 9, 10, 11]
    assert align.kendalls_tau(val, 5) == pytest.approx(np.mean(taus[~nan]),
                                                       abs=0)


def test_progression_r2_is_one_for_embeddings_equal_to_targets():
    labels = [np.repeat([0, 1, 2], n) for n in (4, 6, 5, 7)]
    targets = probes.progression_targets(labels, 3)
    split = {"embs": targets, "labels": labels}
    r2 = probes.phase_progression(split, split, [0.5, 1.0], 3)
    assert r2[1.0] == pytest.approx(1.0, abs=1e-12)
    assert r2[0.5] == pytest.approx(1.0, abs=1e-12)


def test_few_shot_episodes_follow_global_seed_stream():
    eps = probes.few_shot_episodes(6, [1, 3], 2)
    np.random.seed(42)
    want = [np.random.permutation(6)[:k] for k in (1, 1, 3, 3)]
    got = eps[1] + eps[3]
    assert all(np.array_equal(a, b) for a, b in zip(got, want))


def test_svc_gamma_is_explicit_scale():
    x = np.random.RandomState(0).rand(30, 4).astype(np.float32)
    assert probes.svc_gamma(x) == 1.0 / (4 * x.astype(np.float64).var())


def _write_npz(path, data, kind):
    arrays = {}
    for ds, splits in data.items():
        for split, v in splits.items():
            for i, a in enumerate(v[kind]):
                arrays[f"{ds}/{split}_{kind}_{i}"] = a
    np.savez(path, **arrays)


def test_cli_npz_split_files_and_table(bundle, tmp_path):
    data = load_framewise(bundle[1])
    gt, pred = tmp_path / "gt.npz", tmp_path / "emb.npz"
    _write_npz(gt, data, "labels")
    _write_npz(pred, data, "embs")
    res = framewise.run_cli(str(gt), str(pred), {"variant": "carl",
                                                 "strides": [5]})
    ref = framewise.run_cli(str(bundle[1]), str(bundle[1]),
                            {"variant": "carl", "strides": [5]})
    assert res == ref
    json.dumps(res)
    assert set(res["datasets"]) == {"pouring", "baseball_swing"}
    mean = np.mean([d["kendalls_tau_val_stride5"]
                    for d in res["datasets"].values()])
    assert res["mean"]["kendalls_tau_val_stride5"] == mean
    table = framewise.format_table(res)
    assert table.splitlines()[0].split() == ["metric", "pouring",
                                             "baseball_swing", "mean"]
    assert "retrieval_AP_stride5[10]" in table


def test_l2_normalize_option_changes_embeddings(bundle):
    data = load_framewise(bundle[1])["baseball_swing"]
    plain = framewise.evaluate_dataset(data["train"], data["val"], "carl",
                                       strides=[5], fractions=[1.0])
    normed = framewise.evaluate_dataset(data["train"], data["val"], "carl",
                                        strides=[5], fractions=[1.0],
                                        l2_normalize=True)
    unit = [e / np.linalg.norm(e.astype(np.float64), axis=1, keepdims=True)
            for e in data["val"]["embs"]]
    assert normed["kendalls_tau_val_stride5"] == align.kendalls_tau(unit, 5)
    assert normed["kendalls_tau_val_stride5"] != plain[
        "kendalls_tau_val_stride5"]


def test_bad_input_errors(tmp_path):
    p = tmp_path / "x.npz"
    np.savez(p, train_embs_0=np.zeros((3, 2)), train_labels_0=[0, 0, 1],
             val_embs_0=np.zeros((3, 2)), val_labels_0=[0, 1])
    with pytest.raises(errors.FrameCountMismatchError, match="val_embs_0"):
        load_framewise(p)
    np.savez(p, train_embs_0=np.zeros((3, 2)), train_labels_0=[0, 0, 1],
             train_embs_2=np.zeros((3, 2)), train_labels_2=[0, 0, 1],
             val_embs_0=np.zeros((3, 2)), val_labels_0=[0, 1, 1])
    with pytest.raises(errors.MalformedFileError, match="train_(labels|embs)_1"):
        load_framewise(p)
    np.savez(p, bogus=np.zeros(2))
    with pytest.raises(errors.MalformedFileError, match="bogus"):
        load_framewise(p)
    np.savez(p, train_embs_0=np.array([[np.nan, 0]]), train_labels_0=[0],
             val_embs_0=np.zeros((1, 2)), val_labels_0=[0])
    with pytest.raises(errors.NonFiniteFeatureError, match="train_embs_0"):
        load_framewise(p)
    np.savez(p, train_embs_0=np.array([object()]), train_labels_0=[0],
             val_embs_0=np.zeros((1, 2)), val_labels_0=[0])
    with pytest.raises(errors.MalformedFileError, match="train_embs_0"):
        load_framewise(p)
    j = tmp_path / "x.json"
    j.write_text(json.dumps({"d": {"train": {"embs": [], "labels": []}}}))
    with pytest.raises(errors.MalformedFileError, match="d.val.labels"):
        load_framewise(j)
    with pytest.raises(errors.ConfigError):
        framewise.run_cli(str(p), str(p), {"variant": "nope"})


def test_missing_phase_and_negative_labels_name_the_video():
    e = [np.random.RandomState(0).rand(6, 2) for _ in range(2)]
    split = {"embs": e, "labels": [np.array([0, 0, 1, 1, 2, 2]),
                                   np.array([0, 0, 2, 2, 2, 2])]}
    with pytest.raises(errors.DataError, match=r"val\[1\].*phase 1"):
        framewise.evaluate_dataset(split, split, "carl", strides=[1],
                                   fractions=[1.0], retrieval_ks=[1])
    neg = {"embs": e, "labels": [np.array([-1, 0, 1, 1, 2, 2])] * 2}
    with pytest.raises(errors.DataError, match=r"train\[0\]"):
        framewise.evaluate_dataset(neg, neg, "carl", strides=[1])
    res = framewise.evaluate_dataset(neg, neg, "carl", strides=[1],
                                     fractions=[1.0], retrieval_ks=[1],
                                     drop_unlabeled=True)
    # 5 labelled frames per video remain -> accuracy over 10 val frames.
    acc = res["phase_classification_logreg_val_acc"]["1.0"]
    assert acc * 10 == pytest.approx(round(acc * 10))
