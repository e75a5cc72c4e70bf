"""Classifier output stage: the logits of one image, then its class index, framed with ``last``.

The hardware form of :func:`golden.arith.argmax_first` (ties go to the lower class index), or with
``select="min"`` of :func:`golden.arith.argmin_first` (the argmin classifier of LeNet-5's RBF
distances, ties to the lower index).
"""

from amaranth import Module, Signal
from amaranth.lib import data

from golden.qformat import QFormat

from hw.components.common import PlannedComponent, delegate, fmt_shape
from hw.plan.output import OutputPlan

__all__ = ["ClassifierOutput"]


class ClassifierOutput(PlannedComponent):
    """Collects the ``classes`` logits of an image and emits them one per beat, then the class.

    Parameters
    ----------
    logit_fmt : QFormat
        Format of the logits (signed or unsigned, 2..32 bits).
    classes : int
        Logits per image (10 for LeNet-5).
    lanes : int
        Logits per input beat; must divide ``classes``.
    out_width : int
        Width of the output word (bits), at least ``logit_fmt.bits`` and enough for the class
        index; logits are sign- (or zero-) extended, the class index is zero-extended.
    select : str
        ``"max"`` (default): the class is the first largest logit; ``"min"``: the first smallest
        value (RBF distances).

    Members
    -------
    i : In(stream.Signature(beat_layout(logit shape, lanes)))
        Logits in class order, ``lanes`` per beat; ``last`` on the image's final beat (not
        needed: the stage counts ``classes / lanes`` beats per image).
    o : Out(stream.Signature(StructLayout({"data": unsigned(out_width), "last": 1})))
        ``classes + 1`` beats per image: logit 0 .. logit ``classes-1`` (two's complement in
        ``out_width`` bits), then the class index; ``last`` on the class-index beat.

    Latency
    -------
    The first output beat is valid 1 cycle after the image's last input beat is accepted; the
    following beats follow one per cycle while ``o.ready`` is high. Input is refused while the
    ``classes + 1`` output beats are being sent (:meth:`timing` models it exactly).

    Raises
    ------
    TypeError, ValueError
        Bad formats, ``lanes`` not dividing ``classes``, ``out_width`` too narrow.
    """

    plan_class = OutputPlan

    def __init__(self, *, logit_fmt: QFormat, classes: int, lanes: int, out_width: int, select: str = "max"):
        self._build(OutputPlan(logit_fmt=logit_fmt, classes=classes, lanes=lanes, out_width=out_width,
                               select=select))

    logit_fmt = delegate("Format of the logits (QFormat).")
    classes = delegate("Logits per image.")
    lanes = delegate("Logits per input beat.")
    out_width = delegate("Output word width (bits).")
    select = delegate("``max`` (argmax) or ``min`` (argmin).")
    in_beats = delegate("Input beats per image: ``classes / lanes``.")
    frame_cycles = delegate("Cycles per image at full rate.")

    def elaborate(self, platform):
        m = Module()
        n, lanes = self._plan.classes, self._plan.lanes
        logits = Signal(data.ArrayLayout(fmt_shape(self._plan.logit_fmt), n))
        best = Signal(fmt_shape(self._plan.logit_fmt))
        best_idx = Signal(range(n))
        beat = Signal(range(max(self.in_beats, 2)))       # (1 beat per image: no zero-width counter)
        index = Signal(range(n + 1))

        with m.FSM():
            with m.State("COLLECT"):
                m.d.comb += self.i.ready.eq(1)
                with m.If(self.i.valid):
                    # Running argmax (argmin) over the lanes of this beat, in class order; strictly
                    # greater (smaller) replaces, so ties keep the lower index.
                    cur, cur_idx = best, best_idx
                    for l in range(lanes):
                        value = self.i.payload.data[l]
                        cls = beat * lanes + l
                        better = (value < cur) if self._plan.select == "min" else (value > cur)
                        take = (beat == 0) & (l == 0) | better
                        nxt, nxt_idx = Signal.like(best, name=f"best_{l}"), Signal.like(best_idx, name=f"idx_{l}")
                        m.d.comb += [nxt.eq(cur), nxt_idx.eq(cur_idx)]
                        with m.If(take):
                            m.d.comb += [nxt.eq(value), nxt_idx.eq(cls)]
                        cur, cur_idx = nxt, nxt_idx
                    m.d.sync += [best.eq(cur), best_idx.eq(cur_idx)]
                    with m.Switch(beat):
                        for b in range(self.in_beats):
                            with m.Case(b):
                                m.d.sync += [logits[b * lanes + l].eq(self.i.payload.data[l]) for l in range(lanes)]
                    with m.If(beat == self.in_beats - 1):
                        m.d.sync += [beat.eq(0), index.eq(0)]
                        m.next = "SEND"
                    with m.Else():
                        m.d.sync += beat.eq(beat + 1)
            with m.State("SEND"):
                m.d.comb += self.o.valid.eq(1)
                with m.Switch(index):
                    for c in range(n):
                        with m.Case(c):
                            m.d.comb += self.o.payload.data.eq(logits[c])
                    with m.Default():
                        m.d.comb += [self.o.payload.data.eq(best_idx), self.o.payload.last.eq(1)]
                with m.If(self.o.ready):
                    m.d.sync += index.eq(index + 1)
                    with m.If(index == n):
                        m.next = "COLLECT"
        return m
