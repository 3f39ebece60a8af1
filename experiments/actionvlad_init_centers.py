r"""K-means centres that initialise an ActionVLAD recipe's NetVLAD layer.

```
python -m experiments.actionvlad_init_centers \
    --config=experiments/configs/actionvlad_hmdb51_rgb.py --workdir=DIR \
    [--config.task.trunk_weights=vgg16.h5 --config.task.centers.x=...]
```

As the reference (`*_feats_for_clustering.sh`, `cluster_feats.py`): random
training frames (`task.centers.frames_per_video` per video and pass, a
random crop, no flip; seeded by the config's seed) go through the trunk
with its pre-trained weights, their conv descriptors (pre-ReLU) are
gathered until `task.centers.num_frames` frames, subsampled to at most
`max_descriptors`, L2-normalised and clustered with scikit-learn
(`tfaction.models.actionvlad.kmeans.cluster_descriptors`: KMeans with
k-means++ on a subsample and `n_init=1`, or MiniBatchKMeans above
`minibatch_threshold` descriptors). Writes `DIR/centers.npz` (the
`task.centers_file` of stage 1) and prints its path.

Exit status: 0 on success, 2 for a bad command line or config, 1 for other
tfaction errors (e.g. unreadable data).
"""

import json

from absl import flags
from absl import logging
from ml_collections import config_flags

from experiments import command
from tfaction import errors
from tfaction import progress

CENTERS_FILE = "centers.npz"


def define_flags(flag_values, sys_argv=None):
    """Defines `--config`, `--workdir`, `--[no]progress` on `flag_values`."""
    config_flags.DEFINE_config_file(
        "config", None, "ActionVLAD experiment config file",
        flag_values=flag_values, lock_config=True, sys_argv=sys_argv)
    flags.DEFINE_string("workdir", None, "output folder (centers.npz)",
                        flag_values=flag_values)
    flags.mark_flags_as_required(["config", "workdir"],
                                 flag_values=flag_values)
    progress.define_flag(flag_values)
    flags.declare_key_flag("progress", flag_values=flag_values)


def parse_command_line(argv, flag_values=None):
    """Parses argv into a locked, checked config and the workdir.

    Also applies `--[no]progress` (the progress line on stderr).

    Raises:
        ConfigError: bad flag, unknown key or unreadable config file.
    """
    (config,), flag_values = command.parse_configs(argv, flag_values,
                                                   define_flags)
    if config.task.name != "actionvlad":
        raise errors.ConfigError(
            f"config.task.name is {config.task.name!r}; this command "
            "initialises ActionVLAD recipes (task 'actionvlad')")
    progress.set_enabled(flag_values.progress)
    return config, flag_values.workdir


def sample_descriptors(task, settings, seed=0):
    """Trunk descriptors of random training frames.

    Args:
        task: an `ActionVLADTask`.
        settings: the `task.centers` section (`num_frames`,
            `frames_per_video`, `max_descriptors`, `batch_size`).
        seed: seed of the frame choice, the crops and the subsample.

    Returns:
        `(descriptors [N, D] float32, frames used)`.
    """
    import numpy as np
    import tensorflow as tf

    from tfaction.data import frames_pipeline

    trunk = task.build_trunk()
    config = task.frames_config(
        True, batch_size=int(settings.batch_size), sampler="tsn",
        num_steps=int(settings.frames_per_video), flip=False,
        train_crop="random", drop_remainder=False)
    extract = tf.function(lambda x: trunk(x, training=False),
                          reduce_retracing=True)
    files = task.data.files(task.config.train_subset)
    wanted = int(settings.num_frames)
    chunks, frames_used, epoch = [], 0, 0
    with progress.Progress(wanted, label="descriptors", unit="frames") as bar:
        while frames_used < wanted:
            dataset = frames_pipeline.make_frames_dataset(
                files, config, training=True, seed=seed, start_epoch=epoch,
                num_epochs=1)
            for batch in dataset:
                frames = batch["frames"]
                frames = tf.reshape(frames, [-1, *frames.shape[2:]])
                frames = frames[:wanted - frames_used]
                features = extract(frames).numpy()
                chunks.append(features.reshape(-1, features.shape[-1]))
                frames_used += frames.shape[0]
                bar.advance(frames.shape[0])
                if frames_used >= wanted:
                    break
            epoch += 1
    descriptors = np.concatenate(chunks).astype(np.float32)
    limit = int(settings.max_descriptors)
    if descriptors.shape[0] > limit:
        rng = np.random.default_rng(seed)
        descriptors = descriptors[np.sort(rng.choice(
            descriptors.shape[0], limit, replace=False))]
    return descriptors, frames_used


def init_centers(config, workdir):
    """Samples descriptors, clusters them and writes `centers.npz`.

    Args:
        config: a checked ActionVLAD experiment config.
        workdir: output folder.

    Returns:
        The path written.
    """
    from tfaction import tasks
    from tfaction import training
    from tfaction.data import filesystems
    from tfaction.models.actionvlad import kmeans

    training.configure_runtime(config.runtime, config.trainer.seed)
    task = tasks.build_task(config)
    settings = config.task.centers
    seed = int(config.trainer.seed)
    descriptors, frames_used = sample_descriptors(task, settings, seed)
    logging.info("clustering %d descriptors of %d frames",
                 descriptors.shape[0], frames_used)
    with progress.Stage(f"clustering {descriptors.shape[0]} descriptors"):
        centers, info = kmeans.cluster_descriptors(
            descriptors, int(config.task.model.num_clusters), seed=seed,
            minibatch_threshold=int(settings.minibatch_threshold),
            seed_sample=int(settings.seed_sample))
    info.update(num_frames=frames_used, data_dir=config.task.data_dir,
                modality=task.frames_config(False).modality)
    filesystems.makedirs(workdir)
    path = filesystems.join(workdir, CENTERS_FILE)
    kmeans.save_centers(path, centers, info)
    logging.info("centres: %s", json.dumps(info))
    return path


if __name__ == "__main__":
    command.run("experiments.actionvlad_init_centers", define_flags,
                parse_command_line, lambda parsed: init_centers(*parsed))
