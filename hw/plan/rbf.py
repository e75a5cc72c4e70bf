"""Plan of the squared-distance engine (:class:`hw.components.rbf.SquaredDistanceEngine`): LeNet-5's
Euclidean RBF output units as hardware, its exact cycle model and its resource estimate.

Plain Python: no Amaranth elaboratable is built here.
"""

from dataclasses import dataclass
from math import prod

import numpy as np
from amaranth.hdl import unsigned

from golden.arith import distance_range
from golden.limits import ACC_BITS_RANGE, WIDTH_RANGE
from golden.qformat import QFormat
from hw.plan.params import (
    beat_layout,
    check_divides,
    check_fmt,
    check_int,
    check_int_array,
    fmt_shape,
)
from hw.plan.timing import Timing, offers

__all__ = ["PIPELINE_STAGES", "RBFPlan"]

#: Register stages from an accepted input beat to the output register: the input register (with
#: the centre ROM's registered read beside it), the squares register, and the accumulator /
#: output register. The distances of a vector are valid this many cycles after its last beat.
PIPELINE_STAGES = 3


@dataclass(frozen=True, kw_only=True, eq=False)
class RBFPlan:
    """Squared Euclidean distances ``y[i] = sum_j (x[j] - c[i, j])**2`` of a streamed vector to
    ``units`` fixed centres, all units in parallel (:func:`golden.arith.squared_distances`;
    LeCun et al. 1998, Sec. II-B, Eq. 7).

    Parameters
    ----------
    features : int
        ``J``, elements of the input vector (84 for LeNet-5's F6).
    units : int
        ``I``, RBF units (10 for LeNet-5), ``>= 2``.
    in_fmt : QFormat
        Format of the inputs and of the centres (2..16 bits, signed or unsigned).
    centers : array of int, shape (I, J)
        The units' parameters in ``in_fmt`` (LeNet-5: the +1/-1 bitmaps as ``+-2**in_fmt.frac``).
    acc_fmt : QFormat
        Unsigned accumulator and output format (2..46 bits); must hold
        :func:`golden.arith.distance_range` of ``centers`` and ``in_fmt``.
    in_lanes : int
        ``B``, input elements per beat (divides ``J``; default 1).

    Datapath
    --------
    Per input beat, for every unit ``i`` and lane ``b``: ``d = x[b] - c[i, j]`` (``in_fmt.bits + 1``
    bits, signed), ``d * d`` (``2 * in_fmt.bits`` bits, unsigned: ``|d| <= 2**in_fmt.bits - 1``),
    and the ``B`` squares are added to unit ``i``'s accumulator (``acc_fmt``), which starts from 0
    at the vector's first beat. ``I * B`` squarers (:attr:`multipliers`).

    Latency
    -------
    :attr:`latency` ``=`` :data:`PIPELINE_STAGES` ``= 3`` cycles from a vector's last accepted beat
    to its distances being valid (one output beat of ``I`` lanes). :attr:`ii` ``=`` :attr:`frame_cycles`
    ``= J / B`` cycles per vector: one beat per cycle, never refused while the output is ready.

    Timing model (:meth:`timing`, exact for the emitted Verilog; conventions in :mod:`hw.plan.timing`):
    ``accept[k] = max(avail[k], accept[k-1] + 1)`` and the output beat of vector ``n`` is valid in
    cycle ``accept[last beat of n] + 3``. (With the output refused, the whole pipeline holds,
    ``i.ready`` low, until it is taken.)

    Raises
    ------
    TypeError, ValueError
        Parameters of the wrong type; sizes below their minimum; ``in_lanes`` not dividing
        ``features``; widths outside 2..16 (``in_fmt``) or 2..46 (``acc_fmt``); a signed
        ``acc_fmt``; centres outside ``in_fmt`` or of the wrong shape; an ``acc_fmt`` too narrow
        for the worst-case distance.
    """

    features: int
    units: int
    in_fmt: QFormat
    centers: np.ndarray
    acc_fmt: QFormat
    in_lanes: int = 1

    def __post_init__(self):
        def put(name, value):
            object.__setattr__(self, name, value)

        put("features", check_int("features", self.features))
        put("units", check_int("units", self.units, 2))
        check_fmt("in_fmt", self.in_fmt, WIDTH_RANGE)
        check_fmt("acc_fmt", self.acc_fmt, ACC_BITS_RANGE, signed=False)
        put("in_lanes", check_divides("in_lanes", self.in_lanes, self.features, "features"))
        put("centers", check_int_array("centers", self.centers, (self.units, self.features), self.in_fmt))
        _, hi = distance_range(self.centers, self.in_fmt)
        if hi > self.acc_fmt.max:
            raise ValueError(f"acc_fmt {self.acc_fmt} ({self.acc_fmt.bits} bits) is too narrow: the "
                             f"worst-case distance is {hi} ({hi.bit_length()} bits; "
                             f"golden.arith.distance_format gives the right width)")

    @classmethod
    def from_layer(cls, layer, *, in_lanes: int = 1):
        """The plan of an ``rbf`` :class:`golden.qnet.Layer` (its ``weights`` are the centres)."""
        if getattr(layer, "kind", None) != "rbf":
            raise ValueError(f"RBFPlan.from_layer needs an rbf layer, not {layer!r}")
        return cls(features=int(prod(layer.in_shape)), units=layer.out_shape[0], in_fmt=layer.in_fmt,
                   centers=layer.weights, acc_fmt=layer.acc_fmt, in_lanes=in_lanes)

    # -- derived values ---------------------------------------------------------------------
    @property
    def w_fmt(self):
        """Format of the centres: ``in_fmt`` (they are subtracted from the inputs as they are)."""
        return self.in_fmt

    @property
    def square_shape(self):
        """Shape of one square: ``unsigned(2 * in_fmt.bits)`` (``|x - c| <= 2**bits - 1``)."""
        return unsigned(2 * self.in_fmt.bits)

    @property
    def in_layout(self):
        """Input payload: ``in_lanes`` elements of ``in_fmt`` and ``last``."""
        return beat_layout(fmt_shape(self.in_fmt), self.in_lanes)

    @property
    def out_layout(self):
        """Output payload: the ``units`` distances (``unsigned(acc_fmt.bits)``, unit 0 in lane 0)
        and ``last`` (set: one beat per vector)."""
        return beat_layout(fmt_shape(self.acc_fmt), self.units)

    @property
    def in_beats(self):
        """Input beats per vector, ``J / B``."""
        return self.features // self.in_lanes

    @property
    def latency(self):
        """Cycles from a vector's last accepted beat to its distances being valid: :data:`PIPELINE_STAGES`."""
        return PIPELINE_STAGES

    @property
    def frame_cycles(self):
        """Cycles per vector at full rate: ``J / B``."""
        return self.in_beats

    @property
    def ii(self):
        """Cycles between vectors in steady state: :attr:`frame_cycles`."""
        return self.frame_cycles

    @property
    def multipliers(self):
        """Squarers: ``units * in_lanes``."""
        return self.units * self.in_lanes

    def center_words(self):
        """Centre ROM image: word ``k`` (input beat ``k``) holds ``c[i, k*B + b]`` at ``[i][b]``."""
        b = self.in_lanes
        return [[[int(self.centers[i, k * b + l]) for l in range(b)] for i in range(self.units)]
                for k in range(self.in_beats)]

    def timing(self, avail):
        """Exact cycle timing with the output always ready (class docstring): one output beat per
        complete vector of ``J / B`` beats, valid :attr:`latency` cycles after its last beat."""
        accept = offers(avail)
        out = [accept[k] + self.latency for k in range(self.in_beats - 1, len(accept), self.in_beats)]
        return Timing(accept, out)

    def resources(self) -> dict:
        """ESTIMATE (not a synthesis result): ``multipliers`` the squarers; ``rom_bits`` the centre
        ROM; ``register_bits`` the input, centre, squares, accumulator and output registers and
        the beat counter."""
        u, b, bits = self.units, self.in_lanes, self.in_fmt.bits
        regs = (b * bits + u * b * bits + u * b * 2 * bits + 2 * u * self.acc_fmt.bits
                + max(1, (self.in_beats - 1).bit_length()) + 6)
        return {"multipliers": self.multipliers, "rom_bits": self.units * self.features * bits,
                "ram_bits": 0, "register_bits": regs}
