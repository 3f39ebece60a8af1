"""Experiment configs: `get_config()` modules extending `base.get_config()`."""
