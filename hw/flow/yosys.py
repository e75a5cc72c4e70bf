"""The Yosys side of the flow: the scripts, the keep selection and the DSP budget.

* :func:`yosys_script`: ``synth_<family>`` in three parts, with statistics in between
  (``stat_pre.json``, ``stat_mid.json``/``cells_mid.json``, ``stat_post.json``), relative paths
  only. ABC9 LUT mapping is the default of both families in Yosys 0.40 and later; for ECP5 the
  classic ``abc`` is the fallback when ``abc9`` hits a known Yosys abort (:data:`ABC9_ABORT`).
* :func:`keep_selection`: the Yosys selection of the registers the generator duplicated on
  purpose (:data:`hw.components.common.KEEP_PREFIXES`), marked ``keep`` when the target's closure
  policy says so (:attr:`hw.targets.Closure.keep_copies`, :func:`target_keep`).
* DSP budget (``max_dsps``): Yosys puts every multiplier into a DSP block, so a design with more
  multipliers than the device has blocks does not fit however many LUTs are free. A first Yosys
  pass lists the multipliers (:func:`multiplier_scan_script`), :func:`plan_dsp_limit` keeps the
  blocks for those that save the most LUTs (:func:`dsp_cost`), and the others are built from
  LUTs (Yosys's ``booth`` pass) before DSP mapping.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence

from hw.components.common import KEEP_PREFIXES
from hw.flow.parse import param_int
from hw.flow.tools import FAMILY_TOOLS

__all__ = ["STAT_PRE", "STAT_MID", "STAT_POST", "CELLS_MID", "MULS_PRE", "SOFT_BOOTH", "SOFT_PLAIN",
           "KEEP_REGISTERS", "keep_selection", "target_keep", "synth_command", "front",
           "multiplier_scan_script", "yosys_script", "ABC9_ABORT", "DSP_WIDTHS", "dsp_cost",
           "plan_dsp_limit"]

#: Files Yosys writes next to the netlist (relative to the build folder).
STAT_PRE, STAT_MID, STAT_POST, CELLS_MID = "stat_pre.json", "stat_mid.json", "stat_post.json", "cells_mid.json"
#: Multipliers of the design (``--max-dsps`` pre-pass) and the selections moved to LUTs.
MULS_PRE, SOFT_BOOTH, SOFT_PLAIN = "muls_pre.json", "soft_booth.sel", "soft_plain.sel"


def keep_selection(prefixes: Sequence[str] = KEEP_PREFIXES) -> str:
    """Yosys selection of the wires named ``<prefix>*`` at the top or in a submodule
    (``w:<prefix>* w:*.<prefix>*``), united (``%u``) over *prefixes*.

    The flow widens it to all aliases (``%a``) and keeps its flip-flops (:func:`front`):
    Amaranth's Verilog often names a register after another signal it drives (a memory port's
    address) and keeps the Python name as an alias.
    """
    terms = [f"w:{glob}" for p in prefixes for glob in (f"{p}*", f"*.{p}*")]
    if not terms:
        raise ValueError("prefixes must name at least one prefix")
    return " ".join(terms[:1] + [f"{t} %u" for t in terms[1:]])


#: Registers Yosys must not merge with their equals (``opt_merge`` keeps cells marked ``keep``):
#: the :data:`hw.components.common.KEEP_PREFIXES` registers, the MAC arrays' operand registers
#: (one per multiplier, so that each can sit next to its DSP block; merged, one register fed DSP
#: blocks far apart: 15 ns of routing on the LFE5U-85F) and the ``dup_*`` copies made to split a
#: high fanout.
KEEP_REGISTERS = keep_selection(KEEP_PREFIXES)


def target_keep(target) -> str | None:
    """The keep selection of *target* (a :class:`hw.targets.Target`): :data:`KEEP_REGISTERS`
    when its closure policy keeps the copies apart (:attr:`hw.targets.Closure.keep_copies`),
    else None."""
    return KEEP_REGISTERS if target.closure.keep_copies else None


def synth_command(family, top):
    """``synth_<family> -top <top>`` with the family's options."""
    return f"synth_{family} -top {top}" + (" -dsp -device u" if family == "ice40" else "")


def front(family, top, sources, keep: str | None = KEEP_REGISTERS) -> str:
    """Read the design, then process and flatten it and narrow the multipliers (what coarse
    synthesis starts with anyway; done first so that multipliers have their final names and
    widths before DSP mapping); mark the flip-flops of *keep* (a selection, all its aliases)
    ``keep`` (None: none)."""
    if family not in FAMILY_TOOLS:
        raise ValueError(f"unknown family {family!r}; valid: {', '.join(FAMILY_TOOLS)}")
    reads = "".join(f"read_verilog -sv {s}\n" for s in sources)
    keep_line = f"setattr -set keep 1 {keep} %a %ci1 t:$dff %i\n" if keep else ""
    return (f"{reads}{synth_command(family, top)} -run :coarse\n"
            "proc -latches error\nflatten\nwreduce t:$mul\n" + keep_line)


def multiplier_scan_script(family: str, top: str, sources: Iterable[str], *,
                           keep: str | None = KEEP_REGISTERS) -> str:
    """Yosys script that writes the design's multipliers (names, widths) to ``muls_pre.json``."""
    return front(family, top, sources, keep) + f"select t:$mul\nwrite_json -selected {MULS_PRE}\n"


def yosys_script(family: str, top: str, sources: Iterable[str], netlist: str, *,
                 booth: int = 0, plain: int = 0, lut_mapper: str = "abc9",
                 keep: str | None = KEEP_REGISTERS) -> str:
    """The Yosys script of the flow (relative paths only).

    ``synth_<family>`` is run in three parts so that statistics can be taken in between:
    ``stat_pre.json`` after reading and flattening (the design's own ``$mul`` cells and
    memories), ``stat_mid.json`` and ``cells_mid.json`` (the memories, with their contents left
    out, and the multiply-accumulate cells that remain for LUT logic) after coarse synthesis and
    DSP mapping, ``stat_post.json`` at the end.  With *booth* / *plain* > 0 that many
    multipliers listed in ``soft_booth.sel`` / ``soft_plain.sel`` are kept out of DSP blocks
    (radix-4 Booth multipliers in LUTs, or Yosys's plain soft multiplier for narrow ones).
    *keep*: the registers kept apart (:func:`front`).
    """
    synth = synth_command(family, top)
    soft = ""
    if booth:
        soft += f"select -read {SOFT_BOOTH}\nselect -assert-count {booth} %\nbooth\nselect -clear\n"
    if plain:
        soft += (f"select -read {SOFT_PLAIN}\nselect -assert-count {plain} %\nchtype -set $__soft_mul\n"
                 "select -clear\n")
    return f"""{front(family, top, sources, keep)}tee -q -o {STAT_PRE} stat -json
{soft}{synth} -run coarse:map_ram
design -save lenet5_mid
delete t:$mem_v2 t:$macc_v2 t:$macc t:$mul %u %u %u %n
setparam -set INIT 0 t:$mem_v2
select t:$mem_v2 t:$macc_v2 t:$macc t:$mul %u %u %u
write_json -selected {CELLS_MID}
select -clear
design -load lenet5_mid
tee -q -o {STAT_MID} stat -json
{_map_end(family, synth, netlist, lut_mapper)}tee -q -o {STAT_POST} stat -json
"""


#: The Yosys error of its ``abc9`` LUT mapping step that :func:`hw.flow.synth.synthesize` works around.
ABC9_ABORT = "Assert `GetSize(conn.first) == GetSize(conn.second)' failed"


def _map_end(family, synth, netlist, lut_mapper="abc9"):
    """The rest of ``synth_<family>`` from memory mapping on, with its own LUT mapping
    (``abc9``) or, for ECP5 with ``lut_mapper="abc"``, Yosys's classic ``abc -dress -lut 4``
    instead. Yosys 0.70's ``abc9`` aborts on some of the accelerator's netlists in its
    ``abc_ops_reintegrate`` step (:data:`ABC9_ABORT`); :func:`hw.flow.synth.synthesize` then runs the script
    again with ``abc``. ``abc9`` is the better mapper where it works: on the 26-multiplier fold
    for the LFE5U-25F, 5,859 LUT4 and 78.0 MHz against 5,852 LUT4 and 62.2 MHz with ``abc``
    (``abc -lut 4:7``, the wide-LUT variant, blew the whole accelerator up to 160k LUT4)."""
    if lut_mapper == "abc9" or family != "ecp5":
        return f"{synth} -run map_ram: -json {netlist}\n"
    if lut_mapper != "abc":
        raise ValueError(f"unknown LUT mapper {lut_mapper!r}; valid: abc9, abc")
    return (f"{synth} -run map_ram:map_luts\ntechmap -map +/lattice/latches_map.v\n"
            f"abc -dress -lut 4\nclean\n{synth} -run map_cells: -json {netlist}\n")


#: DSP block operand widths (Yosys's mul2dsp limits) and the narrowest product put in one.
DSP_WIDTHS = {"ecp5": (18, 18, 0), "ice40": (16, 16, 11)}


def dsp_cost(family: str, a_width: int, b_width: int, y_width: int) -> int:
    """DSP blocks Yosys uses for an ``a x b -> y`` multiplier (0: it stays in LUTs): operands
    narrower than 2 bits or (iCE40) products narrower than 11 bits are not mapped; wider
    operands are split into ``ceil(a / 18) * ceil(b / 18)`` (iCE40: 16) blocks."""
    amax, bmax, ymin = DSP_WIDTHS[family]
    if min(a_width, b_width) < 2 or y_width < ymin:
        return 0
    return math.ceil(a_width / amax) * math.ceil(b_width / bmax)


def plan_dsp_limit(muls_json, family: str, max_dsps: int) -> dict:
    """Which multipliers keep DSP blocks when at most *max_dsps* may be used.

    The multipliers with the most operand bits per DSP block (the most LUTs saved) keep their
    blocks, in that order (ties by name) while the budget lasts; the others are moved to LUTs:
    radix-4 Booth multipliers (``booth``) where Yosys's ``booth`` pass applies (operands of at
    least 4 bits, product of at least 8), Yosys's plain soft multiplier (``plain``) otherwise.

    Returns
    -------
    dict
        ``keep``, ``booth``, ``plain``: lists of ``"module/cell"`` selection entries;
        ``dsp_estimate``: blocks the kept ones need (:func:`dsp_cost`).
    """
    data = json.loads(muls_json) if isinstance(muls_json, str) else muls_json
    muls = []
    for module, mod in data.get("modules", {}).items():
        for name, cell in mod.get("cells", {}).items():
            if cell.get("type") != "$mul":
                continue
            p = cell["parameters"]
            a, b, y = (param_int(p.get(k)) or 0 for k in ("A_WIDTH", "B_WIDTH", "Y_WIDTH"))
            muls.append((f"{module}/{name}", a, b, y, dsp_cost(family, a, b, y)))
    muls.sort(key=lambda m: (-(m[1] * m[2]) / max(m[4], 1), m[0]))
    keep, booth, plain, used = [], [], [], 0
    for sel, a, b, y, cost in muls:
        if cost == 0 or used + cost <= max_dsps:
            keep.append(sel)
            used += cost
        elif a >= 4 and b >= 4 and y >= 8:
            booth.append(sel)
        else:
            plain.append(sel)
    return {"keep": keep, "booth": booth, "plain": plain, "dsp_estimate": used}
