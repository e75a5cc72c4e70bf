"""Squared-distance engine: LeNet-5's Euclidean RBF output units (subtract, square, accumulate).

``y[i] = sum_j (x[j] - c[i, j])**2`` for fixed centres ``c`` (:func:`golden.arith.squared_distances`;
LeCun et al. 1998, Sec. II-B, Eq. 7), all units in parallel as the vector streams in. The argmin
classifier that follows is :class:`hw.components.output.ClassifierOutput` with ``select="min"``.
"""

from amaranth import Module, Mux, Signal
from amaranth.lib import data
from amaranth.lib.memory import Memory

from hw.components.common import PlannedComponent, delegate, fmt_shape
from hw.plan.rbf import PIPELINE_STAGES, RBFPlan

__all__ = ["PIPELINE_STAGES", "RBFPlan", "SquaredDistanceEngine"]


class SquaredDistanceEngine(PlannedComponent):
    """Squared Euclidean distances of a streamed vector to ``units`` fixed centres.

    Parameters
    ----------
    features : int
        ``J``, elements of the input vector.
    units : int
        ``I``, distances (RBF units), ``>= 2``.
    in_fmt : QFormat
        Format of the inputs and of the centres (2..16 bits).
    centers : array of int, shape (I, J)
        The centres in ``in_fmt``, stored in a ROM of ``J / B`` words (:meth:`RBFPlan.center_words`).
    acc_fmt : QFormat
        Unsigned accumulator / output format; must hold the worst-case distance.
    in_lanes : int
        ``B``, input elements per beat; divides ``J``.

    Members
    -------
    i : In(stream.Signature(StructLayout({"data": ArrayLayout(in_shape, B), "last": 1})))
        The vector, elements ``k*B .. k*B+B-1`` in beat ``k``; ``last`` on beat ``J/B - 1``. The
        engine counts beats: a vector ends after ``J/B`` beats, or earlier at a beat with ``last``.
    o : Out(stream.Signature(StructLayout({"data": ArrayLayout(unsigned(acc bits), I), "last": 1})))
        One beat per vector: lane ``i`` is ``y[i]``; ``last`` set.

    Datapath (three register stages, one clock enable ``~o.valid | o.ready`` for all of them, which
    is also ``i.ready``): (1) the input beat, and the centre ROM word of its beat index (a
    registered read); (2) the ``I x B`` squares ``(x[b] - c[i, b])**2``; (3) the accumulators
    (restarted at the vector's first beat) and, at its last beat, the output register.

    Latency
    -------
    :attr:`latency` ``= 3`` cycles from the vector's last accepted beat to the output beat being
    valid; :attr:`ii` ``= J / B`` cycles per vector; the exact model is :meth:`RBFPlan.timing`.

    Raises
    ------
    TypeError, ValueError
        As :class:`hw.plan.rbf.RBFPlan`.
    """

    plan_class = RBFPlan

    features = delegate()
    units = delegate()
    in_fmt = delegate()
    centers = delegate()
    acc_fmt = delegate()
    in_lanes = delegate()
    in_beats = delegate()
    frame_cycles = delegate()
    multipliers = delegate()

    @classmethod
    def from_layer(cls, layer, *, in_lanes: int = 1):
        """The engine of an ``rbf`` :class:`golden.qnet.Layer`: :meth:`hw.plan.rbf.RBFPlan.from_layer`."""
        return cls.from_plan(RBFPlan.from_layer(layer, in_lanes=in_lanes), src_loc_at=1)

    def elaborate(self, platform):
        m = Module()
        plan = self._plan
        units, lanes, beats = plan.units, plan.in_lanes, plan.in_beats
        in_shape, acc_shape = fmt_shape(plan.in_fmt), fmt_shape(plan.acc_fmt)
        sq_shape = plan.square_shape

        c_layout = data.ArrayLayout(data.ArrayLayout(in_shape, lanes), units)
        # (a ROM gets at least 2 words: a 1-word memory would have a zero-width address.)
        m.submodules.c_rom = c_rom = Memory(shape=c_layout, depth=max(beats, 2), init=plan.center_words())
        c_port = c_rom.read_port()

        en = Signal()                    # the pipeline moves (output empty or being taken)
        accept = Signal()
        m.d.comb += [en.eq(~self.o.valid | self.o.ready), self.i.ready.eq(en),
                     accept.eq(self.i.valid & en)]

        # stage 0 -> 1: beat counter, input register; the ROM word of the beat is read beside it.
        beat = Signal(range(max(beats, 2)))
        is_last = Signal()
        m.d.comb += [is_last.eq(self.i.payload.last | (beat == beats - 1)),
                     c_port.addr.eq(beat), c_port.en.eq(en)]
        s1_valid, s1_first, s1_last = Signal(), Signal(), Signal()
        s1_x = Signal(data.ArrayLayout(in_shape, lanes))
        with m.If(accept):
            m.d.sync += beat.eq(Mux(is_last, 0, beat + 1))
        with m.If(en):
            m.d.sync += [s1_valid.eq(self.i.valid), s1_first.eq(beat == 0), s1_last.eq(is_last),
                         s1_x.eq(self.i.payload.data)]

        # stage 1 -> 2: subtract and square.
        s2_valid, s2_first, s2_last = Signal(), Signal(), Signal()
        s2_sq = Signal(data.ArrayLayout(data.ArrayLayout(sq_shape, lanes), units))
        with m.If(en):
            m.d.sync += [s2_valid.eq(s1_valid), s2_first.eq(s1_first), s2_last.eq(s1_last)]
            for u in range(units):
                for b in range(lanes):
                    diff = Signal(range(-(1 << plan.in_fmt.bits), 1 << plan.in_fmt.bits), name=f"diff_{u}_{b}")
                    m.d.comb += diff.eq(s1_x[b] - c_port.data[u][b])
                    m.d.sync += s2_sq[u][b].eq(diff * diff)

        # stage 2 -> 3: accumulate; the output register takes the sums at the vector's last beat.
        acc = Signal(data.ArrayLayout(acc_shape, units))
        out_valid = Signal()
        out = Signal(data.ArrayLayout(acc_shape, units))
        m.d.comb += [self.o.valid.eq(out_valid), self.o.payload.data.eq(out), self.o.payload.last.eq(1)]
        with m.If(en):
            m.d.sync += out_valid.eq(s2_valid & s2_last)
            with m.If(s2_valid):
                for u in range(units):
                    total = Signal(acc_shape, name=f"sum_{u}")
                    m.d.comb += total.eq(Mux(s2_first, 0, acc[u]) + sum(s2_sq[u][b] for b in range(lanes)))
                    m.d.sync += acc[u].eq(total)
                    with m.If(s2_last):
                        m.d.sync += out[u].eq(total)
        return m
