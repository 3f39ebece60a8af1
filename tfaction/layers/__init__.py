"""Reusable Keras 3 layers (backend-agnostic, `keras.ops`)."""
