"""NumPy statement of MobileNet-V2 (width 1.0) in its two PyTorch layouts.

Written from the module definitions: torchvision's `mobilenetv2.py`
(`features.0 = ConvBNReLU(3, 32, stride 2)`, `InvertedResidual` blocks with
`conv = [ConvBNReLU pw (if t != 1), ConvBNReLU dw, Conv pw-linear, BN]`,
`features.18 = ConvBNReLU(320, 1280, k=1)`, `classifier = [Dropout,
Linear]`) and the `tonylins/pytorch-mobilenet-v2` one AdaFocus V2 uses
(`conv = Sequential(conv, bn, relu6, conv, bn[, relu6, conv, bn])` flat,
`classifier = Linear`). 3x3 convolutions pad 1 on every side (PyTorch's
`padding=1`); batch norms in eval mode with epsilon 1e-5. Nothing here uses
tfaction.
"""

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

# (in, hidden, out, stride, expand ratio) of blocks 1 ... 17 at width 1.0.
BLOCKS = [(32, 32, 16, 1, 1),
          (16, 96, 24, 2, 6), (24, 144, 24, 1, 6),
          (24, 144, 32, 2, 6), (32, 192, 32, 1, 6), (32, 192, 32, 1, 6),
          (32, 192, 64, 2, 6), (64, 384, 64, 1, 6), (64, 384, 64, 1, 6),
          (64, 384, 64, 1, 6),
          (64, 384, 96, 1, 6), (96, 576, 96, 1, 6), (96, 576, 96, 1, 6),
          (96, 576, 160, 2, 6), (160, 960, 160, 1, 6), (160, 960, 160, 1, 6),
          (160, 960, 320, 1, 6)]
BN = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


def _modules(layout):
    """`[(module name, kind, shape)]`; kind "conv", "dw" or "bn"."""
    mods = [("features.0.0", "conv", (32, 3, 3, 3)),
            ("features.0.1", "bn", (32,))]
    for i, (cin, hid, cout, _, t) in enumerate(BLOCKS, start=1):
        p = f"features.{i}.conv."
        if layout == "torchvision":
            names = (["0.0", "0.1", "1.0", "1.1", "2", "3"] if t != 1
                     else ["0.0", "0.1", "1", "2"])
        else:
            names = (["0", "1", "3", "4", "6", "7"] if t != 1
                     else ["0", "1", "3", "4"])
        shapes = ([("conv", (hid, cin, 1, 1)), ("bn", (hid,))] if t != 1
                  else [])
        shapes += [("dw", (hid, 1, 3, 3)), ("bn", (hid,)),
                   ("conv", (cout, hid, 1, 1)), ("bn", (cout,))]
        mods += [(p + n, kind, shape) for n, (kind, shape) in zip(names,
                                                                 shapes)]
    mods += [("features.18.0", "conv", (1280, 320, 1, 1)),
             ("features.18.1", "bn", (1280,))]
    return mods


def state_dict_shapes(layout="torchvision", classifier=True):
    """`{key: shape}` of the whole network (ImageNet classifier included)."""
    shapes = {}
    for name, kind, shape in _modules(layout):
        if kind == "bn":
            shapes.update({f"{name}.{leaf}": shape for leaf in BN[:4]})
            shapes[f"{name}.num_batches_tracked"] = ()
        else:
            shapes[f"{name}.weight"] = shape
    if classifier:
        head = "classifier.1" if layout == "torchvision" else "classifier"
        shapes[f"{head}.weight"] = (1000, 1280)
        shapes[f"{head}.bias"] = (1000,)
    return shapes


def random_state_dict(rng, layout="torchvision", prefix=""):
    """Weights with stable activations (per-output unit-variance convs)."""
    state = {}
    for key, shape in state_dict_shapes(layout).items():
        if key.endswith("num_batches_tracked"):
            value = np.array(3, np.int64)
        elif key.endswith("running_var"):
            value = rng.uniform(0.5, 1.5, shape)
        elif key.endswith("running_mean") or key.endswith("bias"):
            value = rng.normal(0.0, 0.1, shape)
        elif len(shape) == 1:
            value = rng.uniform(0.5, 1.0, shape)
        else:
            value = rng.standard_normal(shape) / np.sqrt(np.prod(shape[1:]))
        state[prefix + key] = np.asarray(value, dtype=(
            np.int64 if key.endswith("num_batches_tracked") else np.float32))
    return state


def _conv(x, w, stride=1, pad=0, depthwise=False):
    x = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    k = w.shape[-1]
    win = sliding_window_view(x, (k, k), axis=(2, 3))[:, :, ::stride,
                                                      ::stride]
    if depthwise:
        return np.einsum("nchwij,cij->nchw", win, w[:, 0])
    return np.einsum("nchwij,ocij->nohw", win, w)


def _bn(x, w, name):
    g = lambda leaf: w[f"{name}.{leaf}"].reshape(1, -1, 1, 1)  # noqa: E731
    return ((x - g("running_mean")) / np.sqrt(g("running_var") + 1e-5)
            * g("weight") + g("bias"))


def _relu6(x):
    return np.clip(x, 0.0, 6.0)


def features(x_nhwc, w, layout="torchvision", prefix=""):
    """`features(x)` of the PyTorch module: NHWC in, NHWC out (float64)."""
    w = {k[len(prefix):]: np.asarray(v, np.float64) for k, v in w.items()
         if k.startswith(prefix)}
    x = np.asarray(x_nhwc, np.float64).transpose(0, 3, 1, 2)
    x = _relu6(_bn(_conv(x, w["features.0.0.weight"], 2, 1), w,
                   "features.0.1"))
    for i, (cin, _, cout, stride, t) in enumerate(BLOCKS, start=1):
        p = f"features.{i}.conv."
        if layout == "torchvision":
            names = (["0.0", "0.1", "1.0", "1.1", "2", "3"] if t != 1
                     else ["0.0", "0.1", "1", "2"])
        else:
            names = (["0", "1", "3", "4", "6", "7"] if t != 1
                     else ["0", "1", "3", "4"])
        y = x
        if t != 1:
            y = _relu6(_bn(_conv(y, w[p + names[0] + ".weight"]), w,
                           p + names[1]))
            names = names[2:]
        y = _relu6(_bn(_conv(y, w[p + names[0] + ".weight"], stride, 1,
                             depthwise=True), w, p + names[1]))
        y = _bn(_conv(y, w[p + names[2] + ".weight"]), w, p + names[3])
        x = x + y if stride == 1 and cin == cout else y
    x = _relu6(_bn(_conv(x, w["features.18.0.weight"]), w, "features.18.1"))
    return x.transpose(0, 2, 3, 1)
