"""Target profiles: the FPGA parts the generator plans for and the flow builds for.

A :class:`Target` is plain data (no tools, no gateware): the family and the part, the device's
capacity per resource, its DSP block and RAM kinds, and its **closure policy** (how the generator
builds for it to close timing). It is passed to the architecture's ``plan`` (which decides how many
products go into DSP blocks and which vendor primitive builds them) and to the synthesis flow
(:mod:`hw.flow`, which selects ``synth_<family>`` and ``nextpnr-<family>`` and reads the capacities).

Vendor primitives are not named here: :attr:`Target.vendor` names the module of
:mod:`hw.vendor` that implements them (``hw.vendor.ecp5``), and a generic component asks that
module, through the plan, for a multiplier; it never tests a family name itself.

Adding a target is one entry in :data:`TARGETS` (and, for a new family, a vendor module, the
family's tool names in :mod:`hw.flow.tools` and its nextpnr bel names in :mod:`hw.flow.report`;
for a clock pin, a board module in :mod:`hw.boards`).

Parts: ``ecp5-25k``, ``ecp5-45k``, ``ecp5-85k`` are the Lattice LFE5U-25F / -45F / -85F in the
CABGA381 package at **speed grade 6** (the slowest grade, the one on most boards, e.g. the ULX3S),
so the fmax figures are conservative (Lattice FPGA-DS-02012, ECP5 family data sheet, Table 1.1);
``ice40-up5k`` is the iCE40 UltraPlus iCE40UP5K in the SG48 package (39 I/Os; Lattice
FPGA-DS-02008, Table 1.1).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = ["Closure", "Target", "TARGETS", "target", "UnknownTargetError"]


class UnknownTargetError(ValueError):
    """A target name that is not in :data:`TARGETS` (the message lists the valid names)."""


@dataclass(frozen=True)
class Closure:
    """How the generator builds for a target so that it closes timing.

    Members
    -------
    dsp_instances : bool
        The generator instantiates the target's DSP block itself, with its own input and output
        registers (:meth:`Target.vendor_module`'s ``dsp_product``), for the products planned into
        DSP blocks; the others are split LUT products. ``False``: plain ``*``, the synthesis tool
        infers the blocks (and the flow's DSP budget moves the excess to LUTs).
    keep_copies : bool
        The synthesis flow keeps the registers the generator duplicated on purpose apart
        (Yosys ``keep`` on :data:`hw.components.common.KEEP_PREFIXES` registers), so that
        ``opt_merge`` does not merge them back into one high-fanout register.
    """

    dsp_instances: bool = False
    keep_copies: bool = True


@dataclass(frozen=True)
class Target:
    """One FPGA part the generator plans for and the flow builds for.

    Members
    -------
    name : str
        Target name used on the command line (``ecp5-85k``).
    family : str
        ``"ecp5"`` or ``"ice40"``: selects ``synth_<family>`` and ``nextpnr-<family>``.
    part : str
        Full ordering part number (device, speed grade, package).
    nextpnr_args : tuple of str
        Device selection options of nextpnr.
    totals : dict
        Capacity per resource (``lut``, ``ff``, ``dsp``, ``bram``, ``io``), used to judge the fit
        and when nextpnr stops before printing its own table.
    dsp_cells : tuple of str
        Yosys/nextpnr cell types of the DSP blocks (the first is the multiplier block).
    bram_cells : tuple of str
        Cell types of the block RAMs (and, iCE40, the single-port RAMs).
    vendor : str or None
        Module of :mod:`hw.vendor` with the family's primitives and their simulation models;
        ``None``: generic Verilog only.
    closure : Closure
        The closure policy.
    board : str or None
        Board of :mod:`hw.boards` whose clock pin the flow's board-less builds constrain
        (:func:`hw.boards.clock_constraint`); ``None``: no constraint file.
    """

    name: str
    family: str
    part: str
    nextpnr_args: tuple
    totals: Mapping
    dsp_cells: tuple = ()
    bram_cells: tuple = ()
    vendor: str | None = None
    closure: Closure = field(default_factory=Closure)
    board: str | None = None

    @property
    def device(self):
        """The part number, as reported."""
        return self.part

    @property
    def dsp_blocks(self) -> int:
        """DSP blocks of the device."""
        return int(self.totals["dsp"])

    def vendor_module(self):
        """The :mod:`hw.vendor` module of this target's primitives, or None."""
        if self.vendor is None:
            return None
        from importlib import import_module
        return import_module(f"hw.vendor.{self.vendor}")

    def dsp_budget(self, max_dsps="auto"):
        """DSP blocks the generator may plan products into: ``max_dsps`` (``"auto"``: the
        device's count) when this target's closure policy instantiates DSP blocks, else None
        (every product left to the tools).

        Raises
        ------
        ValueError
            ``max_dsps`` is not None, ``"auto"`` or a non-negative int.
        """
        if max_dsps is None or not self.closure.dsp_instances:
            if max_dsps not in (None, "auto") and (isinstance(max_dsps, bool) or not isinstance(max_dsps, int)
                                                    or max_dsps < 0):
                raise ValueError(f"max_dsps must be a non-negative int, 'auto' or None, not {max_dsps!r}")
            return None
        if max_dsps == "auto":
            return self.dsp_blocks
        if isinstance(max_dsps, bool) or not isinstance(max_dsps, int) or max_dsps < 0:
            raise ValueError(f"max_dsps must be a non-negative int, 'auto' or None, not {max_dsps!r}")
        return max_dsps


def _ecp5(size, luts, dsps, brams, ios):
    return Target(f"ecp5-{size}k", "ecp5", f"LFE5U-{size}F-6BG381C",
                  (f"--{size}k", "--package", "CABGA381", "--speed", "6"),
                  {"lut": luts, "ff": luts, "dsp": dsps, "bram": brams, "io": ios},
                  dsp_cells=("MULT18X18D", "ALU54B"), bram_cells=("DP16KD", "PDPW16KD"),
                  vendor="ecp5", closure=Closure(dsp_instances=True), board="ulx3s")


#: The supported targets by name.  ECP5: CABGA381 package, speed grade 6.
TARGETS: dict[str, Target] = {t.name: t for t in (
    _ecp5(25, 24288, 28, 56, 197),
    _ecp5(45, 43848, 72, 108, 245),
    _ecp5(85, 83640, 156, 208, 365),
    Target("ice40-up5k", "ice40", "iCE40UP5K-SG48I", ("--up5k", "--package", "sg48"),
           {"lut": 5280, "ff": 5280, "dsp": 8, "bram": 30, "io": 39},
           dsp_cells=("SB_MAC16",), bram_cells=("SB_RAM40_4K", "SB_SPRAM256KA"), vendor=None,
           closure=Closure(dsp_instances=False)),
)}


def target(name_or_target) -> Target:
    """The :class:`Target` of a name (or the target itself).

    Raises
    ------
    UnknownTargetError
        An unknown name; the message lists the valid ones.
    """
    if isinstance(name_or_target, Target):
        return name_or_target
    if name_or_target not in TARGETS:
        raise UnknownTargetError(f"unknown target {name_or_target!r}; valid targets: {', '.join(TARGETS)}")
    return TARGETS[name_or_target]
