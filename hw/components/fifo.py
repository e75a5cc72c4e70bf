"""A FIFO for wide words whose storage may spread over the die: sliced LUT RAM, no wide enables.

:class:`WideFIFO` has the interface and the cycle behaviour of Amaranth's
:class:`amaranth.lib.fifo.SyncFIFO` (first-word fall-through, asynchronous read), but is built so
that no signal fans out to the whole word:

* the storage is cut into slices of at most :data:`SLICE_BITS` bits, each a ``Memory`` of its own
  with its **own copies** of the write and read pointers (registers named ``dup_*``, which the
  synthesis flow keeps apart, :data:`hw.flow.synth.KEEP_REGISTERS`);
* the memories have ``depth + 1`` words and are written **every cycle** at the write pointer (the
  word there is never occupied: at most ``depth`` are), so there is no write enable; only the
  pointers advance on a write.

On the LFE5U-85F the window FIFO of C3 (1201-bit windows) as a ``SyncFIFO`` spread its 300 LUT
RAMs over the die and its one write pointer had 12.3 ns of routing to them.
"""

from amaranth import Module, Mux, Signal
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hw.components.common import PlannedComponent, delegate
from hw.plan.fifo import SLICE_BITS, FIFOPlan, slice_bounds

__all__ = ["WideFIFO", "SLICE_BITS", "slice_bounds"]


class WideFIFO(PlannedComponent):
    """First-word-fall-through FIFO of ``depth`` words of ``width`` bits, in slices.

    Parameters
    ----------
    width : int
        Word width in bits (``>= 1``).
    depth : int
        Words it holds (``>= 1``).

    Members
    -------
    w_data : In(width)
    w_en : In(1)
    w_rdy : Out(1)
        ``level != depth``: a word offered with ``w_en`` is written in this cycle.
    r_data : Out(width)
        The oldest word, valid while ``r_rdy`` (read asynchronously from the slices).
    r_en : In(1)
    r_rdy : Out(1)
        ``level != 0``: ``r_en`` removes the oldest word in this cycle.
    level : Out(range(depth + 1))

    Latency
    -------
    A word written in cycle ``c`` is readable (``r_rdy``, ``r_data``) from cycle ``c + 1``; a
    full FIFO takes no write even in a cycle with a read (as ``SyncFIFO``). One word per cycle in
    and out: II 1.

    Raises
    ------
    TypeError, ValueError
        ``width`` or ``depth`` not an int, or below 1.
    """

    plan_class = FIFOPlan

    def __init__(self, *, width: int, depth: int):
        self._build(FIFOPlan(width=width, depth=depth))

    def _members(self, plan):
        """The write port, the read port and the fill level (no streams)."""
        return {"w_data": In(plan.width), "w_en": In(1), "w_rdy": Out(1),
                "r_data": Out(plan.width), "r_en": In(1), "r_rdy": Out(1),
                "level": Out(range(plan.depth + 1))}

    width = delegate("Word width (bits).")
    depth = delegate("Words held.")
    slices = delegate("Storage slices: ``ceil(width / SLICE_BITS)``.")

    def elaborate(self, platform):
        m = Module()
        words = self._plan.words
        do_write = self.w_en & self.w_rdy
        do_read = self.r_en & self.r_rdy
        m.d.comb += [self.w_rdy.eq(self.level != self._plan.depth), self.r_rdy.eq(self.level != 0)]
        with m.If(do_write & ~do_read):
            m.d.sync += self.level.eq(self.level + 1)
        with m.Elif(do_read & ~do_write):
            m.d.sync += self.level.eq(self.level - 1)
        for k, (lo, hi) in enumerate(slice_bounds(self._plan.width)):
            produce = Signal(range(words), name=f"dup_produce{k}")
            consume = Signal(range(words), name=f"dup_consume{k}")
            with m.If(do_write):
                m.d.sync += produce.eq(Mux(produce == words - 1, 0, produce + 1))
            with m.If(do_read):
                m.d.sync += consume.eq(Mux(consume == words - 1, 0, consume + 1))
            m.submodules[f"storage{k}"] = mem = Memory(shape=hi - lo, depth=words, init=[])
            wr, rd = mem.write_port(), mem.read_port(domain="comb")
            m.d.comb += [wr.addr.eq(produce), wr.data.eq(self.w_data[lo:hi]), wr.en.eq(1),
                         rd.addr.eq(consume), self.r_data[lo:hi].eq(rd.data)]
        return m
