"""NumPy statements of the AdaFocus authors' PyTorch modules, for the tests.

Written from the PyTorch documentation of each module (`nn.GRU`,
`nn.Conv2d`, `nn.Linear`, `nn.BatchNorm*d` in eval mode, `nn.Flatten` on
NCHW) and the module structure of AdaFocus V1 (`ActorCritic` with
`policy_conv`, `RecurrentClassifier`) and V2 (`PolicySTN`,
`PoolingClassifier`), with weights in PyTorch's layout and names (the
`state_dict` keys of those modules). Nothing here uses tfaction, so the
layers and the checkpoint importer are checked against an independent
statement of the reference computation.
"""

import math

import numpy as np


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def torch_gru(x, weights, prefix="gru.", h0=None):
    """`nn.GRU(batch_first=True)`, one layer: `[B, T, D]` -> `[B, T, H]`."""
    w_ih = weights[prefix + "weight_ih_l0"]
    w_hh = weights[prefix + "weight_hh_l0"]
    b_ih = weights[prefix + "bias_ih_l0"]
    b_hh = weights[prefix + "bias_hh_l0"]
    units = w_hh.shape[1]
    h = np.zeros((x.shape[0], units)) if h0 is None else h0
    out = []
    for t in range(x.shape[1]):
        gi = x[:, t] @ w_ih.T + b_ih
        gh = h @ w_hh.T + b_hh
        r = sigmoid(gi[:, :units] + gh[:, :units])
        z = sigmoid(gi[:, units:2 * units] + gh[:, units:2 * units])
        n = np.tanh(gi[:, 2 * units:] + r * gh[:, 2 * units:])
        h = (1.0 - z) * n + z * h
        out.append(h)
    return np.stack(out, axis=1)


def linear(x, weights, name):
    return x @ weights[name + ".weight"].T + weights[name + ".bias"]


def conv1x1_nchw(x, weight):
    """`nn.Conv2d(k=1, bias=False)` on NCHW."""
    return np.einsum("oc,nchw->nohw", weight[:, :, 0, 0], x)


def batch_norm_eval(x, weights, name, axis=1, eps=1e-5):
    shape = [1] * x.ndim
    shape[axis] = -1
    get = lambda leaf: weights[f"{name}.{leaf}"].reshape(shape)  # noqa: E731
    return ((x - get("running_mean")) / np.sqrt(get("running_var") + eps)
            * get("weight") + get("bias"))


def relu(x):
    return np.maximum(x, 0.0)


# --- the modules ---------------------------------------------------------


def actor_critic(maps_nhwc, w):
    """V1 `ActorCritic` (policy_conv) over `[B, T, h, w, C]` maps.

    Returns (action probabilities [B, T, A], values [B, T]).
    """
    b, t = maps_nhwc.shape[:2]
    x = maps_nhwc.reshape(b * t, *maps_nhwc.shape[2:]).transpose(0, 3, 1, 2)
    x = relu(conv1x1_nchw(x, w["state_encoder.0.weight"]))
    x = relu(linear(x.reshape(b * t, -1), w, "state_encoder.3"))
    states = torch_gru(x.reshape(b, t, -1), w)
    logits = linear(states, w, "actor.0")
    probs = np.exp(logits - logits.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    return probs, linear(states, w, "critic.0")[..., 0]


def policy_stn(maps_nhwc, w):
    """V2 `PolicySTN` in eval mode over `[B, T, h, w, C]`: `[B, T, 2]`."""
    b, t = maps_nhwc.shape[:2]
    x = maps_nhwc.reshape(b * t, *maps_nhwc.shape[2:]).transpose(0, 3, 1, 2)
    x = conv1x1_nchw(x, w["encoder.0.weight"])
    x = np.tanh(batch_norm_eval(x, w, "encoder.1"))
    x = linear(x.reshape(b * t, -1), w, "encoder.4")
    x = np.tanh(batch_norm_eval(x, w, "encoder.5"))
    states = torch_gru(x.reshape(b, t, -1), w)
    return sigmoid(linear(states, w, "fc.0"))


def recurrent_classifier(features, w, h0=None):
    """V1 `RecurrentClassifier` (eval): (logits [B, T, C], states)."""
    states = torch_gru(features, w, h0=h0)
    return linear(states, w, "fc"), states


def pooling_classifier(features, w):
    """V2 `PoolingClassifier` in eval mode: logits `[B, T, C]`."""
    b, t, _ = features.shape
    z = linear(features.reshape(b * t, -1), w, "mlp.layers.0")
    z = relu(batch_norm_eval(z, w, "mlp.layers.1")).reshape(b, t, -1)
    logits, cur = [], z[:, 0]
    for i in range(t):
        if i > 0:
            cur = np.maximum(z[:, i], cur)
        logits.append(linear(cur, w, f"classifiers.{i}.1"))
    return np.stack(logits, axis=1)


# --- random state dicts in the authors' key layout -------------------------


def _uniform(rng, shape, fan_in):
    bound = 1.0 / math.sqrt(fan_in)
    return rng.uniform(-bound, bound, shape).astype(np.float32)


def gru_state(rng, prefix, inputs, units):
    return {prefix + "weight_ih_l0": _uniform(rng, (3 * units, inputs), units),
            prefix + "weight_hh_l0": _uniform(rng, (3 * units, units), units),
            prefix + "bias_ih_l0": _uniform(rng, (3 * units,), units),
            prefix + "bias_hh_l0": _uniform(rng, (3 * units,), units)}


def linear_state(rng, name, inputs, outputs):
    return {name + ".weight": _uniform(rng, (outputs, inputs), inputs),
            name + ".bias": _uniform(rng, (outputs,), inputs)}


def batch_norm_state(rng, name, channels):
    return {name + ".weight": rng.uniform(0.5, 1.5, channels).astype(
                np.float32),
            name + ".bias": rng.normal(0, 0.1, channels).astype(np.float32),
            name + ".running_mean": rng.normal(0, 0.2, channels).astype(
                np.float32),
            name + ".running_var": rng.uniform(0.5, 1.5, channels).astype(
                np.float32),
            name + ".num_batches_tracked": np.array(7, np.int64)}


def actor_critic_state(rng, channels, height, width, filters, hidden,
                       actions):
    w = {"state_encoder.0.weight": _uniform(
        rng, (filters, channels, 1, 1), channels)}
    w.update(linear_state(rng, "state_encoder.3", filters * height * width,
                          hidden))
    w.update(gru_state(rng, "gru.", hidden, hidden))
    w.update(linear_state(rng, "actor.0", hidden, actions))
    w.update(linear_state(rng, "critic.0", hidden, 1))
    return w


def policy_stn_state(rng, channels, height, width, filters, hidden):
    w = {"encoder.0.weight": _uniform(rng, (filters, channels, 1, 1),
                                      channels)}
    w.update(batch_norm_state(rng, "encoder.1", filters))
    w.update(linear_state(rng, "encoder.4", filters * height * width,
                          hidden))
    w.update(batch_norm_state(rng, "encoder.5", hidden))
    w.update(gru_state(rng, "gru.", hidden, hidden))
    w.update(linear_state(rng, "fc.0", hidden, 2))
    return w


def recurrent_classifier_state(rng, inputs, hidden, classes):
    w = gru_state(rng, "gru.", inputs, hidden)
    w.update(linear_state(rng, "fc", hidden, classes))
    return w


def pooling_classifier_state(rng, inputs, hidden, classes, segments):
    w = linear_state(rng, "mlp.layers.0", inputs, hidden)
    w.update(batch_norm_state(rng, "mlp.layers.1", hidden))
    for i in range(segments):
        w.update(linear_state(rng, f"classifiers.{i}.1", hidden, classes))
    return w
