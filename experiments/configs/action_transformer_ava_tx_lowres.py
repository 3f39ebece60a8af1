"""Video Action Transformer on AVA v2.1: Tx head, LowRes query (Table 1, R = 64: 17.8 with RPN boxes).

The paper's recipe (`tfaction.tasks.action_transformer_config`): 64-frame
400x400 clips, I3D trunk from Kinetics-400 weights (`task.trunk_weights`,
DeepMind's `rgb_imagenet/model.ckpt`), R = 300 proposals, SGD lr 0.1 with a
0.01 -> 0.1 warm-up over 1,000 iterations then cosine over 500K, batch 30
clips across replicas, frame-AP@0.5 over the 60 evaluated classes.
"""

from tfaction.tasks import action_transformer_config


def get_config():
    """Returns the experiment config."""
    config = action_transformer_config.experiment_config("tx", "low_res")
    config.task.data_dir = "data/ava/records"
    # The official 60-class evaluation map (the records keep all 80).
    config.task.evaluation.label_map = "ava60"
    return config
