"""Plan of a sliding-window generator (:class:`hw.components.window.WindowGenerator`): sizes,
the walk over the padded frames and its exact cycle model, memory bits.

Plain Python (Amaranth shapes only, no elaboratable).
"""

from dataclasses import InitVar, dataclass

from amaranth import Shape

from golden.qformat import QFormat
from hw.plan.params import check_int, fmt_shape
from hw.plan.timing import Timing

__all__ = ["WindowPlan", "elem_shape_of"]


def elem_shape_of(elem_shape=None, fmt=None):
    """The element shape from exactly one of *elem_shape* (an Amaranth shape) or *fmt* (QFormat)."""
    if (elem_shape is None) == (fmt is None):
        raise TypeError("give exactly one of elem_shape (an Amaranth shape) and fmt (a QFormat), "
                        f"not elem_shape={elem_shape!r}, fmt={fmt!r}")
    if fmt is not None:
        if not isinstance(fmt, QFormat):
            raise TypeError(f"fmt must be a golden.qformat.QFormat, not {fmt!r}")
        return Shape.cast(fmt_shape(fmt))
    try:
        return Shape.cast(elem_shape)
    except TypeError:
        raise TypeError(f"elem_shape must be an Amaranth shape, not {elem_shape!r}") from None


@dataclass(frozen=True, kw_only=True)
class WindowPlan:
    """KxK windows (stride 1) of a zero-padded ``channels x height x width`` map streamed in
    raster order, ``lanes`` channels per beat (the hardware: :class:`hw.components.window.WindowGenerator`,
    whose docstring describes the structure and the timing model implemented here).

    Parameters
    ----------
    elem_shape : Amaranth shape, optional
        Shape of one element; give this or ``fmt``. After construction: the element shape
        (resolved from ``fmt`` when that was given).
    fmt : QFormat, optional
        Format of the elements (init only).
    channels, width, height, kernel : int
        ``C``, ``W``, ``H`` (unpadded) and ``K``, each ``>= 1``, ``K <= W + 2 pad``, ``K <= H + 2 pad``.
    pad : int
        Zero rows/columns on each side, ``>= 0``.
    lanes : int
        Channels per beat; divides ``channels``.

    Latency
    -------
    :attr:`latency` ``= 1``, :attr:`ii` ``= 1`` padded beat per cycle, :attr:`frame_cycles` ``=
    Hp * Wp * G``; :meth:`timing` is exact with the output always ready.

    Raises
    ------
    TypeError, ValueError
        As :class:`hw.components.window.WindowGenerator`.
    """

    elem_shape: object = None
    fmt: InitVar[QFormat | None] = None
    channels: int
    width: int
    height: int
    kernel: int
    pad: int = 0
    lanes: int

    def __post_init__(self, fmt):
        def put(name, value):
            object.__setattr__(self, name, value)

        put("elem_shape", elem_shape_of(self.elem_shape, fmt))
        for name, lo in (("channels", 1), ("width", 1), ("height", 1), ("kernel", 1), ("pad", 0), ("lanes", 1)):
            put(name, check_int(name, getattr(self, name), lo))
        if self.channels % self.lanes:
            raise ValueError(f"lanes ({self.lanes}) must divide channels ({self.channels})")
        for name, size in (("width", self.width), ("height", self.height)):
            if self.kernel > size + 2 * self.pad:
                raise ValueError(f"kernel {self.kernel} is larger than the padded {name} "
                                 f"{size} + 2 * {self.pad}")

    @property
    def groups(self):
        """Channel groups G = channels / lanes (beats per position)."""
        return self.channels // self.lanes

    @property
    def padded_width(self):
        """Wp = width + 2 pad."""
        return self.width + 2 * self.pad

    @property
    def padded_height(self):
        """Hp = height + 2 pad."""
        return self.height + 2 * self.pad

    @property
    def out_width(self):
        """Output positions per row, Wp - K + 1."""
        return self.padded_width - self.kernel + 1

    @property
    def out_height(self):
        """Output rows, Hp - K + 1."""
        return self.padded_height - self.kernel + 1

    @property
    def in_beats(self):
        """Input beats per frame, H * W * G."""
        return self.height * self.width * self.groups

    @property
    def out_beats(self):
        """Windows (output beats) per frame, out_height * out_width * G."""
        return self.out_height * self.out_width * self.groups

    @property
    def frame_cycles(self):
        """Cycles per frame in steady state (padded beats), Hp * Wp * G."""
        return self.padded_height * self.padded_width * self.groups

    @property
    def ii(self):
        """Cycles per padded beat (one input beat per cycle inside the map): 1."""
        return 1

    @property
    def latency(self):
        """Cycles from processing the beat that completes a window to that window being valid."""
        return 1

    @property
    def tail_latency(self):
        """Cycles from a frame's last input beat to its last window: 1 + pad * G * (Wp + 1)."""
        return 1 + self.pad * self.groups * (self.padded_width + 1)

    def timing(self, avail, *, start=0):
        """Exact cycle timing with the output always ready (see the class docstring and
        :mod:`hw.plan.timing`).

        Parameters
        ----------
        avail : sequence of int
            Earliest offer cycle of each input beat (non-decreasing): well-formed frames of
            :attr:`in_beats` beats back to back, ``last`` on each frame's final beat. A trailing
            incomplete frame is walked up to its first missing beat.
        start : int
            The first cycle out of reset, in which the frame counter processes its first padded
            beat (in the same cycle numbering as ``avail``).

        Returns
        -------
        hw.plan.timing.Timing
            ``accept``: one cycle per input beat; ``out``: the cycle each window is valid (and,
            the output being ready, taken).
        """
        accept, windows = self.walk(avail, start, lambda valid, group: valid)
        return Timing(accept, windows)

    def walk(self, avail, start, take):
        """The frame counter's walk over the padded frames, for timing models of this generator
        followed by a consumer whose ready depends on the window offered.

        ``take(valid, group)`` is called, in order, for each window (``group``: its channel
        group) with the cycle it becomes valid, and returns the cycle in which the consumer takes
        it (``>= valid``); the generator processes no further beat before that cycle. Returns
        ``(accept, valid)``: the accept cycle of each input beat, the valid cycle of each window.
        """
        k, p, g_count = self.kernel, self.pad, self.groups
        row_beats = self.padded_width * g_count
        in_lo, in_hi = p * g_count, (p + self.width) * g_count
        first_window = (k - 1) * g_count
        accept, windows = [], []
        n, beat = len(avail), 0
        t, taken = start - 1, start
        while beat < n:
            for y in range(self.padded_height):
                row_in = p <= y < p + self.height
                row_out = y >= k - 1
                for a in range(row_beats):
                    t = max(t + 1, taken)
                    if row_in and in_lo <= a < in_hi:
                        if beat == n:
                            return accept, windows
                        t = max(t, avail[beat])
                        accept.append(t)
                        beat += 1
                    if row_out and a >= first_window:
                        windows.append(t + 1)
                        taken = take(t + 1, a % g_count)
        return accept, windows

    @property
    def line_buffer_bits(self):
        """Bits of line-buffer memory: (K - 1) rows of Wp * G beats of lanes elements."""
        return (self.kernel - 1) * self.padded_width * self.groups * self.lanes * self.elem_shape.width

    @property
    def window_registers(self):
        """Elements held in the window shift register: ((K - 1) G + 1) K lanes."""
        return ((self.kernel - 1) * self.groups + 1) * self.kernel * self.lanes

    @property
    def window_bits(self):
        """Bits of one window beat: ``K * K * lanes`` elements and ``last``."""
        return self.kernel * self.kernel * self.lanes * self.elem_shape.width + 1

    def resources(self) -> dict:
        """ESTIMATE (not a synthesis result): no multipliers or ROM; ``ram_bits`` the line
        buffers; ``register_bits`` the window shift register and the output register."""
        return {"multipliers": 0, "rom_bits": 0, "ram_bits": self.line_buffer_bits,
                "register_bits": self.window_registers * self.elem_shape.width + self.window_bits}
