"""ActionVLAD RGB on Charades v1: multi-label, sigmoid, mAP.

157 classes, 25 uniform frames of the whole video, one centre crop;
sigmoid cross-entropy, evaluated with the `Charades_v1_classify.m` mAP
(`tfaction.evaluation.charades_map`) and written as a Charades submission
(`charades_submission.txt`). The released model is BN-Inception TSN
(17.66 mAP); its training recipe is not recoverable from the release, so
this config trains the VGG16 ActionVLAD of the HMDB51 recipe on Charades
videos (each video's labels: the classes of its action instances).
"""

from tfaction.tasks import actionvlad_config


def get_config(stage="stage1"):
    """Returns the config of `stage` ("stage1" or "stage2")."""
    config = actionvlad_config.experiment_config(stage)
    task = config.task
    task.data_dir = "data/charades/records"
    task.train_subset = "train"
    task.eval_subset = "test"
    task.multi_label = True
    task.top_k = 10
    return config
