"""Experiment recipes: `get_config()` modules extending a task family's
`experiment_config()` (`tfaction.tasks.actionformer_config`,
`tfaction.tasks.actionvlad_config`) or `tfaction.config.base_config()`."""
