"""Plans of the pointwise stream stages: one output beat per input beat through a fixed-length
pipeline that advances whenever its output is empty or being accepted (``ii`` 1).

:class:`RequantPlan` (:class:`hw.components.requant.Requantizer`), :class:`TanhPlan`
(:class:`hw.components.activation.TanhLUT`), :class:`ReLUPlan`
(:class:`hw.components.activation.ReLU`) and :class:`SlicePlan`
(:class:`hw.components.slice.RegisterSlice`) share :class:`PointwisePlan`: ``latency`` from the
parameters, ``ii == 1`` and the exact cycle model :func:`hw.plan.timing.pipeline`.
"""

from dataclasses import dataclass

import numpy as np
from amaranth.hdl import Shape, signed

from golden.limits import MAX_ACC_BITS, MAX_MULTIPLIER_BITS, MAX_SHIFT, OUT_BITS_RANGE, WIDTH_RANGE
from golden.qformat import QFormat
from hw.plan.params import ACC_BITS, beat_layout, check_fmt, check_int, fmt_shape
from hw.plan.fifo import slice_bounds
from hw.plan.timing import pipeline

__all__ = ["PointwisePlan", "RequantPlan", "TanhPlan", "ReLUPlan", "SlicePlan",
           "OUT_BITS", "MULTIPLIER_BITS", "PRODUCT_BITS", "LUT_IN_BITS", "LUT_OUT_BITS"]

#: Output widths (bits) the requantizer produces (:data:`golden.limits.OUT_BITS_RANGE`).
OUT_BITS = OUT_BITS_RANGE
#: Widest multiplier (bits, unsigned, :data:`golden.limits.MAX_MULTIPLIER_BITS`).
MULTIPLIER_BITS = MAX_MULTIPLIER_BITS
#: Widest product ``acc * multiplier`` (signed bits): with the rounding constant (< 2**61) it
#: stays inside the int64 arithmetic of :mod:`golden.arith` (the accumulator and multiplier
#: limits of :mod:`golden.limits` keep every product within it).
PRODUCT_BITS = MAX_ACC_BITS + MAX_MULTIPLIER_BITS
#: LUT input widths (bits): ``2**bits`` entries (``golden.qnet`` allows up to 16 for tanh).
LUT_IN_BITS = WIDTH_RANGE
#: LUT output widths (bits).
LUT_OUT_BITS = OUT_BITS_RANGE


def _set(plan, name, value):
    object.__setattr__(plan, name, value)


class PointwisePlan:
    """Base of the pointwise plans: a subclass defines :attr:`latency` (cycles from an accepted
    input beat to its output beat being valid) and the payload layouts ``in_layout`` and
    ``out_layout``; this adds ``ii`` and the exact ``timing``."""

    @property
    def ii(self):
        """Cycles between accepted input beats (and between output beats) in steady state: 1."""
        return 1

    def timing(self, avail):
        """Exact timing: never stalls while its output is ready, so every beat is accepted when
        offered and leaves :attr:`latency` cycles later (:func:`hw.plan.timing.pipeline`)."""
        return pipeline(avail, self.latency)


@dataclass(frozen=True, kw_only=True)
class RequantPlan(PointwisePlan):
    """Per-lane requantization ``saturate(round_shift(acc * multiplier, shift), out_fmt)``,
    optionally followed by ReLU (:func:`golden.arith.requantize`).

    Parameters
    ----------
    acc_fmt : QFormat
        Accumulator format, signed, 2..46 bits.
    out_fmt : QFormat
        Output format, 2..32 bits, signed or unsigned; its ``rounding`` and ``overflow`` apply.
    multiplier : int
        Unsigned integer multiplier, ``1 .. 2**16 - 1``.
    shift : int
        Right shift, ``0 .. 62``.
    lanes : int
        Accumulators per beat, ``>= 1``.
    relu : bool
        Apply ``max(x, 0)`` after saturation.

    Raises
    ------
    TypeError
        A parameter of the wrong type (the message quotes it).
    ValueError
        ``acc_fmt`` unsigned or outside 2..46 bits, ``out_fmt`` outside 2..32 bits, ``multiplier``
        outside 1..65535, ``shift`` outside 0..62, ``lanes < 1``, or a product
        ``acc_fmt.bits + multiplier.bit_length()`` wider than 62 bits.
    """

    acc_fmt: QFormat
    out_fmt: QFormat
    multiplier: int
    shift: int
    lanes: int
    relu: bool = False

    def __post_init__(self):
        check_fmt("acc_fmt", self.acc_fmt, ACC_BITS, signed=True)
        check_fmt("out_fmt", self.out_fmt, OUT_BITS)
        _set(self, "multiplier", check_int("multiplier", self.multiplier, 1, (1 << MULTIPLIER_BITS) - 1))
        _set(self, "shift", check_int("shift", self.shift, 0, MAX_SHIFT))
        _set(self, "lanes", check_int("lanes", self.lanes, 1))
        if self.product_bits > PRODUCT_BITS:
            raise ValueError(f"acc_fmt {self.acc_fmt} ({self.acc_fmt.bits} bits) times multiplier "
                             f"{self.multiplier} ({self.multiplier.bit_length()} bits) needs a "
                             f"{self.product_bits}-bit product; at most {PRODUCT_BITS} bits are supported")
        if not isinstance(self.relu, bool):
            raise TypeError(f"relu must be a bool, not {self.relu!r}")

    @classmethod
    def from_layer(cls, layer, *, lanes):
        """The requantization of a :class:`golden.qnet.Layer` with a multiply-accumulate: into
        ``layer.act_fmt``, with ReLU folded in when ``layer.activation.kind == "relu"``."""
        return cls(acc_fmt=layer.acc_fmt, out_fmt=layer.act_fmt, multiplier=layer.requant.multiplier,
                   shift=layer.requant.shift, lanes=lanes, relu=layer.activation.kind == "relu")

    @property
    def in_layout(self):
        """Input payload: ``lanes`` ``signed(acc_fmt.bits)`` accumulators and ``last``."""
        return beat_layout(signed(self.acc_fmt.bits), self.lanes)

    @property
    def out_layout(self):
        """Output payload: ``lanes`` integers of ``out_fmt`` and ``last``."""
        return beat_layout(fmt_shape(self.out_fmt), self.lanes)

    @property
    def stages(self):
        """Pipeline registers: the product (only when ``multiplier != 1``) and the output."""
        return int(self.multiplier != 1) + 1

    @property
    def latency(self):
        """Cycles from an accepted input beat to its output beat being valid: :attr:`stages`."""
        return self.stages

    @property
    def product_bits(self):
        """Width of the signed product ``acc * multiplier``."""
        return self.acc_fmt.bits + (self.multiplier.bit_length() if self.multiplier != 1 else 0)

    def resources(self) -> dict:
        """An ESTIMATE (not a synthesis result): one constant multiplication per lane (none when
        ``multiplier == 1``; synthesis may build it from adders), the product and output
        registers and the valid/last bits of each stage."""
        product = self.product_bits if self.multiplier != 1 else 0
        return {"multipliers": self.lanes if self.multiplier != 1 else 0, "rom_bits": 0, "ram_bits": 0,
                "register_bits": self.lanes * (product + self.out_fmt.bits) + 2 * self.stages}


@dataclass(frozen=True, kw_only=True)
class TanhPlan(PointwisePlan):
    """Per-lane table lookup ``lut[x - in_fmt.min]`` (:func:`golden.arith.lut_lookup`).

    Parameters
    ----------
    in_fmt : QFormat
        Input format, 2..16 bits (the table has ``2**in_fmt.bits`` entries).
    out_fmt : QFormat
        Output format, 2..32 bits.
    lut : sequence of int
        ``2**in_fmt.bits`` values inside ``out_fmt``; stored as a tuple of int.
    lanes : int
        Values per beat, ``>= 1``.

    Raises
    ------
    TypeError
        A format that is not a QFormat, non-integer LUT entries or ``lanes``.
    ValueError
        Widths outside the ranges above, a LUT of the wrong length, a LUT value outside
        ``out_fmt`` (the message names the entry), ``lanes < 1``.

    Source: LeCun et al. 1998, Appendix A (``f(a) = A tanh(S a)``), tabulated by
    :mod:`golden.quantize`.
    """

    in_fmt: QFormat
    out_fmt: QFormat
    lut: tuple
    lanes: int

    def __post_init__(self):
        in_fmt, out_fmt, lut = self.in_fmt, self.out_fmt, self.lut
        check_fmt("in_fmt", in_fmt, LUT_IN_BITS)
        check_fmt("out_fmt", out_fmt, LUT_OUT_BITS)
        _set(self, "lanes", check_int("lanes", self.lanes, 1))
        try:
            values = np.asarray(lut)
        except Exception as exc:        # ragged or otherwise not array-like
            raise TypeError(f"lut must be a sequence of ints, not {lut!r}") from exc
        if values.ndim != 1 or (values.size and values.dtype.kind not in "iu"):
            raise TypeError(f"lut must be a flat sequence of ints, got {values.dtype} values of shape "
                            f"{values.shape}")
        depth = 1 << in_fmt.bits
        if values.size != depth:
            raise ValueError(f"lut has {values.size} entries; input format {in_fmt} needs "
                             f"2**{in_fmt.bits} = {depth}")
        bad = np.flatnonzero((values < out_fmt.min) | (values > out_fmt.max))
        if bad.size:
            k = int(bad[0])
            raise ValueError(f"lut[{k}] = {int(values[k])} (input {in_fmt.min + k}) is outside "
                             f"out_fmt {out_fmt} [{out_fmt.min}, {out_fmt.max}]")
        _set(self, "lut", tuple(int(v) for v in values))

    @classmethod
    def from_layer(cls, layer, *, lanes):
        """The tanh table of a :class:`golden.qnet.Layer` (``activation.kind == "tanh"``): from
        ``layer.act_fmt`` to ``layer.out_fmt``."""
        if layer.activation.kind != "tanh":
            raise ValueError(f"layer {layer.name} has activation {layer.activation.kind!r}, not 'tanh'")
        return cls(in_fmt=layer.act_fmt, out_fmt=layer.out_fmt, lut=layer.activation.lut, lanes=lanes)

    @property
    def in_layout(self):
        """Input payload: ``lanes`` integers of ``in_fmt`` and ``last``."""
        return beat_layout(fmt_shape(self.in_fmt), self.lanes)

    @property
    def out_layout(self):
        """Output payload: ``lanes`` integers of ``out_fmt`` and ``last``."""
        return beat_layout(fmt_shape(self.out_fmt), self.lanes)

    @property
    def depth(self):
        """Table entries: ``2**in_fmt.bits``."""
        return len(self.lut)

    @property
    def latency(self):
        """Cycles from an accepted input beat to its output beat being valid: the read register."""
        return 1

    def resources(self) -> dict:
        """An ESTIMATE (not a synthesis result): one copy of the table (``depth * out_fmt.bits``
        ROM bits; synthesis duplicates it when the lanes need more read ports than a block RAM
        has, or builds a small table from logic) and the output, valid and last registers."""
        return {"multipliers": 0, "rom_bits": self.depth * self.out_fmt.bits, "ram_bits": 0,
                "register_bits": self.lanes * self.out_fmt.bits + 2}


@dataclass(frozen=True, kw_only=True)
class ReLUPlan(PointwisePlan):
    """Per-lane ``max(x, 0)`` (:func:`golden.arith.relu`), format unchanged.

    Parameters
    ----------
    fmt : QFormat
        Format of inputs and outputs, 2..32 bits.
    lanes : int
        Values per beat, ``>= 1``.

    Raises
    ------
    TypeError, ValueError
        ``fmt`` not a QFormat or outside 2..32 bits; ``lanes`` not an int ``>= 1``.
    """

    fmt: QFormat
    lanes: int

    def __post_init__(self):
        check_fmt("fmt", self.fmt, LUT_OUT_BITS)
        _set(self, "lanes", check_int("lanes", self.lanes, 1))

    @property
    def in_layout(self):
        """Input (and output) payload: ``lanes`` integers of ``fmt`` and ``last``."""
        return beat_layout(fmt_shape(self.fmt), self.lanes)

    out_layout = in_layout

    @property
    def latency(self):
        """Cycles from an accepted input beat to its output beat being valid: 1."""
        return 1

    def resources(self) -> dict:
        """An ESTIMATE (not a synthesis result): the output, valid and last registers."""
        return {"multipliers": 0, "rom_bits": 0, "ram_bits": 0, "register_bits": self.lanes * self.fmt.bits + 2}


@dataclass(frozen=True, kw_only=True)
class SlicePlan(PointwisePlan):
    """A register slice (two-entry skid buffer) for payloads of shape ``layout``.

    Parameters
    ----------
    layout : ShapeLike or data.Layout
        Payload shape of both streams. Any width >= 0.
    """

    layout: object

    @property
    def in_layout(self):
        """Input (and output) payload: :attr:`layout`."""
        return self.layout

    out_layout = in_layout

    @property
    def width(self):
        """Payload bits."""
        return Shape.cast(self.layout).width

    @property
    def pieces(self):
        """Pieces of the payload with their own valid-bit copies: ``max(1, ceil(width / SLICE_BITS))``
        (:func:`hw.plan.fifo.slice_bounds`)."""
        return len(slice_bounds(self.width))

    @property
    def latency(self):
        """Cycles from an accepted beat to ``o.valid`` (no backpressure): 1."""
        return 1

    def resources(self) -> dict:
        """An ESTIMATE (not a synthesis result): main and skid registers and the two valid bits
        per piece, ``2 * width + 2 * pieces`` flip-flops (plus a 2:1 multiplexer per bit)."""
        return {"multipliers": 0, "rom_bits": 0, "ram_bits": 0, "register_bits": 2 * self.width + 2 * self.pieces}
