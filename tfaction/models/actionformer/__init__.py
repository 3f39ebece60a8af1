"""ActionFormer (Zhang, Wu, Li, ECCV 2022) in Keras 3."""
