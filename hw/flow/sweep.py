"""Folding sweep: one synthesis per fold, a table of the results and a Pareto plot.

* :func:`preset_folds` picks folds from line rate (as fast as the input allows, with the
  fewest multipliers that achieve it) to fully serial (one multiplier per layer), using the
  accelerator's own fold search (:func:`hw.arch.dataflow.default_fold`) at cycle-per-image
  targets spaced geometrically in between.
* :func:`run_sweep` synthesises each fold (:func:`hw.flow.synth.synthesize`), in parallel when asked,
  and writes ``sweep.csv``, ``sweep.json`` and ``pareto.png`` (:func:`plot_pareto`).
* :func:`pareto_front` and :func:`sweep_rows` are pure functions of the reports.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

from hw.flow.naming import fold_slug

from hw.arch.dataflow.planning import preset_folds  # noqa: F401  (the sweep's folds; defined by the planner)

__all__ = ["preset_folds", "run_sweep", "sweep_rows", "pareto_front", "plot_pareto", "CSV_COLUMNS"]

#: Columns of ``sweep.csv``, in order.
CSV_COLUMNS = ("fold", "multipliers", "ii_cycles", "latency_cycles", "luts_used", "luts_total",
               "ffs_used", "ffs_total", "dsps_used", "dsps_total", "brams_used", "brams_total",
               "fmax_mhz", "images_per_s", "latency_us", "fits", "status", "exhausted",
               "dsp_multipliers", "lut_multipliers", "memory_bits_in_bram", "memory_bits_in_luts",
               "synth_s", "pnr_s", "build_dir")


def sweep_rows(reports: Sequence[dict]) -> list[dict]:
    """One flat row per report (the columns of :data:`CSV_COLUMNS`)."""
    rows = []
    for r in reports:
        row = {"fold": r.get("fold_str") or "", "multipliers": r.get("multipliers_predicted"),
               "ii_cycles": r.get("ii_cycles"), "latency_cycles": r.get("latency_cycles")}
        for key in ("luts", "ffs", "dsps", "brams"):
            row[f"{key}_used"] = r[key]["used"]
            row[f"{key}_total"] = r[key]["total"]
        row.update(fmax_mhz=r.get("fmax_mhz"), images_per_s=r.get("images_per_s"),
                   latency_us=r.get("latency_us"), fits=r["fits"], status=r.get("status"),
                   exhausted="; ".join(f"{e['resource']} {e['used']}/{e['total']} (+{e['over_by']})"
                                       for e in r.get("exhausted", [])),
                   dsp_multipliers=r.get("multipliers", {}).get("dsp_blocks"),
                   lut_multipliers=r.get("multipliers", {}).get("in_luts"),
                   memory_bits_in_bram=r.get("memory_bits_in_bram"),
                   memory_bits_in_luts=r.get("memory_bits_in_luts"),
                   synth_s=r.get("synth_s"), pnr_s=r.get("pnr_s"), build_dir=r.get("build_dir"))
        rows.append(row)
    return rows


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the Pareto-optimal points of ``(cost, performance)`` pairs: no other point has
    lower-or-equal cost and higher-or-equal performance with one of them strictly better.
    Sorted by cost."""
    front = []
    for i, (c, p) in enumerate(points):
        dominated = any((c2 <= c and p2 >= p) and (c2 < c or p2 > p)
                        for j, (c2, p2) in enumerate(points) if j != i)
        if not dominated:
            front.append(i)
    return sorted(front, key=lambda i: (points[i][0], -points[i][1]))


def plot_pareto(rows: Sequence[dict], path, title: str = "", freq_mhz: float | None = None) -> Path:
    """LUTs and DSP blocks against images/s, one point per fold (matplotlib, Agg).

    Filled circles: designs that fit, with their Pareto front (fewest resources for the
    throughput) drawn as a line; crosses: designs that do not fit, placed at the images/s they
    would reach at *freq_mhz* (they have no fmax). Each point is labelled with its multiplier count.
    """
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.8))
    for ax, key, label in ((axes[0], "luts", "LUTs"), (axes[1], "dsps", "DSP blocks")):
        fit = [(r[f"{key}_used"], r["images_per_s"], r) for r in rows if r["fits"] and r.get("images_per_s")]
        nofit = []
        for r in rows:
            if not r["fits"] and r.get("ii_cycles") and freq_mhz:
                nofit.append((r[f"{key}_used"], freq_mhz * 1e6 / r["ii_cycles"], r))
        if fit:
            ax.scatter([p[1] for p in fit], [p[0] for p in fit], color="tab:blue", zorder=3,
                       label="fits (measured fmax)")
            front = pareto_front([(p[0], p[1]) for p in fit])
            pts = sorted((fit[i][1], fit[i][0]) for i in front)
            ax.plot([p[0] for p in pts], [p[1] for p in pts], color="tab:blue", alpha=0.5,
                    label="Pareto front")
        if nofit:
            ax.scatter([p[1] for p in nofit], [p[0] for p in nofit], marker="x", color="tab:red",
                       zorder=3, label=f"does not fit (at {freq_mhz:g} MHz)")
        for used, ips, r in fit + nofit:
            ax.annotate(str(r.get("multipliers") or ""), (ips, used), textcoords="offset points",
                        xytext=(4, 4), fontsize=7)
        total = next((r[f"{key}_total"] for r in rows), None)
        if total:
            ax.axhline(total, color="gray", linestyle="--", linewidth=1, label=f"device: {total}")
        ax.set_xscale("log")
        ax.set_xlabel("images/s")
        ax.set_ylabel(f"{label} used")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title or "folding sweep (labels: multipliers)")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def run_sweep(qnet, folds: Sequence, *, target: str, out_dir, jobs: int = 1, seed: int = 1,
              freq_mhz: float = 100, use_system_tools: bool = False, progress: bool = True,
              max_dsps=None, synth: Callable | None = None, arch: str = "dataflow",
              log: Callable[[str], None] = print) -> list[dict]:
    """Synthesise the accelerator for each fold; write ``sweep.csv``, ``sweep.json``, ``pareto.png``.

    Parameters
    ----------
    qnet : golden.qnet.QNet
        The network.
    folds : sequence of Fold or str
        One synthesis each (build folder ``out_dir/runs/<fold slug>``, :func:`hw.flow.naming.fold_slug`).
    target : str
        Synthesis target (:data:`hw.flow.synth.TARGETS`).
    max_dsps : int or "auto", optional
        DSP budget (:func:`hw.flow.synth.synthesize`).
    arch : str
        The architecture (:data:`hw.arch.ARCHITECTURES`).
    jobs : int
        Syntheses run at the same time (each is single-threaded; mind the machine's cores and
        memory: a whole-accelerator place and route needs one core and about 1-2 GB).
    synth : callable, optional
        Replaces :func:`hw.flow.synth.synthesize` (tests).

    Returns
    -------
    list of dict
        The reports, in the order of *folds*.
    """
    from hw.arch import TOP, accelerator
    from hw.flow.synth import summary_line, synthesize

    if jobs < 1:
        raise ValueError(f"jobs must be at least 1, not {jobs}")
    synth = synth or synthesize
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    # (validates every fold first)
    accels = [accelerator(qnet, fold, arch=arch, target=target, max_dsps=max_dsps) for fold in folds]

    def one(accel):
        manifest = accel.manifest()
        return synth(accel, top=manifest.get("top", TOP), target=target,
                     build_dir=out / "runs" / fold_slug(accel.fold), seed=seed, freq_mhz=freq_mhz,
                     use_system_tools=use_system_tools, progress=progress and jobs == 1,
                     manifest=manifest, max_dsps=max_dsps)

    reports = [None] * len(accels)
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = {pool.submit(one, a): i for i, a in enumerate(accels)}
        for done, future in enumerate(as_completed(futures), 1):
            i = futures[future]
            reports[i] = future.result()
            log(f"[{done}/{len(accels)}] {summary_line(reports[i])}")
    rows = sweep_rows(reports)
    with open(out / "sweep.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    (out / "sweep.json").write_text(json.dumps({"target": target, "seed": seed, "freq_mhz": freq_mhz,
                                                "rows": rows, "reports": reports},
                                               indent=2, sort_keys=True) + "\n")
    device = reports[0]["device"] if reports else target
    plot_pareto(rows, out / "pareto.png", title=f"LeNet-5 folding sweep on {target} ({device})",
                freq_mhz=freq_mhz)
    return reports

