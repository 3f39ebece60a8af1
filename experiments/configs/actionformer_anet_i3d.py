"""ActionFormer on ActivityNet 1.3 with I3D features (2048-d).

The authors' `configs/anet_i3d.yaml`: the TSP recipe
(`actionformer_anet_tsp`) with the I3D features of the release (stride 16,
16-frame windows, `default_fps` 25, `v_<id>.npy` files). Convert with

    python -m tfaction.data.convert --format=activitynet_features \
        --input=anet_1.3/annotations/anet1.3_i3d_filtered.json \
        --features_dir=anet_1.3/i3d_features --feature_prefix=v_ \
        --feature_stride=16 --feature_window=16 --fps=25 --force_fps \
        --output_dir=data/anet_i3d

Same model (input width from the data), training, CUHK score fusion and
evaluation (mAP at tIoU np.linspace(0.5, 0.95, 10), the authors' scoring).
The yaml's note: `max_seq_len` 160 with windows (11, 11, 11, 11, -1, -1)
reproduces the paper's I3D setting; this recipe keeps the updated 192 /
(7,) * 5 + (-1,).
"""

from experiments.configs import actionformer_anet_tsp


def get_config():
    """Returns the config (`actionformer_config` describes every key)."""
    config = actionformer_anet_tsp.get_config()
    config.task.data_dir = "data/anet_i3d"
    config.task.inference.ext_score_file = (
        "data/anet_i3d/cuhk_val_simp_share.json")
    return config
