"""tfaction: video action understanding for TensorFlow 2 / Keras 3.

Subpackages: `layers`, `losses`, `ops` (backend-agnostic building blocks),
`models`, `data` (TFRecord I/O, converters, synthetic datasets), `evaluation`,
`tasks`, `training`, `serving`. Import what you need; importing `tfaction`
itself is cheap and does not import TensorFlow.
"""

__version__ = "0.1.0"
