"""ActionVLAD SavedModel: the served graph equals model(evaluation frames).

Stand-in models of the ActionVLAD contract (float32 frames `[B, T, H, W, C]`
-> logits `[B, K]`; a per-frame conv, then a pooling that weights every
time step by its position, so the crop-major frame order matters) are
served by `ActionVLADExportModule` / `TwoStreamExportModule`. Frame records
are run through the REAL evaluation pipeline
(`frames_pipeline.build_frames_pipeline(..., training=False)`); a client
sends the frames (flow stacks) the pipeline sampled, as their stored JPEGs
(`serving_default`) or decoded (`serve_uint8`), and must get
`model(pipeline frames)` within 1e-5. Covered: resize to a size or a
shorter side, centre / "five" / explicit test crops (also cropping at
decode, no resize), RGB and flow, multi-label, two-stream fusion, export
with `export_saved_model` read back in a process that imports only
TensorFlow, and bad requests (there also each input of both signatures with
a wrong rank or dtype, and an empty batch: `serving_helpers.bad_input_calls`).
"""

import json
import pathlib

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.serving import serving_helpers as helpers
from tests.serving import tensor_json
from tfaction import errors
from tfaction.data import frames_pipeline as fp
from tfaction.data import schemas
from tfaction.models.actionvlad import fusion
from tfaction.serving import ActionVLADExportModule
from tfaction.serving import TwoStreamExportModule
from tfaction.serving import export_saved_model

TOL = 1e-5
K = 5
T = 3
S = 2
NUM_FRAMES = 9  # RGB frames per video (8 flow frames)
SIZES = ((40, 56), (36, 50))  # stored frame sizes of the two videos
NAMES = [f"class_{k}" for k in range(K)]
DCT = "INTEGER_ACCURATE"

_BASE = dict(sampler="actionvlad", num_steps=T, fold_views="time",
             batch_size=len(SIZES), num_classes=K, dct_method=DCT)
CONFIGS = {
    # ActionVLAD-like: fixed resize, 5 crops pooled into one vector, BGR.
    "rgb_five": fp.FramesConfig(
        modality="rgb", resize=(48, 64), crop_size=(32, 40),
        test_crop="five", mean=(104.0, 117.0, 123.0), bgr=True, **_BASE),
    # No resize, one explicit crop: the pipeline crops while decoding.
    "rgb_offset": fp.FramesConfig(
        modality="rgb", crop_size=(32, 40), test_crop_offsets=((4, 10),),
        mean=(104.0, 117.0, 123.0), std=(2.0, 3.0, 4.0), bgr=True,
        **_BASE),
    # Shorter side resize, centre crop, multi-label (sigmoid).
    "rgb_center_multi": fp.FramesConfig(
        modality="rgb", resize=36, crop_size=(32, 40), test_crop="center",
        mean=120.0, multi_label=True, **_BASE),
    "flow_five": fp.FramesConfig(
        modality="flow", flow_stack=S, resize=(48, 64), crop_size=(32, 40),
        test_crop="five", mean=128.0, **_BASE),
    "flow_offsets": fp.FramesConfig(
        modality="flow", flow_stack=S, resize=(48, 64), crop_size=(32, 40),
        test_crop_offsets=((0, 0), (16, 24)), mean=128.0, **_BASE),
}


# --- data -------------------------------------------------------------------
def _image(shape, seed):
    """A textured uint8 image (gradients + noise), distinct per seed."""
    rng = np.random.default_rng(seed)
    h, w = shape[:2]
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([3 * xx + yy, 4 * yy + xx, (xx * yy) % 180], -1)
    img = base[..., :shape[2]] + rng.integers(0, 60, shape) + 7 * (seed % 9)
    return np.clip(img, 0, 255).astype(np.uint8)


def _jpeg(image):
    return tf.io.encode_jpeg(image, quality=90).numpy()


def _decode(data, channels):
    return tf.io.decode_jpeg(data, channels=channels,
                             dct_method=DCT).numpy()


@pytest.fixture(scope="module")
def videos():
    """Two videos with RGB and flow JPEGs of different sizes."""
    out = []
    for v, (h, w) in enumerate(SIZES):
        out.append(dict(
            images=[_jpeg(_image((h, w, 3), 100 * v + i))
                    for i in range(NUM_FRAMES)],
            flow_x=[_jpeg(_image((h, w, 1), 1000 + 100 * v + j))
                    for j in range(NUM_FRAMES - 1)],
            flow_y=[_jpeg(_image((h, w, 1), 2000 + 100 * v + j))
                    for j in range(NUM_FRAMES - 1)]))
    return out


def _records(videos):
    return [schemas.frames_example(
        f"video{v}", num_frames=NUM_FRAMES, label_index=[v], **video
    ).SerializeToString() for v, video in enumerate(videos)]


def _pipeline_batch(config, videos):
    """One batch of the real evaluation pipeline over the two videos."""
    records = _records(videos)
    pipe = fp.build_frames_pipeline(config, training=False)
    ds = tf.data.Dataset.from_tensor_slices(
        (tf.zeros([len(records)], tf.int64), tf.constant(records)))
    return next(iter(pipe(ds)))


def _requests(config, videos, batch):
    """What a client sends for the frames the pipeline sampled.

    Returns:
        (jpeg inputs, per-video uint8 inputs): dicts of numpy arrays.
    """
    starts = batch["frame_indices"].numpy()[:, :T]  # crop 0's steps
    if config.modality == "rgb":
        jpegs = np.array([[video["images"][i] for i in row]
                          for video, row in zip(videos, starts)],
                         dtype=object)
        uint8 = [{"frames": np.stack([_decode(f, 3) for f in row])[None]}
                 for row in jpegs]
        return {"frames": jpegs}, uint8
    last = NUM_FRAMES - 2
    stacks = [[[min(i + s, last) for s in range(S)] for i in row]
              for row in starts]
    flow_x = np.array([[[video["flow_x"][j] for j in stack]
                        for stack in row]
                       for video, row in zip(videos, stacks)], dtype=object)
    flow_y = np.array([[[video["flow_y"][j] for j in stack]
                        for stack in row]
                       for video, row in zip(videos, stacks)], dtype=object)
    uint8 = []
    for xs, ys in zip(flow_x, flow_y):
        steps = []
        for x_stack, y_stack in zip(xs, ys):  # interleave x_j, y_j, ...
            steps.append(np.concatenate(
                [np.concatenate([_decode(x, 1), _decode(y, 1)], -1)
                 for x, y in zip(x_stack, y_stack)], -1))
        uint8.append({"flow": np.stack(steps)[None]})
    return {"flow_x": flow_x, "flow_y": flow_y}, uint8


# --- models -----------------------------------------------------------------
class _PositionPool(keras.layers.Layer):
    """[B, T, h, w, F] -> [B, F]: spatial mean, time steps weighted 1..T."""

    def call(self, x):
        x = keras.ops.mean(x, axis=(2, 3))
        steps = keras.ops.shape(x)[1]
        weights = keras.ops.cast(keras.ops.arange(1, steps + 1), x.dtype)
        return keras.ops.sum(x * weights[None, :, None], axis=1) / (
            keras.ops.cast(steps, x.dtype))


def _stand_in(config, seed):
    keras.utils.set_random_seed(seed)
    channels = 3 if config.modality == "rgb" else 2 * config.flow_stack
    frames = keras.Input((None, *config.crop_size, channels), name="frames")
    x = keras.layers.TimeDistributed(
        keras.layers.Conv2D(4, 3, strides=2, activation="tanh"))(frames)
    x = _PositionPool()(x)
    logits = keras.layers.Dense(K)(x)
    return keras.Model(frames, logits)


@pytest.fixture(scope="module")
def streams(videos):
    """Per config: model, module, pipeline logits, requests, outputs."""
    out = {}
    for seed, (key, config) in enumerate(CONFIGS.items()):
        model = _stand_in(config, seed)
        batch = _pipeline_batch(config, videos)
        module = ActionVLADExportModule(model, config, class_names=NAMES,
                                        top_k=3)
        jpegs, uint8 = _requests(config, videos, batch)
        functions = module.signatures()
        out[key] = dict(
            config=config, model=model, module=module,
            want=model(batch["frames"], training=False).numpy(),
            jpegs=jpegs, uint8=uint8,
            served=_numpy(functions["serving_default"](**_tensors(jpegs))),
            served_uint8=[_numpy(functions["serve_uint8"](**_tensors(u)))
                          for u in uint8])
    return out


def _tensors(inputs):
    return {k: tf.constant(v) for k, v in inputs.items()}


def _numpy(outputs):
    return {k: v.numpy() for k, v in outputs.items()}


def _close(got, want):
    np.testing.assert_allclose(got, want, rtol=0, atol=TOL)


def _check_head(out, logits, multi_label, k=3):
    _close(out["logits"], logits)
    probs = (1 / (1 + np.exp(-logits)) if multi_label else
             np.exp(logits) / np.exp(logits).sum(-1, keepdims=True))
    _close(out["probabilities"], probs)
    order = np.argsort(-probs, axis=-1, kind="stable")[:, :k]
    assert out["top_k_classes"].dtype == np.int32
    np.testing.assert_array_equal(out["top_k_classes"], order)
    _close(out["top_k_scores"], np.take_along_axis(probs, order, -1))
    assert out["class_names"].tolist() == [
        [NAMES[c].encode() for c in row] for row in order]


# --- (a) JPEG signature = model(evaluation pipeline) ------------------------
@pytest.mark.parametrize("key", list(CONFIGS))
def test_jpeg_signature_matches_evaluation_pipeline(streams, key):
    s = streams[key]
    assert s["want"].shape == (len(SIZES), K)
    _check_head(s["served"], s["want"], s["config"].multi_label)


def test_pipeline_views_are_folded_crop_major(videos):
    # The order the serving graph reproduces: crop 0's T frames, crop 1's...
    batch = _pipeline_batch(CONFIGS["rgb_five"], videos)
    assert batch["frames"].shape == (len(SIZES), 5 * T, 32, 40, 3)
    idx = batch["frame_indices"].numpy()
    np.testing.assert_array_equal(idx, np.tile(idx[:, :T], [1, 5]))


# --- (b) uint8 signature = JPEG signature on the decoded frames -------------
@pytest.mark.parametrize("key", list(CONFIGS))
def test_uint8_signature_matches_jpeg_signature(streams, key):
    s = streams[key]
    for row, out in enumerate(s["served_uint8"]):
        for name in ("logits", "probabilities", "top_k_scores"):
            _close(out[name][0], s["served"][name][row])
        np.testing.assert_array_equal(out["top_k_classes"][0],
                                      s["served"]["top_k_classes"][row])


# --- (c) two streams --------------------------------------------------------
@pytest.fixture(scope="module")
def two_stream(streams):
    rgb, flow = streams["rgb_five"], streams["flow_five"]
    module = TwoStreamExportModule(rgb["model"], rgb["config"],
                                   flow["model"], flow["config"],
                                   class_names=NAMES, top_k=3)
    functions = module.signatures()
    jpegs = {**rgb["jpegs"], **flow["jpegs"]}
    uint8 = [{**a, **b} for a, b in zip(rgb["uint8"], flow["uint8"])]
    return dict(module=module, jpegs=jpegs, uint8=uint8,
                rgb=rgb["want"], flow=flow["want"],
                served=_numpy(functions["serving_default"](
                    **_tensors(jpegs))),
                served_uint8=[_numpy(functions["serve_uint8"](
                    **_tensors(u))) for u in uint8])


def test_two_stream_fuses_weighted_logits(two_stream):
    out = two_stream["served"]
    assert two_stream["module"].flow_weight == fusion.FLOW_WEIGHT == 0.667
    _close(out["rgb_logits"], two_stream["rgb"])
    _close(out["flow_logits"], two_stream["flow"])
    fused = 0.333 * two_stream["rgb"] + 0.667 * two_stream["flow"]
    _check_head(out, fused, multi_label=False)
    _close(out["logits"], fusion.fuse_streams(two_stream["rgb"],
                                              two_stream["flow"]))
    for row, got in enumerate(two_stream["served_uint8"]):
        _close(got["logits"][0], fused[row])


def test_two_stream_saves_both_models_variables(two_stream):
    module = two_stream["module"]
    saved = {id(v) for v in module.trainable_variables}
    for model in (module.rgb_model, module.flow_model):
        for v in model.trainable_variables:
            assert id(getattr(v, "value", v)) in saved


# --- (d) export, TensorFlow-only process ------------------------------------
SERVE_SCRIPT = helpers.TF_ONLY_PRELUDE + helpers.TENSOR_JSON + r"""
import json

import tensorflow as tf

requests_path, outputs_path = sys.argv[1:3]
requests = load_tensors(requests_path)
results, listing, errors = {}, {}, {}
bad_errors, answered = {}, {}
for model, spec in requests.items():
    loaded = tf.saved_model.load(spec["path"])
    listing[model] = {
        name: {"inputs": {k: [v.dtype.name, v.shape.as_list()] for k, v in
                          fn.structured_input_signature[1].items()},
               "outputs": {k: [v.dtype.name, v.shape.as_list()] for k, v in
                           fn.structured_outputs.items()}}
        for name, fn in loaded.signatures.items()}
    results[model] = {}
    for signature, inputs in spec["calls"].items():
        out = loaded.signatures[signature](
            **{k: tf.constant(v) for k, v in inputs.items()})
        results[model][signature] = {k: v.numpy() for k, v in out.items()}
    try:
        loaded.signatures["serving_default"](
            **{k: tf.constant(v) for k, v in spec["bad"].items()})
        errors[model] = ""
    except tf.errors.InvalidArgumentError as e:
        errors[model] = e.message
    # `serving_helpers.bad_input_calls`: each refusal's message.
    bad_errors[model], answered[model] = {}, []
    for key, (signature, inputs) in spec["bad_calls"].items():
        try:
            loaded.signatures[signature](
                **{k: tf.constant(v) for k, v in inputs.items()})
            answered[model].append(key)
        except tf.errors.InvalidArgumentError as e:
            bad_errors[model][key] = e.message
imported = sorted(m for m, module in sys.modules.items() if module and
                  m.split(".")[0] in ("keras", "tf_keras", "tfaction"))
dump_tensors({"results": results, "errors": errors, "imported": imported,
              "bad_errors": bad_errors, "answered": answered}, outputs_path)
with open(outputs_path + ".listing.json", "w") as f:
    json.dump(listing, f)
"""


def _empty_like(inputs):
    """The same request with T = 0 (no frames)."""
    return {k: v[:, :0] for k, v in inputs.items()}


@pytest.fixture(scope="module")
def exported(streams, two_stream, tmp_path_factory):
    root = tmp_path_factory.mktemp("actionvlad_export")
    cases = {"rgb": (streams["rgb_five"]["module"], streams["rgb_five"]),
             "flow": (streams["flow_offsets"]["module"],
                      streams["flow_offsets"]),
             "two_stream": (two_stream["module"], two_stream)}
    requests, paths = {}, {}
    for name, (module, data) in cases.items():
        paths[name] = export_saved_model(module, root / "models" / name)
        requests[name] = dict(
            path=str(paths[name]),
            calls={"serving_default": data["jpegs"],
                   "serve_uint8": data["uint8"][0]},
            bad=_empty_like(data["jpegs"]),
            bad_calls={**helpers.bad_input_calls("serving_default",
                                                 data["jpegs"]),
                       **helpers.bad_input_calls("serve_uint8",
                                                 data["uint8"][0])})
    tensor_json.dump_tensors(requests, root / "requests.json")
    helpers.run_tf_only(SERVE_SCRIPT, [root / "requests.json",
                                       root / "outputs.json"], root)
    served = tensor_json.load_tensors(root / "outputs.json")
    with open(root / "outputs.json.listing.json") as f:
        served["listing"] = json.load(f)
    served["paths"] = {k: pathlib.Path(v) for k, v in paths.items()}
    served["cases"] = cases
    served["bad_calls"] = {k: v["bad_calls"] for k, v in requests.items()}
    return served


def test_fresh_process_needed_only_tensorflow(exported):
    assert exported["imported"] == []


def test_every_export_carries_its_class_list(exported):
    for path in exported["paths"].values():
        assert (path / "assets" / "classes.txt").read_text() == "".join(
            f"{name}\n" for name in NAMES)


def test_fresh_process_outputs_match_in_process(exported):
    for name, (_, data) in exported["cases"].items():
        got = exported["results"][name]
        assert sorted(got["serving_default"]) == sorted(data["served"])
        for key, value in data["served"].items():
            if value.dtype.kind in "fi":
                _close(got["serving_default"][key], value)
            else:
                np.testing.assert_array_equal(got["serving_default"][key],
                                              value)
        for key, value in data["served_uint8"][0].items():
            if value.dtype.kind in "fi":
                _close(got["serve_uint8"][key], value)


def test_signatures_listed_with_names_dtypes_shapes(exported):
    listing = exported["listing"]
    outputs = {"logits": ["float32", [None, K]],
               "probabilities": ["float32", [None, K]],
               "top_k_classes": ["int32", [None, 3]],
               "top_k_scores": ["float32", [None, 3]],
               "class_names": ["string", [None, 3]]}
    assert listing["rgb"] == {
        "serving_default": {"inputs": {"frames": ["string", [None, None]]},
                            "outputs": outputs},
        "serve_uint8": {"inputs": {"frames": [
            "uint8", [None, None, None, None, 3]]}, "outputs": outputs}}
    assert listing["flow"] == {
        "serving_default": {"inputs": {
            "flow_x": ["string", [None, None, S]],
            "flow_y": ["string", [None, None, S]]}, "outputs": outputs},
        "serve_uint8": {"inputs": {"flow": [
            "uint8", [None, None, None, None, 2 * S]]}, "outputs": outputs}}
    two = listing["two_stream"]
    assert sorted(two) == ["serve_uint8", "serving_default"]
    assert two["serving_default"]["inputs"] == {
        "frames": ["string", [None, None]],
        "flow_x": ["string", [None, None, S]],
        "flow_y": ["string", [None, None, S]]}
    assert two["serve_uint8"]["inputs"] == {
        "frames": ["uint8", [None, None, None, None, 3]],
        "flow": ["uint8", [None, None, None, None, 2 * S]]}
    both = {**outputs, "rgb_logits": ["float32", [None, K]],
            "flow_logits": ["float32", [None, K]]}
    assert two["serving_default"]["outputs"] == both
    assert two["serve_uint8"]["outputs"] == both


def test_fresh_process_reports_empty_request(exported):
    for name in ("rgb", "flow", "two_stream"):
        error = exported["errors"][name]
        assert "T = 0" in error and "at least one" in error, (name, error)


def test_bad_inputs_are_refused_naming_the_input(exported):
    # Each input of both signatures with a wrong rank or dtype, and an
    # empty batch (ActionVLAD samples its frames from any T: no maximum).
    counts = {}
    for name, path in exported["paths"].items():
        calls = exported["bad_calls"][name]
        assert exported["answered"][name] == [], name
        counts[name] = helpers.assert_bad_inputs_refused(
            dict(calls=calls, errors=exported["bad_errors"][name],
                 results={}))
    # rgb: frames; flow: flow_x, flow_y / flow; two-stream: all three /
    # frames and flow; (2 per input + an empty batch) per signature.
    assert counts == {"rgb": 6, "flow": 8, "two_stream": 12}


def test_warmup_requests_cover_both_signatures(exported):
    from tensorflow_serving.apis import prediction_log_pb2

    for name, path in exported["paths"].items():
        warmup = path / "assets.extra" / "tf_serving_warmup_requests"
        records = list(tf.data.TFRecordDataset(str(warmup))
                       .as_numpy_iterator())
        requests = [prediction_log_pb2.PredictionLog.FromString(r)
                    .predict_log.request for r in records]
        assert [r.model_spec.signature_name for r in requests] == [
            "serving_default", "serve_uint8"]
        assert requests[0].model_spec.name == name
        jpeg_keys = {"rgb": ["frames"], "flow": ["flow_x", "flow_y"],
                     "two_stream": ["flow_x", "flow_y", "frames"]}[name]
        assert sorted(requests[0].inputs) == jpeg_keys


# --- (e) bad requests and settings ------------------------------------------
def _serve(module, signature, **inputs):
    return module.signatures()[signature](**_tensors(inputs))


def test_empty_request_is_explained(streams):
    s = streams["rgb_five"]
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=r"frames holds no frame \(T = 0\)"):
        _serve(s["module"], "serving_default",
               **_empty_like(s["jpegs"]))
    with pytest.raises(tf.errors.InvalidArgumentError, match="T = 0"):
        _serve(s["module"], "serve_uint8",
               **{"frames": s["uint8"][0]["frames"][:, :0]})


def test_frame_that_is_not_a_jpeg_names_row_and_frame(streams):
    s = streams["rgb_five"]
    frames = s["jpegs"]["frames"].copy()
    frames[1, 2] = b"not a jpeg"
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=r"not a JPEG(.|\n)*request row 1(.|\n)*2"):
        _serve(s["module"], "serving_default", frames=frames)


def test_bad_flow_requests_are_explained(streams):
    s = streams["flow_five"]
    x, y = s["jpegs"]["flow_x"], s["jpegs"]["flow_y"]
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match="flow_x and flow_y must have the same shape"):
        _serve(s["module"], "serving_default", flow_x=x, flow_y=y[:, :2])
    # S is fixed in the spec: checked for every module (`checked_inputs`).
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=r"Shape of tensor flow_x \[2,3,1\] is not "
                       r"compatible with expected shape \[\?,\?,2\]"):
        _serve(s["module"], "serving_default", flow_x=x[:, :, :1], flow_y=y)
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=r"Shape of tensor flow \[.*\] is not "
                       r"compatible with expected shape \[\?,\?,\?,\?,4\]"):
        _serve(s["module"], "serve_uint8",
               flow=s["uint8"][0]["flow"][..., :2])


def test_uint8_frames_smaller_than_the_crop_are_explained(streams):
    s = streams["rgb_offset"]  # no resize: crop (4, 10) + 32x40
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match="does not fit frames"):
        _serve(s["module"], "serve_uint8",
               frames=np.zeros([1, 2, 30, 40, 3], np.uint8))


def test_two_stream_batch_mismatch_is_explained(two_stream):
    jpegs = dict(two_stream["jpegs"])
    jpegs["frames"] = jpegs["frames"][:1]
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match="same videos"):
        _serve(two_stream["module"], "serving_default", **jpegs)


def test_bad_settings_raise_config_errors(streams):
    rgb, flow = streams["rgb_five"], streams["flow_five"]
    with pytest.raises(errors.ConfigError, match="3 class_names"):
        ActionVLADExportModule(rgb["model"], rgb["config"],
                               class_names=NAMES[:3]).signatures()
    with pytest.raises(errors.ConfigError, match="top_k"):
        ActionVLADExportModule(rgb["model"], rgb["config"], NAMES, top_k=0)
    with pytest.raises(errors.ConfigError, match="appears twice"):
        ActionVLADExportModule(rgb["model"], rgb["config"], NAMES[:1] * K)
    with pytest.raises(errors.ConfigError, match="RGB frames config and a "
                       "flow one"):
        TwoStreamExportModule(flow["model"], flow["config"], rgb["model"],
                              rgb["config"], NAMES)
    with pytest.raises(errors.ConfigError, match="flow_weight"):
        TwoStreamExportModule(rgb["model"], rgb["config"], flow["model"],
                              flow["config"], NAMES, flow_weight=1.5)
