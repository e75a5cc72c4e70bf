"""Folding sweep: one synthesis per point (model x target x fold), a table and a Pareto plot.

* :func:`preset_folds` (the planner's) picks folds from line rate (as fast as the input allows,
  with the fewest multipliers that achieve it) to fully serial (one multiplier per layer);
  :mod:`hw.flow.presets` names sweeps over models, targets and those folds.
* :func:`run_points` synthesises each :class:`SweepPoint` as a task of :mod:`hw.flow.cluster`
  (:func:`hw.flow.synth_task.synth_task`: the Verilog goes to the worker as data, the report and
  logs come back as data) on an embedded Dask cluster or an existing scheduler, with the
  client-side result cache; it writes ``sweep.csv``, ``sweep.json`` and ``pareto.png``
  (:func:`plot_pareto`). :func:`run_sweep` is the one-model, one-target form.
* :func:`pareto_front`, :func:`pareto_optimal` and :func:`sweep_rows` are pure functions of the
  reports.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hw.arch.dataflow.planning import preset_folds
from hw.flow.naming import fold_slug

__all__ = [
    "CSV_COLUMNS",
    "SweepPoint",
    "pareto_front",
    "pareto_optimal",
    "plot_pareto",
    "preset_folds",
    "run_points",
    "run_sweep",
    "sweep_rows",
]

#: Columns of ``sweep.csv``, in order (``model``: the description's file stem; ``precision``:
#: :func:`hw.flow.accuracy.precision_label`; ``accuracy``: of the golden integer model on the
#: MNIST test set, :func:`hw.flow.accuracy.integer_accuracy`; ``error``: why a build failed).
CSV_COLUMNS = ("fold", "multipliers", "ii_cycles", "latency_cycles", "luts_used", "luts_total",
               "ffs_used", "ffs_total", "dsps_used", "dsps_total", "brams_used", "brams_total",
               "fmax_mhz", "images_per_s", "latency_us", "fits", "status", "exhausted",
               "dsp_multipliers", "lut_multipliers", "memory_bits_in_bram", "memory_bits_in_luts",
               "synth_s", "pnr_s", "build_dir", "model", "precision", "target", "accuracy", "error")


@dataclass(frozen=True)
class SweepPoint:
    """One synthesis of a sweep.

    Members
    -------
    model : str
        Name of the description in the table and the build folders (its file stem).
    qnet : golden.qnet.QNet
        The description.
    target : str
        Synthesis target (:data:`hw.targets.TARGETS`).
    fold : hw.plan.fold.Fold or str
        The fold (layers left out get the default's choice).
    accuracy : float, optional
        The golden integer model's accuracy on the MNIST test set (None: not evaluated).
    """

    model: str
    qnet: Any
    target: str
    fold: Any
    accuracy: float | None = None


def sweep_rows(reports: Sequence[dict]) -> list[dict]:
    """One flat row per report (the columns of :data:`CSV_COLUMNS`; resources None for a
    build that failed)."""
    rows = []
    for r in reports:
        row = {"fold": r.get("fold_str") or "", "multipliers": r.get("multipliers_predicted"),
               "ii_cycles": r.get("ii_cycles"), "latency_cycles": r.get("latency_cycles")}
        for key in ("luts", "ffs", "dsps", "brams"):
            row[f"{key}_used"] = (r.get(key) or {}).get("used")
            row[f"{key}_total"] = (r.get(key) or {}).get("total")
        row.update(fmax_mhz=r.get("fmax_mhz"), images_per_s=r.get("images_per_s"),
                   latency_us=r.get("latency_us"), fits=r["fits"], status=r.get("status"),
                   exhausted="; ".join(f"{e['resource']} {e['used']}/{e['total']} (+{e['over_by']})"
                                       for e in r.get("exhausted", [])),
                   dsp_multipliers=r.get("multipliers", {}).get("dsp_blocks"),
                   lut_multipliers=r.get("multipliers", {}).get("in_luts"),
                   memory_bits_in_bram=r.get("memory_bits_in_bram"),
                   memory_bits_in_luts=r.get("memory_bits_in_luts"),
                   synth_s=r.get("synth_s"), pnr_s=r.get("pnr_s"), build_dir=r.get("build_dir"),
                   model=r.get("model"), precision=r.get("precision"), target=r.get("target"),
                   accuracy=r.get("accuracy"), error=r.get("task_error"))
        rows.append(row)
    return rows


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the Pareto-optimal points of ``(cost, performance)`` pairs: no other point has
    lower-or-equal cost and higher-or-equal performance with one of them strictly better.
    Sorted by cost."""
    front = pareto_optimal([(-c, p) for c, p in points])
    return sorted(front, key=lambda i: (points[i][0], -points[i][1]))


def pareto_optimal(points: Sequence[Sequence[float]]) -> list[int]:
    """Indices (ascending) of the points no other point dominates, every coordinate to be
    maximised: *q* dominates *p* when it is at least as large in every coordinate and larger in
    one. Equal points are all kept."""
    front = []
    for i, p in enumerate(points):
        dominated = any(all(a >= b for a, b in zip(q, p)) and any(a > b for a, b in zip(q, p))
                        for j, q in enumerate(points) if j != i)
        if not dominated:
            front.append(i)
    return front


#: Marker per target in :func:`plot_pareto` (others: "o").
_TARGET_MARKERS = {"ecp5-25k": "o", "ecp5-45k": "s", "ecp5-85k": "D", "ice40-up5k": "^"}


def plot_pareto(rows: Sequence[dict], path, title: str = "", freq_mhz: float | None = None) -> Path:
    """Images/s against LUTs used, one point per row, coloured by accuracy (matplotlib, Agg).

    Filled markers: designs that fit, at their measured fmax; hollow markers: designs that do
    not fit, at the images/s they would reach at *freq_mhz* (they have no fmax; left out without
    it). The colour is the row's ``accuracy`` (colour bar; grey when not evaluated), the marker
    shape its target; each point is labelled with its multiplier count (and its precision when
    the rows have several). Black rings mark the
    Pareto-optimal designs that fit: no other fitting design has fewer-or-equal LUTs,
    higher-or-equal images/s and higher-or-equal accuracy (:func:`pareto_optimal`); a dashed
    line joins the designs of the LUT / images/s front alone (:func:`pareto_front`). Dotted
    vertical lines: the targets' LUT capacity. Rows of failed builds (no LUT figure) are left
    out. The output is byte-identical for equal rows.
    """
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib import colors

    pts = []                                   # (luts, images/s, accuracy or None, fits, row)
    for r in rows:
        if r.get("luts_used") is None:
            continue
        if r["fits"] and r.get("images_per_s"):
            pts.append((r["luts_used"], r["images_per_s"], r.get("accuracy"), True, r))
        elif not r["fits"] and r.get("ii_cycles") and freq_mhz:
            pts.append((r["luts_used"], freq_mhz * 1e6 / r["ii_cycles"], r.get("accuracy"), False, r))
    accs = [p[2] for p in pts if p[2] is not None]
    cmap = plt.get_cmap("viridis")
    lo, hi = (min(accs), max(accs)) if accs else (0.0, 1.0)
    if hi - lo < 1e-9:                         # one accuracy: a colour bar around it
        lo, hi = lo - 5e-4, hi + 5e-4
    norm = colors.Normalize(vmin=100 * lo, vmax=100 * hi)

    def colour(acc):
        return cmap(norm(100 * acc)) if acc is not None else (0.5, 0.5, 0.5, 1.0)

    fig, ax = plt.subplots(figsize=(8, 5.2))
    targets = sorted({p[4].get("target") or "" for p in pts})
    for tgt in targets:
        marker = _TARGET_MARKERS.get(tgt, "o")
        for fits in (True, False):
            sel = [p for p in pts if (p[4].get("target") or "") == tgt and p[3] == fits]
            if not sel:
                continue
            cols = [colour(p[2]) for p in sel]
            ax.scatter([p[0] for p in sel], [p[1] for p in sel], marker=marker, s=46, zorder=3,
                       facecolors=cols if fits else "none", edgecolors=cols, linewidths=1.4)
    fit = [p for p in pts if p[3]]
    if fit:
        best = pareto_optimal([(-p[0], p[1], p[2] if p[2] is not None else 0.0) for p in fit])
        ax.scatter([fit[i][0] for i in best], [fit[i][1] for i in best], marker="o", s=150,
                   facecolors="none", edgecolors="black", linewidths=1.0, zorder=4,
                   label="Pareto-optimal (LUTs, images/s, accuracy)")
        front = pareto_front([(p[0], p[1]) for p in fit])
        ax.plot([fit[i][0] for i in front], [fit[i][1] for i in front], color="black", alpha=0.4,
                linestyle="--", linewidth=1, zorder=2, label="LUT / images/s front")
    precisions = {p[4].get("precision") for p in pts}
    for luts, ips, _, _, r in pts:
        label = str(r.get("multipliers") or "")
        if len(precisions) > 1 and r.get("precision"):
            label += f" {r['precision']}"
        ax.annotate(label, (luts, ips), textcoords="offset points", xytext=(5, 4), fontsize=7)
    totals = sorted({(r.get("luts_total"), r.get("target") or "") for r in rows if r.get("luts_total")})
    for total, tgt in totals:
        ax.axvline(total, color="gray", linestyle=":", linewidth=1)
        ax.annotate(f"{tgt} LUTs", (total, 1), xycoords=("data", "axes fraction"), rotation=90,
                    fontsize=7, color="gray", va="top", ha="right")
    if accs:
        bar = fig.colorbar(plt.cm.ScalarMappable(norm=norm, cmap=cmap), ax=ax)
        bar.set_label("accuracy on the MNIST test set (%, golden integer model)")
    if pts:
        ax.set_xscale("log")
        ax.set_yscale("log")
    ax.set_xlabel("LUTs used")
    ax.set_ylabel("images/s")
    ax.grid(True, which="both", alpha=0.3)
    if pts:
        # legend entries in neutral grey (the colour is the accuracy, not the series)
        from matplotlib.lines import Line2D
        grey = (0.45, 0.45, 0.45, 1.0)
        handles = [Line2D([], [], linestyle="none", marker=_TARGET_MARKERS.get(tgt, "o"), markersize=7,
                          markerfacecolor=grey if fits else "none", markeredgecolor=grey,
                          label=f"{tgt or 'design'}: " + ("fits" if fits else f"does not fit (at {freq_mhz:g} MHz)"))
                   for tgt in targets for fits in (True, False)
                   if any((p[4].get("target") or "") == tgt and p[3] == fits for p in pts)]
        handles += [h for h in ax.get_legend_handles_labels()[0] if h.get_label().startswith(("Pareto", "LUT /"))]
        ax.legend(handles=handles, fontsize=7, loc="best")
    ax.set_title(title or "folding sweep", fontsize=10)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100, metadata={"Software": None})
    plt.close(fig)
    return path


def _build_dir(out: Path, point: SweepPoint, single: bool) -> Path:
    slug = fold_slug(point.fold)
    return out / "runs" / (slug if single else f"{point.model}_{point.target}_{slug}")


def run_points(points: Sequence[SweepPoint], *, out_dir, jobs: int = 1, scheduler: str | None = None,
               cache_dir=None, seed: int = 1, freq_mhz: float = 100, use_system_tools: bool = False,
               progress: bool = True, max_dsps=None, arch: str = "dataflow", synth: Callable | None = None,
               log: Callable[[str], None] = print) -> list[dict]:
    """Synthesise every point; write ``sweep.csv``, ``sweep.json``, ``pareto.png`` into *out_dir*.

    Each point is a task (:func:`hw.flow.synth_task.synth_task`) on a Dask cluster
    (:class:`hw.flow.cluster.TaskCluster`): the client builds the accelerator and its Verilog,
    the worker runs Yosys and nextpnr in its own temporary folder, and the client writes the
    returned logs and report into ``out_dir/runs/<fold slug>`` (with several models or targets:
    ``runs/<model>_<target>_<fold slug>``). A point whose build fails (after one retry) becomes a
    row with ``status`` ``"failed"`` and ``error``; its log tail is logged; the others are kept.
    Interrupted (Ctrl-C), it writes the outputs of the points finished so far, then re-raises.

    Parameters
    ----------
    points : sequence of SweepPoint
        Every fold is validated (planned) before anything runs.
    out_dir : path-like
        Output folder (created).
    jobs : int
        Workers of the embedded cluster (each build is single-threaded; a whole-accelerator
        place and route needs one core and about 1-2 GB).
    scheduler : str, optional
        ``tcp://HOST:PORT`` of a running Dask scheduler to use instead.
    cache_dir : path-like, optional
        Client-side cache of finished builds (None: none), keyed by the Verilog, the options
        and the tool versions.
    seed, freq_mhz, use_system_tools, max_dsps
        As :func:`hw.flow.synth.synthesize`.
    arch : str
        The architecture (:data:`hw.arch.ARCHITECTURES`).
    synth : callable, optional
        Replaces :func:`hw.flow.synth.synthesize`, called in this process, one point after the
        other (tests).

    Returns
    -------
    list of dict
        The reports, in the order of *points* (``model``, ``precision``, ``accuracy`` added).

    Raises
    ------
    ValueError
        *jobs* below 1, a bad fold, target or DSP budget (before anything runs).
    hw.flow.cluster.ClusterError
        The scheduler cannot be reached.
    """
    from hw.arch import TOP, accelerator
    from hw.flow.accuracy import precision_label
    from hw.flow.synth import summary_line

    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs must be at least 1, not {jobs}")
    out = Path(out_dir)
    single = len({(p.model, p.target) for p in points}) == 1
    dirs = [_build_dir(out, p, single) for p in points]
    if len(set(dirs)) != len(dirs):
        raise ValueError("the sweep names the same point twice (model, target and fold): "
                         + ", ".join(sorted({str(d.name) for d in dirs if dirs.count(d) > 1})))
    # (validates every fold first)
    accels = [accelerator(p.qnet, p.fold, arch=arch, target=p.target, max_dsps=max_dsps) for p in points]
    out.mkdir(parents=True, exist_ok=True)
    reports: list = [None] * len(points)

    def finish(i, report):
        report.update(model=points[i].model, precision=precision_label(points[i].qnet),
                      accuracy=points[i].accuracy)
        reports[i] = report

    if synth is not None:
        for i, accel in enumerate(accels):
            manifest = accel.manifest()
            finish(i, synth(accel, top=manifest.get("top", TOP), target=points[i].target, build_dir=dirs[i],
                            seed=seed, freq_mhz=freq_mhz, use_system_tools=use_system_tools,
                            progress=progress, manifest=manifest, max_dsps=max_dsps))
            log(f"[{i + 1}/{len(accels)}] {summary_line(reports[i])}")
    else:
        try:
            _run_on_cluster(points, accels, dirs, finish, jobs=jobs, scheduler=scheduler, cache_dir=cache_dir,
                            seed=seed, freq_mhz=freq_mhz, use_system_tools=use_system_tools, progress=progress,
                            max_dsps=max_dsps, log=log)
        except KeyboardInterrupt:
            done = [i for i, r in enumerate(reports) if r is not None]
            if done:                        # hours of builds: keep the table of the finished ones
                write_outputs(out, [points[i] for i in done], [reports[i] for i in done], seed=seed,
                              freq_mhz=freq_mhz)
                log(f"interrupted: wrote the {len(done)} finished of {len(points)} points to {out}")
            raise
    write_outputs(out, points, reports, seed=seed, freq_mhz=freq_mhz)
    return reports


def _run_on_cluster(points, accels, dirs, finish, *, jobs, scheduler, cache_dir, seed, freq_mhz,
                    use_system_tools, progress, max_dsps, log):
    from hw.arch import TOP
    from hw.flow.cluster import run_tasks
    from hw.flow.synth import summary_line
    from hw.flow.synth_task import (
        synth_payload,
        synth_task,
        synth_versions,
        write_build,
    )
    from hw.targets import target as get_target

    verilog = {}

    def payloads():
        for i, accel in enumerate(accels):
            manifest = accel.manifest()
            payload = synth_payload(accel, top=manifest.get("top", TOP), target=points[i].target, seed=seed,
                                    freq_mhz=freq_mhz, use_system_tools=use_system_tools, max_dsps=max_dsps,
                                    manifest=manifest)
            verilog[i] = payload["verilog"]
            yield i, payload

    done = [0]

    def on_result(result):
        i = result.key
        done[0] += 1
        point = points[i]
        where = f"{point.model} {point.target} {fold_slug(point.fold)}"
        if result.ok:
            report = write_build(result.value, verilog.pop(i), dirs[i])
            finish(i, report)
            how = " (cached)" if result.cached else f" ({result.worker})" if result.worker else ""
            log(f"[{done[0]}/{len(points)}] {where}: {summary_line(report)}{how}")
        else:
            verilog.pop(i, None)
            finish(i, _failed_report(point, accels[i], result.error))
            log(f"[{done[0]}/{len(points)}] {where}: FAILED after a retry: {result.error}\n"
                + "\n".join(f"    {line}" for line in result.log_tail.splitlines()))

    families = sorted({get_target(p.target).family for p in points})
    versions = {family: synth_versions(family_target(family), use_system_tools) for family in families}
    run_tasks(synth_task, payloads(), jobs=jobs, scheduler=scheduler, cache_dir=cache_dir, versions=versions,
              progress=progress, desc="builds", on_result=on_result, total=len(points), log=log)


def family_target(family: str) -> str:
    """A target of *family* (to ask for its tools' versions)."""
    from hw.targets import TARGETS

    return next(name for name, t in TARGETS.items() if t.family == family)


def _failed_report(point: SweepPoint, accel, error: str) -> dict:
    manifest = accel.manifest()
    return {"target": point.target, "fold_str": str(accel.fold), "multipliers_predicted": manifest.get("multipliers"),
            "ii_cycles": manifest.get("predicted_ii_cycles"), "latency_cycles": manifest.get("predicted_latency_cycles"),
            "fits": False, "status": "failed", "exhausted": [], "task_error": error}


def write_outputs(out: Path, points: Sequence[SweepPoint], reports: Sequence[dict], *, seed: int,
                  freq_mhz: float) -> None:
    """``sweep.csv``, ``sweep.json`` and ``pareto.png`` of finished *reports* into *out*."""
    rows = sweep_rows(reports)
    with open(out / "sweep.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    targets = sorted({p.target for p in points})
    models = sorted({p.model for p in points})
    (out / "sweep.json").write_text(json.dumps(
        {"target": targets[0] if len(targets) == 1 else None, "targets": targets, "models": models,
         "seed": seed, "freq_mhz": freq_mhz, "rows": rows, "reports": list(reports)},
        indent=2, sort_keys=True) + "\n")
    devices = sorted({r["device"] for r in reports if r.get("device")})
    title = (f"LeNet-5 sweep: {', '.join(models)} on {', '.join(targets)}"
             + (f" ({', '.join(devices)})" if devices else "") + "\nlabels: multipliers")
    plot_pareto(rows, out / "pareto.png", title=title, freq_mhz=freq_mhz)


def run_sweep(qnet, folds: Sequence, *, target: str, out_dir, jobs: int = 1, scheduler: str | None = None,
              cache_dir=None, seed: int = 1, freq_mhz: float = 100, use_system_tools: bool = False,
              progress: bool = True, max_dsps=None, synth: Callable | None = None, arch: str = "dataflow",
              model: str = "", accuracy: float | None = None, log: Callable[[str], None] = print) -> list[dict]:
    """:func:`run_points` for the *folds* of one description *qnet* (named *model*, with
    *accuracy*) on one *target*; build folders ``out_dir/runs/<fold slug>``
    (:func:`hw.flow.naming.fold_slug`)."""
    points = [SweepPoint(model or qnet.variant, qnet, target, fold, accuracy) for fold in folds]
    return run_points(points, out_dir=out_dir, jobs=jobs, scheduler=scheduler, cache_dir=cache_dir, seed=seed,
                      freq_mhz=freq_mhz, use_system_tools=use_system_tools, progress=progress,
                      max_dsps=max_dsps, arch=arch, synth=synth, log=log)

