"""A small VGG-style frame trunk for CPU-sized experiments and tests."""

import keras


def build_small_convnet(input_channels=3, filters=(32, 64, 64),
                        pre_relu=True, weight_decay=0.0,
                        name="small_convnet", *, dtype=None):
    """Builds a VGG-shaped trunk: one 3x3 conv per block, 2x2 pools between.

    The same anatomy as the VGG16 trunk the ActionVLAD recipes use (layer
    names `block{i}_conv1`, `block{i}_pool`; the endpoint is the last conv,
    linear when `pre_relu`), at a size that trains in minutes on a CPU: the
    synthetic recipes use it, and `"last_block"` of the stage-2 trainable
    groups means its last conv as it means conv5_1..5_3 for VGG16.

    Args:
        input_channels: image channels (3 for RGB, 2·S for stacked flow).
        filters: output channels of each block; the endpoint is stride
            `2 ** (len(filters) - 1)`.
        pre_relu: leave the last conv linear (ActionVLAD pools conv
            features before their ReLU).
        weight_decay: Keras `L2` factor on conv kernels (0 = none).
        name: model name.
        dtype: dtype policy of every layer; None uses the global policy.

    Returns:
        A functional `keras.Model` mapping `[N, H, W, input_channels]` to
        `[N, H / s, W / s, filters[-1]]`.

    Example:

    >>> trunk = build_small_convnet(3, filters=(8, 16))
    >>> trunk.output_shape
    (None, None, None, 16)
    """
    regularizer = (keras.regularizers.L2(weight_decay) if weight_decay
                   else None)
    inputs = keras.Input((None, None, input_channels), name="images")
    x = inputs
    for i, width in enumerate(filters, start=1):
        if i > 1:
            x = keras.layers.MaxPooling2D(2, name=f"block{i - 1}_pool",
                                          dtype=dtype)(x)
        last = i == len(filters)
        x = keras.layers.Conv2D(
            width, 3, padding="same",
            activation=None if (last and pre_relu) else "relu",
            kernel_regularizer=regularizer, name=f"block{i}_conv1",
            dtype=dtype)(x)
    return keras.Model(inputs, x, name=name)
