"""Experiment launchers (`python -m experiments.train`) and their configs."""
