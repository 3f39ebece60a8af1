"""`RegionProposalHead`: the Faster R-CNN RPN head (objectness + box deltas)."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="tfaction")
class RegionProposalHead(keras.layers.Layer):
    """Faster R-CNN region proposal head on one feature map.

    A `kernel_size` x `kernel_size` convolution (`filters` channels, SAME
    padding) and an activation, then two 1 x 1 convolutions: one objectness
    logit per anchor and 4 box deltas `[ty, tx, th, tw]` per anchor. Outputs
    are flattened in the anchor order of `tfaction.ops.anchors.grid_anchors`
    (row-major over the grid, then anchor `a` of the cell), i.e. channel
    `a` (logits) and channels `4a..4a+3` (deltas) of cell `(i, j)` become
    row `(i * W + j) * A + a`.

    Defaults are the TF Object Detection API's Faster R-CNN first stage:
    `first_stage_box_predictor_depth = 512`, kernel size 3, 12 anchors per
    location (4 scales x 3 aspect ratios), ReLU6 after the first convolution
    (the API applies `tf.nn.relu6`; pass `activation="relu"` for the plain
    ReLU of the original Faster R-CNN), every kernel drawn from a truncated
    normal with standard deviation 0.01 and zero biases (the
    `first_stage_box_predictor_conv_hyperparams` of the API's sample Faster
    R-CNN configs; no batch normalisation, no weight decay). The API predicts
    2 logits per anchor (background, object) with a softmax; one logit with
    a sigmoid is the same model (`softmax([b, o])[1] = sigmoid(o - b)`).

    The box deltas are in the `tfaction.ops.box_coder` frame (scale factors
    `(10, 10, 5, 5)`); decode them with `tfaction.ops.proposals`. Works on
    any spatial size (dynamic `H`, `W`) and compiles with XLA.

    Args:
        num_anchors_per_location: `A`, anchors per feature-map cell.
        filters: channels of the first (shared) convolution.
        kernel_size: kernel size of the first convolution.
        activation: activation after the first convolution.
        dilation_rate: dilation of the first convolution (the API's
            `first_stage_atrous_rate`, 1).
        kernel_initializer: initializer of the three kernels.
        bias_initializer: initializer of the three biases.
        **kwargs: base layer arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: feature map `[B, H, W, C]` (e.g. the temporally central
            frame of the trunk features).

    Returns:
        Tuple `(objectness_logits, box_deltas)`: `[B, H * W * A]` and
        `[B, H * W * A, 4]`, in the compute dtype.

    Example:

    >>> import numpy as np
    >>> head = RegionProposalHead(num_anchors_per_location=12, filters=32)
    >>> logits, deltas = head(np.zeros((2, 25, 25, 16), "float32"))
    >>> tuple(logits.shape), tuple(deltas.shape)
    ((2, 7500), (2, 7500, 4))

    Reference:
        Ren et al., "Faster R-CNN: Towards real-time object detection with
        region proposal networks", NeurIPS 2015; TF Object Detection API
        `meta_architectures/faster_rcnn_meta_arch.py` (first-stage box
        predictor), `protos/faster_rcnn.proto`,
        `samples/configs/faster_rcnn_resnet101_coco.config`.
    """

    def __init__(self, num_anchors_per_location=12, filters=512,
                 kernel_size=3, activation="relu6", dilation_rate=1,
                 kernel_initializer=None, bias_initializer="zeros",
                 **kwargs):
        super().__init__(**kwargs)
        for name, value in (("num_anchors_per_location",
                             num_anchors_per_location),
                            ("filters", filters),
                            ("kernel_size", kernel_size),
                            ("dilation_rate", dilation_rate)):
            if int(value) < 1:
                raise ValueError(f"RegionProposalHead: {name} must be >= 1, "
                                 f"got {value}")
        self.num_anchors_per_location = int(num_anchors_per_location)
        self.filters = int(filters)
        self.kernel_size = int(kernel_size)
        self.dilation_rate = int(dilation_rate)
        self.activation = keras.activations.get(activation)
        if kernel_initializer is None:
            kernel_initializer = keras.initializers.TruncatedNormal(
                mean=0.0, stddev=0.01)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)

    def _conv(self, filters, kernel_size, name, dilation_rate=1):
        return keras.layers.Conv2D(
            filters, kernel_size, padding="same",
            dilation_rate=dilation_rate,
            kernel_initializer=keras.initializers.get(
                keras.initializers.serialize(self.kernel_initializer)),
            bias_initializer=keras.initializers.get(
                keras.initializers.serialize(self.bias_initializer)),
            dtype=self.dtype_policy, name=name)

    def build(self, input_shape):
        if len(input_shape) != 4:
            raise ValueError(f"RegionProposalHead expects [B, H, W, C] "
                             f"inputs, got shape {input_shape}")
        a = self.num_anchors_per_location
        self.rpn_conv = self._conv(self.filters, self.kernel_size,
                                   "rpn_conv", self.dilation_rate)
        self.rpn_conv.build(input_shape)
        hidden_shape = tuple(input_shape[:3]) + (self.filters,)
        self.objectness_conv = self._conv(a, 1, "objectness_conv")
        self.objectness_conv.build(hidden_shape)
        self.box_conv = self._conv(4 * a, 1, "box_conv")
        self.box_conv.build(hidden_shape)

    def _flat_rows(self, height, width):
        if height is None or width is None:
            return None
        return height * width * self.num_anchors_per_location

    def call(self, inputs):
        hidden = self.activation(self.rpn_conv(inputs))
        logits = self.objectness_conv(hidden)
        deltas = self.box_conv(hidden)
        rows = self._flat_rows(inputs.shape[1], inputs.shape[2])
        if rows is None:
            batch = ops.shape(inputs)[0]
            logits = ops.reshape(logits, (batch, -1))
            deltas = ops.reshape(deltas, (batch, -1, 4))
        else:
            logits = ops.reshape(logits, (-1, rows))
            deltas = ops.reshape(deltas, (-1, rows, 4))
        return logits, deltas

    def compute_output_shape(self, input_shape):
        rows = self._flat_rows(input_shape[1], input_shape[2])
        return (input_shape[0], rows), (input_shape[0], rows, 4)

    def get_config(self):
        config = super().get_config()
        config.update({
            "num_anchors_per_location": self.num_anchors_per_location,
            "filters": self.filters,
            "kernel_size": self.kernel_size,
            "activation": keras.activations.serialize(self.activation),
            "dilation_rate": self.dilation_rate,
            "kernel_initializer": keras.initializers.serialize(
                self.kernel_initializer),
            "bias_initializer": keras.initializers.serialize(
                self.bias_initializer),
        })
        return config
