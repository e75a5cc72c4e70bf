"""Folding sweep: synthesise the accelerator at several folds and plot resources against throughput.

One Yosys + nextpnr run per fold (see `lenet5 synth`), given explicitly with --folds or taken
from --preset: folds from fully serial (one multiplier per layer) to line rate, chosen by the
accelerator's fold search at cycle-per-image targets spaced geometrically in between. Writes
<out>/sweep.csv and <out>/sweep.json (one row per fold: fold, multipliers, cycles per image,
LUT/FF/DSP/BRAM used and total, fmax, images/s, fits, exhausted resources, run times), and
<out>/pareto.png (LUTs and DSP blocks against images/s; the Pareto front of the designs that fit).
Each run keeps its build folder and logs under <out>/runs/.

Place and route of a large fold takes tens of minutes; --jobs runs several at once (each uses
one core and 1-2 GB of memory).
"""

from lenet5 import positive_int
from lenet5.cmd_synth import add_common_arguments

HELP = "synthesise several folds, write a CSV/JSON table and a Pareto plot (LUTs, DSPs vs images/s)"


def add_arguments(parser):
    add_common_arguments(parser)
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--folds", nargs="+", metavar="FOLD",
                       help="folds to build, each LAYER=LANESxTAPS,... (layers left out get the default)")
    which.add_argument("--preset", action="store_true",
                       help="folds from fully serial to line rate from the accelerator's fold search")
    parser.add_argument("--points", type=positive_int, default=7, metavar="N",
                        help="with --preset: at most N folds")
    parser.add_argument("--jobs", type=positive_int, default=1, metavar="N", help="syntheses at the same time")
    parser.add_argument("--out", metavar="DIR", help="output folder (required unless --dry-run)")
    parser.add_argument("--dry-run", action="store_true",
                        help="list the folds with their multipliers and predicted cycles per image, build nothing")


def run(args):
    from hw.arch import plan
    from hw.plan.fold import Fold
    from hw.flow.sweep import preset_folds, run_sweep
    from lenet5.cli import CliError
    from lenet5.cmd_synth import load_qnet

    if args.out is None and not args.dry_run:
        raise CliError("--out DIR is required to build (only --dry-run builds nothing)")
    qnet = load_qnet(args.model)
    if args.preset:
        if args.points < 2:
            raise ValueError(f"--points must be at least 2, got {args.points}")
        folds = preset_folds(qnet, args.points)
    else:
        folds = [Fold.parse(f) for f in args.folds]
    print(f"{len(folds)} folds of the {qnet.variant} model for {args.target}:")
    for fold in folds:
        p = plan(qnet, fold, arch=args.arch, target=args.target, max_dsps=args.max_dsps)
        multipliers = sum(s.plan.multipliers for s in p.stages if s.layer in p.fold and s.role == "engine")
        print(f"  {p.fold}: {multipliers} multipliers, {p.predicted_ii} cycles/image")
    if args.dry_run:
        return 0
    run_sweep(qnet, folds, target=args.target, out_dir=args.out, jobs=args.jobs, seed=args.seed,
              freq_mhz=args.freq, use_system_tools=args.system_tools, progress=not args.quiet,
              max_dsps=args.max_dsps, arch=args.arch)
    print(f"wrote {args.out}/sweep.csv, sweep.json, pareto.png")
    return 0
