"""Nested dicts and lists of arrays to a JSON file and back, without pickle.

Arrays travel as serialized `TensorProto`s (base64), so every dtype a
signature takes or returns (strings and encoded JPEGs included) comes back
exactly; strings, numbers, booleans and None as themselves; tuples come back
as lists. The test process writes serving calls with it and the
TensorFlow-only serving processes, which run this file's source ahead of
their own, write their results with it.
"""

import base64
import json

import numpy as np
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2


def _encode(value):
    if isinstance(value, dict):
        return {"dict": {str(k): _encode(v) for k, v in value.items()}}
    if isinstance(value, (list, tuple)):
        return {"list": [_encode(v) for v in value]}
    if value is None or isinstance(value, (str, bool, int, float)):
        return {"value": value}
    proto = tf.make_tensor_proto(np.asarray(value))
    return {"tensor": base64.b64encode(
        proto.SerializeToString()).decode("ascii")}


def _decode(node):
    if "dict" in node:
        return {k: _decode(v) for k, v in node["dict"].items()}
    if "list" in node:
        return [_decode(v) for v in node["list"]]
    if "value" in node:
        return node["value"]
    return tf.make_ndarray(tensor_pb2.TensorProto.FromString(
        base64.b64decode(node["tensor"])))


def dump_tensors(value, path):
    """Writes `value` (nested dicts / lists / tuples of arrays) to `path`."""
    with open(path, "w") as f:
        json.dump(_encode(value), f)


def load_tensors(path):
    """Reads what `dump_tensors` wrote (arrays as numpy)."""
    with open(path) as f:
        return _decode(json.load(f))
