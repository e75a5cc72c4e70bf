"""Activation functions on streams: a lookup table (LeNet-5's scaled tanh) and a standalone ReLU.

ReLU after a multiply-accumulate is folded into :class:`hw.components.requant.Requantizer` (``relu=True``);
:class:`ReLU` here is for streams that do not pass through a requantizer.
"""

from amaranth import Cat, Module, Mux, Signal
from amaranth.lib import memory

from hw.components.common import PlannedComponent, delegate, fmt_shape
from hw.plan.pointwise import LUT_IN_BITS, LUT_OUT_BITS, ReLUPlan, TanhPlan

__all__ = ["TanhLUT", "ReLU", "LUT_IN_BITS", "LUT_OUT_BITS"]


class TanhLUT(PlannedComponent):
    """Per-lane table lookup ``lut[x - in_fmt.min]`` (:func:`golden.arith.lut_lookup`).

    The table is an :class:`amaranth.lib.memory.Memory` of ``2**in_fmt.bits`` words of
    ``out_fmt`` integers, initialised from ``lut`` and never written (a ROM), with one synchronous
    read port per lane, so that Yosys can map it to block RAM (duplicated when there are more
    lanes than a block RAM has read ports); it may also choose logic for small tables (on ECP5 an
    8-bit table of 256 x 8 bits with 2 lanes becomes about 370 LUT4s, no DP16KD). The address
    is ``x - in_fmt.min``: ``x`` itself for unsigned inputs, ``x`` with its sign bit flipped for
    signed ones.

    Pipeline: one stage, the read-port register, plus the ``valid``/``last`` registers beside it.
    The read ports' ``en`` is the pipeline's clock enable ``advance = ~o.valid | o.ready``, so the
    read data holds while the output is stalled; ``i.ready = advance`` depends combinationally on
    ``o.ready`` (no skid buffer).

    Parameters
    ----------
    in_fmt : QFormat
        Input format, 2..16 bits (the table has ``2**in_fmt.bits`` entries).
    out_fmt : QFormat
        Output format, 2..32 bits.
    lut : sequence of int
        ``2**in_fmt.bits`` values inside ``out_fmt``; entry ``k`` is the output for the input
        ``in_fmt.min + k``.
    lanes : int
        Values per beat, ``>= 1``.

    Members
    -------
    i : ``In(stream.Signature(StructLayout({"data": ArrayLayout(in shape, lanes), "last": 1})))``
        Inputs in ``in_fmt``; ``last`` is passed through.
    o : ``Out(stream.Signature(StructLayout({"data": ArrayLayout(out shape, lanes), "last": 1})))``
        Table outputs in ``out_fmt``.

    Latency
    -------
    :attr:`latency` ``= 1`` cycle (the synchronous read) from the cycle an input beat is accepted
    to the cycle its output is first valid; :attr:`ii` ``= 1``.

    Raises
    ------
    TypeError
        A format that is not a QFormat, non-integer LUT entries or ``lanes``.
    ValueError
        Widths outside the ranges above, a LUT of the wrong length, a LUT value outside
        ``out_fmt`` (the message names the entry), ``lanes < 1``.

    Source: LeCun et al. 1998, Appendix A (the squashing function ``f(a) = A tanh(S a)``),
    tabulated by :mod:`golden.quantize`; semantics :func:`golden.arith.lut_lookup`.
    """

    plan_class = TanhPlan

    def __init__(self, *, in_fmt, out_fmt, lut, lanes):
        self._build(TanhPlan(in_fmt=in_fmt, out_fmt=out_fmt, lut=lut, lanes=lanes))

    @classmethod
    def from_layer(cls, layer, *, lanes):
        """The tanh table of a :class:`golden.qnet.Layer` (``activation.kind == "tanh"``): from
        ``layer.act_fmt`` to ``layer.out_fmt``."""
        return cls.from_plan(TanhPlan.from_layer(layer, lanes=lanes), src_loc_at=1)

    in_fmt = delegate("Input format (QFormat).")
    out_fmt = delegate("Output format (QFormat).")
    lut = delegate("Table contents (tuple of int).")
    lanes = delegate("Values per beat.")

    def elaborate(self, platform):
        m = Module()
        advance = Signal()
        m.d.comb += [advance.eq(~self.o.valid | self.o.ready), self.i.ready.eq(advance)]
        m.submodules.table = table = memory.Memory(shape=fmt_shape(self._plan.out_fmt),
                                                   depth=len(self._plan.lut), init=self._plan.lut)
        valid, last = Signal(), Signal()
        with m.If(advance):
            m.d.sync += [valid.eq(self.i.valid), last.eq(self.i.payload.last)]
        m.d.comb += [self.o.valid.eq(valid), self.o.payload.last.eq(last)]
        for lane in range(self._plan.lanes):
            x = self.i.payload.data[lane]
            port = table.read_port(domain="sync")
            # x - in_fmt.min: flip the sign bit of a two's complement value.
            addr = Cat(x[:-1], ~x[-1]) if self._plan.in_fmt.signed else x
            m.d.comb += [port.addr.eq(addr), port.en.eq(advance),
                         self.o.payload.data[lane].eq(port.data)]
        return m


class ReLU(PlannedComponent):
    """Per-lane ``max(x, 0)`` (:func:`golden.arith.relu`) on a stream, format unchanged.

    One register stage with the clock enable ``advance = ~o.valid | o.ready`` (``i.ready =
    advance``, combinational on ``o.ready``). For unsigned formats it is a plain register slice.

    Parameters
    ----------
    fmt : QFormat
        Format of inputs and outputs, 2..32 bits.
    lanes : int
        Values per beat, ``>= 1``.

    Members
    -------
    i : ``In(stream.Signature(StructLayout({"data": ArrayLayout(shape of fmt, lanes), "last": 1})))``
    o : ``Out(stream.Signature(StructLayout({"data": ArrayLayout(shape of fmt, lanes), "last": 1})))``

    Latency
    -------
    :attr:`latency` ``= 1`` cycle from an accepted input beat to its output being valid;
    :attr:`ii` ``= 1``.

    Raises
    ------
    TypeError, ValueError
        ``fmt`` not a QFormat or outside 2..32 bits; ``lanes`` not an int ``>= 1``.
    """

    plan_class = ReLUPlan

    def __init__(self, *, fmt, lanes):
        self._build(ReLUPlan(fmt=fmt, lanes=lanes))

    fmt = delegate("Format of inputs and outputs (QFormat).")
    lanes = delegate("Values per beat.")

    def elaborate(self, platform):
        m = Module()
        advance = Signal()
        m.d.comb += [advance.eq(~self.o.valid | self.o.ready), self.i.ready.eq(advance)]
        with m.If(advance):
            m.d.sync += [self.o.valid.eq(self.i.valid), self.o.payload.last.eq(self.i.payload.last)]
            for lane in range(self._plan.lanes):
                x = self.i.payload.data[lane]
                m.d.sync += self.o.payload.data[lane].eq(Mux(x < 0, 0, x) if self._plan.fmt.signed else x)
        return m
