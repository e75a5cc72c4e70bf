"""Synthesise the accelerator with the open toolchain (Yosys + nextpnr) and report resources and fmax.

Generates the accelerator's Verilog from a quantized description (hw.arch.dataflow + hw.emit),
runs Yosys and nextpnr for the target in a build folder (full logs kept there: yosys.log,
nextpnr.log), and prints one line: target, fold, LUT/FF/DSP/BRAM used/total, fmax, images/s
(fmax / predicted cycles per image) and whether the design fits. A design that does not fit
is a result, not an error: the line names the exhausted resources and by how much.

Targets: ecp5-25k, ecp5-45k, ecp5-85k (Lattice LFE5U-25F/45F/85F, CABGA381, speed grade 6) and
ice40-up5k (iCE40UP5K, SG48). The YoWASP tools are used unless --system-tools is given. Place and
route of the whole accelerator takes a long time (tens of minutes for tens of thousands of LUTs).

Without a complete --fold (and without --target-ii), the fold is chosen for the target: the
fastest candidate fold whose resource estimate (hw.plan.estimate, calibrated on the measured builds)
fits the target with margin (LUT 70%, FF 85%, DSP 100% of the planned budget, BRAM 90%: hw.plan.estimate.FIT_MARGINS). When none
fits, lenet5 synth says so before any tool runs, with the smallest fold's estimated shortfall per
resource, and exits 1 (--force runs the tools anyway). The estimate is printed, and recorded in the
report with its error, beside the measured figures.

Exit status: 0 when the design fits, 1 when it does not (the JSON is written either way) or when
no fold fits by the estimate.
"""

import argparse

from hw.flow.naming import fold_slug
from hw.targets import TARGETS
from lenet5 import DEFAULT_MODEL, REPO_ROOT, add_arch_argument

HELP = "synthesise the accelerator for an FPGA (Yosys + nextpnr): resources, fmax, images/s"

#: Target names (hw.targets.TARGETS, plain data: `lenet5 --help` imports nothing heavy).
TARGET_NAMES = tuple(TARGETS)


def _dsp_limit(text):
    if text == "none":
        return None
    if text == "auto":
        return text
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a number of DSP blocks or 'auto', got {text!r}")
    return value


def add_common_arguments(parser, *, sweep=False):
    """Options shared with `lenet5 sweep` (*sweep*: --model takes several descriptions and
    --target is optional, a named --preset may choose them)."""
    if sweep:
        parser.add_argument("--model", metavar="JSON", nargs="+",
                            help=f"quantized description(s) (default: {DEFAULT_MODEL.relative_to(REPO_ROOT)}, "
                                 "or the preset's)")
        parser.add_argument("--target", choices=TARGET_NAMES,
                            help="FPGA: ECP5 LFE5U-25F/45F/85F-6BG381C or iCE40UP5K-SG48 (required unless "
                                 "the --preset names its targets)")
    else:
        parser.add_argument("--model", metavar="JSON", default=str(DEFAULT_MODEL), help="quantized description")
        parser.add_argument("--target", required=True, choices=TARGET_NAMES,
                            help="FPGA: ECP5 LFE5U-25F/45F/85F-6BG381C or iCE40UP5K-SG48")
    parser.add_argument("--seed", type=int, default=1, metavar="S", help="nextpnr placement seed")
    parser.add_argument("--freq", type=float, default=100.0, metavar="MHZ",
                        help="nextpnr frequency target (the achieved fmax is reported either way)")
    parser.add_argument("--system-tools", action="store_true",
                        help="use yosys/nextpnr/ecppack/icepack from PATH instead of the YoWASP packages")
    parser.add_argument("--max-dsps", type=_dsp_limit, metavar="N|auto|none", default="auto",
                        help="build the multipliers beyond N DSP blocks from LUTs (auto: the target's "
                             "count of DSP blocks; none: every multiplier into a DSP block, as Yosys "
                             "infers, so a design with more multipliers than blocks does not fit)")
    parser.add_argument("--quiet", action="store_true", help="no status line while the tools run")
    add_arch_argument(parser)


def add_arguments(parser):
    add_common_arguments(parser)
    parser.add_argument("--fold", metavar="FOLD",
                        help="per-layer folding LAYER=LANESxTAPS,... (e.g. C1=3x25,C3=6x25) or a JSON "
                             "file; layers left out get the default fold's choice")
    parser.add_argument("--target-ii", type=int, metavar="CYCLES", default=argparse.SUPPRESS,
                        help="cycles per image the default fold aims at (default: "
                             "hw.arch.dataflow.DEFAULT_TARGET_II, 2048)")
    parser.add_argument("--bitstream", action="store_true", help="also pack a bitstream (.bit / .bin); board-less, only the clock pin is "
                                                             "constrained: for resource and timing figures only")
    parser.add_argument("--build-dir", metavar="DIR", default=argparse.SUPPRESS,
                        help="working folder (default: build/synth/<model>-<target>-<fold>)")
    parser.add_argument("--json", metavar="PATH", help="write the report as JSON")
    parser.add_argument("--force", action="store_true",
                        help="run the tools even when no fold fits the target by the resource estimate")


def load_qnet(path):
    """The quantized description at *path*, with a hint when the file is missing."""
    from pathlib import Path

    from golden.qnet import QNet

    if not Path(path).is_file():
        raise FileNotFoundError(f"model {path} not found: pass --model, or create it with `lenet5 quantize`")
    return QNet.load(path)


def build_accelerator(qnet, fold=None, target_ii=None, target=None, max_dsps=None, arch="dataflow"):
    """The accelerator for *target* and its DSP budget (:func:`hw.arch.accelerator`);
    raises FoldError, a ValueError, for a bad fold."""
    from hw.arch import accelerator

    return accelerator(qnet, fold, arch=arch, target=target, max_dsps=max_dsps, target_ii=target_ii)


def _is_default_fold(qnet, fold, target_ii) -> bool:
    """Whether the fold is (partly) chosen for the target: --fold leaves layers out, no --target-ii."""
    from hw.plan.fold import Fold

    if target_ii is not None:
        return False
    given = Fold.parse(fold) if isinstance(fold, str) else Fold(fold or {})
    return any(l.kind in ("conv", "dense") and l.name not in given for l in qnet.layers)


def shortfall_text(target, fold, est) -> str:
    """The refusal: no fold fits ``target`` by the estimate; the smallest fold's shortfall per resource."""
    from hw.plan.estimate import FIT_MARGINS, RESOURCES, shortfall

    lines = [f"no fold fits {target} by the resource estimate; the smallest, {fold}, is estimated at:"]
    for key, over in shortfall(est, target).items():
        lines.append(f"  {RESOURCES[key].upper()} {over['estimate']:,} of {over['total']:,} "
                     f"(allowed {FIT_MARGINS[key]:.0%}: {over['allowed']:,}; short by {over['over_by']:,})")
    lines.append("not running the tools (--force runs them anyway; a --fold naming every layer is built as given)")
    return "\n".join(lines)


def run(args):
    import json
    from pathlib import Path

    from hw.arch import TOP, build, plan
    from hw.flow.report import estimate_line
    from hw.flow.synth import SynthError, summary_line, synthesize
    from hw.plan.estimate import estimate, format_estimate, shortfall
    from lenet5.cli import CliError

    qnet = load_qnet(args.model)
    target_ii = getattr(args, "target_ii", None)
    try:
        net_plan = plan(qnet, args.fold, arch=args.arch, target=args.target, max_dsps=args.max_dsps,
                        target_ii=target_ii)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    est = estimate(net_plan, args.target, args.max_dsps)
    over = shortfall(est, args.target)
    chosen = _is_default_fold(qnet, args.fold, target_ii)
    if over and chosen and not args.force:
        print(shortfall_text(args.target, net_plan.fold, est))
        return 1
    accel = build(net_plan)
    manifest = accel.manifest()
    build_dir = Path(args.build_dir) if hasattr(args, "build_dir") else (
        REPO_ROOT / "build" / "synth" / f"{Path(args.model).stem}-{args.target}-{fold_slug(accel.fold)}")
    print(f"{qnet.variant} model {args.model}, fold {accel.fold}"
          + (f" (the fastest that fits {args.target} by the estimate)" if chosen and not over else "")
          + f": {manifest['multipliers']} multipliers, "
          f"{manifest['predicted_ii_cycles']} cycles/image predicted; building in {build_dir}")
    print(f"  estimate {format_estimate(est, args.target)}"
          + ("" if not over else " (over the fit margin in " + ", ".join(k.upper() for k in over)
             + ("; --force" if chosen else "") + ")"))
    try:
        report = synthesize(accel, top=manifest.get("top", TOP), target=args.target,
                            build_dir=build_dir, seed=args.seed, bitstream=args.bitstream,
                            freq_mhz=args.freq, use_system_tools=args.system_tools,
                            progress=not args.quiet, manifest=manifest,
                            max_dsps=args.max_dsps, estimate=est)
    except SynthError as exc:              # a tool failed: its message and log, no traceback
        raise CliError(str(exc)) from None
    report["model"] = str(args.model)
    if "estimate" not in report:           # a stand-in synthesize: the estimate all the same
        from hw.flow.report import estimate_figures
        report.update(estimate_figures(est, report))
    print(summary_line(report))
    line = estimate_line(report)
    if line:
        print(f"  {line}")
    if report.get("lut_mapper_note"):
        print(f"  note: {report['lut_mapper_note']}")
    for warning in report["inference_warnings"]:
        print(f"  note: {warning}")
    print(f"  yosys {report['synth_s']:.0f} s, nextpnr {report['pnr_s']:.0f} s; logs in {build_dir}")
    if report.get("bitstream"):
        print(f"  bitstream {build_dir / report['bitstream']}: for resource and timing figures only, "
              "not for a board")
    if report.get("note"):
        print(f"  note: {report['note']}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
        print(f"wrote {args.json}")
    return 0 if report["fits"] else 1
