"""Config, registration and serialisation checks (contract steps 1-2).

Example:

```python
check_config(MaskedConv1D, {"filters": 4, "kernel_size": 3})
check_registered(MaskedConv1D)
check_serialization(MaskedConv1D, {"filters": 4, "kernel_size": 3})
```
"""

import json

import keras

from tfaction.testing import assertions


def _plain(x):
    return x is None or isinstance(x, (bool, int, float, str)) or (
        isinstance(x, (list, tuple)) and all(_plain(i) for i in x))


def _json(x):
    return json.dumps(x, sort_keys=True)


def check_config(layer_cls, init_kwargs):
    """Asserts `get_config()` is complete, JSON-able and `from_config`-stable.

    Args:
        layer_cls: the layer (or model) class.
        init_kwargs: constructor arguments.

    Returns:
        The config dict.
    """
    name = assertions.class_name(layer_cls)
    layer = layer_cls(**init_kwargs)
    config = layer.get_config()
    missing = sorted(set(init_kwargs) - set(config))
    assert not missing, (
        f"{name}.get_config() lacks constructor argument(s) {missing}: "
        "from_config() would silently use the defaults")
    for key, given in init_kwargs.items():
        stored = config[key]
        # Objects (initializers, activations) are stored serialised; compare
        # only plain values, where a mismatch is certainly a bug.
        if _plain(given) and _plain(stored):
            assert json.loads(_json(given)) == json.loads(_json(stored)), (
                f"{name}.get_config()[{key!r}] = {stored!r}, but the layer "
                f"was built with {given!r}")
    try:
        text = _json(config)
    except TypeError as e:
        raise AssertionError(f"{name}.get_config() is not "
                             f"JSON-serialisable: {e}") from e
    again = _json(layer_cls.from_config(json.loads(text)).get_config())
    assert again == text, (
        f"{name}: from_config(get_config()).get_config() differs"
        f":\n{again}\n!=\n{text}")
    return config


def check_registered(layer_cls, package="tfaction"):
    """Asserts `layer_cls` is registered as Keras-serialisable in `package`.

    Args:
        layer_cls: the class.
        package: expected `register_keras_serializable(package=...)`.
    """
    name = keras.saving.get_registered_name(layer_cls)
    assert (name.startswith(f"{package}>")
            and keras.saving.get_registered_object(name) is layer_cls), (
        f"{assertions.class_name(layer_cls)} is not registered: decorate it "
        "with @keras.saving.register_keras_serializable("
        f"package={package!r}); without it a saved .keras file does not "
        "load")


def check_serialization(layer_cls, init_kwargs):
    """Asserts a `serialize_keras_object` JSON round trip restores the layer.

    Args:
        layer_cls: the layer (or model) class.
        init_kwargs: constructor arguments.
    """
    name = assertions.class_name(layer_cls)
    layer = layer_cls(**init_kwargs)
    blob = json.loads(_json(keras.saving.serialize_keras_object(layer)))
    try:
        revived = keras.saving.deserialize_keras_object(blob)
    except (TypeError, ValueError) as e:
        raise AssertionError(f"{name}: deserialisation failed: {e}") from e
    assert type(revived) is layer_cls, (
        f"deserialised {type(revived).__name__}, expected {name}")
    assert _json(revived.get_config()) == _json(layer.get_config())
