"""Register slice (skid buffer): a stream stage whose outputs *and* ``i.ready`` are registers.

The accelerator's stages pass backpressure combinationally (a pointwise pipeline's ``i.ready``
is ``~o.valid | o.ready``, an engine's ``i.ready`` comes from its schedule), so without slices
the ready path of a whole chain of stages is one combinational path, with a high-fanout clock
enable at every stage, across the die. A :class:`RegisterSlice` between two stages cuts every
combinational path through it: ``o.valid`` and ``o.payload`` come from the main register and
``i.ready`` from the skid register's valid bit, so neither side sees the other's logic.

A wide slice (C5's 30 sums are a 600-bit payload) is cut into pieces of at most
:data:`hw.components.fifo.SLICE_BITS` bits, each with its own copies of the two valid bits (registers named
``dup_*``, which the synthesis flow keeps apart, :data:`hw.flow.synth.KEEP_REGISTERS`): the enables of
a piece's registers are then computed next to them from its own copies, and no enable net fans out
to the whole word. On the LFE5U-85F one enable of C5's slice reached its 1,200 flip-flops with
9 ns of routing.
"""

from amaranth import Module, Signal, Value

from hw.components.common import PlannedComponent, delegate
from hw.plan.fifo import slice_bounds
from hw.plan.pointwise import SlicePlan

__all__ = ["RegisterSlice"]


class RegisterSlice(PlannedComponent):
    """Two-entry skid buffer: a fully registered stream stage of latency 1 and II 1.

    A main register drives ``o``; a skid register catches the one beat that arrives in the
    cycle ``o`` is stalled (``i.ready`` was high, being a register, before the stall was
    seen). ``i.ready = ~skid_valid``. When the main register is free (``~o.valid | o.ready``)
    it loads the skid register if that is full, else the input beat. Beats leave in order,
    none is lost or duplicated under any ``valid``/``ready`` pattern, and throughput is one beat
    per cycle while ``o`` is ready.

    Parameters
    ----------
    layout : ShapeLike or data.Layout
        Payload shape of both streams (e.g. a stage's ``o.payload`` layout). Any width >= 0.

    Members
    -------
    i : ``In(stream.Signature(layout))``
    o : ``Out(stream.Signature(layout))``

    Latency
    -------
    :attr:`latency` ``= 1`` cycle from an accepted beat to ``o.valid`` (without backpressure);
    :attr:`ii` ``= 1``. Timing model (:meth:`timing`, from :class:`hw.plan.pointwise.SlicePlan`):
    with ``o`` always ready the slice never refuses a beat, ``out[k] = accept[k] + 1``.

    Resources: ``2 * width + 2 * pieces`` flip-flops (``pieces = max(1, ceil(width / SLICE_BITS))``:
    the valid bits are copied per piece) and a 2:1 multiplexer per payload bit.
    """

    plan_class = SlicePlan

    def __init__(self, layout):
        self._build(SlicePlan(layout=layout))

    layout = delegate("Payload layout of ``i`` and ``o``.")
    pieces = delegate("Payload pieces with their own valid-bit copies.")

    def elaborate(self, platform):
        m = Module()
        i_bits, o_bits = Value.cast(self.i.payload), Value.cast(self.o.payload)
        bounds = slice_bounds(len(i_bits))
        dup = len(bounds) > 1
        for k, (lo, hi) in enumerate(bounds):
            # Every piece's valid copies see the same i.valid / o.ready, so they stay equal.
            skid_valid = Signal(name=f"dup_skid_valid{k}" if dup else "skid_valid")
            main_valid = Signal(name=f"dup_main_valid{k}" if dup else "main_valid")
            skid = Signal(hi - lo, name=f"skid{k}" if dup else "skid")
            main = Signal(hi - lo, name=f"main{k}" if dup else "main")
            m.d.comb += o_bits[lo:hi].eq(main)
            if k == 0:
                m.d.comb += [self.i.ready.eq(~skid_valid), self.o.valid.eq(main_valid)]
            with m.If(~main_valid | self.o.ready):
                with m.If(skid_valid):
                    m.d.sync += [main.eq(skid), main_valid.eq(1), skid_valid.eq(0)]
                with m.Else():
                    m.d.sync += [main.eq(i_bits[lo:hi]), main_valid.eq(self.i.valid)]
            with m.Elif(self.i.valid & ~skid_valid):
                m.d.sync += [skid.eq(i_bits[lo:hi]), skid_valid.eq(1)]
        return m
