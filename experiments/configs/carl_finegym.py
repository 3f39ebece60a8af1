"""CARL on FineGym (Gym99 elements; Chen et al., CVPR 2022).

The recipe: `tfaction.tasks.carl_config.experiment_config("finegym")`: two
views of 240 frames of one event per step (overlapping temporal crops,
no blur), a 3-layer transformer, Adam 1e-4 with coupled L2 1e-5, cosine
annealing per epoch over 300 epochs; evaluation (at the end) embeds whole
events in chunks of up to 6,000 frames and trains FineGym's linear probe
(99 classes, SGD lr 50, 100 epochs) on 10 / 50 / 100 % of the training
events, scored by frame accuracy on val.

Data: one record per FineGym event (frames at 25 fps, 640x360; frame
labels = Gym99 element ids, -1 outside the labelled sub-actions), written
into `data/finegym/records` by

    python -m tfaction.data.convert --format=finegym \
        --input=finegym_annotation_info_v1.0.json \
        --element_lists=gym99_train_element_v1.0.txt,gym99_val_element.txt \
        --videos_root=FineGym_Raw_database --num_workers=8 \
        --output_dir=data/finegym/records

(`--videos_root`: the YouTube videos `<youtube_id>.mp4|mkv|webm`, cut per
event, or event clips `<event_id>.mp4` already cut). For Gym288 convert the
`gym288_*` lists and set `--config.task.evaluation.num_phase_classes=288`.
Weights: `--config.task.trunk_weights=<ResNet-50 .pth>`.
"""

from tfaction.tasks import carl_config


def get_config():
    """Returns the experiment config."""
    config = carl_config.experiment_config("finegym")
    config.task.data_dir = "data/finegym/records"
    return config
