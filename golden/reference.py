"""Bit-exact integer reference: executes a :class:`~golden.qnet.QNet` with integer arithmetic only.

This is the model the hardware is compared with. All rounding and saturation come from
:mod:`golden.arith`; the per-layer functions here (:func:`layer_accumulate`,
:func:`layer_postprocess`, :func:`layer_forward`) are public so that hardware testbenches can
compute the expected value of any stage from the same code.
"""

from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from . import arith
from .qnet import Layer, QNet

__all__ = ["ReferenceResult", "run", "check_images", "layer_accumulate", "layer_postprocess",
           "layer_forward", "conv_accumulate", "dense_accumulate", "raster_order"]

#: Images per chunk; bounds the memory of the im2col buffers (about 0.5 GB at 2048).
CHUNK = 1024


@dataclass(frozen=True)
class ReferenceResult:
    """Output of :func:`run`.

    Members
    -------
    taps : dict of str -> numpy int64 array
        Every layer's output: (N, C, H, W) for conv and pool layers, (N, O) for dense layers,
        integers in that layer's ``out_fmt``; ``taps["input"]`` is the (N, 1, 28, 28) input.
    logits : numpy int64 array (N, classes)
        The last layer's output (in ``qnet.output_fmt``): logits, or the RBF distances.
    classes : numpy int64 array (N,)
        ``argmax`` of the logits, ties to the lower index (:func:`golden.arith.argmax_first`);
        for an RBF output the ``argmin`` of the distances, ties to the lower index
        (:func:`golden.arith.argmin_first`).
    """

    taps: dict
    logits: np.ndarray
    classes: np.ndarray


def check_images(images, qnet: QNet):
    """Validate and shape input images: (N, 28, 28) or (28, 28) unsigned integers in ``input_fmt``.

    Returns
    -------
    numpy int64 array (N, 1, 28, 28)

    Raises
    ------
    ValueError
        Wrong shape, a non-integer dtype, or values outside the input format (e.g. not uint8).
    """
    arr = np.asarray(images)
    c, h, w = qnet.input_shape
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim == 3 and c == 1:
        arr = arr[:, None]
    if arr.ndim != 4 or arr.shape[1:] != (c, h, w):
        raise ValueError(f"images must have shape (N, {h}, {w}) or ({h}, {w}) (raw MNIST digits), "
                         f"got {tuple(np.asarray(images).shape)}")
    if arr.dtype.kind not in "iu":
        raise ValueError(f"images must be integers (uint8 pixels 0..255), got dtype {arr.dtype}; "
                         "convert with np.round(x * 255).astype(np.uint8) if they are floats in [0, 1]")
    fmt = qnet.input_fmt
    if arr.size and (arr.min() < fmt.min or arr.max() > fmt.max):
        raise ValueError(f"pixel values must lie in [{fmt.min}, {fmt.max}] ({fmt}), got "
                         f"[{arr.min()}, {arr.max()}]")
    return arr.astype(np.int64)


def raster_order(maps):
    """Feature maps in stream order: ``(..., C, H, W)`` -> ``(..., H * W * C)``.

    THE order in which the hardware streams a feature map (and a dense layer reads its flattened
    input): raster order of the positions (row by row, left to right), the ``C`` channels of a
    position together (channel 0 first). Shape ``(C, H, W)`` gives a vector; ``(O, C, H, W)``
    (dense weights over a map) gives ``(O, H * W * C)``.
    """
    maps = np.asarray(maps)
    return np.moveaxis(maps, -3, -1).reshape(*maps.shape[:-3], -1)


def conv_accumulate(x, weights, bias, stride=1, pad=0):
    """Integer convolution accumulators (cross-correlation, as in PyTorch's ``conv2d``).

    Parameters
    ----------
    x : int array (N, C, H, W)
    weights : int array (O, C, K, K); zeros at absent connection-table pairs
    bias : int array (O,)
    stride, pad : int

    Returns
    -------
    int64 array (N, O, Ho, Wo): ``bias[o] + sum w[o,c,ky,kx] * xpad[n, c, y*stride+ky, x*stride+kx]``
    """
    x = np.asarray(x, dtype=np.int64)
    w = np.asarray(weights, dtype=np.int64)
    if pad:
        x = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    k = w.shape[-1]
    win = sliding_window_view(x, (k, k), axis=(2, 3))[:, :, ::stride, ::stride]  # N,C,Ho,Wo,K,K
    n, c, ho, wo = win.shape[:4]
    cols = win.transpose(0, 2, 3, 1, 4, 5).reshape(n * ho * wo, c * k * k)
    acc = cols @ w.reshape(w.shape[0], -1).T + np.asarray(bias, dtype=np.int64)
    return acc.reshape(n, ho, wo, -1).transpose(0, 3, 1, 2)


def dense_accumulate(x, weights, bias):
    """Integer matrix-vector accumulators: x (N, ...) flattened in C, H, W order -> (N, O) int64."""
    x = np.asarray(x, dtype=np.int64).reshape(len(x), -1)
    return x @ np.asarray(weights, dtype=np.int64).T + np.asarray(bias, dtype=np.int64)


def layer_accumulate(layer: Layer, x):
    """Accumulator values of a layer with a multiply-accumulate (conv, dense, avg pool).

    For avg pooling: ``coef[c] * (2x2 block sum) + bias[c]``; for an rbf layer the squared
    distances (:func:`golden.arith.squared_distances`, its output too). Returns int64 in
    ``layer.acc_fmt``.
    """
    if layer.is_rbf:
        return arith.squared_distances(x, layer.weights)
    if layer.kind == "conv":
        return conv_accumulate(x, layer.weights, layer.bias, layer.stride, layer.pad)
    if layer.kind == "dense":
        return dense_accumulate(x, layer.weights, layer.bias)
    if layer.pool == "avg":
        s = arith.sum_pool2x2(x)
        return s * layer.weights[None, :, None, None] + layer.bias[None, :, None, None]
    raise ValueError(f"layer {layer.name} ({layer.kind}/{layer.pool}) has no accumulator")


def layer_postprocess(layer: Layer, acc):
    """Requantization and activation of accumulator values: ``activation(requantize(acc))``.

    Returns int64 values in ``layer.out_fmt``.
    """
    a = arith.requantize(acc, layer.requant.multiplier, layer.requant.shift, layer.act_fmt)
    kind = layer.activation.kind
    if kind == "relu":
        return arith.relu(a)
    if kind == "tanh":
        return arith.lut_lookup(a, layer.activation.lut, layer.act_fmt)
    return a


def layer_forward(layer: Layer, x):
    """One layer's integer output for a batch of inputs in ``layer.in_fmt``."""
    if layer.kind == "pool" and layer.pool == "max":
        return arith.max_pool2x2(x)
    if layer.is_rbf:
        return arith.squared_distances(x, layer.weights)
    return layer_postprocess(layer, layer_accumulate(layer, x))


def run(qnet: QNet, images, taps=True):
    """Run the integer reference on a batch of MNIST digits.

    Parameters
    ----------
    qnet : QNet
    images : array of uint8, shape (N, 28, 28) or (28, 28)
    taps : bool
        Keep every layer's output (memory: about 12 KB per image).

    Returns
    -------
    ReferenceResult

    Raises
    ------
    ValueError
        On a wrong image shape, dtype or value range (see :func:`check_images`).
    """
    x = check_images(images, qnet)
    outs = {"input": [x]} if taps else {}
    logits = []
    for start in range(0, len(x), CHUNK):
        h = x[start:start + CHUNK]
        for layer in qnet.layers:
            h = layer_forward(layer, h)
            if taps:
                outs.setdefault(layer.name, []).append(h)
        logits.append(h)
    logits = np.concatenate(logits) if logits else np.zeros((0, qnet.num_classes), np.int64)
    tap_arrays = {k: np.concatenate(v) for k, v in outs.items()} if taps else {}
    return ReferenceResult(tap_arrays, logits, qnet.classify(logits))
