"""The imported float network: a LeNet-style CNN as plain arrays, independent of where it came from.

Every importer (:mod:`golden.importers.from_torch`, :mod:`golden.importers.from_onnx`) turns its
file into a list of :class:`Op` (conv, pool, dense, activation, flatten, in forward order);
:func:`build` checks that the sequence is in the supported family and canonicalises it into
:class:`Stage` s (a conv, pool or dense layer with the activation that follows it), and
:class:`FloatNet` runs it in PyTorch on raw MNIST pixels, with the user's input preprocessing.
The quantizer (:mod:`golden.importers.quantize`) makes a :class:`golden.qnet.QNet` of it.

The supported family (checked here, each violation a :class:`ImportModelError` naming the layer,
its type and attributes, and what is supported):

* input 1 x 28 x 28 (the MNIST digit) or 1 x 32 x 32 (the digit with a 2-pixel border of black
  pixels added before the preprocessing, as ``transforms.Pad(2)`` does);
* conv layers: square kernel 3 or 5, stride 1, zero padding 0..2, no dilation, no groups, bias
  optional; a conv whose weights have all-zero (output, input) blocks gets that connection table;
* 2x2 pooling with stride 2, no padding: max or average;
* dense (fully connected) layers, after a flatten in (C, H, W) order;
* batch normalisation (eval mode) right after a conv or dense layer, folded into its weights;
* ReLU or tanh after any layer (``tanh`` is the plain ``torch.tanh``); ReLU/tanh written after a
  max pooling are moved in front of it (they commute with the maximum); dropout is skipped; a
  softmax or log-softmax at the end is dropped (it does not change the argmax class);
* the last layer is dense and gives the class scores.

Input preprocessing (:class:`Preprocess`): the network sees ``((p / scale) - mean) / std`` for a
pixel byte ``p``; ``scale = 255`` is torchvision's ``ToTensor``, ``Normalize((mean,), (std,))``
gives mean and std (MNIST's usual 0.1307, 0.3081).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "INPUT_SIDES",
    "KERNELS",
    "MAX_PAD",
    "SUPPORTED",
    "FloatNet",
    "ImportModelError",
    "Op",
    "Preprocess",
    "Stage",
    "bn_op",
    "build",
]

#: Conv kernel sides the importer accepts.
KERNELS = (3, 5)
#: Largest zero padding (pixels per side) of an imported conv layer.
MAX_PAD = 2
#: Input sides (pixels): the MNIST digit, or the digit with a 2-pixel black border.
INPUT_SIDES = (28, 32)
#: Largest channel count of a conv layer and unit count of a dense layer the importer accepts
#: (the generator's plans have no hard limit; this keeps a mistaken import from building a
#: design no FPGA holds).
MAX_CHANNELS = 256
MAX_UNITS = 4096
#: One line saying what is supported, appended to every refusal.
SUPPORTED = ("supported: LeNet-style CNNs on 1x28x28 or 1x32x32 input: Conv2d (kernel 3 or 5, stride 1, "
             "padding 0..2, no dilation/groups), BatchNorm after a Conv2d/Linear, 2x2 max or average pooling "
             "(stride 2), Flatten, Linear, ReLU or Tanh, Dropout; a Linear layer last")


class ImportModelError(ValueError):
    """A model file that cannot be imported: the message names the file, the layer or node, its type
    and attributes, and what is supported or how to convert the file."""


@dataclass
class Op:
    """One operation of an imported network, in forward order.

    Members
    -------
    kind : str
        ``conv``, ``pool``, ``dense``, ``act``, ``flatten``, ``final`` (softmax/log-softmax at the
        end), ``quant`` (a QONNX activation quantizer), ``bn`` (batch norm in eval mode, folded into
        the conv or linear layer before it: ``weight`` the per-channel scale, ``bias`` the shift) or
        ``identity`` (dropout).
    name : str
        Where it came from (module path, state-dict prefix or ONNX node name), for messages.
    weight, bias : numpy float64 arrays or None
        conv ``(O, C, K, K)``, ``(O,)``; dense ``(O, I)``, ``(O,)``.
    stride, pad, kernel : int
        conv and pool geometry.
    func : str
        ``relu`` / ``tanh`` (act); ``max`` / ``avg`` (pool).
    quant : dict
        QONNX only: ``{"w": (bits, scale, signed, rounding)}`` for the weights of conv/dense ops,
        ``{"out": (bits, scale, signed, rounding)}`` for the activation quantizer that follows.
    """

    kind: str
    name: str
    weight: np.ndarray = None
    bias: np.ndarray = None
    stride: int = 1
    pad: int = 0
    kernel: int = 0
    func: str = ""
    quant: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Preprocess:
    """What a pixel byte means to the network: ``x = ((p / scale) - mean) / std``.

    Members
    -------
    scale : float
        255 for torchvision's ``ToTensor`` (the default), 256, or 1 for raw bytes.
    mean, std : float
        ``Normalize((mean,), (std,))``; 0 and 1 when there is none.
    """

    scale: float = 255.0
    mean: float = 0.0
    std: float = 1.0

    def __post_init__(self):
        for key in ("scale", "std"):
            v = getattr(self, key)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise ImportModelError(f"input preprocessing: {key} = {v!r} must be a positive number")
        if not math.isfinite(self.mean):
            raise ImportModelError(f"input preprocessing: mean = {self.mean!r} must be finite")

    @property
    def gain(self):
        """d x / d p = 1 / (scale * std)."""
        return 1.0 / (self.scale * self.std)

    @property
    def offset(self):
        """x for p = 0: -mean / std."""
        return -self.mean / self.std

    def to_dict(self):
        return {"x": "((p / scale) - mean) / std for the pixel byte p", "scale": self.scale,
                "mean": self.mean, "std": self.std}


@dataclass
class Stage:
    """A canonical layer: conv, pool or dense, and the activation after it.

    Members
    -------
    kind : str
        ``conv``, ``pool`` or ``dense``.
    name : str
        Source name (for messages and the description's meta).
    in_shape, out_shape : tuple of int
        ``(C, H, W)``, or ``(N,)`` for dense outputs.
    weight, bias : numpy float64 arrays (conv, dense) or None
    pad, kernel : int
        conv padding and kernel side; pool 2.
    pool : str
        ``max`` or ``avg`` (pool).
    activation : str
        ``none``, ``relu`` or ``tanh``.
    table : tuple of tuple of int or None
        Conv connection table found from all-zero weight blocks (None: full).
    quant : dict
        As :attr:`Op.quant`.
    """

    kind: str
    name: str
    in_shape: tuple
    out_shape: tuple
    weight: np.ndarray = None
    bias: np.ndarray = None
    pad: int = 0
    kernel: int = 0
    pool: str = ""
    activation: str = "none"
    table: tuple = None
    quant: dict = field(default_factory=dict)


def _refuse(op, what, attrs=""):
    attrs = f" ({attrs})" if attrs else ""
    raise ImportModelError(f"layer {op.name!r}: {what}{attrs}; {SUPPORTED}")


def _table(weight):
    """Connection table from all-zero (output, input) kernel blocks; None when every pair is present."""
    present = np.any(weight != 0, axis=(2, 3))
    if present.all():
        return None
    rows = []
    for o, row in enumerate(present):
        if not row.any():
            rows.append((0,))          # an all-zero output map still reads one input (weights zero)
        else:
            rows.append(tuple(int(i) for i in np.flatnonzero(row)))
    return tuple(rows)


def build(ops, input_side=28, source="model"):
    """Check an op sequence against the supported family and canonicalise it into stages.

    Parameters
    ----------
    ops : list of Op
    input_side : int
        28 or 32 (pixels).
    source : str
        File name, for messages.

    Returns
    -------
    list of Stage

    Raises
    ------
    ImportModelError
        The first op outside the family (named, with its type and attributes), shapes that do
        not chain, or no dense output layer.
    """
    if input_side not in INPUT_SIDES:
        raise ImportModelError(f"{source}: input {input_side}x{input_side} is not supported; the input must be "
                               f"1x28x28 or 1x32x32 (a single-channel MNIST digit)")
    shape = (1, input_side, input_side)
    stages = []
    ops = [op for op in ops if op.kind != "identity"]
    for n, op in enumerate(ops):
        if op.kind == "final":
            if n != len(ops) - 1:
                _refuse(op, f"{op.func} before the last layer")
            continue
        if op.kind == "flatten":
            if len(shape) != 3:
                _refuse(op, "flatten of an already flat vector")
            continue                                 # dense layers read (C, H, W) flattened
        if op.kind == "bn":                          # batch norm (eval): y = x * scale + shift per channel
            last = stages[-1] if stages else None
            if last is None or last.kind not in ("conv", "dense") or last.activation != "none" or last.quant:
                _refuse(op, "batch norm that does not directly follow a Conv2d or Linear layer")
            if len(op.weight) != last.out_shape[0]:
                _refuse(op, f"batch norm of {len(op.weight)} channels after {last.out_shape[0]}")
            per_out = (-1,) + (1,) * (last.weight.ndim - 1)
            last.weight = last.weight * op.weight.reshape(per_out)
            last.bias = last.bias * op.weight + op.bias
            last.name += f" + {op.name}"
            if last.kind == "conv":
                last.table = _table(last.weight)
            continue
        if op.kind == "quant":                       # QONNX activation quantizer: the format of the last stage
            if not stages:
                _refuse(op, "a quantizer before the first layer that is not on the input")
            stages[-1].quant["out"] = op.quant["out"]
            continue
        if op.kind == "act":
            if op.func not in ("relu", "tanh"):
                _refuse(op, f"activation {op.func}", "")
            if not stages:
                _refuse(op, f"{op.func} on the network input")
            last = stages[-1]
            if last.activation == "none" or last.kind == "pool" and last.pool == "max" and last.activation == "none":
                last.activation = op.func
            elif op.func == "relu" and last.activation == "relu":
                pass                                 # relu(relu(x)) == relu(x)
            else:
                _refuse(op, f"{op.func} after {last.activation} ({last.name})")
            if "out" in op.quant:
                last.quant["out"] = op.quant["out"]
            continue
        if op.kind == "conv":
            if len(shape) != 3:
                _refuse(op, "Conv2d after a flatten")
            w = np.asarray(op.weight, np.float64)
            o, c, kh, kw = w.shape
            attrs = f"kernel {kh}x{kw}, stride {op.stride}, padding {op.pad}, {c} -> {o} channels"
            if kh != kw or kh not in KERNELS:
                _refuse(op, "Conv2d kernel not 3x3 or 5x5", attrs)
            if op.stride != 1:
                _refuse(op, "Conv2d stride other than 1", attrs)
            if not 0 <= op.pad <= MAX_PAD:
                _refuse(op, "Conv2d padding outside 0..2", attrs)
            if c != shape[0]:
                _refuse(op, f"Conv2d expects {c} input channels but receives {shape[0]}", attrs)
            if o > MAX_CHANNELS:
                _refuse(op, f"Conv2d with more than {MAX_CHANNELS} output channels", attrs)
            side_h, side_w = shape[1] + 2 * op.pad - kh + 1, shape[2] + 2 * op.pad - kw + 1
            if side_h < 1 or side_w < 1:
                _refuse(op, f"Conv2d kernel larger than its {shape[1]}x{shape[2]} input", attrs)
            b = np.zeros(o) if op.bias is None else np.asarray(op.bias, np.float64)
            stages.append(Stage("conv", op.name, shape, (o, side_h, side_w), weight=w, bias=b, pad=op.pad,
                                kernel=kh, table=_table(w), quant=dict(op.quant)))
        elif op.kind == "pool":
            attrs = f"kernel {op.kernel}, stride {op.stride}, padding {op.pad}"
            if op.func not in ("max", "avg") or op.kernel != 2 or op.stride != 2 or op.pad != 0:
                _refuse(op, f"{op.func} pooling other than 2x2 with stride 2", attrs)
            if len(shape) != 3 or shape[1] % 2 or shape[2] % 2:
                _refuse(op, f"2x2 pooling of a {'x'.join(map(str, shape))} map (needs even height and width)", attrs)
            stages.append(Stage("pool", op.name, shape, (shape[0], shape[1] // 2, shape[2] // 2), pool=op.func,
                                kernel=2, quant=dict(op.quant)))
        elif op.kind == "dense":
            w = np.asarray(op.weight, np.float64)
            o, i = w.shape
            n_in = int(np.prod(shape))
            if i != n_in:
                _refuse(op, f"Linear expects {i} inputs but receives {n_in} ({'x'.join(map(str, shape))})",
                        f"{i} -> {o}")
            if o > MAX_UNITS:
                _refuse(op, f"Linear with more than {MAX_UNITS} outputs", f"{i} -> {o}")
            b = np.zeros(o) if op.bias is None else np.asarray(op.bias, np.float64)
            stages.append(Stage("dense", op.name, shape, (o,), weight=w, bias=b, quant=dict(op.quant)))
        else:
            _refuse(op, f"operation {op.kind}")
        shape = stages[-1].out_shape
    if not stages or stages[0].kind != "conv":
        raise ImportModelError(f"{source}: the first layer must be a Conv2d ({SUPPORTED})")
    if stages[-1].kind != "dense":
        raise ImportModelError(f"{source}: the last layer must be a Linear giving the class scores, "
                               f"not {stages[-1].kind} {stages[-1].name!r} ({SUPPORTED})")
    if stages[-1].activation != "none":
        raise ImportModelError(f"{source}: the output layer {stages[-1].name!r} is followed by "
                               f"{stages[-1].activation}; the class scores must be the last Linear's outputs")
    # max pool then activation (or quantizer) == activation (quantizer) then max pool: all are
    # monotone non-decreasing, so they commute with the maximum; canonical order: before the pool
    for k, st in enumerate(stages):
        if st.kind == "pool" and st.pool == "max" and "out" in st.quant:
            stages[k - 1].quant["out"] = st.quant.pop("out")
        if st.kind == "pool" and st.pool == "max" and st.activation != "none":
            prev = stages[k - 1]
            if prev.activation not in ("none", st.activation) and not (prev.activation == "relu" and st.activation == "relu"):
                raise ImportModelError(f"layer {st.name!r}: {st.activation} after max pooling after "
                                       f"{prev.activation}; {SUPPORTED}")
            prev.activation = st.activation
            if "out" in st.quant:
                prev.quant["out"] = st.quant.pop("out")
            st.activation = "none"
    return stages


class FloatNet:
    """An imported network as PyTorch operations on raw pixels (no user code runs).

    Parameters
    ----------
    stages : list of Stage
    preprocess : Preprocess
    input_side : int
        28 or 32; a 32x32 network sees the digit with a 2-pixel border of ``p = 0`` pixels.
    source : dict
        Provenance: ``{"file": ..., "format": ...}`` and the importer's notes.
    input_quant : tuple or None
        QONNX: the input quantizer ``(bits, scale, signed, rounding)``; with the stages' ``out``
        quantizers, :meth:`forward` fake-quantizes as the QONNX graph does.
    final : str or None
        ``softmax``, ``log_softmax`` (or the module names) when the user's model ends with one:
        :meth:`forward` applies it too, so that its scores compare with the user's; the quantized
        description leaves it out (it does not change the class).
    """

    def __init__(self, stages, preprocess, input_side=28, source=None, final=None, input_quant=None):
        self.final = final
        self.input_quant = input_quant
        self.stages = list(stages)
        self.preprocess = preprocess
        self.input_side = input_side
        self.source = dict(source or {})

    def describe(self):
        """One line per stage: name, kind, shapes, activation."""
        out = []
        for st in self.stages:
            what = st.kind if st.kind != "pool" else f"{st.pool} pool 2x2"
            if st.kind == "conv":
                what += f" {st.kernel}x{st.kernel} pad {st.pad}" + (" (connection table)" if st.table else "")
            out.append(f"{st.name}: {what} {list(st.in_shape)} -> {list(st.out_shape)}, {st.activation}")
        return out

    def input_tensor(self, pixels, dtype=None):
        """The network's input for uint8 pixels ``(N, 28, 28)``: preprocessed, bordered for 32x32."""
        import torch
        import torch.nn.functional as F

        dtype = dtype or torch.float32
        p = torch.as_tensor(np.array(pixels)).to(dtype).reshape(-1, 1, 28, 28)
        if self.input_side == 32:
            p = F.pad(p, (2, 2, 2, 2))
        pp = self.preprocess
        return (p / pp.scale - pp.mean) / pp.std

    def forward(self, pixels, dtype=None, pre_activations=None):
        """Class scores ``(N, classes)`` for uint8 pixels ``(N, 28, 28)``.

        ``pre_activations``: a dict to receive every stage's values before its activation
        (numpy float64), keyed by stage index (and ``"input"``), for calibration.
        """
        import torch
        import torch.nn.functional as F

        dtype = dtype or torch.float32
        h = self.input_tensor(pixels, dtype)
        if pre_activations is not None:
            pre_activations["input"] = h.double().numpy()
        if self.input_quant:
            h = _fake_quant(h, self.input_quant)
        with torch.no_grad():
            for k, st in enumerate(self.stages):
                if st.kind == "conv":
                    h = F.conv2d(h, torch.as_tensor(st.weight, dtype=dtype), torch.as_tensor(st.bias, dtype=dtype),
                                 padding=st.pad)
                elif st.kind == "dense":
                    h = F.linear(torch.flatten(h, 1), torch.as_tensor(st.weight, dtype=dtype),
                                 torch.as_tensor(st.bias, dtype=dtype))
                elif st.pool == "max":
                    h = F.max_pool2d(h, 2)
                else:
                    h = F.avg_pool2d(h, 2)
                if pre_activations is not None:
                    pre_activations[k] = h.double().numpy()
                if st.activation == "relu":
                    h = F.relu(h)
                elif st.activation == "tanh":
                    h = torch.tanh(h)
                if "out" in st.quant and k < len(self.stages) - 1:
                    h = _fake_quant(h, st.quant["out"])
            if self.final and "log" in self.final.lower():
                h = torch.log_softmax(h, 1)
            elif self.final:
                h = torch.softmax(h, 1)
        return h

    def __call__(self, pixels):
        return self.forward(pixels)


def _fake_quant(x, q):
    """QONNX ``Quant`` with zero point 0: ``clamp(round(x / scale)) * scale`` (``ROUND``: half to even)."""
    import torch

    bits, scale, signed, rounding = q
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    v = x / scale
    v = torch.round(v) if rounding == "half_even" else torch.floor(v)
    return torch.clamp(v, lo, hi) * scale


def bn_op(name, gamma, beta, mean, var, eps):
    """The ``bn`` op of an eval-mode batch norm: scale ``gamma / sqrt(var + eps)``, shift ``beta - mean * scale``."""
    gamma, beta, mean, var = (np.asarray(v, np.float64).reshape(-1) for v in (gamma, beta, mean, var))
    scale = gamma / np.sqrt(var + float(eps))
    return Op("bn", name, weight=scale, bias=beta - mean * scale)
