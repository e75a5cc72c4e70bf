"""What a build used and whether it fits: the report figures computed from the parsed tool output.

* :func:`fit_verdict`: per resource ``{"used", "total"}`` (nextpnr's counts, else Yosys's), the
  exhausted resources, ``status`` and ``fits``; :func:`exhausted_resources` of a nextpnr
  utilisation table; :func:`estimate_from_yosys` when nextpnr stopped before its table;
* :func:`inference`: multipliers in DSP blocks vs LUTs, memory bits in block RAM vs LUTs, and
  warnings for what did not map to a hard block;
* :func:`manifest_figures`: fold, cycles per image, images/s, latency from the generation manifest;
* :func:`summary_line`: the one-line summary ``lenet5 synth`` prints;
* :func:`estimate_figures`, :func:`estimate_line`: the plan's resource estimate
  (:mod:`hw.plan.estimate`) beside the measured figures, with its relative error.

Target facts (capacities, DSP and RAM cell types) come from the :class:`hw.targets.Target`; the
nextpnr bel name of each generic resource, per family, is :data:`BELS`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

__all__ = ["BELS", "RESOURCE_NAMES", "REPORT_KEYS", "FF_CELL_RE", "LARGE_FF_MEMORY_BITS", "LARGE_LUTRAM_BITS",
           "generic_resources", "exhausted_resources", "estimate_from_yosys", "fit_verdict", "inference",
           "manifest_figures", "summary_line", "estimate_figures", "estimate_line"]

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
#: Yosys cell types of the flip-flops, per family.
FF_CELL_RE = {"ecp5": re.compile(r"^TRELLIS_FF$"), "ice40": re.compile(r"^SB_DFF\w*$")}

#: Memories at least this large are reported (``inference_warnings``) when Yosys puts them into
#: flip-flops and LUT logic, or into LUT RAM: half a DP16KD / one SB_RAM40_4K or more.
LARGE_FF_MEMORY_BITS = 1024
LARGE_LUTRAM_BITS = 8192


def generic_resources(family, util: Mapping) -> dict:
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


def estimate_from_yosys(target, cells: Mapping) -> dict:
    """Approximate resource use of *target* (a :class:`hw.targets.Target`) from the final Yosys
    cell counts (used when nextpnr stopped before its utilisation table)."""
    family = target.family
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
            "dsp": sum(cells.get(c, 0) for c in target.dsp_cells),
            "bram": sum(cells.get(c, 0) for c in target.bram_cells), "io": ios}

def fit_verdict(target, util: Mapping, yosys_cells: Mapping, pnr_ok: bool) -> dict:
    """Whether the build fits *target*, from nextpnr's utilisation table *util* (parsed from its
    report or log) and the final Yosys cell counts.

    Returns
    -------
    dict
        ``resources``: ``{generic resource: {"used", "total"}}`` (nextpnr's counts; Yosys's
        estimate where nextpnr has none, e.g. an iCE40's FFs); ``exhausted``: the over-capacity
        resources (:func:`exhausted_resources`; judged by Yosys's counts when nextpnr stopped
        before its table); ``status``: ``"ok"``, ``"does_not_fit"`` or ``"pnr_failed"``;
        ``fits``: whether nextpnr succeeded.
    """
    family = target.family
    exhausted = exhausted_resources(family, util)
    estimate = estimate_from_yosys(target, yosys_cells)

    def over(res, used):
        return {"resource": RESOURCE_NAMES[res], "bel": BELS[family][res] or res, "used": used,
                "total": target.totals[res], "over_by": used - target.totals[res]}

    if not pnr_ok and not util:
        # nextpnr stopped before its utilisation table: judge by Yosys's cell counts.
        exhausted = [over(r, n) for r, n in estimate.items() if n > target.totals[r]]
    if pnr_ok:
        status = "ok"
    else:
        status = "does_not_fit" if exhausted else "pnr_failed"
    resources = generic_resources(family, util)
    named = {e["resource"] for e in exhausted}
    for res, total in target.totals.items():
        if res not in resources:
            # not in nextpnr's table (an iCE40's FFs live in its logic cells): Yosys's count
            resources[res] = {"used": estimate[res], "total": total}
            if not pnr_ok and estimate[res] > total and RESOURCE_NAMES[res] not in named:
                exhausted.append(over(res, estimate[res]))
    return {"resources": resources, "exhausted": exhausted, "status": status, "fits": pnr_ok}


def inference(target, pre, mid, cells_mid, mapping, plan=None) -> dict:
    """Multipliers in DSP blocks vs LUTs and memory bits in block RAM vs LUTs, with warnings, for
    *target* (its DSP cell types), from the parsed Yosys statistics before (*pre*) and after DSP
    mapping (*mid*, *cells_mid*), the memory mapper's decisions and the DSP-budget *plan*."""
    in_design = pre["cells"].get("$mul", 0)
    dsp_blocks = sum(mid["cells"].get(c, 0) for c in target.dsp_cells)
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


def manifest_figures(manifest: Mapping, fmax) -> dict:
    """Fold, cycles per image and latency from a generation manifest, with images/s and latency
    in microseconds at *fmax* (MHz; None: not placed and routed)."""
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
    """One line: target, fold, LUT/FF/DSP/BRAM used/total, fmax and whether it meets the frequency
    target (``timing_met``), images/s, fits."""
    parts = [report["target"]]
    if report.get("fold_str"):
        parts.append(f"fold {report['fold_str']}")
    for key, label in (("luts", "LUT"), ("ffs", "FF"), ("dsps", "DSP"), ("brams", "BRAM")):
        r = report[key]
        parts.append(f"{label} {r['used']}/{r['total']}")
    fmax, target = report.get("fmax_mhz"), report.get("freq_target_mhz")
    if not fmax:
        parts.append("fmax -")
    elif target and report.get("timing_met") is False:
        parts.append(f"fmax {fmax:.1f} MHz (TIMING NOT MET: target {target:g} MHz)")
    elif target and report.get("timing_met"):
        parts.append(f"fmax {fmax:.1f} MHz (meets the {target:g} MHz target)")
    else:
        parts.append(f"fmax {fmax:.1f} MHz")
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


def estimate_figures(estimate: Mapping, report: Mapping) -> dict:
    """The report's ``estimate`` (``{luts, ffs, dsps, brams}``, :func:`hw.plan.estimate.estimate`)
    and ``estimate_error``: per resource ``(estimate - measured) / measured`` (None where nothing
    was measured)."""
    from hw.plan.estimate import estimate_error

    est = {k: int(estimate[k]) for k in REPORT_KEYS.values() if k in estimate}
    return {"estimate": est, "estimate_error": estimate_error(est, report)}


def estimate_line(report: Mapping) -> str | None:
    """``estimate LUT 11,520 (measured 11,483, +0.3%), FF ...`` of a report with an estimate, else None."""
    est, err = report.get("estimate"), report.get("estimate_error") or {}
    if not est:
        return None
    parts = []
    for key, label in (("luts", "LUT"), ("ffs", "FF"), ("dsps", "DSP"), ("brams", "BRAM")):
        if key not in est:
            continue
        used = (report.get(key) or {}).get("used")
        e = err.get(key)
        measured = f" (measured {used:,}, {e:+.1%})" if used is not None and e is not None else ""
        parts.append(f"{label} {est[key]:,}{measured}")
    return "estimate " + ", ".join(parts)
