"""tf.data pipeline for frame-labelled videos (CARL views; DMVR-style stages).

Records follow `schemas.frame_labels_example` (one SequenceExample per
video: every frame as JPEG bytes, one phase label per frame, the action in
`clip/label/index`), as written by `--format=tcc`. Stages, each a named
function (see `input_reader.StagedPipeline`):

  read (InputReader: list/shard files, interleave, shuffle)
  → parse → choose_frames → decode (only the chosen JPEGs, each once)
  → augment → normalize → outputs → batch → prefetch

Training makes CARL's two views of every video. `choose_frames` draws them
with `samplers.carl_indices` (`time_augment`): per view a sorted random
subset of `ceil(r * L)` positions (r ~ U(1, sampling_region); FineGym:
`ceil(r * min(L, T))` with an offset near the other view's), right-padded
to T; positions >= L are masked and point at the last frame. `augment`
then transforms each view with ONE draw of its parameters shared by all
its frames, in the reference order:

1. random-resized crop (area `crop_scale` (0.8, 1), aspect `crop_ratio`
   (3/4, 4/3), torchvision's 10 attempts + centre fallback), bilinear
   resize to `image_size` (half-pixel centres, no antialias);
2. horizontal flip with probability `flip_prob` (0.5);
3. with probability `jitter_prob` (0.8) a colour jitter with torchvision's
   formulas: brightness, contrast, saturation factors `1 + U(-a, a)`
   (a = 0.8), hue shift `U(-0.2, 0.2)`, the four in a random order; a
   Gaussian blur (sigma `U(0.1, 2.0)`) is drawn with probability
   `blur_prob` (0.5) inside the jitter and, as the reference does, applied
   after each of the four ops (`blur="reference"`; `"once"`: once after
   them; `"off"`: never, CARL's FineGym setting);
4. grayscale with probability `grayscale_prob` (0.2), weights
   0.299 / 0.587 / 0.114;
5. normalisation with the ImageNet mean / std (frames in [0, 1]).

Evaluation returns whole videos, every frame or every `eval_stride`-th, in
file order, with their per-frame labels (the frame-wise protocols embed
every frame): a centre crop of at most `image_size` (torchvision-style
offsets `ceil((H - h) / 2)`; `eval_crop="none"` skips it), a resize to
`image_size` and the normalisation. Videos of different lengths are padded
in a batch; `masks` tells the real frames.

Elements are dicts (batched along a leading axis):

* training: `frames` float32 [2, T, H, W, 3]; `steps` int32 [2, T] (the
  original frame index of each slot, clamped to [0, L - 1]: the loss's
  timestamps); `masks` bool [2, T]; `seq_lens` int32 [2] (L per view);
  `frame_labels` int32 [2, T] (phase of each chosen frame);
* evaluation: `frames` float32 [N, H, W, 3]; `steps` int32 [N] (-1 when
  padded); `masks` bool [N]; `frame_labels` int32 [N] (-1 when padded or
  unlabelled);
* both: `video_id` string, `label` int32 (the action, -1 when the record
  has none), `num_frames` int32 (L, stored frames).

Known differences from the PyTorch reference: the colour ops run in float
on the [0, 1] frames, while the reference goes through 8-bit PIL images
between ops (each op rounds to 1/255 there); the blur is a true Gaussian of
standard deviation sigma (PIL approximates it with three box blurs); frames
come from the TFRecord JPEGs rather than CARL's re-encoded mp4 cache.

Example:

```python
config = FrameSequenceConfig.for_dataset("penn_action", batch_size=2)
train = make_frame_sequence_dataset("/data/penn/train-*.tfrecord", config,
                                    training=True, num_epochs=None)
val = make_frame_sequence_dataset("/data/penn/val-*.tfrecord", config,
                                  training=False)
```
"""

import dataclasses
import functools
import math

import tensorflow as tf

from tfaction import errors
from tfaction.data import input_reader
from tfaction.data import samplers
from tfaction.data import schemas
from tfaction.data import video_ops

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# Luma of the grayscale op and of the contrast / saturation blends: PIL's
# "L" conversion (what the reference's PIL-based jitter uses) and CARL's own
# grayscale; torchvision's tensor ops use 0.2989 for red instead.
GRAY_WEIGHTS = (0.299, 0.587, 0.114)
BLUR_MODES = ("reference", "once", "off")
EVAL_CROPS = ("center", "none")
# Colour ops in the order of their index in a jitter's `order`.
JITTER_OPS = ("brightness", "contrast", "saturation", "hue")

_DATASETS = {
    "pouring": {"num_frames": 240},
    "penn_action": {"num_frames": 80},
    "finegym": {"num_frames": 240, "block_from": "valid", "blur": "off"},
}


@dataclasses.dataclass(frozen=True)
class FrameSequenceConfig:
    """Settings of the frame-sequence pipeline (defaults: CARL, Pouring).

    Args:
        num_frames: frames per training view (T; Pouring and FineGym 240,
            PennAction 80).
        sampling_region: upper bound of the block expansion r (`<= 1`
            disables it).
        consistent_offset: view 2's offset stays within
            `int((1 - consistent_offset) * min(L, T))` of view 1's.
        block_from: "video" (block `ceil(r * L)`, Pouring, PennAction) or
            "valid" (`ceil(r * min(L, T))`, FineGym).
        image_size: (height, width) of the output frames.
        crop_scale, crop_ratio: random-resized-crop area fraction and
            aspect-ratio ranges.
        flip_prob: horizontal flip probability per view.
        jitter_prob: colour-jitter probability per view.
        brightness, contrast, saturation: factor ranges `1 +- value`.
        hue: hue shift range `+- value` (a fraction of the hue circle,
            <= 0.5).
        blur: "reference", "once" or "off" (see the module docstring).
        blur_prob: blur probability inside an applied jitter.
        blur_sigma: (min, max) of the blur's standard deviation, pixels.
        grayscale_prob: grayscale probability per view.
        mean, std: normalisation of frames in [0, 1] (per channel).
        eval_stride: evaluation keeps frames 0, s, 2s, ...
        eval_crop: "center" (crop at most `image_size`, then resize) or
            "none" (resize only).
        batch_size: global batch size, in videos.
        drop_remainder: default: True in training.
        shuffle_buffer_size: record shuffle buffer in training.
        cycle_length: files read concurrently (None: AUTOTUNE).
        deterministic: reproducible order (default: not training).
        dct_method: `tf.io.decode_jpeg` DCT method ("INTEGER_ACCURATE"
            matches libjpeg's default, as PIL / OpenCV).

    Example:

    >>> FrameSequenceConfig.for_dataset("finegym").blur
    'off'
    """

    num_frames: int = 240
    sampling_region: float = 1.5
    consistent_offset: float = 0.2
    block_from: str = "video"
    image_size: tuple = (224, 224)
    crop_scale: tuple = (0.8, 1.0)
    crop_ratio: tuple = (3 / 4, 4 / 3)
    flip_prob: float = 0.5
    jitter_prob: float = 0.8
    brightness: float = 0.8
    contrast: float = 0.8
    saturation: float = 0.8
    hue: float = 0.2
    blur: str = "reference"
    blur_prob: float = 0.5
    blur_sigma: tuple = (0.1, 2.0)
    grayscale_prob: float = 0.2
    mean: tuple = IMAGENET_MEAN
    std: tuple = IMAGENET_STD
    eval_stride: int = 1
    eval_crop: str = "center"
    batch_size: int = 1
    drop_remainder: bool = None
    shuffle_buffer_size: int = 64
    cycle_length: int = None
    deterministic: bool = None
    dct_method: str = "INTEGER_ACCURATE"

    def __post_init__(self):
        def fail(key, expected):
            raise errors.ConfigError(
                f"FrameSequenceConfig.{key} must be {expected}, got "
                f"{getattr(self, key)!r}")

        for key in ("num_frames", "eval_stride", "batch_size"):
            if int(getattr(self, key)) < 1:
                fail(key, ">= 1")
        for key, allowed in (("block_from", ("video", "valid")),
                             ("blur", BLUR_MODES),
                             ("eval_crop", EVAL_CROPS)):
            if getattr(self, key) not in allowed:
                fail(key, f"one of {allowed}")
        if len(self.image_size) != 2 or min(self.image_size) < 1:
            fail("image_size", "(height, width)")
        lo, hi = self.crop_scale
        if not 0 < lo <= hi <= 1:
            fail("crop_scale", "0 < min <= max <= 1")
        lo, hi = self.crop_ratio
        if not 0 < lo <= hi:
            fail("crop_ratio", "0 < min <= max")
        lo, hi = self.blur_sigma
        if not 0 < lo <= hi:
            fail("blur_sigma", "0 < min <= max")
        for key in ("flip_prob", "jitter_prob", "blur_prob",
                    "grayscale_prob", "consistent_offset"):
            if not 0 <= getattr(self, key) <= 1:
                fail(key, "in [0, 1]")
        for key in ("brightness", "contrast", "saturation"):
            if not 0 <= getattr(self, key) <= 1:
                fail(key, "in [0, 1] (factors 1 +- value stay >= 0)")
        if not 0 <= self.hue <= 0.5:
            fail("hue", "in [0, 0.5]")
        if len(self.mean) != 3 or len(self.std) != 3 or min(self.std) <= 0:
            fail("std" if len(self.mean) == 3 else "mean",
                 "3 per-channel values (std > 0)")

    @classmethod
    def for_dataset(cls, name, **overrides):
        """CARL's settings for "pouring", "penn_action" or "finegym".

        Args:
            name: the dataset.
            **overrides: fields to change.

        Returns:
            A `FrameSequenceConfig`.
        """
        if name not in _DATASETS:
            raise errors.ConfigError(f"unknown dataset {name!r}; expected "
                                     f"one of {sorted(_DATASETS)}")
        return cls(**{**_DATASETS[name], **overrides})


# --- Colour and blur ops (frames float [..., H, W, 3] in [0, 1]) ------------
def _blend(image, other, factor):
    """torchvision's `_blend`: `factor * image + (1 - factor) * other`,
    clipped to [0, 1]."""
    factor = tf.cast(factor, image.dtype)
    return tf.clip_by_value(factor * image + (1.0 - factor) * other, 0.0,
                            1.0)


def rgb_to_grayscale(frames):
    """Luma `0.299 R + 0.587 G + 0.114 B`, shape [..., H, W, 1].

    Example:

    >>> rgb_to_grayscale(tf.constant([[[[1.0, 0.0, 0.0]]]])).numpy().ravel()
    array([0.299], dtype=float32)
    """
    weights = tf.constant(GRAY_WEIGHTS, frames.dtype)
    return tf.reduce_sum(frames * weights, axis=-1, keepdims=True)


def adjust_brightness(frames, factor):
    """torchvision `adjust_brightness`: `clip(factor * x)`."""
    return _blend(frames, tf.zeros_like(frames), factor)


def adjust_contrast(frames, factor):
    """torchvision `adjust_contrast`: blend with the image's mean luma.

    The mean is one scalar per image (over its H, W of the grayscale), as
    torchvision computes it, not a per-channel mean.
    """
    mean = tf.reduce_mean(rgb_to_grayscale(frames), axis=[-3, -2, -1],
                          keepdims=True)
    return _blend(frames, mean, factor)


def adjust_saturation(frames, factor):
    """torchvision `adjust_saturation`: blend with the grayscale image."""
    return _blend(frames, rgb_to_grayscale(frames), factor)


def adjust_hue(frames, hue_factor):
    """torchvision `adjust_hue`: rotate the HSV hue by `hue_factor` (in
    [-0.5, 0.5] of the circle), `h' = (h + hue_factor) mod 1`."""
    hsv = tf.image.rgb_to_hsv(frames)
    h = tf.math.floormod(hsv[..., 0] + tf.cast(hue_factor, frames.dtype),
                         1.0)
    return tf.image.hsv_to_rgb(tf.stack([h, hsv[..., 1], hsv[..., 2]], -1))


def grayscale(frames):
    """The grayscale image repeated over the 3 channels (CARL's op)."""
    return tf.repeat(rgb_to_grayscale(frames), 3, axis=-1)


def gaussian_kernel(sigma, radius):
    """Normalised 1-D Gaussian weights [2 * radius + 1] of std `sigma`."""
    x = tf.cast(tf.range(-radius, radius + 1), tf.float32)
    sigma = tf.cast(sigma, tf.float32)
    w = tf.exp(-0.5 * tf.square(x / sigma))
    return w / tf.reduce_sum(w)


def gaussian_blur(frames, sigma, max_sigma=2.0):
    """Separable Gaussian blur with edge replication.

    Args:
        frames: float [..., H, W, C].
        sigma: standard deviation in pixels (scalar tensor, <= max_sigma).
        max_sigma: fixes the kernel radius `ceil(3 * max_sigma)`.

    Returns:
        Blurred frames, same shape and dtype.
    """
    radius = int(math.ceil(3 * max_sigma))
    w = tf.cast(gaussian_kernel(sigma, radius), frames.dtype)
    shape = tf.shape(frames)
    x = tf.reshape(frames, tf.concat([[-1], shape[-3:]], 0))
    channels = frames.shape[-1] or 3
    for axis in (1, 2):
        n = tf.shape(x)[axis]
        idx = tf.clip_by_value(tf.range(-radius, n + radius), 0, n - 1)
        padded = tf.gather(x, idx, axis=axis)
        kshape = [2 * radius + 1, 1] if axis == 1 else [1, 2 * radius + 1]
        kernel = tf.tile(tf.reshape(w, kshape + [1, 1]),
                         [1, 1, channels, 1])
        x = tf.nn.depthwise_conv2d(padded, kernel, [1, 1, 1, 1], "VALID")
    return tf.reshape(x, shape)


def color_jitter_params(seed, *, brightness=0.8, contrast=0.8,
                        saturation=0.8, hue=0.2, blur_prob=0.5,
                        blur_sigma=(0.1, 2.0)):
    """One draw of a colour jitter's parameters (shared by a view's frames).

    Args:
        seed: stateless seed [2].
        brightness, contrast, saturation: factors drawn as `1 + U(-a, a)`.
        hue: shift drawn as `U(-hue, hue)`.
        blur_prob: probability that the blur is on.
        blur_sigma: (min, max) of its standard deviation.

    Returns:
        Dict: `brightness`, `contrast`, `saturation`, `hue` (float32
        scalars), `order` (int32 [4], a permutation of `JITTER_OPS`
        indices), `blur` (bool) and `sigma` (float32).
    """
    def uniform(k, lo, hi):
        return tf.random.stateless_uniform(
            [], samplers.make_seed(seed, k), lo, hi, tf.float32)

    return {
        "brightness": 1.0 + uniform(0, -brightness, brightness),
        "contrast": 1.0 + uniform(1, -contrast, contrast),
        "saturation": 1.0 + uniform(2, -saturation, saturation),
        "hue": uniform(3, -hue, hue),
        "order": tf.cast(tf.argsort(tf.random.stateless_uniform(
            [4], samplers.make_seed(seed, 4))), tf.int32),
        "blur": uniform(5, 0.0, 1.0) < blur_prob,
        "sigma": uniform(6, blur_sigma[0], blur_sigma[1]),
    }


def apply_color_jitter(frames, params, blur="reference", max_sigma=2.0):
    """Applies the four colour ops in `params["order"]` (and the blur).

    Args:
        frames: float [..., H, W, 3] in [0, 1]; every frame gets the same
            factors (the grey mean of the contrast op is each frame's own).
        params: as `color_jitter_params` returns (`blur`, `sigma` only
            needed when `blur` is not "off").
        blur: "reference" (after each of the four ops, when `params["blur"]`),
            "once" (once after them) or "off".
        max_sigma: kernel radius bound of the blur.

    Returns:
        The jittered frames.
    """
    if blur not in BLUR_MODES:
        raise ValueError(f"blur must be one of {BLUR_MODES}, got {blur!r}")

    def blurred(x):
        return tf.cond(params["blur"],
                       lambda: gaussian_blur(x, params["sigma"], max_sigma),
                       lambda: x)

    ops = (lambda x: adjust_brightness(x, params["brightness"]),
           lambda x: adjust_contrast(x, params["contrast"]),
           lambda x: adjust_saturation(x, params["saturation"]),
           lambda x: adjust_hue(x, params["hue"]))
    for i in range(4):
        frames = tf.switch_case(
            params["order"][i],
            [functools.partial(op, frames) for op in ops])
        if blur == "reference":
            frames = blurred(frames)
    if blur == "once":
        frames = blurred(frames)
    return frames


def random_resized_crop(frames, seed, size, scale=(0.8, 1.0),
                        ratio=(3 / 4, 4 / 3)):
    """One random-resized crop for all frames of a view.

    Args:
        frames: [T, h, w, C] (uint8 or float).
        seed: stateless seed [2].
        size: (height, width) of the output.
        scale, ratio: area fraction and aspect-ratio ranges.

    Returns:
        (float32 [T, height, width, C] in the input's units, the box
        int32 [y, x, h, w]).
    """
    box = video_ops.random_resized_crop_box(tf.shape(frames)[-3:-1], seed,
                                            scale, ratio)
    out = video_ops.resize_frames(video_ops.crop_frames(frames, box),
                                  tuple(size))
    return out, box


def random_flip(frames, seed, prob=0.5):
    """Mirrors all frames of a view with probability `prob`."""
    if prob <= 0:
        return frames
    coin = tf.random.stateless_uniform([], seed) < prob
    return tf.cond(coin, lambda: video_ops.flip_left_right(frames),
                   lambda: frames)


def random_color_jitter(frames, seed, config):
    """With probability `config.jitter_prob`, one jitter draw for a view."""
    if config.jitter_prob <= 0:
        return frames
    params = color_jitter_params(
        samplers.make_seed(seed, 1), brightness=config.brightness,
        contrast=config.contrast, saturation=config.saturation,
        hue=config.hue, blur_prob=config.blur_prob,
        blur_sigma=config.blur_sigma)
    coin = tf.random.stateless_uniform(
        [], samplers.make_seed(seed, 0)) < config.jitter_prob
    return tf.cond(coin, lambda: apply_color_jitter(
        frames, params, config.blur, config.blur_sigma[1]), lambda: frames)


def random_grayscale(frames, seed, prob=0.2):
    """Grayscale for all frames of a view with probability `prob`."""
    if prob <= 0:
        return frames
    coin = tf.random.stateless_uniform([], seed) < prob
    return tf.cond(coin, lambda: grayscale(frames), lambda: frames)


def augment_view(frames, seed, config):
    """CARL's training transform of one view (one draw for its frames).

    Args:
        frames: uint8 [T, h, w, 3].
        seed: stateless seed [2] of the view.
        config: a `FrameSequenceConfig`.

    Returns:
        float32 [T, H, W, 3] in [0, 1] (before normalisation).
    """
    frames, _ = random_resized_crop(frames, samplers.make_seed(seed, 0),
                                    config.image_size, config.crop_scale,
                                    config.crop_ratio)
    frames = frames * (1.0 / 255.0)
    frames = random_flip(frames, samplers.make_seed(seed, 1),
                         config.flip_prob)
    frames = random_color_jitter(frames, samplers.make_seed(seed, 2),
                                 config)
    return random_grayscale(frames, samplers.make_seed(seed, 3),
                            config.grayscale_prob)


def center_crop_box(hw, size):
    """Centre box [y, x, h, w] of at most `size`, offsets `ceil(d / 2)`.

    Example:

    >>> center_crop_box([360, 640], (224, 224)).numpy().tolist()
    [68, 208, 224, 224]
    """
    hw = tf.cast(hw, tf.int32)
    h = tf.minimum(hw[0], int(size[0]))
    w = tf.minimum(hw[1], int(size[1]))
    return tf.stack([(hw[0] - h + 1) // 2, (hw[1] - w + 1) // 2, h, w])


def eval_transform(frames, config):
    """Evaluation transform: centre crop (optional), resize, to [0, 1]."""
    if config.eval_crop == "center":
        frames = video_ops.crop_frames(frames, center_crop_box(
            tf.shape(frames)[-3:-1], config.image_size))
    return video_ops.resize_frames(frames, tuple(config.image_size)) * (
        1.0 / 255.0)


def normalize(frames, mean=IMAGENET_MEAN, std=IMAGENET_STD):
    """`(x - mean) / std` per channel for frames in [0, 1]."""
    return video_ops.normalize(frames, mean, std)


def eval_chunks(num_frames, max_frames_per_batch):
    """CARL's evaluation chunks: `ceil(n / max)` chunks of equal size.

    The reference embeds a long video in `k = ceil(n / max)` chunks of
    `ceil(n / k)` frames (the last one shorter).

    Args:
        num_frames: n, frames of the video (after striding).
        max_frames_per_batch: the largest chunk (1000 Pouring / PennAction,
            6000 FineGym).

    Returns:
        List of (start, length).

    Example:

    >>> eval_chunks(2500, 1000)
    [(0, 834), (834, 834), (1668, 832)]
    """
    n = int(num_frames)
    if n <= 0:
        return []
    k = -(-n // int(max_frames_per_batch))
    per = -(-n // k)
    return [(i * per, min(per, n - i * per)) for i in range(k)]


# --- Stages -----------------------------------------------------------------
def example_seed(seed, epoch, video_id):
    """The stateless seed of one video in one epoch.

    The sampler uses `make_seed(example_seed, 1)`; view v's augmentation
    `make_seed(example_seed, 100 + v)`.
    """
    return samplers.make_seed(
        seed, epoch, tf.strings.to_hash_bucket_fast(video_id, 2**62))


def parse_stage(epoch, record):
    """Parses a record; JPEGs stay encoded. Adds the `epoch`."""
    ex = schemas.parse_frame_labels(record)
    ex["epoch"] = epoch
    return ex


def choose_frames_stage(ex, *, config, training, seed):
    """Chooses the frames (before decoding): CARL's two views in training,
    every `eval_stride`-th frame in evaluation."""
    vid = ex[schemas.VIDEO_ID]
    n = tf.shape(ex[schemas.IMAGE_ENCODED])[0]
    n = input_reader.require(n > 0, ["video", vid, "has no frames"], n)
    labels = ex[schemas.FRAME_LABEL_INDEX]
    labels = input_reader.require(
        tf.size(labels) == n,
        ["video", vid, "has", n, "frames but", tf.size(labels),
         "frame labels (frame/label/index)"], labels)
    ex["seed"] = example_seed(seed, ex["epoch"], vid)
    if training:
        steps, masks = samplers.carl_indices(
            n, config.num_frames, seed=samplers.make_seed(ex["seed"], 1),
            sampling_region=config.sampling_region,
            consistent_offset=config.consistent_offset,
            block_from=config.block_from)
    else:
        steps = tf.range(0, n, config.eval_stride)
        masks = tf.ones_like(steps, tf.bool)
    ex["steps"], ex["masks"] = steps, masks
    ex["frame_labels"] = tf.gather(tf.cast(labels, tf.int32), steps)
    ex["num_frames"] = n
    return ex


def decode_stage(ex, *, config):
    """Decodes only the chosen JPEGs (each distinct frame once)."""
    ex["frames"] = video_ops.decode_jpegs(
        ex.pop(schemas.IMAGE_ENCODED), ex["steps"],
        video_id=ex[schemas.VIDEO_ID], dct_method=config.dct_method)
    return ex


def augment_stage(ex, *, config, training):
    """Training: `augment_view` per view; evaluation: `eval_transform`."""
    if training:
        ex["frames"] = tf.stack([
            augment_view(ex["frames"][v],
                         samplers.make_seed(ex["seed"], 100 + v), config)
            for v in range(2)])
    else:
        ex["frames"] = eval_transform(ex["frames"], config)
    return ex


def normalize_stage(ex, *, config):
    """ImageNet (`mean`, `std`) normalisation."""
    ex["frames"] = normalize(ex["frames"], config.mean, config.std)
    return ex


def outputs_stage(ex, *, config, training):
    """The output dict (see the module docstring)."""
    h, w = config.image_size
    actions = tf.cast(ex[schemas.CLIP_LABEL_INDEX], tf.int32)
    label = tf.cond(tf.size(actions) > 0, lambda: actions[0],
                    lambda: tf.constant(-1, tf.int32))
    n = tf.cast(ex["num_frames"], tf.int32)
    out = {"video_id": ex[schemas.VIDEO_ID], "label": label,
           "num_frames": n,
           "steps": tf.cast(ex["steps"], tf.int32),
           "masks": ex["masks"],
           "frame_labels": ex["frame_labels"]}
    if training:
        t = config.num_frames
        out["frames"] = tf.ensure_shape(ex["frames"], [2, t, h, w, 3])
        for key in ("steps", "masks", "frame_labels"):
            out[key] = tf.ensure_shape(out[key], [2, t])
        out["seq_lens"] = tf.fill([2], n)
    else:
        out["frames"] = tf.ensure_shape(ex["frames"], [None, h, w, 3])
    return out


def _padding_values(spec):
    values = {}
    for key, s in spec.items():
        if key in ("steps", "frame_labels"):
            values[key] = tf.constant(-1, s.dtype)
        elif s.dtype == tf.string:
            values[key] = tf.constant("", tf.string)
        elif s.dtype == tf.bool:
            values[key] = tf.constant(False)
        else:
            values[key] = tf.zeros([], s.dtype)
    return values


# --- Builder ----------------------------------------------------------------
def build_frame_sequence_pipeline(config, *, training, seed=0,
                                  batch_size=None):
    """The stages after reading, as a `StagedPipeline`.

    Args:
        config: a `FrameSequenceConfig`.
        training: two augmented views (True) or whole videos (False).
        seed: int seed of every random choice (with the epoch and video
            id).
        batch_size: per-replica batch size (default `config.batch_size`).

    Returns:
        `input_reader.StagedPipeline` mapping (epoch, record) pairs to
        batches.

    Example:

    >>> pipe = build_frame_sequence_pipeline(FrameSequenceConfig(),
    ...                                      training=True)
    >>> pipe.names
    ['parse', 'choose_frames', 'decode', 'augment', 'normalize', \
'outputs', 'batch', 'prefetch']
    """
    det = (not training) if config.deterministic is None else \
        config.deterministic
    drop = training if config.drop_remainder is None else \
        config.drop_remainder
    batch_size = batch_size or config.batch_size
    m = functools.partial(input_reader.map_stage, deterministic=det)
    p = functools.partial

    def batch(ds):
        if training:  # fixed shapes
            return ds.batch(batch_size, drop_remainder=drop,
                            num_parallel_calls=input_reader.AUTOTUNE,
                            deterministic=det)
        return ds.padded_batch(batch_size, drop_remainder=drop,
                               padding_values=_padding_values(
                                   ds.element_spec))

    def prefetch(ds):
        return ds.prefetch(input_reader.AUTOTUNE)

    return input_reader.StagedPipeline([
        ("parse", m(parse_stage, name="parse")),
        ("choose_frames", m(p(choose_frames_stage, config=config,
                              training=training, seed=seed),
                            name="choose_frames")),
        ("decode", m(p(decode_stage, config=config), name="decode")),
        ("augment", m(p(augment_stage, config=config, training=training),
                      name="augment")),
        ("normalize", m(p(normalize_stage, config=config),
                        name="normalize")),
        ("outputs", m(p(outputs_stage, config=config, training=training),
                      name="outputs")),
        ("batch", batch),
        ("prefetch", prefetch),
    ])


def make_frame_sequence_dataset(file_pattern, config, *, training, seed=0,
                                input_context=None, start_epoch=0,
                                num_epochs=1, pipeline=None):
    """Reads frame-label records into batches.

    Args:
        file_pattern: glob, comma-separated globs or list of TFRecord files.
        config: a `FrameSequenceConfig`.
        training: CARL views (True) or whole videos for evaluation (False).
        seed: int seed; epoch e is a deterministic function of (seed, e).
        input_context: `tf.distribute.InputContext` (per-worker files and
            per-replica batch size).
        start_epoch: first epoch (resume).
        num_epochs: epochs to read; None repeats forever.
        pipeline: a modified `build_frame_sequence_pipeline` result, if any.

    Returns:
        A `tf.data.Dataset` of dicts (see the module docstring).

    Raises:
        DataError: the pattern matches no file.

    Bad data surfaces while iterating: a video without frames, a frame
    label count that differs from the frame count, or a chosen frame that
    is not a JPEG raise `tf.errors.InvalidArgumentError` naming the video.

    Example:

    ```python
    for batch in make_frame_sequence_dataset(pattern, config,
                                             training=False):
        embeddings = model(batch["frames"])  # [B, N, D]
    ```
    """
    reader = input_reader.InputReader(
        file_pattern, training=training, seed=seed,
        input_context=input_context,
        shuffle_buffer_size=config.shuffle_buffer_size,
        cycle_length=config.cycle_length, deterministic=config.deterministic)
    batch_size = config.batch_size
    if input_context is not None:
        batch_size = input_context.get_per_replica_batch_size(batch_size)
    if pipeline is None:
        pipeline = build_frame_sequence_pipeline(
            config, training=training, seed=seed, batch_size=batch_size)
    ds = pipeline(reader.read(start_epoch, num_epochs))
    return input_reader.finalize(ds, deterministic=reader.deterministic,
                                 sharded=input_context is not None)
