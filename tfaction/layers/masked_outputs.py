"""Output shapes and specs of layers returning `(features, mask)` pairs.

The sequence layers of ActionFormer (`MaskedConv1D`, `LocalSelfAttention`,
`ConvTransformerBlock`, `ConvTransformerBackbone`) return features with a
boolean mask (or lists of them, one pair per pyramid level). Keras builds
the symbolic outputs of a layer that defines `compute_output_shape` in the
layer's compute dtype; these helpers give the masks their boolean dtype.

Example:

>>> strided_length(12, 2), strided_length(None, 2)
(6, None)
"""

import keras


def strided_length(length, strides):
    """Steps after a stride (`None` stays unknown)."""
    return None if length is None else int(length) // int(strides)


def sequence_shapes(input_shape, channels, strides=1):
    """`((B, T', channels), (B, T'))` for an input `(B, T, C)`."""
    batch, length = input_shape[0], strided_length(input_shape[1], strides)
    return (batch, length, channels), (batch, length)


def output_spec(layer, shapes):
    """KerasTensors for a structure of `(features, mask)` shapes.

    Args:
        layer: the layer (its compute dtype types the features).
        shapes: `(features_shape, mask_shape)`, or `(features_shapes,
            mask_shapes)` lists of per-level shapes.

    Returns:
        The same structure of `keras.KerasTensor`s: features in the compute
        dtype, masks bool.
    """
    features, masks = shapes

    def tensors(structure, dtype):
        if isinstance(structure, list):
            return [keras.KerasTensor(s, dtype=dtype) for s in structure]
        return keras.KerasTensor(structure, dtype=dtype)

    return tensors(features, layer.compute_dtype), tensors(masks, "bool")
