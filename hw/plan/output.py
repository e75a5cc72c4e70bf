"""Plan of the classifier output stage (:class:`hw.components.output.ClassifierOutput`): the
logits (or RBF distances) of one image, then its class index, framed with ``last``."""

from dataclasses import dataclass

from amaranth.hdl import unsigned
from amaranth.lib import data

from golden.qformat import QFormat
from hw.plan.params import beat_layout, check_fmt, check_int, fmt_shape
from hw.plan.timing import Timing

__all__ = ["SELECTS", "OutputPlan"]

#: How the class is chosen: ``max`` (argmax of logits) or ``min`` (argmin of RBF distances).
SELECTS = ("max", "min")


@dataclass(frozen=True, kw_only=True)
class OutputPlan:
    """Collect the ``classes`` logits of an image (``lanes`` per beat) and send them one per beat,
    then the class index: :func:`golden.arith.argmax_first` (``select="max"``), or for RBF
    distances :func:`golden.arith.argmin_first` (``select="min"``); ties go to the lower index.

    Parameters
    ----------
    logit_fmt : QFormat
        Format of the logits (signed or unsigned, 2..32 bits).
    classes : int
        Logits per image (10 for LeNet-5), ``>= 2``.
    lanes : int
        Logits per input beat; must divide ``classes``.
    out_width : int
        Width of the output word (bits), at least ``logit_fmt.bits`` and enough for the class index.
    select : str
        ``"max"`` (logits; default) or ``"min"`` (LeNet-5's RBF distances: the class is the unit
        with the smallest distance, LeCun et al. 1998 Sec. II-B).

    Raises
    ------
    TypeError, ValueError
        Bad formats, ``lanes`` not dividing ``classes``, ``out_width`` too narrow, an unknown
        ``select``.
    """

    logit_fmt: QFormat
    classes: int
    lanes: int
    out_width: int
    select: str = "max"

    def __post_init__(self):
        check_fmt("logit_fmt", self.logit_fmt, (2, 32))
        classes = check_int("classes", self.classes, 2)
        lanes = check_int("lanes", self.lanes, 1, classes)
        if classes % lanes:
            raise ValueError(f"lanes ({lanes}) must divide classes ({classes})")
        need = max(self.logit_fmt.bits, (classes - 1).bit_length())
        out_width = check_int("out_width", self.out_width, need)
        if self.select not in SELECTS:
            raise ValueError(f"select must be one of {SELECTS}, not {self.select!r}")
        for name, value in (("classes", classes), ("lanes", lanes), ("out_width", out_width)):
            object.__setattr__(self, name, value)

    @property
    def in_layout(self):
        """Input payload: ``lanes`` logits of ``logit_fmt`` and ``last``."""
        return beat_layout(fmt_shape(self.logit_fmt), self.lanes)

    @property
    def out_layout(self):
        """Output payload: one ``unsigned(out_width)`` word and ``last``."""
        return data.StructLayout({"data": unsigned(self.out_width), "last": 1})

    @property
    def in_beats(self):
        """Input beats per image: ``classes / lanes``."""
        return self.classes // self.lanes

    @property
    def out_beats(self):
        """Output beats per image: the ``classes`` logits and the class index."""
        return self.classes + 1

    @property
    def latency(self):
        """Cycles from the image's last accepted input beat to its first output beat: 1."""
        return 1

    @property
    def frame_cycles(self):
        """Cycles per image at full rate: ``in_beats`` to collect + ``classes + 1`` to send."""
        return self.in_beats + self.out_beats

    @property
    def ii(self):
        """Cycles between images in steady state: :attr:`frame_cycles` (input is refused while
        an image is being sent)."""
        return self.frame_cycles

    def timing(self, avail):
        """Exact timing (see :mod:`hw.plan.timing`): input refused while an image is being sent."""
        accept, out = [], []
        busy_until = -1          # last cycle in which an output beat of the previous image is sent
        prev = None
        for k, a in enumerate(avail):
            t = a if prev is None else max(a, prev + 1)
            t = max(t, busy_until + 1)
            accept.append(t)
            prev = t
            if (k + 1) % self.in_beats == 0:
                first = t + self.latency
                out.extend(range(first, first + self.classes + 1))
                busy_until = first + self.classes
        return Timing(accept, out)

    def resources(self) -> dict:
        """An ESTIMATE (not a synthesis result): the logit registers, the running maximum and
        its index, the beat and output counters and the state bit."""
        logit, index = self.logit_fmt.bits, (self.classes - 1).bit_length()
        counters = max(1, (self.in_beats - 1).bit_length()) + self.classes.bit_length() + 1
        return {"multipliers": 0, "rom_bits": 0, "ram_bits": 0,
                "register_bits": (self.classes + 1) * logit + index + counters}
