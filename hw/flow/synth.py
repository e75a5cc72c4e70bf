"""Open-toolchain synthesis: Yosys + nextpnr builds for ECP5 and iCE40 with resource and fmax reports.

:func:`synthesize` takes an Amaranth component (or Verilog), runs

1. **Yosys** ``synth_ecp5`` / ``synth_ice40 -dsp -device u`` (:mod:`hw.flow.yosys`; with a DSP
   budget, a first pass that lists the multipliers) and writes a JSON netlist,
2. **nextpnr** (``nextpnr-ecp5`` / ``nextpnr-ice40``) with ``--seed``, ``--freq`` and ``--report``
   (its machine-readable utilisation and fmax) and ``--timing-allow-fail`` (a design that misses
   the frequency target still gets its achieved fmax reported), and the clock-pin constraint of
   the target's board (:func:`hw.boards.clock_constraint`), and
3. optionally the bitstream packer (``ecppack`` / ``icepack``),

in the build folder with relative paths only (:mod:`hw.flow.tools`), keeping the full logs there
(``yosys.log``, ``nextpnr.log``, ``pack.log``), and returns the report, also written to
``synth_report.json``. The tools' output is parsed by :mod:`hw.flow.parse` and judged by
:mod:`hw.flow.report`; the target's facts come from :mod:`hw.targets`.

The report
----------
``target``, ``device`` (part number), ``family``, ``top``, ``seed``, ``freq_target_mhz``,
``lut_mapper`` (the Yosys LUT mapper that produced the netlist: ``abc9``, or ``abc`` after the
known abc9 abort) and ``lut_mapper_note`` (why, or None); ``luts``, ``ffs``, ``dsps``, ``brams``, ``ios``: each ``{"used", "total"}``
(nextpnr's counts: ECP5 LUT4 slots ``TRELLIS_COMB``, iCE40 logic cells ``ICESTORM_LC``; iCE40
flip-flops from Yosys); ``fmax_mhz`` (nextpnr, after routing; None if it did not finish);
``timing_met``; ``fits`` (bool); ``status`` (``"ok"``, ``"does_not_fit"``, ``"pnr_failed"``);
``exhausted``: over-capacity resources ``[{"resource", "bel", "used", "total", "over_by"}]``
(empty when it fits); ``error`` (nextpnr's error message or None); ``multipliers``:
``{"in_design", "dsp_blocks", "in_luts"}`` (``$mul`` cells of the flattened design, DSP cells
after mapping, multipliers built from LUTs; with a DSP budget also ``max_dsps`` and
``moved_to_luts``); ``memories``: per memory ``{"name", "width", "depth", "bits", "mapped_to"}``
with ``mapped_to`` one of ``bram``, ``lutram``, ``ff`` (flip-flops and LUT logic);
``memory_bits_in_bram``, ``memory_bits_in_luts`` (= ``memory_bits_in_lutram`` +
``memory_bits_in_ff``); ``inference_warnings``: what did not map to a hard block;
``yosys_cells``: final Yosys cell counts; ``synth_s``, ``pnr_s``, ``pack_s`` (wall seconds);
``tools``: versions; ``bitstream``: file name or None; ``note``: that a board-less build pins
at most the clock, so its figures (and any bitstream) are not for a board; ``build_dir``; and with a manifest
``fold``, ``fold_str``, ``ii_cycles``, ``latency_cycles``, ``images_per_s``
(``fmax * 1e6 / II``), ``latency_us``, ``multipliers_predicted``; with a resource estimate
(given, or from the component's :class:`hw.plan.net.NetPlan`) ``estimate`` ``{luts, ffs, dsps,
brams}`` (:mod:`hw.plan.estimate`) and ``estimate_error``, its relative error per resource.

This module also re-exports the names callers import from it (targets, errors, tool helpers,
scripts, parsers, report helpers), so ``from hw.flow.synth import ...`` keeps working.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
from collections.abc import Mapping
from pathlib import Path

from hw.boards import clock_constraint
from hw.boards.ulx3s import CLOCK_LPF as ECP5_CLOCK_LPF
from hw.boards.ulx3s import CLOCK_PORT
from hw.flow.parse import (parse_nextpnr_log, parse_nextpnr_report, parse_yosys_cells,
                           parse_yosys_memory_mapping, parse_yosys_stat)
from hw.flow.report import (BELS, REPORT_KEYS, RESOURCE_NAMES, estimate_figures, exhausted_resources, fit_verdict,
                            inference, manifest_figures, summary_line)
from hw.flow.tools import (FAMILY_TOOLS, SynthError, ToolNotFoundError, run_tool, shell_line, tail, tool_argv,
                           tool_versions, yowasp_available)
from hw.flow.yosys import (ABC9_ABORT, CELLS_MID, KEEP_REGISTERS, MULS_PRE, SOFT_BOOTH, SOFT_PLAIN, STAT_MID,
                           STAT_POST, STAT_PRE, dsp_cost, multiplier_scan_script, plan_dsp_limit, target_keep,
                           yosys_script)
from hw.targets import TARGETS, Target
from hw.targets import target as get_target

__all__ = [
    "Target", "TARGETS", "SynthError", "ToolNotFoundError",
    "synthesize", "yowasp_available", "tool_versions", "yosys_script", "summary_line",
    "parse_yosys_stat", "parse_yosys_memory_mapping", "parse_yosys_cells",
    "parse_nextpnr_report", "parse_nextpnr_log", "exhausted_resources",
    "multiplier_scan_script", "plan_dsp_limit", "dsp_cost",
    "ABC9_ABORT", "KEEP_REGISTERS", "CLOCK_PORT", "ECP5_CLOCK_LPF", "BELS", "RESOURCE_NAMES", "REPORT_KEYS",
]

#: Extra nextpnr options per family. ECP5 uses router2: nextpnr's default router1 had routed 99 %
#: of the 204k arcs of the full default-fold accelerator after 6,400 s and was still going (the
#: placement took 700 s); router2, nextpnr's newer router, is used instead.
PNR_EXTRA_ARGS = {"ecp5": ("--router", "router2"), "ice40": ()}
#: nextpnr options that read a constraint file, by its format.
CONSTRAINT_ARGS = {"lpf": ("--lpf", "--lpf-allow-unconstrained"), "pcf": ("--pcf", "--pcf-allow-unconstrained")}
#: Yosys log lines worth showing on the status line (pass headers) - the rest scroll by too fast.
_YOSYS_PROGRESS_RE = re.compile(r"^\d+(\.\d+)*\. (Executing|Printing|Continuing)")


def synthesize(component_or_verilog, *, top: str, target: str, build_dir, seed: int = 1,
               bitstream: bool = False, freq_mhz: float = 100, use_system_tools: bool = False,
               progress: bool = True, manifest: Mapping | None = None, max_dsps=None,
               estimate: Mapping | None = None) -> dict:
    """Synthesise, place and route a design for *target*; return the report.

    Parameters
    ----------
    component_or_verilog : amaranth.lib.wiring.Component, str or path-like
        The design: a component (emitted with :func:`hw.emit.write_verilog` as module *top*),
        Verilog text, or the path(s) of Verilog file(s) (copied into *build_dir*).
    top : str
        Top module name.
    target : str or hw.targets.Target
        One of :data:`TARGETS`: ``ecp5-25k``, ``ecp5-45k``, ``ecp5-85k``, ``ice40-up5k``.
    build_dir : path-like
        Working folder (created); keeps the Verilog, the Yosys scripts and logs, the netlist
        ``<top>.json``, Yosys's statistics, ``nextpnr.log``, ``nextpnr_report.json``, the
        placed design and bitstream, ``commands.sh`` (to re-run by hand), ``synth_report.json``.
    seed : int
        nextpnr placer seed.
    bitstream : bool
        Also run ``ecppack`` / ``icepack`` (only when the design fits).
    freq_mhz : float
        nextpnr's frequency target; the achieved fmax is reported either way (``timing_met``).
    use_system_tools : bool
        Run ``yosys`` / ``nextpnr-*`` / the packer from ``PATH`` instead of YoWASP.
    progress : bool
        Show the tools' log lines on a status line on stderr while they run.
    manifest : dict, optional
        Generation manifest (taken from the component's ``manifest()`` when it has one); adds
        the fold, cycles per image, images/s and latency.
    max_dsps : int or "auto", optional
        DSP budget (``"auto"``: the target's count): the multipliers saving the fewest LUTs per
        block beyond it are built from LUTs (:func:`plan_dsp_limit`; one more Yosys pass).
        Default: every multiplier that fits a DSP block goes into one.

    estimate : dict, optional
        The resource estimate of the design (:func:`hw.plan.estimate.estimate`); taken from the
        component's plan (a :class:`hw.plan.net.NetPlan`) when it has one. The report gets it as
        ``estimate`` with ``estimate_error`` (relative, per resource, vs the measured figures).

    Returns
    -------
    dict
        The report (keys listed in this module's docstring).

    Raises
    ------
    ValueError
        Unknown target (the message lists the valid ones), a top name that is not a plain
        identifier, a bad *max_dsps*.
    ToolNotFoundError
        The tools are not installed.
    SynthError
        Yosys or the packer failed (the message quotes the log). A design that does not fit
        raises nothing: the report says ``fits: False`` and what is exhausted.
    """
    tgt, top, limit = get_target(target), _check_top(top), _dsp_limit(target, max_dsps)
    run = _Build(tgt, build_dir, use_system_tools=use_system_tools, progress=progress, bitstream=bitstream)
    if manifest is None and callable(getattr(component_or_verilog, "manifest", None)):
        manifest = component_or_verilog.manifest()
    run.clean(top)
    sources = _prepare_sources(component_or_verilog, top, run.dir, manifest)
    plan = None if limit is None else _plan_dsps(run, top, sources, limit, manifest)
    lut_mapper, stats = _run_yosys(run, top, sources, plan)
    pnr = _run_nextpnr(run, top, seed, freq_mhz)
    report = _report(tgt, top, seed, freq_mhz, lut_mapper, stats, pnr, plan)
    report.update(synth_s=round(run.synth_s, 1), pnr_s=round(pnr["seconds"], 1), pack_s=None, bitstream=None,
                  note=run.pin_note)
    if bitstream and report["fits"]:
        report.update(_pack(run, top, pnr["placed"]))
    report["tools"] = dict(tool_versions(tgt.family, use_system_tools=use_system_tools))
    report["build_dir"] = str(run.dir)
    if manifest is not None:
        report.update(manifest_figures(manifest, pnr["fmax"]))
    if estimate is None:
        estimate = _plan_estimate(component_or_verilog, tgt, max_dsps)
    if estimate is not None:
        report.update(estimate_figures(estimate, report))
    (run.dir / "synth_report.json").write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    return report


def _plan_estimate(design, tgt: Target, max_dsps):
    """The resource estimate of a component built from a whole-accelerator plan, else None."""
    from hw.plan.net import NetPlan

    plan = getattr(design, "plan", None)
    if not isinstance(plan, NetPlan):
        return None
    from hw.plan.estimate import estimate
    return estimate(plan, tgt, max_dsps)


def _dsp_limit(target, max_dsps) -> int | None:
    """The DSP budget as a number of blocks (None: no budget)."""
    if max_dsps is None:
        return None
    limit = get_target(target).totals["dsp"] if max_dsps == "auto" else max_dsps
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
        raise ValueError(f"max_dsps must be a non-negative int or 'auto', not {max_dsps!r}")
    return limit


class _Build:
    """One build folder: the tools' command lines (checked for installation up front), the
    ``commands.sh`` record of what was run, and the Yosys runs' total time."""

    def __init__(self, target: Target, build_dir, *, use_system_tools: bool, progress: bool, bitstream: bool):
        self.target, self.progress = target, progress
        self.synth_tool, self.pnr_tool, self.pack_tool = FAMILY_TOOLS[target.family]
        tools = (self.synth_tool, self.pnr_tool) + ((self.pack_tool,) if bitstream else ())
        self.argv = {tool: tool_argv(tool, use_system_tools) for tool in tools}
        self.dir = Path(build_dir)
        self.commands = []
        self.synth_s = 0.0
        self.pin_note = None

    def clean(self, top):
        """Create the folder; remove the outputs of an earlier build."""
        self.dir.mkdir(parents=True, exist_ok=True)
        self.commands = [f"cd {shlex.quote(str(self.dir.resolve()))}"]
        for stale in (STAT_PRE, STAT_MID, STAT_POST, CELLS_MID, MULS_PRE, SOFT_BOOTH, SOFT_PLAIN,
                      "nextpnr_report.json", "synth_report.json", f"{top}.json", f"{top}.bit", f"{top}.bin"):
            (self.dir / stale).unlink(missing_ok=True)

    def run(self, tool, args, *, out_name, phase, **kw) -> tuple[int, float]:
        """Run *tool* with *args* in the folder, recorded in ``commands.sh``."""
        argv = self.argv[tool] + list(args)
        self.commands.append(shell_line(argv))
        (self.dir / "commands.sh").write_text("\n".join(self.commands) + "\n")
        return run_tool(argv, cwd=self.dir, out_name=out_name, phase=phase, progress=self.progress, **kw)

    def yosys(self, script_name, script, phase, outputs, outcome=None):
        """Write and run the Yosys script ``<script_name>.ys`` (*outcome*: see :func:`run_tool`).

        Raises
        ------
        SynthError
            Yosys failed or did not write all of *outputs* (the message quotes its errors).
        """
        (self.dir / f"{script_name}.ys").write_text(script)
        rc, seconds = self.run(self.synth_tool, ["-q", "-l", f"{script_name}.log", "-s", f"{script_name}.ys"],
                               out_name=f"{script_name}.out", watch_name=f"{script_name}.log", phase=phase,
                               show=lambda line: bool(_YOSYS_PROGRESS_RE.match(line)), outcome=outcome)
        self.synth_s += seconds
        if rc != 0 or not all((self.dir / o).is_file() for o in outputs):
            log = self.dir / f"{script_name}.log"
            errors = [l for l in log.read_text(errors="replace").splitlines() if l.startswith("ERROR")] \
                if log.is_file() else []
            raise SynthError(f"yosys failed (exit {rc}); see {log}:\n"
                             + ("\n".join(errors) or tail(log) or tail(self.dir / f"{script_name}.out")))


def _plan_dsps(run: _Build, top, sources, limit, manifest) -> dict:
    """List the design's multipliers (a Yosys pass) and choose the ones that go to LUTs."""
    tgt = run.target
    run.yosys("scan", multiplier_scan_script(tgt.family, top, sources, keep=target_keep(tgt)),
              f"yosys scan {tgt.name}", [MULS_PRE])
    # DSP blocks the design instantiates itself (manifest "dsp_instances") leave fewer for $mul.
    instances = int((manifest or {}).get("dsp_instances", 0))
    plan = plan_dsp_limit((run.dir / MULS_PRE).read_text(), tgt.family, max(limit - instances, 0))
    plan["limit"] = limit
    (run.dir / SOFT_BOOTH).write_text("".join(f"{sel}\n" for sel in plan["booth"]))
    (run.dir / SOFT_PLAIN).write_text("".join(f"{sel}\n" for sel in plan["plain"]))
    return plan


def _run_yosys(run: _Build, top, sources, plan) -> tuple[str, dict]:
    """Synthesise to ``<top>.json`` (ECP5: once more with the classic LUT mapper if ``abc9`` hits
    the known Yosys abort); returns the LUT mapper used and the parsed statistics."""
    tgt = run.target
    netlist = f"{top}.json"
    lut_mapper = "abc9"
    while True:
        script = yosys_script(tgt.family, top, sources, netlist, booth=len(plan["booth"]) if plan else 0,
                              plain=len(plan["plain"]) if plan else 0, lut_mapper=lut_mapper,
                              keep=target_keep(tgt))
        outcome = _abc9_outcome(run.dir / "yosys.log") if tgt.family == "ecp5" and lut_mapper == "abc9" else None
        try:
            run.yosys("yosys", script, f"yosys {tgt.name}", [netlist, STAT_PRE, STAT_MID, STAT_POST, CELLS_MID],
                      outcome=outcome)
            break
        except SynthError as exc:
            if tgt.family != "ecp5" or lut_mapper != "abc9" or ABC9_ABORT not in str(exc):
                raise
            (run.dir / "yosys.log").replace(run.dir / "yosys_abc9_abort.log")
            lut_mapper = "abc"
    stats = {name: parse_yosys_stat((run.dir / f"stat_{name}.json").read_text()) for name in ("pre", "mid", "post")}
    stats["cells_mid"] = parse_yosys_cells((run.dir / CELLS_MID).read_text())
    stats["mapping"] = parse_yosys_memory_mapping((run.dir / "yosys.log").read_text(errors="replace"), top)
    return lut_mapper, stats


#: The status line's last words when abc9 hits :data:`ABC9_ABORT` (the build goes on with abc).
ABC9_RETRY = "abc9 aborted (known Yosys bug); retrying with abc"
#: ``lut_mapper_note`` of a report whose netlist the fallback mapped.
ABC9_NOTE = ("LUTs mapped with abc: Yosys's abc9 aborted on this design (known Yosys bug, "
             "log kept as yosys_abc9_abort.log)")


def _abc9_outcome(log: Path):
    """How an abc9 Yosys run ended: the known abort is named as such (the caller retries)."""
    def outcome(rc):
        if rc == 0:
            return "done"
        try:
            aborted = ABC9_ABORT in log.read_text(errors="replace")
        except OSError:
            aborted = False
        return ABC9_RETRY if aborted else f"failed (exit {rc})"
    return outcome


def boardless_note(tgt: Target, pins: int, clock_pinned: bool) -> str:
    """The report's ``note``: a board-less build pins at most the clock, so its placement (and any
    bitstream) serves the resource and timing figures only, not a board."""
    what = (f"only the clock pin is constrained (to the {tgt.board} board's oscillator)" if clock_pinned
            else "no pin is constrained")
    others = pins - 1 if clock_pinned else pins
    return (f"board-less build: {what}; nextpnr places the other {others} I/O pins anywhere, so this "
            "placement and any bitstream are for the resource and timing figures only, not for a board")


def _run_nextpnr(run: _Build, top, seed, freq_mhz) -> dict:
    """Place and route ``<top>.json``; returns the exit code, seconds, the placed design's file
    name, the parsed log and report, the utilisation table and the fmax."""
    tgt, family = run.target, run.target.family
    netlist = f"{top}.json"
    placed = f"{top}.config" if family == "ecp5" else f"{top}.asc"
    args = list(tgt.nextpnr_args) + [
        "--json", netlist, "--textcfg" if family == "ecp5" else "--asc", placed,
        "--report", "nextpnr_report.json", "--seed", str(int(seed)), "--freq", f"{freq_mhz:g}",
        "--timing-allow-fail"] + list(PNR_EXTRA_ARGS[family])
    ports = json.loads((run.dir / netlist).read_text())["modules"][top]["ports"]
    constraint = clock_constraint(tgt, ports)
    pins = sum(len(p.get("bits", ())) for p in ports.values())
    run.pin_note = boardless_note(tgt, pins, clock_pinned=constraint is not None)
    if constraint is not None:
        kind, text = constraint
        (run.dir / f"{top}.{kind}").write_text(text)
        option, allow = CONSTRAINT_ARGS[kind]
        args += [option, f"{top}.{kind}", allow]
    (run.dir / placed).unlink(missing_ok=True)
    rc, seconds = run.run(run.pnr_tool, args, out_name="nextpnr.log", phase=f"nextpnr {tgt.name}")
    log = parse_nextpnr_log((run.dir / "nextpnr.log").read_text(errors="replace"))
    report_path = run.dir / "nextpnr_report.json"
    prep = parse_nextpnr_report(report_path.read_text()) if rc == 0 and report_path.is_file() else None
    return {"rc": rc, "seconds": seconds, "placed": placed, "log": log,
            "util": prep["utilization"] if prep else log["utilization"],
            "fmax": prep["fmax_mhz"] if prep else None}


def _report(tgt: Target, top, seed, freq_mhz, lut_mapper, stats, pnr, plan) -> dict:
    """The report's resource, fit, timing and inference figures."""
    rc, fmax = pnr["rc"], pnr["fmax"]
    verdict = fit_verdict(tgt, pnr["util"], stats["post"]["cells"], pnr_ok=rc == 0)
    report = {
        "target": tgt.name, "device": tgt.part, "family": tgt.family, "top": top, "seed": int(seed),
        "freq_target_mhz": freq_mhz, "lut_mapper": lut_mapper,
        "lut_mapper_note": ABC9_NOTE if lut_mapper == "abc" and tgt.family == "ecp5" else None,
        **{REPORT_KEYS[r]: verdict["resources"][r] for r in RESOURCE_NAMES},
        "fmax_mhz": round(fmax, 2) if fmax is not None else None,
        "timing_met": fmax is not None and fmax >= freq_mhz,
        "fits": verdict["fits"], "status": verdict["status"], "exhausted": verdict["exhausted"],
        "error": ("; ".join(pnr["log"]["errors"]) or f"exit {rc}") if rc != 0 else None,
    }
    report.update(inference(tgt, stats["pre"], stats["mid"], stats["cells_mid"], stats["mapping"], plan))
    report["yosys_cells"] = {k: v for k, v in sorted(stats["post"]["cells"].items())
                             if not k.startswith("$scopeinfo")}
    return report


def _pack(run: _Build, top, placed) -> dict:
    """Pack the bitstream (``<top>.bit`` / ``.bin``); returns ``pack_s`` and ``bitstream``."""
    bit = f"{top}.bit" if run.target.family == "ecp5" else f"{top}.bin"
    rc, seconds = run.run(run.pack_tool, [placed, bit], out_name="pack.log", phase=run.pack_tool)
    if rc != 0:
        raise SynthError(f"{run.pack_tool} failed (exit {rc}); see {run.dir / 'pack.log'}:\n"
                         + tail(run.dir / "pack.log"))
    return {"pack_s": round(seconds, 1), "bitstream": bit}


def _check_top(top):
    if not isinstance(top, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", top):
        raise ValueError(f"top must be a plain Verilog identifier, not {top!r}")
    return top


def _prepare_sources(design, top: str, build_dir: Path, manifest=None) -> list[str]:
    """Put the design's Verilog into *build_dir*; return the file names (relative). A component
    with its generation *manifest* gets the interface header (:func:`hw.arch.signature.interface_header`)."""
    try:
        from amaranth.lib import wiring
        is_component = isinstance(design, wiring.Component)
    except ImportError:                                   # pragma: no cover
        is_component = False
    if is_component:
        from hw.emit import write_verilog
        comment = ()
        if manifest is not None:
            from hw.arch.signature import interface_header
            comment = interface_header(manifest)
        return [write_verilog(design, top, build_dir, comment).name]
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
