"""Measure the README's synthesis results and rewrite its table (one command for all of it).

Synthesises each build of hw.flow.results.RESULT_RUNS (target, model, fold, DSP budget) as
`lenet5 synth` does, with the fixed placement seed 1, keeps the logs in build/results/<name>/,
stores one summary row per build in docs/synth_results.json, and rewrites the table between
the synth-results markers of README.md from that file. --only NAME re-measures some builds and
keeps the stored rows of the others; --table-only rewrites the table from the stored rows.

Each build is a task on a Dask cluster (an embedded one of --jobs worker processes, or the scheduler
at --scheduler tcp://HOST:8786 and its workers; see `lenet5 sweep --help`); finished builds are
cached by their Verilog, options and tool versions, so re-running measures only what changed
(--no-cache measures again). A build that fails is retried once, then named with its log tail;
the others are kept. The whole set takes about an hour and a half on one core (the ECP5-85F place
and route of the large folds dominates); --jobs 2 runs two builds at once.
"""

from lenet5 import add_cluster_arguments

HELP = "synthesise the README's result builds and rewrite its results table"


def add_arguments(parser):
    parser.add_argument("--only", nargs="+", metavar="NAME", help="measure only these builds")
    parser.add_argument("--table-only", action="store_true",
                        help="measure nothing: rewrite the README table from docs/synth_results.json")
    add_cluster_arguments(parser)
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args):
    import json
    from pathlib import Path

    from hw.flow.cluster import ClusterError, run_tasks
    from hw.flow.results import RESULT_RUNS, render_table, replace_table, summary_row
    from hw.flow.synth import summary_line
    from hw.flow.synth_task import (
        synth_payload,
        synth_task,
        synth_versions,
        write_build,
    )
    from lenet5 import REPO_ROOT
    from lenet5.cli import CliError
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
    by_name = {r["name"]: r for r in todo}
    verilog, failed = {}, []

    def payloads():
        for run_ in todo:
            qnet = load_qnet(REPO_ROOT / run_["model"])
            accel = build_accelerator(qnet, run_["fold"], target=run_["target"], max_dsps=run_["max_dsps"])
            manifest = accel.manifest()
            payload = synth_payload(accel, top=manifest["top"], target=run_["target"], seed=1, manifest=manifest,
                                    max_dsps=run_["max_dsps"])
            verilog[run_["name"]] = payload["verilog"]
            yield run_["name"], payload

    def on_result(result):
        name = result.key
        text = verilog.pop(name)
        if not result.ok:
            failed.append(name)
            print(f"{name}: FAILED after a retry: {result.error}\n"
                  + "\n".join(f"    {line}" for line in result.log_tail.splitlines()), flush=True)
            return
        report = write_build(result.value, text, REPO_ROOT / "build" / "results" / name)
        report["model"] = by_name[name]["model"]
        print(f"{name}: {summary_line(report)}{' (cached)' if result.cached else ''}", flush=True)
        rows = stored()                        # re-read: another run may have added its row
        rows[name] = summary_row(name, report)
        save(rows)

    if todo:
        from hw.flow.sweep import family_target
        from hw.targets import target as get_target

        families = sorted({get_target(r["target"]).family for r in todo})
        cache_dir = None if args.no_cache else Path(args.cache_dir or REPO_ROOT / "build" / "cache" / "tasks")
        try:
            run_tasks(synth_task, payloads(), jobs=args.jobs, scheduler=args.scheduler, cache_dir=cache_dir,
                      versions={f: synth_versions(family_target(f)) for f in families}, progress=not args.quiet,
                      desc="builds", on_result=on_result, total=len(todo))
        except ClusterError as exc:
            raise CliError(str(exc)) from None
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
    if failed:
        raise CliError(f"{len(failed)} build(s) failed: {', '.join(failed)} (their log tails are above; the "
                       "table keeps their earlier rows)")
    return 0
