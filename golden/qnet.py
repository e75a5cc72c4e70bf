"""The quantized-network description: the single source of truth for golden and hardware.

One frozen, versioned, serialisable object (:class:`QNet`, one JSON file) holds, per layer, its
kind, shapes, stride, padding, connection table, integer weights and biases, the fixed-point
formats of input, weights, accumulator and output (:class:`~golden.qformat.QFormat`), the
requantization (integer multiplier and right shift), rounding mode and saturation bounds (carried
by the target format), and the activation (ReLU, or tanh as an explicit lookup table).

The integer reference (:mod:`golden.reference`) executes it; the generator in :mod:`hw` builds
hardware from it. Nothing here imports torch.

Integer semantics of each layer kind (``x`` integer inputs in ``in_fmt``):

``conv`` (stride ``stride``, zero padding ``pad``, square kernel ``kernel``)
    ``acc[o,y,x] = bias[o] + sum_{i in table[o], ky, kx} w[o,i,ky,kx] * xpad[i, y*s+ky, x*s+kx]``
    then ``a = requantize(acc, multiplier, shift, act_fmt)`` and ``out = activation(a)``.
``dense``
    ``acc[o] = bias[o] + sum_i w[o,i] * x[i]`` over ``x`` flattened in (C, H, W) order, then as conv.
``pool`` with ``pool == "max"``
    ``out = max`` of each 2x2 block (stride 2); no requantization; ``out_fmt == in_fmt``.
``pool`` with ``pool == "avg"`` (LeNet-5's subsampling, LeCun et al. 1998 Sec. II-B)
    ``acc[c] = coef[c] * (sum of the 2x2 block) + bias[c]``, then requantize and activation as conv.
    With ``coef = 1`` and a rounding shift of 2 this is the plain average.

``rbf`` (LeNet-5's Euclidean RBF output units, LeCun et al. 1998 Sec. II-B, Eq. 7)
    ``y[i] = sum_j (x[j] - w[i,j])**2`` over the ``J`` inputs (a vector, ``in_shape == (J,)``):
    subtract, square, accumulate, exactly. The parameters ``w`` (shape (I, J)) are integers in
    the input's own format (``w_fmt == in_fmt``; for LeNet-5 the +1/-1 bitmaps of
    :mod:`golden.rbf_bitmaps` as ``+-2**in_fmt.frac``), so the difference needs
    ``in_fmt.bits + 1`` signed bits and its square ``2 * (in_fmt.bits + 1)``. The sum is kept in
    the unsigned accumulator ``acc_fmt`` (``2 * in_fmt.frac`` fractional bits) whose width comes
    from the worst case over the actual parameters (:func:`golden.arith.distance_range`), so it
    never overflows and needs no saturation. No bias, no requantization, no activation:
    ``out_fmt == acc_fmt`` and the outputs are the exact distances. The class is the unit with the
    smallest distance, ties to the lower index (:func:`golden.arith.argmin_first`).

Activations: ``none`` and ``relu`` (``max(a, 0)``) leave the format (``out_fmt == act_fmt``;
ReLU into an unsigned ``act_fmt`` is the same as saturating at 0); ``tanh`` maps ``a`` through
``lut[a - act_fmt.min]`` (``2**act_fmt.bits`` entries, values in ``out_fmt``).
"""

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .arith import accumulator_range, distance_range
from .qformat import QFormat

__all__ = ["QNet", "Layer", "Requant", "Activation", "QNetError", "FORMAT_NAME", "VERSION",
           "LAYER_KINDS", "ACTIVATIONS", "WIDTH_RANGE"]

FORMAT_NAME = "lenet5-qnet"
VERSION = 1
LAYER_KINDS = ("conv", "pool", "dense", "rbf")
ACTIVATIONS = ("none", "relu", "tanh")
#: LeNet-5 variants a description may be made from (see golden.model.LeNet5); ``imported``: a
#: user's LeNet-style network read by golden.importers (meta.source names the file).
VARIANTS = ("modern", "classic", "classic-rbf", "imported")
from .limits import MAX_ACC_BITS, MAX_MULTIPLIER_BITS, MAX_SHIFT, OUT_BITS_RANGE, WIDTH_RANGE  # noqa: E402  (re-exported)


class QNetError(ValueError):
    """A malformed or inconsistent quantized-network description; the message names the field."""


@dataclass(frozen=True)
class Requant:
    """Requantization ``saturate(round_shift(acc * multiplier, shift))`` into the activation format.

    Members
    -------
    multiplier : int
        Unsigned integer, ``1 .. 2**16 - 1`` (``1`` for shift-only requantization).
    shift : int
        Right shift in bits, ``0 .. 62``.
    """

    multiplier: int
    shift: int


@dataclass(frozen=True)
class Activation:
    """Activation function applied after requantization.

    Members
    -------
    kind : str
        ``none``, ``relu`` or ``tanh``.
    lut : tuple of int or None
        For ``tanh``: ``2**act_fmt.bits`` integers in the layer's ``out_fmt``; entry ``i`` is the
        output for the input value ``act_fmt.min + i``.
    function : str
        Human-readable definition of what the LUT tabulates (documentation only).
    """

    kind: str = "none"
    lut: tuple = None
    function: str = ""


def _ro(a):
    a = np.array(a, dtype=np.int64)
    a.flags.writeable = False
    return a


@dataclass(frozen=True, eq=False)
class Layer:
    """One layer of the quantized network. See the module docstring for the integer semantics.

    Members
    -------
    name : str
        ``C1``, ``S2``, ``C3``, ``S4``, ``C5``, ``F6``, ``OUT`` for LeNet-5.
    kind : str
        ``conv``, ``pool``, ``dense`` or ``rbf``.
    in_shape, out_shape : tuple of int
        (C, H, W) for conv and pool layers and for the input of C5; (N,) for dense outputs.
    in_fmt, out_fmt : QFormat
        Formats of the input and output activations.
    kernel, stride, pad : int
        Convolution window side, stride and zero padding (conv); pooling window and stride (pool).
    table : tuple of tuple of int or None
        Conv connection table: ``table[o]`` lists the input channels output ``o`` reads (LeCun et
        al. 1998, Table I for C3). ``None`` means fully connected.
    pool : str or None
        ``max`` or ``avg`` for pool layers.
    weights : numpy int64 array, read-only, or None
        conv (O, C, K, K) with zeros at absent table pairs; dense (O, I); avg pool coefficients
        (C,); rbf the units' parameters (O, I) in ``w_fmt == in_fmt``.
    bias : numpy int64 array (O,) or None
        Biases at the accumulator's scale.
    w_fmt, acc_fmt, act_fmt : QFormat or None
        Weight (or coefficient) format, accumulator format (signed, width from
        :func:`golden.arith.accumulator_range`), and the format requantization produces.
    requant : Requant or None
    activation : Activation
    """

    name: str
    kind: str
    in_shape: tuple
    out_shape: tuple
    in_fmt: QFormat
    out_fmt: QFormat
    kernel: int = 0
    stride: int = 1
    pad: int = 0
    table: tuple = None
    pool: str = None
    weights: np.ndarray = None
    bias: np.ndarray = None
    w_fmt: QFormat = None
    acc_fmt: QFormat = None
    act_fmt: QFormat = None
    requant: Requant = None
    activation: Activation = field(default_factory=Activation)

    def __post_init__(self):
        for name in ("weights", "bias"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, _ro(value))
        object.__setattr__(self, "in_shape", tuple(int(v) for v in self.in_shape))
        object.__setattr__(self, "out_shape", tuple(int(v) for v in self.out_shape))
        if self.table is not None:
            object.__setattr__(self, "table", tuple(tuple(int(i) for i in row) for row in self.table))

    # -- derived values -------------------------------------------------------------------
    @property
    def has_mac(self):
        """True for layers with a multiply-accumulate (conv, dense, avg pool)."""
        return self.kind in ("conv", "dense") or self.pool == "avg"

    @property
    def is_rbf(self):
        """True for the RBF output layer (``kind == "rbf"``): distances, the class their argmin."""
        return self.kind == "rbf"

    @property
    def connections(self):
        """Conv: list of (out, in) channel pairs that exist (all pairs when ``table`` is None)."""
        o, c = self.out_shape[0], self.in_shape[0]
        if self.table is None:
            return [(i, j) for i in range(o) for j in range(c)]
        return [(i, j) for i in range(o) for j in self.table[i]]

    def macs(self):
        """Multiply-accumulates for one image (absent table pairs excluded)."""
        if self.kind == "conv":
            return len(self.connections) * self.kernel ** 2 * self.out_shape[1] * self.out_shape[2]
        if self.kind in ("dense", "rbf"):
            return int(np.prod(self.weights.shape))
        if self.pool == "avg":
            return int(np.prod(self.out_shape))
        return 0

    def mac_weights(self):
        """Weights as seen by the accumulator, shape (O, terms): avg pool repeats ``coef`` 4 times."""
        if self.kind == "pool":
            return np.repeat(self.weights.reshape(-1, 1), self.kernel * self.kernel, axis=1)
        return self.weights.reshape(self.weights.shape[0], -1)

    # -- serialisation --------------------------------------------------------------------
    def to_dict(self):
        d = {"name": self.name, "kind": self.kind, "in_shape": list(self.in_shape),
             "out_shape": list(self.out_shape), "in_fmt": self.in_fmt.to_dict(),
             "out_fmt": self.out_fmt.to_dict()}
        if self.kind in ("conv", "pool"):
            d.update(kernel=self.kernel, stride=self.stride, pad=self.pad)
        if self.kind == "conv":
            d["table"] = None if self.table is None else [list(r) for r in self.table]
        if self.kind == "pool":
            d["pool"] = self.pool
        if self.has_mac:
            d.update(weights_shape=list(self.weights.shape), weights=self.weights.reshape(-1).tolist(),
                     bias=self.bias.tolist(), w_fmt=self.w_fmt.to_dict(), acc_fmt=self.acc_fmt.to_dict(),
                     act_fmt=self.act_fmt.to_dict(),
                     requant={"multiplier": self.requant.multiplier, "shift": self.requant.shift})
            act = {"kind": self.activation.kind}
            if self.activation.kind == "tanh":
                act.update(function=self.activation.function, lut=list(self.activation.lut))
            d["activation"] = act
        if self.is_rbf:
            d.update(weights_shape=list(self.weights.shape), weights=self.weights.reshape(-1).tolist(),
                     w_fmt=self.w_fmt.to_dict(), acc_fmt=self.acc_fmt.to_dict())
        return d

    @classmethod
    def from_dict(cls, d, where):
        if not isinstance(d, dict):
            raise QNetError(f"{where}: expected an object, got {type(d).__name__}")

        def get(key, default=KeyError):
            if key not in d:
                if default is KeyError:
                    raise QNetError(f"{where}.{key}: missing")
                return default
            return d[key]

        def fmt(key):
            try:
                return QFormat.from_dict(get(key), f"{where}.{key}")
            except ValueError as exc:
                raise QNetError(str(exc)) from None

        def ints(key, value):
            arr = np.asarray(value)
            if arr.dtype.kind not in "iu" and arr.size:
                raise QNetError(f"{where}.{key}: expected integers, got {arr.dtype} values")
            return arr.astype(np.int64)

        kind = get("kind")
        if kind not in LAYER_KINDS:
            raise QNetError(f"{where}.kind: {kind!r} is not one of {LAYER_KINDS}")
        kw = dict(name=str(get("name")), kind=kind, in_shape=tuple(get("in_shape")),
                  out_shape=tuple(get("out_shape")), in_fmt=fmt("in_fmt"), out_fmt=fmt("out_fmt"))
        if kind in ("conv", "pool"):
            kw.update(kernel=get("kernel"), stride=get("stride"), pad=get("pad", 0))
        if kind == "conv":
            kw["table"] = get("table", None)
        if kind == "pool":
            kw["pool"] = get("pool")
        if kind == "rbf":
            shape = tuple(get("weights_shape"))
            flat = ints("weights", get("weights"))
            if flat.ndim != 1 or flat.size != int(np.prod(shape)):
                raise QNetError(f"{where}.weights: {flat.size} values do not fill weights_shape {list(shape)}")
            kw.update(weights=flat.reshape(shape), w_fmt=fmt("w_fmt"), acc_fmt=fmt("acc_fmt"))
        elif kind != "pool" or kw["pool"] == "avg":
            shape = tuple(get("weights_shape"))
            flat = ints("weights", get("weights"))
            if flat.ndim != 1 or flat.size != int(np.prod(shape)):
                raise QNetError(f"{where}.weights: {flat.size} values do not fill weights_shape {list(shape)}")
            rq = get("requant")
            if not isinstance(rq, dict) or "multiplier" not in rq or "shift" not in rq:
                raise QNetError(f"{where}.requant: expected {{'multiplier': int, 'shift': int}}")
            act = get("activation")
            if not isinstance(act, dict) or act.get("kind") not in ACTIVATIONS:
                raise QNetError(f"{where}.activation.kind: expected one of {ACTIVATIONS}")
            lut = act.get("lut")
            kw.update(weights=flat.reshape(shape), bias=ints("bias", get("bias")), w_fmt=fmt("w_fmt"),
                      acc_fmt=fmt("acc_fmt"), act_fmt=fmt("act_fmt"),
                      requant=Requant(rq["multiplier"], rq["shift"]),
                      activation=Activation(act["kind"], None if lut is None else
                                            tuple(int(v) for v in ints("activation.lut", lut)),
                                            act.get("function", "")))
        try:
            return cls(**kw)
        except (TypeError, ValueError) as exc:
            raise QNetError(f"{where}: {exc}") from None

    # -- validation -----------------------------------------------------------------------
    def validate(self, where):
        """Check internal consistency; raise :class:`QNetError` naming the field."""
        def fail(key, msg):
            raise QNetError(f"{where}.{key}: {msg}")

        def in_range(key, arr, f):
            if arr.size and (arr.min() < f.min or arr.max() > f.max):
                bad = arr.min() if arr.min() < f.min else arr.max()
                fail(key, f"value {bad} outside {f} range [{f.min}, {f.max}]")

        if self.kind not in LAYER_KINDS:
            fail("kind", f"{self.kind!r} is not one of {LAYER_KINDS}")
        if not OUT_BITS_RANGE[0] <= self.out_fmt.bits <= OUT_BITS_RANGE[1]:
            fail("out_fmt.bits", f"{self.out_fmt.bits} outside the supported range "
                                 f"{OUT_BITS_RANGE[0]}..{OUT_BITS_RANGE[1]}")
        if self.is_rbf:
            self._validate_rbf(fail, in_range)
            return
        if not self._validate_shapes(fail):
            return
        self._validate_mac(fail, in_range)
        self._validate_activation(fail, in_range)

    def _validate_shapes(self, fail):
        """Shapes, kernel and connection table per kind; False for a max pool (nothing more to check)."""
        c, h, w = (list(self.in_shape) + [1, 1])[:3]
        if self.kind == "conv":
            if len(self.in_shape) != 3 or len(self.out_shape) != 3:
                fail("in_shape", "conv layers need (C, H, W) shapes")
            if self.stride < 1 or self.kernel < 1 or self.pad < 0:
                fail("kernel", f"kernel {self.kernel}, stride {self.stride}, pad {self.pad} impossible")
            oh = (h + 2 * self.pad - self.kernel) // self.stride + 1
            ow = (w + 2 * self.pad - self.kernel) // self.stride + 1
            o = self.out_shape[0]
            if self.out_shape[1:] != (oh, ow):
                fail("out_shape", f"{list(self.out_shape)} but kernel {self.kernel}, stride {self.stride}, "
                                  f"pad {self.pad} on {list(self.in_shape)} give spatial size ({oh}, {ow})")
            if self.weights.shape != (o, c, self.kernel, self.kernel):
                fail("weights_shape", f"{list(self.weights.shape)}, expected {[o, c, self.kernel, self.kernel]}")
            if self.table is not None:
                if len(self.table) != o:
                    fail("table", f"{len(self.table)} rows for {o} output channels")
                for oi, row in enumerate(self.table):
                    if not row or list(row) != sorted(set(row)) or row[0] < 0 or row[-1] >= c:
                        fail(f"table[{oi}]", f"{list(row)} must be a sorted, non-empty list of distinct "
                                             f"input channels 0..{c - 1}")
                    absent = [i for i in range(c) if i not in row]
                    if absent and np.any(self.weights[oi, absent]):
                        fail("weights", f"output channel {oi} has non-zero weights for input channels "
                                        f"{absent} that table[{oi}] leaves out")
        elif self.kind == "pool":
            if self.pool not in ("max", "avg"):
                fail("pool", f"{self.pool!r} is not 'max' or 'avg'")
            if self.kernel != 2 or self.stride != 2 or self.pad != 0:
                fail("kernel", "only 2x2 pooling with stride 2 and no padding is supported")
            if self.out_shape != (c, h // 2, w // 2):
                fail("out_shape", f"{list(self.out_shape)}, expected {[c, h // 2, w // 2]}")
            if self.pool == "max":
                if self.out_fmt != self.in_fmt:
                    fail("out_fmt", f"max pooling keeps the format: {self.out_fmt} != in_fmt {self.in_fmt}")
                return False
            if self.weights.shape != (c,):
                fail("weights_shape", f"{list(self.weights.shape)}, expected [{c}] (one coefficient per map)")
        else:
            n_in = int(np.prod(self.in_shape))
            if len(self.out_shape) != 1 or self.weights.shape != (self.out_shape[0], n_in):
                fail("weights_shape", f"{list(self.weights.shape)}, expected {[self.out_shape[0], n_in]} "
                                      f"for {list(self.in_shape)} -> {list(self.out_shape)}")
        return True

    def _validate_rbf(self, fail, in_range):
        """Shapes, formats and accumulator width of an RBF output layer."""
        if len(self.in_shape) != 1 or len(self.out_shape) != 1:
            fail("in_shape", f"an rbf layer maps a vector to a vector, not {list(self.in_shape)} -> "
                             f"{list(self.out_shape)} (put it after a dense layer)")
        if self.weights is None or self.weights.shape != (self.out_shape[0], self.in_shape[0]):
            shape = None if self.weights is None else list(self.weights.shape)
            fail("weights_shape", f"{shape}, expected {[self.out_shape[0], self.in_shape[0]]}")
        if self.w_fmt != self.in_fmt:
            fail("w_fmt", f"{self.w_fmt}: the RBF parameters must be in the input format {self.in_fmt}")
        in_range("weights", self.weights, self.w_fmt)
        if self.acc_fmt is None or self.acc_fmt.signed or self.acc_fmt.frac != 2 * self.in_fmt.frac:
            fail("acc_fmt", f"{self.acc_fmt} must be unsigned with 2 * in_fmt.frac = "
                            f"{2 * self.in_fmt.frac} fractional bits")
        if self.acc_fmt.bits > MAX_ACC_BITS:
            fail("acc_fmt", f"{self.acc_fmt} is wider than {MAX_ACC_BITS} bits")
        lo, hi = distance_range(self.weights, self.in_fmt)
        if not self.acc_fmt.contains(lo, hi):
            fail("acc_fmt.bits", f"{self.acc_fmt.bits} bits cannot hold the worst-case distance {hi} "
                                 f"(needs {hi.bit_length()})")
        if self.out_fmt != self.acc_fmt:
            fail("out_fmt", f"{self.out_fmt} must equal acc_fmt {self.acc_fmt} (the distances are exact)")
        if self.bias is not None or self.requant is not None or self.activation.kind != "none":
            fail("activation", "an rbf layer has no bias, requantization or activation")

    def _validate_mac(self, fail, in_range):
        """Formats, value ranges, accumulator width and requantization of a layer with a
        multiply-accumulate."""
        lo_w, hi_w = WIDTH_RANGE
        o = self.out_shape[0]
        if self.bias.shape != (o,):
            fail("bias", f"{self.bias.shape[0] if self.bias.ndim else 0} values for {o} outputs")
        if not lo_w <= self.w_fmt.bits <= hi_w or not self.w_fmt.signed:
            fail("w_fmt", f"{self.w_fmt} must be signed with {lo_w}..{hi_w} bits")
        in_range("weights", self.weights, self.w_fmt)
        if not self.acc_fmt.signed or self.acc_fmt.bits > MAX_ACC_BITS:
            fail("acc_fmt", f"{self.acc_fmt} must be signed with at most {MAX_ACC_BITS} bits")
        in_range("bias", self.bias, self.acc_fmt)
        if self.acc_fmt.frac != self.in_fmt.frac + self.w_fmt.frac:
            fail("acc_fmt.frac", f"{self.acc_fmt.frac}, expected in_fmt.frac + w_fmt.frac = "
                                 f"{self.in_fmt.frac + self.w_fmt.frac}")
        lo, hi = accumulator_range(self.mac_weights(), self.bias, self.in_fmt)
        if not self.acc_fmt.contains(lo, hi):
            fail("acc_fmt.bits", f"{self.acc_fmt.bits} bits cannot hold the worst-case sum range "
                                 f"[{lo}, {hi}] (needs {QFormat.signed_bits_for(lo, hi)})")
        m, s = self.requant.multiplier, self.requant.shift
        if not isinstance(m, int) or isinstance(m, bool) or not 1 <= m < (1 << MAX_MULTIPLIER_BITS):
            fail("requant.multiplier", f"{m!r} must be an int in 1..{(1 << MAX_MULTIPLIER_BITS) - 1}")
        if not isinstance(s, int) or isinstance(s, bool) or not 0 <= s <= MAX_SHIFT:
            fail("requant.shift", f"{s!r} must be an int in 0..{MAX_SHIFT}")
        if not OUT_BITS_RANGE[0] <= self.act_fmt.bits <= OUT_BITS_RANGE[1]:
            fail("act_fmt", f"{self.act_fmt} width outside {OUT_BITS_RANGE[0]}..{OUT_BITS_RANGE[1]}")

    def _validate_activation(self, fail, in_range):
        """The activation and its lookup table (tanh) against the formats."""
        kind = self.activation.kind
        if kind not in ACTIVATIONS:
            fail("activation.kind", f"{kind!r} is not one of {ACTIVATIONS}")
        if kind == "tanh":
            lut = self.activation.lut
            if self.act_fmt.bits > WIDTH_RANGE[1]:
                fail("act_fmt", f"a tanh LUT input of {self.act_fmt.bits} bits is too large (max {WIDTH_RANGE[1]})")
            if lut is None or len(lut) != 1 << self.act_fmt.bits:
                fail("activation.lut", f"{0 if lut is None else len(lut)} entries, expected "
                                       f"2**act_fmt.bits = {1 << self.act_fmt.bits}")
            in_range("activation.lut", np.asarray(lut, dtype=np.int64), self.out_fmt)
        else:
            if self.activation.lut is not None:
                fail("activation.lut", f"only tanh has a LUT, not {kind}")
            if self.out_fmt != self.act_fmt:
                fail("out_fmt", f"{self.out_fmt} must equal act_fmt {self.act_fmt} for activation {kind}")


@dataclass(frozen=True, eq=False)
class QNet:
    """A quantized LeNet-5: the input format and the ordered layers.

    Members
    -------
    variant : str
        ``modern``, ``classic`` or ``classic-rbf`` (informational; the layers say everything).
    input_shape : tuple of int
        (1, 28, 28): the raw MNIST digit; C1's ``pad`` adds LeNet-5's 2-pixel zero border.
    input_fmt : QFormat
        uQ0.8: the uint8 pixel ``p`` represents ``p / 256``.
    layers : tuple of Layer
    meta : dict
        Provenance (checkpoint, calibration, accuracies); not used for computing.

    Raises
    ------
    QNetError
        From :meth:`validate` (called on construction) on any inconsistency.
    """

    variant: str
    input_shape: tuple
    input_fmt: QFormat
    layers: tuple
    meta: dict = field(default_factory=dict)

    def __post_init__(self):
        object.__setattr__(self, "input_shape", tuple(int(v) for v in self.input_shape))
        object.__setattr__(self, "layers", tuple(self.layers))
        self.validate()

    @property
    def num_classes(self):
        return self.layers[-1].out_shape[0]

    @property
    def output_fmt(self):
        """Format of the logits (of the distances for an RBF output)."""
        return self.layers[-1].out_fmt

    def layer(self, name):
        """The layer called ``name``; ``KeyError`` listing the names otherwise."""
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(f"no layer {name!r}; layers are {[l.name for l in self.layers]}")

    def validate(self):
        if self.variant not in VARIANTS:
            raise QNetError(f"variant: {self.variant!r} is not a known LeNet-5 variant; expected one of "
                            f"{', '.join(VARIANTS)}")
        if not self.layers:
            raise QNetError("layers: empty")
        shape, fmt = self.input_shape, self.input_fmt
        names = set()
        for i, layer in enumerate(self.layers):
            where = f"layers[{i}] ({layer.name})"
            if layer.kind == "rbf" and i != len(self.layers) - 1:
                raise QNetError(f"{where}.kind: an rbf layer must be the last layer (its distances are "
                                f"the output; the class is their argmin)")
            if layer.name in names:
                raise QNetError(f"{where}.name: duplicate layer name {layer.name!r}")
            names.add(layer.name)
            if layer.in_shape != shape:
                raise QNetError(f"{where}.in_shape: {list(layer.in_shape)} but the previous layer "
                                f"produces {list(shape)}")
            if layer.in_fmt != fmt:
                raise QNetError(f"{where}.in_fmt: {layer.in_fmt} but the previous layer produces {fmt}")
            layer.validate(where)
            shape, fmt = layer.out_shape, layer.out_fmt
        if len(shape) != 1:
            raise QNetError(f"layers[-1].out_shape: the last layer must produce a vector, not {list(shape)}")

    @property
    def rbf_output(self):
        """True when the last layer is an RBF layer: the outputs are distances and the class is
        their argmin (ties to the lower index), not the argmax of logits."""
        return self.layers[-1].is_rbf

    def classify(self, outputs):
        """Class indices of output rows (N, classes): argmin of RBF distances
        (:func:`golden.arith.argmin_first`) or argmax of logits (:func:`golden.arith.argmax_first`)."""
        from .arith import argmax_first, argmin_first
        return argmin_first(outputs) if self.rbf_output else argmax_first(outputs)

    # -- serialisation --------------------------------------------------------------------
    def to_dict(self):
        return {"format": FORMAT_NAME, "version": VERSION, "variant": self.variant,
                "input_shape": list(self.input_shape), "input_fmt": self.input_fmt.to_dict(),
                "layers": [layer.to_dict() for layer in self.layers], "meta": self.meta}

    @classmethod
    def from_dict(cls, d):
        if not isinstance(d, dict):
            raise QNetError(f"top level: expected a JSON object, got {type(d).__name__}")
        if d.get("format") != FORMAT_NAME:
            raise QNetError(f"format: {d.get('format')!r}, expected {FORMAT_NAME!r} "
                            "(is this a quantized LeNet-5 description written by `lenet5 quantize`?)")
        if d.get("version") != VERSION:
            raise QNetError(f"version: {d.get('version')!r} is not supported (this tool reads version "
                            f"{VERSION}); re-create the file with `lenet5 quantize`")
        for key in ("variant", "input_shape", "input_fmt", "layers"):
            if key not in d:
                raise QNetError(f"{key}: missing")
        if not isinstance(d["layers"], list):
            raise QNetError("layers: expected a list")
        try:
            input_fmt = QFormat.from_dict(d["input_fmt"], "input_fmt")
        except ValueError as exc:
            raise QNetError(str(exc)) from None
        layers = [Layer.from_dict(ld, f"layers[{i}]") for i, ld in enumerate(d["layers"])]
        return cls(variant=d["variant"], input_shape=tuple(d["input_shape"]), input_fmt=input_fmt,
                   layers=layers, meta=d.get("meta", {}))

    def dumps(self):
        """Deterministic JSON text: structure indented, each integer array on one line."""
        arrays = []

        def strip(obj):
            if isinstance(obj, dict):
                return {k: strip(v) for k, v in obj.items()}
            if isinstance(obj, list) and obj and all(isinstance(v, int) for v in obj):
                arrays.append(json.dumps(obj, separators=(",", ":")))
                return f"@@ARRAY{len(arrays) - 1}@@"
            if isinstance(obj, list):
                return [strip(v) for v in obj]
            return obj

        text = json.dumps(strip(self.to_dict()), indent=1, sort_keys=False)
        for i, arr in enumerate(arrays):
            text = text.replace(f'"@@ARRAY{i}@@"', arr, 1)
        return text + "\n"

    def save(self, path):
        """Write the description to ``path`` (JSON)."""
        Path(path).write_text(self.dumps())

    @classmethod
    def load(cls, path):
        """Read and validate a description.

        Raises
        ------
        QNetError
            File missing, not JSON, or any field invalid (the message names the field).
        """
        path = Path(path)
        if not path.is_file():
            raise QNetError(f"{path}: no such model file (the shipped models are in models/; "
                            "create one with `lenet5 quantize`)")
        try:
            d = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise QNetError(f"{path}: not a JSON quantized-network description ({exc})") from None
        try:
            return cls.from_dict(d)
        except QNetError as exc:
            raise QNetError(f"{path}: {exc}") from None
