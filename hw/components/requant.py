"""Requantization of accumulators into an activation format: multiply, rounding shift, saturation.

The hardware form of :func:`golden.arith.requantize` (and of ``relu(requantize(...))``):

``out = saturate(round_shift(acc * multiplier, shift, out_fmt.rounding), out_fmt)``

computed per lane on a stream of accumulator beats, bit for bit as the golden function does.
"""

from amaranth import Module, Mux, Signal, signed

from hw.components.common import PlannedComponent, delegate, beat_layout, check_fmt, check_int, fmt_shape
from hw.plan.pointwise import MULTIPLIER_BITS, OUT_BITS, PRODUCT_BITS, RequantPlan

__all__ = ["Requantizer", "beat_layout", "fmt_shape", "check_fmt", "check_int",
           "OUT_BITS", "MULTIPLIER_BITS", "PRODUCT_BITS"]


class Requantizer(PlannedComponent):
    """Per-lane requantization of a stream of accumulators (optionally followed by ReLU).

    Each lane computes exactly :func:`golden.arith.requantize` (``relu`` of it when ``relu``):

    1. ``p = acc * multiplier`` (a constant multiplication; no multiplier when it is 1),
    2. ``r = round_shift(p, shift, out_fmt.rounding)``: ``half_up`` adds ``2**(shift-1)``,
       ``half_even`` adds ``2**(shift-1) - 1 + p[shift]`` (ties go to the even neighbour: the
       carry happens on an exact tie only when the kept part is odd), ``floor`` adds nothing;
       then an arithmetic right shift by ``shift``,
    3. saturation to ``[out_fmt.min, out_fmt.max]`` (``out_fmt.overflow == "saturate"``), or
       the low ``out_fmt.bits`` bits (``"wrap"``); with ``relu`` the result is then
       ``max(., 0)`` (for saturation this is a lower bound of ``max(out_fmt.min, 0)``).

    Pipeline: a register after the multiplication (absent when ``multiplier == 1``) and one after
    rounding and saturation, all with one clock enable ``advance = ~o.valid | o.ready``: the
    pipeline moves whenever its output is empty or being accepted, bubbles included. Hence
    ``i.ready`` is ``advance`` and depends combinationally on ``o.ready`` (no skid buffer);
    ``o.valid`` and ``o.payload`` come straight from registers.

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
        Apply ``max(x, 0)`` after saturation (LeNet's ReLU layers; a no-op for unsigned outputs).

    Members
    -------
    i : ``In(stream.Signature(StructLayout({"data": ArrayLayout(signed(acc_fmt.bits), lanes), "last": 1})))``
        Accumulators; ``last`` marks the last beat of a frame and is passed through.
    o : ``Out(stream.Signature(StructLayout({"data": ArrayLayout(out shape, lanes), "last": 1})))``
        Requantized values in ``out_fmt`` (``signed``/``unsigned(out_fmt.bits)``), in input order.

    Latency
    -------
    :attr:`latency` ``= stages = (multiplier != 1) + 1`` cycles from the cycle an input beat is
    accepted to the cycle its output beat is first valid (without backpressure); :attr:`ii` ``= 1``.

    Raises
    ------
    TypeError
        A parameter of the wrong type (the message quotes it).
    ValueError
        ``acc_fmt`` unsigned or outside 2..46 bits, ``out_fmt`` outside 2..32 bits, ``multiplier``
        outside 1..65535, ``shift`` outside 0..62, ``lanes < 1``, or a product
        ``acc_fmt.bits + multiplier.bit_length()`` wider than 62 bits.

    Source: :func:`golden.arith.requantize`; rounding modes as in hls4ml's ``ap_fixed``
    quantisation modes (``AP_RND`` = half_up, ``AP_RND_CONV`` = half_even, ``AP_TRN`` = floor).
    """

    plan_class = RequantPlan

    def __init__(self, *, acc_fmt, out_fmt, multiplier, shift, lanes, relu=False):
        self._build(RequantPlan(acc_fmt=acc_fmt, out_fmt=out_fmt, multiplier=multiplier, shift=shift,
                                lanes=lanes, relu=relu))

    @classmethod
    def from_layer(cls, layer, *, lanes):
        """The requantizer of a :class:`golden.qnet.Layer` with a multiply-accumulate: into
        ``layer.act_fmt``, with ReLU folded in when ``layer.activation.kind == "relu"``."""
        return cls.from_plan(RequantPlan.from_layer(layer, lanes=lanes), src_loc_at=1)

    acc_fmt = delegate("Accumulator format (QFormat).")
    out_fmt = delegate("Output format (QFormat).")
    multiplier = delegate("Integer multiplier.")
    shift = delegate("Right shift (bits).")
    lanes = delegate("Values per beat.")
    relu = delegate("ReLU after saturation.")
    stages = delegate("Pipeline registers (1 or 2).")
    product_bits = delegate("Width of the signed product.")

    def _round_saturate(self, m, p, lane):
        """Rounding shift and saturation (or wrap), then ReLU, of the signed value *p*."""
        s, fmt = self._plan.shift, self._plan.out_fmt
        r = p
        if s:
            half = 1 << (s - 1)
            if fmt.rounding == "half_up":
                add = half
            elif fmt.rounding == "half_even":
                add = (half - 1) + p[min(s, len(p) - 1)]   # + bit s of the sign-extended p
            else:
                add = 0
            # Wide enough for p + 2**s - 1 (no overflow) and for the shift to keep the sign.
            r = Signal(signed(max(len(p), s + 1) + 1 - s), name=f"rounded{lane}")
            m.d.comb += r.eq((p + add) >> s)
        if fmt.overflow == "saturate":
            lo, hi = (max(fmt.min, 0) if self._plan.relu else fmt.min), fmt.max
            return Mux(r > hi, hi, Mux(r < lo, lo, r))
        # Wrap: keep the low bits (a narrower r is sign-extended by the assignment, which is
        # the same modulo 2**bits).
        y = r
        if len(r) > fmt.bits:
            y = r[:fmt.bits].as_signed() if fmt.signed else r[:fmt.bits]
        if self._plan.relu and fmt.signed:
            y = Mux(y < 0, 0, y)
        return y

    def elaborate(self, platform):
        m = Module()
        advance = Signal()
        m.d.comb += [advance.eq(~self.o.valid | self.o.ready), self.i.ready.eq(advance)]

        # Stage 1 (only with a multiplier): the products.
        if self._plan.multiplier != 1:
            prod = [Signal(signed(self._plan.product_bits), name=f"prod{lane}") for lane in range(self._plan.lanes)]
            prod_valid, prod_last = Signal(), Signal()
            with m.If(advance):
                m.d.sync += [prod_valid.eq(self.i.valid), prod_last.eq(self.i.payload.last)]
                m.d.sync += [prod[lane].eq(self.i.payload.data[lane] * self._plan.multiplier)
                             for lane in range(self._plan.lanes)]
        else:
            prod = [self.i.payload.data[lane] for lane in range(self._plan.lanes)]
            prod_valid, prod_last = self.i.valid, self.i.payload.last

        # Last stage: rounding shift and saturation into the output register.
        result = [self._round_saturate(m, prod[lane], lane) for lane in range(self._plan.lanes)]
        out = Signal(self.o.payload.shape())
        valid = Signal()
        with m.If(advance):
            m.d.sync += [valid.eq(prod_valid), out.last.eq(prod_last)]
            m.d.sync += [out.data[lane].eq(result[lane]) for lane in range(self._plan.lanes)]
        m.d.comb += [self.o.valid.eq(valid), self.o.payload.eq(out)]
        return m
