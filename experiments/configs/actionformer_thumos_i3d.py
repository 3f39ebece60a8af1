"""ActionFormer on THUMOS14 with two-stream I3D features (2048-d).

Data: `thumos.tar.gz` of the ActionFormer release (I3D features, stride 4,
16-frame windows, fps from the JSON), converted with

    python -m tfaction.data.convert --format=activitynet_features \
        --input=thumos/annotations/thumos14.json \
        --features_dir=thumos/i3d_features --feature_stride=4 \
        --feature_window=16 --output_dir=data/thumos_i3d

Train on the validation videos, evaluate on the test videos, mAP at tIoU
np.linspace(0.3, 0.7, 5) (the base config's thresholds; published average
66.8), scored as the authors' `libs/utils/metrics.py` does
(`evaluation.variant="actionformer"`).
"""

from tfaction.tasks import actionformer_config


def get_config():
    """Returns the config (`actionformer_config` describes every key)."""
    config = actionformer_config.experiment_config()
    config.task.data_dir = "data/thumos_i3d"
    config.task.train_subset = "validation"
    config.task.eval_subset = "test"
    config.task.evaluation.variant = "actionformer"
    return config
