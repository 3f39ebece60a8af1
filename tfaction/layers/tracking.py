"""Checkpoint tracking of sublayers held in lists.

Keras 3 (TF backend, 3.10) hands the items of a layer's list attributes to
TensorFlow's object graph only when writing a SavedModel, not for
`tf.train.Checkpoint`: a checkpoint of a layer that keeps its sublayers in
a list (`self.blocks = [...]`) silently lacks their weights, and restoring
it leaves them at their initial values with no error. `TracksListItems`
adds every list item to the checkpoint children under `<attribute>_<i>`.
"""


class TracksListItems:
    """Mixin (before `keras.layers.Layer`): list items go into checkpoints.

    Example:

    ```python
    class Stack(TracksListItems, keras.layers.Layer):
        def build(self, input_shape):
            self.blocks = [keras.layers.Dense(4) for _ in range(3)]
    ```
    """

    def _trackable_children(self, save_type="checkpoint", **kwargs):
        children = super()._trackable_children(save_type, **kwargs)
        if save_type != "checkpoint":
            return children
        for attribute in getattr(self, "_tracked", ()):
            value = getattr(self, attribute, None)
            if not isinstance(value, (list, tuple)):
                continue
            for index, item in enumerate(value):
                if hasattr(item, "_trackable_children"):
                    children.setdefault(f"{attribute}_{index}", item)
        return children
