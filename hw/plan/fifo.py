"""Plan of :class:`hw.components.fifo.WideFIFO` and the one definition of the 64-bit pieces that
the wide FIFO and :class:`hw.components.slice.RegisterSlice` cut their words into."""

from dataclasses import dataclass

from hw.plan.params import check_int

__all__ = ["FIFOPlan", "SLICE_BITS", "slice_bounds"]

#: Bits of one storage slice (one pointer copy each).
SLICE_BITS = 64


def slice_bounds(width: int) -> list:
    """``[(lo, hi), ...]``: the bit ranges of a ``width``-bit word cut into pieces of at most
    :data:`SLICE_BITS` bits, low bits first (one empty piece ``(0, 0)`` for ``width`` 0). Used by
    :class:`hw.components.fifo.WideFIFO` and :class:`hw.components.slice.RegisterSlice`, whose
    pieces each get their own copies of the control registers."""
    return [(lo, min(lo + SLICE_BITS, width)) for lo in range(0, width, SLICE_BITS)] or [(0, 0)]


@dataclass(frozen=True, kw_only=True)
class FIFOPlan:
    """A first-word-fall-through FIFO of ``depth`` words of ``width`` bits, stored in slices of
    at most :data:`SLICE_BITS` bits (:class:`hw.components.fifo.WideFIFO`).

    Parameters
    ----------
    width : int
        Word width in bits (``>= 1``).
    depth : int
        Words it holds (``>= 1``).

    Raises
    ------
    TypeError, ValueError
        ``width`` or ``depth`` not an int, or below 1.
    """

    width: int
    depth: int

    def __post_init__(self):
        object.__setattr__(self, "width", check_int("width", self.width))
        object.__setattr__(self, "depth", check_int("depth", self.depth))

    @property
    def slices(self):
        """Storage slices: ``ceil(width / SLICE_BITS)``."""
        return len(slice_bounds(self.width))

    @property
    def words(self):
        """Words of each slice's memory: ``depth + 1`` (the word at the write pointer is never
        occupied, so the memories are written every cycle without a write enable)."""
        return self.depth + 1

    @property
    def latency(self):
        """Cycles from a write to the word being readable: 1."""
        return 1

    @property
    def ii(self):
        """Cycles between words in and out: 1."""
        return 1

    def resources(self) -> dict:
        """An ESTIMATE (not a synthesis result): the slices' LUT RAM (``width * (depth + 1)``
        bits) and the registers: two pointers per slice and the level counter."""
        pointer = max(1, (self.words - 1).bit_length())
        return {"multipliers": 0, "rom_bits": 0, "ram_bits": self.width * self.words,
                "register_bits": 2 * pointer * self.slices + (self.depth).bit_length()}
