"""Experiment launchers (`python -m experiments.train`) and their configs."""

import os

# TensorFlow's C++ start-up log (CUDA plugin registration errors on a
# machine without a GPU, oneDNN notices, ...) reads as failures; the
# launchers hide it unless TF_CPP_MIN_LOG_LEVEL is set (0 shows all).
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
