"""Plan of a MAC array (:class:`hw.components.mac.MACArray`): parameters, latency, cycle model.

Plain Python: no Amaranth elaboratable is built here. The gateware is built from a
:class:`MACPlan` by :meth:`hw.components.mac.MACArray.from_plan`; the convolution and dense
plans (:mod:`hw.plan.conv`, :mod:`hw.plan.dense`) take the MAC latency from here.
"""

from dataclasses import InitVar, dataclass

from golden.qformat import QFormat
from golden.limits import ACC_BITS_RANGE, WIDTH_RANGE

from hw.plan.params import check_fmt, check_int
from hw.plan.timing import Timing, offers
from hw.vendor import VENDORS, vendor

__all__ = ["MACPlan", "ADDER_LEVELS_PER_STAGE", "OPERAND_STAGES", "MUL_STAGES", "DSP_PRIMITIVES",
           "ACC_BITS_RANGE"]

#: Adder levels between two pipeline registers (the accumulate counts as one level). Two 20..30-bit
#: carry chains in series fit comfortably in 10 ns on an ECP5 (-6 and faster grades).
ADDER_LEVELS_PER_STAGE = 2
#: Operand registers in front of each multiplier: the first takes the step wherever its source
#: is (a wide window bank, a memory), the second sits next to the multiplier. With one register
#: only, the window bank of C3 had to reach registers next to DSP blocks all over the die and its
#: load enable became the critical path (11.5 ns of routing on the LFE5U-85F).
OPERAND_STAGES = 2
#: Registers from the step to the adder tree: the operand registers, the product, the product
#: again. The multipliers sit in DSP blocks at fixed places on the die; with a register on each
#: side that belongs to this multiplier alone, the placer can put both next to the block, so no
#: route from the step's source or to the adder tree is in series with the multiplier's own
#: delay (on an LFE5U-25F, -6, registered operands straight into the product register gave
#: 74.7 MHz: 4 ns to the DSP, 3.9 ns in it, 5 ns back).
MUL_STAGES = OPERAND_STAGES + 2
#: Vendor modules whose DSP blocks a MAC array can instantiate itself (``dsp_vendor``, alias
#: ``dsp_primitive``): :data:`hw.vendor.VENDORS`.
DSP_PRIMITIVES = VENDORS


def vendor_argument(dsp_vendor, dsp_primitive):
    """``(value, keyword)`` of the DSP vendor given as ``dsp_vendor`` or its old alias
    ``dsp_primitive`` (the keyword names the parameter in error messages)."""
    if dsp_primitive is None:
        return dsp_vendor, "dsp_vendor"
    if dsp_vendor is not None and dsp_vendor != dsp_primitive:
        raise ValueError(f"dsp_vendor={dsp_vendor!r} and its alias dsp_primitive={dsp_primitive!r} differ; "
                         f"give one of them")
    return dsp_primitive, "dsp_primitive"


@dataclass(frozen=True, kw_only=True)
class MACPlan:
    """``lanes`` multiply-accumulators of ``taps`` products per step (see
    :class:`hw.components.mac.MACArray` for the datapath and the stream members).

    Parameters
    ----------
    lanes, taps : int
        Parallel accumulators and products per lane per step (``>= 1``).
    a_fmt, w_fmt : QFormat
        Activation and weight formats (2..16 bits).
    acc_fmt : QFormat
        Accumulator / bias / result format (2..46 bits).
    user_width : int
        Side-band bits carried from a ``last`` step to its result (``>= 0``).
    fifo_depth : int or None
        Output FIFO entries, ``>= latency + 1``; ``None``: ``latency + 1``, resolved at
        construction (so :attr:`fifo_depth` is always an int; give ``fifo_depth=None`` to
        ``dataclasses.replace`` to derive it again).
    dsp_multipliers : int or None
        Products (lane-major) built as DSP products, ``0 .. lanes * taps``; the others are split
        LUT products. ``None``: every product is a DSP product left to the synthesis tool.
    dsp_vendor : str or None
        Module of :mod:`hw.vendor` whose ``dsp_product`` builds the DSP products (one of
        :data:`DSP_PRIMITIVES`; needs ``dsp_multipliers``), or None (``a * w``, inferred).
    dsp_primitive : str or None
        Old name of ``dsp_vendor`` (init only; read back as :attr:`dsp_primitive`).

    Latency
    -------
    :attr:`latency` ``= MUL_STAGES + tree_stages + 1`` (taps 1, 5, 25: 5, 6, 7 cycles), :attr:`ii`
    ``= 1``; :meth:`timing` is the exact model with the output always ready.

    Raises
    ------
    TypeError, ValueError
        As :class:`hw.components.mac.MACArray`.
    """

    lanes: int
    taps: int
    a_fmt: QFormat
    w_fmt: QFormat
    acc_fmt: QFormat
    user_width: int = 0
    fifo_depth: int | None = None
    dsp_multipliers: int | None = None
    dsp_vendor: str | None = None
    dsp_primitive: InitVar[str | None] = None

    def __post_init__(self, dsp_primitive):
        def put(name, value):
            object.__setattr__(self, name, value)

        put("lanes", check_int("lanes", self.lanes))
        put("taps", check_int("taps", self.taps))
        check_fmt("a_fmt", self.a_fmt, WIDTH_RANGE)
        check_fmt("w_fmt", self.w_fmt, WIDTH_RANGE)
        check_fmt("acc_fmt", self.acc_fmt, ACC_BITS_RANGE)
        put("user_width", check_int("user_width", self.user_width, lo=0))
        if self.dsp_multipliers is not None:
            put("dsp_multipliers", check_int("dsp_multipliers", self.dsp_multipliers, 0, self.lanes * self.taps))
        name, key = vendor_argument(self.dsp_vendor, dsp_primitive)
        if name is not None:
            if name not in DSP_PRIMITIVES:
                raise ValueError(f"{key} must be None or one of {', '.join(DSP_PRIMITIVES)}, not {name!r}")
            if self.dsp_multipliers is None:
                raise ValueError(f"{key}={name!r} needs dsp_multipliers (how many products go into DSP blocks)")
            if vendor(name).DSP_LATENCY != MUL_STAGES - OPERAND_STAGES:
                # The block's registers replace the second operand and the first product register.
                raise ValueError(f"{key}={name!r}: a DSP block of {vendor(name).DSP_LATENCY} cycles does not "
                                 f"fit the {MUL_STAGES - OPERAND_STAGES} register stages it replaces")
        put("dsp_vendor", name)
        if self.fifo_depth is None:
            put("fifo_depth", self.latency + 1)
        else:
            put("fifo_depth", check_int("fifo_depth", self.fifo_depth, lo=self.latency + 1))

    @property
    def adder_levels(self):
        """Adder levels per lane: ``ceil(log2(taps))`` tree levels plus the accumulate."""
        return (self.taps - 1).bit_length() + 1

    @property
    def tree_stages(self):
        """Pipeline registers inside the adder tree (between the product and accumulator registers)."""
        return -(-self.adder_levels // ADDER_LEVELS_PER_STAGE) - 1

    @property
    def latency(self):
        """Cycles from an accepted ``last`` step to ``o.valid``: ``MUL_STAGES + tree_stages + 1``."""
        return MUL_STAGES + self.tree_stages + 1

    @property
    def ii(self):
        """Cycles between accepted steps in steady state: 1."""
        return 1

    @property
    def multipliers(self):
        """Products per step: ``lanes * taps``."""
        return self.lanes * self.taps

    def is_dsp_product(self, lane: int, tap: int) -> bool:
        """Whether product ``(lane, tap)`` is a DSP product (the first ``dsp_multipliers`` in
        lane-major order; all of them when ``dsp_multipliers`` is None)."""
        return self.dsp_multipliers is None or lane * self.taps + tap < self.dsp_multipliers

    @property
    def result_bits(self):
        """Bits of one result (an output FIFO entry): ``lanes * acc_bits + user_width``."""
        return self.lanes * self.acc_fmt.bits + self.user_width

    def timing(self, avail, last=1):
        """Exact cycle timing with ``o`` always ready (:mod:`hw.plan.timing` conventions).

        Parameters
        ----------
        avail : sequence of int
            Earliest cycle in which each step may be offered (non-decreasing).
        last : int or sequence of bool
            Which steps carry ``last``: an int ``n`` for sums of ``n`` steps each (step ``k`` is
            a ``last`` step when ``(k + 1) % n == 0``; default 1, every step); or one flag per
            step.

        Returns
        -------
        hw.plan.timing.Timing
            ``accept``: one cycle per step, ``max(avail[k], accept[k-1] + 1)``; ``out``: one
            cycle per ``last`` step, its accept cycle plus :attr:`latency`.
        """
        accept = offers(avail)
        if isinstance(last, int) and not isinstance(last, bool):
            check_int("last", last)
            flags = [(k + 1) % last == 0 for k in range(len(accept))]
        else:
            flags = list(last)
            if len(flags) != len(accept):
                raise ValueError(f"last has {len(flags)} flags for {len(accept)} steps")
        return Timing(accept, [a + self.latency for a, f in zip(accept, flags) if f])

    def resources(self) -> dict:
        """Rough ESTIMATE of the resources (not a synthesis result): ``multipliers`` (products),
        ``rom_bits`` (0), ``ram_bits`` (the output FIFO), ``register_bits`` (operand, product,
        tree and accumulator registers, at full width)."""
        a, w, acc = self.a_fmt.bits, self.w_fmt.bits, self.acc_fmt.bits
        per_product = OPERAND_STAGES * (a + w) + 2 * min(a + w, acc)
        tree = self.lanes * self.tree_stages * acc * max(1, self.taps // 2)
        return {"multipliers": self.multipliers, "rom_bits": 0,
                "ram_bits": self.fifo_depth * self.result_bits,
                "register_bits": self.multipliers * per_product + tree + self.lanes * acc}


MACPlan.dsp_primitive = property(lambda self: self.dsp_vendor,
                                 doc="Old name of :attr:`dsp_vendor` (the DSP vendor module, or None).")
