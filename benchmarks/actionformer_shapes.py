"""The ActionFormer benchmark's configurations and inputs (NumPy only).

Shared by `benchmarks/actionformer.py` (tfaction) and
`benchmarks/actionformer_torch.py` (the authors' code), so that both build
the same network and draw the same inputs from the same NumPy generators.
Each entry of `SHAPES` mirrors one of the authors' configs: `model` holds
tfaction's `ActionFormer` arguments, `yaml` the authors' config file (the
PyTorch side loads it), `train_batch` their loader batch size, and `post`
their loss settings (`loss`: initial loss normaliser, label smoothing,
regression loss weight), their test-time post-processing (`test_cfg`) and the feature geometry used
to convert grid units to seconds. `quick` is a small smoke-test shape.

Example:

>>> from benchmarks.actionformer_shapes import SHAPES, training_inputs
>>> shape = SHAPES["anet"]
>>> feats, mask, segs, labels, gt_valid = training_inputs(
...     shape["train_batch"], shape["model"]["max_seq_len"],
...     shape["model"]["input_dim"], shape["model"]["num_classes"])
"""

import numpy as np

THUMOS_REGRESSION = ((0, 4), (4, 8), (8, 16), (16, 32), (32, 64),
                     (64, 10000))

SHAPES = {
    # configs/thumos_i3d.yaml: I3D 2048-d, 20 classes, window 19, T = 2304
    "thumos": dict(
        yaml="thumos_i3d.yaml", train_batch=2, params=29251612,
        loss=dict(init_loss_norm=100.0, label_smoothing=0.0,
                  loss_weight=1.0),
        model=dict(input_dim=2048, num_classes=20, embed_dim=512,
                   num_heads=4, arch=(2, 2, 5), window_size=19,
                   head_dim=512, max_seq_len=2304, drop_path_rate=0.1),
        post=dict(pre_nms_topk=2000, duration_thresh=0.05, max_seg_num=200,
                  min_score=0.001, sigma=0.5, multiclass=True,
                  voting_thresh=0.7, fps=30.0, feat_stride=4,
                  num_frames=16)),
    # configs/anet_i3d.yaml: 1 class, embed 256, windows 7 (last level
    # global), absolute position encoding, T = 192, batch 16
    "anet": dict(
        yaml="anet_i3d.yaml", train_batch=16, params=None,
        loss=dict(init_loss_norm=200.0, label_smoothing=0.1,
                  loss_weight=2.0),
        model=dict(input_dim=2048, num_classes=1, embed_dim=256,
                   num_heads=4, arch=(2, 2, 5),
                   window_size=[7, 7, 7, 7, 7, -1], head_dim=256,
                   max_seq_len=192, use_abs_pe=True, drop_path_rate=0.1),
        post=dict(pre_nms_topk=2000, duration_thresh=0.001, max_seg_num=100,
                  min_score=0.001, sigma=0.75, multiclass=False,
                  voting_thresh=0.9, fps=25.0, feat_stride=16,
                  num_frames=16)),
    # configs/ego4d_slowfast_omnivore_egovlp.yaml: three feature sets
    # (2304 + 1536 + 256) projected to 256 + 384 + 384, 110 classes, 16
    # heads, 8 levels, T = 1024, batch 2
    "ego4d": dict(
        yaml="ego4d_slowfast_omnivore_egovlp.yaml", train_batch=2,
        params=None,
        loss=dict(init_loss_norm=100.0, label_smoothing=0.0,
                  loss_weight=1.0),
        model=dict(input_dim=4096, num_classes=110, embed_dim=1024,
                   num_heads=16, arch=(2, 2, 7), window_size=9,
                   head_dim=1024, max_seq_len=1024, use_abs_pe=True,
                   dropout=0.1, drop_path_rate=0.1,
                   input_splits=[2304, 1536, 256],
                   projection_dims=[256, 384, 384],
                   regression_range=[[0, 4], [2, 8], [4, 16], [8, 32],
                                     [16, 64], [32, 128], [64, 256],
                                     [128, 10000]]),
        post=dict(pre_nms_topk=5000, duration_thresh=0.05, max_seg_num=2000,
                  min_score=0.001, sigma=0.9, multiclass=True,
                  voting_thresh=0.95, fps=30.0, feat_stride=16,
                  num_frames=32)),
    # smoke test of the scripts (THUMOS layout, small)
    "quick": dict(
        yaml="thumos_i3d.yaml", train_batch=2, params=None,
        loss=dict(init_loss_norm=100.0, label_smoothing=0.0,
                  loss_weight=1.0),
        model=dict(input_dim=64, num_classes=5, embed_dim=32, num_heads=4,
                   arch=(2, 2, 5), window_size=9, head_dim=32,
                   max_seq_len=256, drop_path_rate=0.1),
        post=dict(pre_nms_topk=2000, duration_thresh=0.05, max_seg_num=200,
                  min_score=0.001, sigma=0.5, multiclass=True,
                  voting_thresh=0.7, fps=30.0, feat_stride=4,
                  num_frames=16)),
}

NUM_GT = 8


def training_lengths(batch, length):
    """Valid steps of each training video: even rows full, odd rows 78 %."""
    return [length if i % 2 == 0 else int(length * 0.78)
            for i in range(batch)]


def training_inputs(batch, length, input_dim, num_classes):
    """A padded training batch, drawn from `default_rng(0)`.

    Args:
        batch, length, input_dim, num_classes: the batch geometry.

    Returns:
        `(features [B, T, C] float32 (zero at padding), mask [B, T] bool,
        segments [B, 8, 2] float32, labels [B, 8] int32, gt_valid [B, 8]
        bool)`; row 1 has its last 2 ground-truth rows as padding.
    """
    rng = np.random.default_rng(0)
    lengths = training_lengths(batch, length)
    feats = rng.standard_normal((batch, length, input_dim), dtype=np.float32)
    mask = np.arange(length)[None] < np.array(lengths)[:, None]
    feats *= mask[..., None]
    starts = np.stack([np.sort(rng.uniform(0, n * 0.9, NUM_GT))
                       for n in lengths])
    ends = starts + rng.uniform(2.0, length / 16, (batch, NUM_GT))
    ends = np.minimum(ends, np.array(lengths)[:, None] - 1.0)
    segments = np.stack([starts, ends], -1).astype(np.float32)
    labels = rng.integers(0, num_classes, (batch, NUM_GT)).astype(np.int32)
    gt_valid = np.ones((batch, NUM_GT), bool)
    gt_valid[1, -2:] = False  # padded GT rows
    return feats, mask, segments, labels, gt_valid


def inference_features(length, input_dim):
    """One full-length inference video `[1, T, C]`, from `default_rng(1)`."""
    rng = np.random.default_rng(1)
    return rng.standard_normal((1, length, input_dim), dtype=np.float32)
