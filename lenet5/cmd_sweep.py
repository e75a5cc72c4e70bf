"""Sweep: synthesise the accelerator at several points and plot throughput against LUTs.

One Yosys + nextpnr build per point (model x target x fold; see `lenet5 synth`). The folds are
given with --folds (for every --model on the --target) or taken from a --preset NAME:

  folds            --points folds (default 7) of --model on --target, from line rate (as fast as
                   the input allows) to fully serial (one multiplier per layer), chosen by the
                   accelerator's fold search at cycle-per-image targets spaced geometrically
  bits-serial-25k  int8 and w4a8 on ecp5-25k, the 3 most serial of those 7 folds (6 builds)
  bits-25k         int8 and w4a8 on ecp5-25k, all 7 folds (14 builds)
  bits-targets     int8 and w4a8 on ecp5-25k, ecp5-85k and ice40-up5k, 7 folds each (42 builds)

(--model / --target replace a preset's models / targets.) Writes <out>/sweep.csv and
<out>/sweep.json (one row per point: fold, model, precision, target, accuracy of the golden integer
model on the MNIST test set, multipliers, cycles per image, LUT/FF/DSP/BRAM used and total, fmax,
images/s, fits, exhausted resources, run times) and <out>/pareto.png (images/s against LUTs,
coloured by accuracy, the Pareto front marked, designs that do not fit hollow). Each build's logs
and report are kept under <out>/runs/.

Every build is a task on a Dask cluster: an embedded one of --jobs worker processes, or an
existing one with --scheduler tcp://HOST:8786 (start `dask scheduler` there and
`dask worker tcp://HOST:8786` on each machine that should build; they need this project and its
tools, no shared file system: the Verilog goes to the worker, the report and logs come back).
Finished builds are cached by the content of their Verilog, options and tool versions
(--cache-dir), so a re-run builds only what is new. A build that fails is retried once, then
reported with its log tail, and the sweep goes on. Place and route of a large fold takes tens of
minutes; each worker uses one core and 1-2 GB of memory.

Exit status: 0 when every point was built (whether it fits or not), 1 when a build failed.
"""

from lenet5 import add_cluster_arguments, positive_int
from lenet5.cmd_synth import add_common_arguments

HELP = "synthesise several points (models x targets x folds): CSV/JSON table and a Pareto plot"


def add_arguments(parser):
    from hw.flow.presets import SWEEP_PRESETS

    add_common_arguments(parser, sweep=True)
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--folds", nargs="+", metavar="FOLD",
                       help="folds to build, each LAYER=LANESxTAPS,... (layers left out get the default)")
    which.add_argument("--preset", nargs="?", const="folds", choices=tuple(SWEEP_PRESETS), metavar="NAME",
                       help=f"a named sweep ({', '.join(SWEEP_PRESETS)}; see above; NAME left out: folds)")
    parser.add_argument("--points", type=positive_int, metavar="N",
                        help="with --preset: the fold search's number of folds (default: the preset's)")
    add_cluster_arguments(parser, cached="finished builds and accuracies")
    parser.add_argument("--data", metavar="DIR", help="MNIST folder for the accuracy column (default: "
                                                      "$LENET5_MNIST, ../shared/mnist, cache)")
    parser.add_argument("--out", metavar="DIR", help="output folder (required unless --dry-run)")
    parser.add_argument("--dry-run", action="store_true",
                        help="list the points with their multipliers and predicted cycles per image, build nothing")


def run(args):
    import functools
    from pathlib import Path

    from hw.arch import plan
    from hw.flow.cluster import ClusterError
    from hw.flow.presets import preset_points
    from hw.flow.sweep import SweepPoint, run_points
    from hw.plan.fold import Fold
    from lenet5 import DEFAULT_MODEL, REPO_ROOT
    from lenet5.cli import CliError
    from lenet5.cmd_synth import load_qnet

    if args.out is None and not args.dry_run:
        raise CliError("--out DIR is required to build (only --dry-run builds nothing)")
    model_arg = args.model[0] if args.model and len(args.model) == 1 else None
    if args.preset:
        if args.model and len(args.model) > 1:
            raise CliError("--preset takes one --model (or none: the preset's models); use --folds for several")
        models, targets, folds = preset_points(args.preset, model=model_arg, target=args.target,
                                               points=args.points, root=REPO_ROOT)
    else:
        if args.target is None:
            raise CliError("--target is required with --folds (e.g. --target ecp5-25k)")
        if args.points is not None:
            raise CliError("--points goes with --preset, not with --folds")
        models, targets = list(args.model or [str(DEFAULT_MODEL)]), [args.target]
        folds = [Fold.parse(f) for f in args.folds]
    names = [Path(m).stem for m in models]
    if len(set(names)) != len(names):
        raise CliError(f"two --model files have the same name ({', '.join(names)}); the build folders and the "
                       "table name a model by its file name")
    qnets = {name: load_qnet(m) for name, m in zip(names, models)}
    points = [SweepPoint(name, qnet, target, fold) for name, qnet in qnets.items() for target in targets
              for fold in folds]
    print(f"{len(points)} points ({len(qnets)} model{'s' if len(qnets) > 1 else ''} x {len(targets)} "
          f"target{'s' if len(targets) > 1 else ''} x {len(folds)} folds):")
    # one line per point, in build order; the plan validates the fold for its model and target
    for p in points:
        pl = plan(p.qnet, p.fold, arch=args.arch, target=p.target, max_dsps=args.max_dsps)
        multipliers = sum(s.plan.multipliers for s in pl.stages if s.layer in pl.fold and s.role == "engine")
        prefix = f"{p.model} {p.target} " if len(points) > len(folds) else ""
        print(f"  {prefix}{pl.fold}: {multipliers} multipliers, {pl.predicted_ii} cycles/image")
    if args.dry_run:
        return 0
    cache_dir = None if args.no_cache else Path(args.cache_dir or REPO_ROOT / "build" / "cache" / "tasks")
    accuracy = _accuracies(qnets, data=args.data, cache_dir=cache_dir)
    points = [SweepPoint(p.model, p.qnet, p.target, p.fold, accuracy[p.model]) for p in points]
    try:
        reports = run_points(points, out_dir=args.out, jobs=args.jobs, scheduler=args.scheduler,
                             cache_dir=cache_dir, seed=args.seed, freq_mhz=args.freq,
                             use_system_tools=args.system_tools, progress=not args.quiet, max_dsps=args.max_dsps,
                             arch=args.arch, log=functools.partial(print, flush=True))
    except ClusterError as exc:
        raise CliError(str(exc)) from None
    print(f"wrote {args.out}/sweep.csv, sweep.json, pareto.png")
    failed = [r for r in reports if r.get("status") == "failed"]
    if failed:
        print(f"{len(failed)} of {len(reports)} builds failed (see their rows and the log tails above)")
        return 1
    return 0


def _accuracies(qnets, *, data, cache_dir):
    """The golden integer model's accuracy of each description (cached beside the builds)."""
    from hw.flow.accuracy import integer_accuracy

    out = {}
    for name, qnet in qnets.items():
        out[name] = integer_accuracy(qnet, data=data, cache_dir=cache_dir)
        print(f"{name}: accuracy {100 * out[name]:.2f}% (golden integer model, MNIST test set)")
    return out
