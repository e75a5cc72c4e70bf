"""Measure the README's synthesis results and rewrite its table (one command for all of it).

Synthesises each build of hw.flow.results.RESULT_RUNS (target, model, fold, DSP budget) as
`lenet5 synth` does, with the fixed placement seed 1, keeps the logs in build/results/<name>/,
stores one summary row per build in docs/synth_results.json, and rewrites the table between
the synth-results markers of README.md from that file. --only NAME re-measures some builds and
keeps the stored rows of the others; --table-only rewrites the table from the stored rows.

The whole set takes about an hour and a half on one core (the ECP5-85F place and route of the
large folds dominates); --jobs 2 runs two builds at once.
"""

from lenet5 import positive_int

HELP = "synthesise the README's result builds and rewrite its results table"


def add_arguments(parser):
    parser.add_argument("--only", nargs="+", metavar="NAME", help="measure only these builds")
    parser.add_argument("--table-only", action="store_true",
                        help="measure nothing: rewrite the README table from docs/synth_results.json")
    parser.add_argument("--jobs", type=positive_int, default=1, metavar="N", help="builds at the same time")
    parser.add_argument("--quiet", action="store_true", help="no status line while the tools run")


def run(args):
    import json
    from concurrent.futures import ThreadPoolExecutor

    from hw.flow.results import RESULT_RUNS, render_table, replace_table, summary_row
    from lenet5 import REPO_ROOT
    from lenet5.cmd_synth import build_accelerator, load_qnet

    names = [r["name"] for r in RESULT_RUNS]
    unknown = sorted(set(args.only or ()) - set(names))
    if unknown:
        raise ValueError(f"unknown build(s) {', '.join(unknown)}; valid: {', '.join(names)}")
    store = REPO_ROOT / "docs" / "synth_results.json"

    def stored():
        return json.loads(store.read_text()) if store.is_file() else {}

    def save(rows):
        store.write_text(json.dumps(rows, indent=1, sort_keys=True) + "\n")

    todo = [] if args.table_only else [r for r in RESULT_RUNS if not args.only or r["name"] in args.only]

    def measure(run_):
        from hw.flow.synth import SynthError, summary_line, synthesize
        from lenet5.cli import CliError

        qnet = load_qnet(REPO_ROOT / run_["model"])
        accel = build_accelerator(qnet, run_["fold"], target=run_["target"], max_dsps=run_["max_dsps"])
        manifest = accel.manifest()
        try:
            report = synthesize(accel, top=manifest["top"], target=run_["target"],
                                build_dir=REPO_ROOT / "build" / "results" / run_["name"], seed=1,
                                progress=not args.quiet and args.jobs == 1, manifest=manifest,
                                max_dsps=run_["max_dsps"])
        except SynthError as exc:
            raise CliError(f"{run_['name']}: {exc}") from None
        report["model"] = run_["model"]
        print(f"{run_['name']}: {summary_line(report)}", flush=True)
        return run_["name"], summary_row(run_["name"], report)

    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        for name, row in pool.map(measure, todo):
            rows = stored()                    # re-read: another run may have added its row
            rows[name] = row
            save(rows)
    rows = stored()
    stale = sorted(set(rows) - set(names))
    if stale:                                  # builds no longer in RESULT_RUNS
        rows = {n: row for n, row in rows.items() if n in names}
        save(rows)
        print(f"dropped from {store.name} (no longer in hw.flow.results.RESULT_RUNS): {', '.join(stale)}")
    missing = [n for n in names if n not in rows]
    if missing:
        print(f"not measured yet (left out of the table): {', '.join(missing)}")
    readme = REPO_ROOT / "README.md"
    readme.write_text(replace_table(readme.read_text(), render_table([rows[n] for n in names if n in rows])))
    print(f"wrote {store.relative_to(REPO_ROOT)} and the table in README.md")
    return 0
