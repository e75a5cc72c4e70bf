"""Plan of the 2x2, stride-2 pooling stage (:class:`hw.components.pool.Pool2x2`): its parameters,
validated, the frame geometry, latency, the exact cycle model and a resource estimate."""

from dataclasses import dataclass

import numpy as np
from amaranth.hdl import signed

from golden.arith import accumulator_format, accumulator_range
from golden.limits import WIDTH_RANGE
from golden.qformat import QFormat
from hw.plan.params import ACC_BITS, beat_layout, check_fmt, check_int, fmt_shape
from hw.plan.timing import Timing, offers

__all__ = ["PoolPlan", "POOL_MODES", "OPERAND_BITS"]

#: Pooling modes: ``max`` (golden.arith.max_pool2x2) and ``avg`` (coefficient * 2x2 sum + bias).
POOL_MODES = ("max", "avg")
#: Operand widths (bits) of inputs and coefficients (golden.qnet.WIDTH_RANGE).
OPERAND_BITS = WIDTH_RANGE


def _int_vector(name, values, length):
    """*values* as a tuple of *length* Python ints (TypeError / ValueError naming *name*)."""
    try:
        arr = np.asarray(values)
    except Exception as exc:
        raise TypeError(f"{name} must be a sequence of ints, not {values!r}") from exc
    if arr.ndim != 1 or (arr.size and arr.dtype.kind not in "iu"):
        raise TypeError(f"{name} must be a flat sequence of ints, got {arr.dtype} values of shape {arr.shape}")
    if arr.size != length:
        raise ValueError(f"{name} has {arr.size} entries for {length} channels")
    return tuple(int(v) for v in arr)


@dataclass(frozen=True, kw_only=True)
class PoolPlan:
    """2x2 stride-2 pooling of a ``height x width`` map of ``channels`` feature maps, ``lanes``
    channels per beat (:class:`hw.components.pool.Pool2x2` documents the datapath).

    Parameters
    ----------
    mode : str
        ``"max"`` or ``"avg"`` (``coef[c] * (2x2 sum) + bias[c]``).
    in_fmt : QFormat
        Input format, 2..16 bits, signed or unsigned.
    channels : int
        Feature maps, ``>= 1``.
    width, height : int
        Input map size, even, ``>= 2``.
    lanes : int
        Channels per beat; must divide ``channels``.
    coef : sequence of int, optional (``avg`` only, required)
        One coefficient per channel, inside ``coef_fmt``; stored as a tuple of int.
    coef_fmt : QFormat, optional (``avg`` only, required)
        Coefficient format, signed, 2..16 bits.
    bias : sequence of int, optional (``avg`` only; default zeros)
        One bias per channel at the accumulator's scale; stored as a tuple of int.
    acc_fmt : QFormat, optional (``avg`` only)
        Accumulator (output) format, signed, wide enough for the worst case. Default:
        :func:`golden.arith.accumulator_format`.

    Raises
    ------
    TypeError
        Parameters of the wrong type (the message quotes the value).
    ValueError
        Unknown ``mode``; widths out of range; ``lanes`` not dividing ``channels``; odd or too
        small ``width``/``height``; ``coef``/``bias``/``coef_fmt``/``acc_fmt`` given for ``max``
        or missing/wrong-sized for ``avg``; a coefficient outside ``coef_fmt``; an ``acc_fmt``
        too narrow for the worst case (the message gives the range and the bits needed).

    Source: LeCun et al. 1998, Sec. II-B (subsampling layers S2/S4).
    """

    mode: str
    in_fmt: QFormat
    channels: int
    width: int
    height: int
    lanes: int
    coef: tuple = None
    coef_fmt: QFormat = None
    bias: tuple = None
    acc_fmt: QFormat = None

    def __post_init__(self):
        mode, set_ = self.mode, lambda name, value: object.__setattr__(self, name, value)
        if mode not in POOL_MODES:
            raise ValueError(f"mode must be one of {POOL_MODES}, not {mode!r}")
        check_fmt("in_fmt", self.in_fmt, OPERAND_BITS)
        set_("channels", check_int("channels", self.channels, 1))
        set_("lanes", check_int("lanes", self.lanes, 1))
        if self.channels % self.lanes:
            raise ValueError(f"lanes {self.lanes} does not divide channels {self.channels}")
        set_("width", check_int("width", self.width, 2))
        set_("height", check_int("height", self.height, 2))
        for name, size in (("width", self.width), ("height", self.height)):
            if size % 2:
                raise ValueError(f"{name} must be even for 2x2 stride-2 pooling, not {size}")
        if mode == "max":
            given = [name for name in ("coef", "coef_fmt", "bias", "acc_fmt") if getattr(self, name) is not None]
            if given:
                raise ValueError(f"max pooling takes no {', '.join(given)}")
            return
        self._check_avg(set_)

    def _check_avg(self, set_):
        coef_fmt = self.coef_fmt
        if self.coef is None or coef_fmt is None:
            raise ValueError("avg pooling needs coef and coef_fmt (one coefficient per channel)")
        check_fmt("coef_fmt", coef_fmt, OPERAND_BITS, signed=True)
        set_("coef", _int_vector("coef", self.coef, self.channels))
        bad = [k for k, c in enumerate(self.coef) if not coef_fmt.min <= c <= coef_fmt.max]
        if bad:
            raise ValueError(f"coef[{bad[0]}] = {self.coef[bad[0]]} is outside coef_fmt {coef_fmt} "
                             f"[{coef_fmt.min}, {coef_fmt.max}]")
        set_("bias", (0,) * self.channels if self.bias is None else _int_vector("bias", self.bias, self.channels))
        weights = np.repeat(np.array(self.coef, dtype=np.int64).reshape(-1, 1), 4, axis=1)
        acc_fmt = self.acc_fmt
        if acc_fmt is None:
            acc_fmt = accumulator_format(weights, self.bias, self.in_fmt, coef_fmt.frac)
            set_("acc_fmt", acc_fmt)
        check_fmt("acc_fmt", acc_fmt, ACC_BITS, signed=True)
        lo, hi = accumulator_range(weights, self.bias, self.in_fmt)
        if not acc_fmt.contains(lo, hi):
            raise ValueError(f"acc_fmt {acc_fmt} ({acc_fmt.bits} bits) cannot hold the worst-case "
                             f"range [{lo}, {hi}] of coef * (2x2 sum) + bias; it needs "
                             f"{QFormat.signed_bits_for(lo, hi)} bits")

    @classmethod
    def from_layer(cls, layer, *, lanes):
        """The pooling of a :class:`golden.qnet.Layer` with ``kind == "pool"`` (for ``avg``, its
        accumulator; the layer's requantization and activation are separate plans)."""
        if layer.kind != "pool":
            raise ValueError(f"layer {layer.name} is a {layer.kind} layer, not a pool layer")
        c, h, w = layer.in_shape
        kw = dict(mode=layer.pool, in_fmt=layer.in_fmt, channels=c, width=w, height=h, lanes=lanes)
        if layer.pool == "avg":
            kw.update(coef=layer.weights, coef_fmt=layer.w_fmt, bias=layer.bias, acc_fmt=layer.acc_fmt)
        return cls(**kw)

    @property
    def avg(self):
        """True for average (coefficient) pooling."""
        return self.mode == "avg"

    @property
    def out_fmt(self):
        """Format of the output integers: ``in_fmt`` (max) or ``acc_fmt`` (avg)."""
        return self.acc_fmt if self.avg else self.in_fmt

    @property
    def in_layout(self):
        """Payload layout of the input stream: ``lanes`` integers of ``in_fmt`` and ``last``."""
        return beat_layout(fmt_shape(self.in_fmt), self.lanes)

    @property
    def out_layout(self):
        """Payload layout of the output stream: ``lanes`` integers of ``in_fmt`` (max) or
        ``signed(acc_fmt.bits)`` accumulators (avg), and ``last``."""
        return beat_layout(signed(self.acc_fmt.bits) if self.avg else fmt_shape(self.in_fmt), self.lanes)

    @property
    def part_bits(self):
        """Bits of a horizontal partial result (line-buffer element): ``in_fmt.bits``, one more
        for ``avg`` (the sum of two inputs)."""
        return self.in_fmt.bits + self.avg

    @property
    def groups(self):
        """Beats per position: ``channels // lanes``."""
        return self.channels // self.lanes

    @property
    def line_depth(self):
        """Words of the line buffer in use: ``width // 2 * groups`` (the memory has at least 2)."""
        return self.width // 2 * self.groups

    @property
    def in_beats(self):
        """Input beats per frame: ``width * height * groups``."""
        return self.width * self.height * self.groups

    @property
    def out_beats(self):
        """Output beats per frame: a quarter of the input beats."""
        return self.in_beats // 4

    @property
    def latency(self):
        """Cycles from the accepted input beat completing a 2x2 block to its output beat (no
        backpressure): 2 for max, 3 for avg (the coefficient multiply-add)."""
        return 2 + self.avg

    @property
    def ii(self):
        """Cycles between accepted input beats in steady state: 1."""
        return 1

    @property
    def frame_cycles(self):
        """Cycles per frame at full rate: one per input beat."""
        return self.in_beats

    def timing(self, avail):
        """Exact timing (:mod:`hw.plan.timing`): every input beat is accepted when offered (the
        output being ready); the output beat of a 2x2 block (one per channel group) leaves
        :attr:`latency` cycles after the input beat that completes it (odd row, odd column)."""
        accept = offers(avail)
        groups, w = self.groups, self.width
        out = []
        for k, t in enumerate(accept):
            pos, g = divmod(k % self.in_beats, groups)
            y, x = divmod(pos, w)
            if y % 2 and x % 2:
                out.append(t + self.latency)
        return Timing(accept, out)

    def resources(self) -> dict:
        """An ESTIMATE (not a synthesis result). ``multipliers``: one coefficient product per lane
        (avg); ``rom_bits``: the per-channel coefficients and biases (avg, selected by the channel
        group); ``ram_bits``: the line buffer (``max(line_depth, 2)`` words of ``lanes`` partial
        results); ``register_bits``: the horizontal delay line, the position counters and the
        pipeline registers (data, valid, last, group)."""
        lanes, counters = self.lanes, (max(self.groups, 2) - 1).bit_length()
        counters += (self.width - 1).bit_length() + (self.height - 1).bit_length()
        counters += (max(self.line_depth, 2) - 1).bit_length()
        stages = [self.part_bits, self.part_bits + 1 if self.avg else self.in_fmt.bits]
        if self.avg:
            stages.append(self.acc_fmt.bits)
        regs = self.groups * lanes * self.in_fmt.bits + lanes * sum(stages) + len(stages) * 2 + counters
        rom = self.channels * (self.coef_fmt.bits + self.acc_fmt.bits) if self.avg else 0
        return {"multipliers": lanes if self.avg else 0, "rom_bits": rom,
                "ram_bits": max(self.line_depth, 2) * lanes * self.part_bits, "register_bits": regs}
