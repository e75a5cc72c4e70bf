"""The README results table: rows from synthesis reports, rendering, replacing between markers,
and the `lenet5 results` command's errors (no synthesis runs here)."""

import pytest

from hw.flow.results import BEGIN, END, RESULT_RUNS, render_table, replace_table, summary_row


def _report(fits=True, fmax=101.234, exhausted=()):
    return {"target": "ecp5-85k", "model": "models/modern_int8.json", "fold_str": "C1=3x25,C3=6x25",
            "multipliers_predicted": 255, "fmax_mhz": fmax, "ii_cycles": 2016, "latency_cycles": 7318,
            "images_per_s": fmax * 1e6 / 2016 if fmax else None, "latency_us": 7318 / fmax if fmax else None,
            "fits": fits, "synth_s": 512.4, "pnr_s": 1800.6, "seed": 1,
            "tools": {"yosys": "Yosys 0.70", "nextpnr-ecp5": "nextpnr-0.11.1"},
            "luts": {"used": 41315, "total": 83640}, "ffs": {"used": 19367, "total": 83640},
            "dsps": {"used": 156, "total": 156}, "brams": {"used": 40, "total": 208},
            "exhausted": list(exhausted), "multipliers": {"in_design": 255, "dsp_blocks": 156, "in_luts": 99},
            "commands": ["not copied"]}


def test_summary_row_keeps_the_table_fields():
    row = summary_row("x", _report())
    assert row["name"] == "x" and row["luts"] == {"used": 41315, "total": 83640}
    assert row["multipliers"]["in_luts"] == 99 and "commands" not in row


def test_render_table_rows_and_verdicts():
    over = [{"resource": "BRAM", "used": 168, "total": 30, "over_by": 138}]
    rows = [summary_row("a", _report()), summary_row("b", _report(fits=False, fmax=None, exhausted=over))]
    table = render_table(rows)
    lines = table.splitlines()
    assert lines[0].startswith("| target |") and set(lines[1].replace("|", "").split()) == {"---"}
    assert lines[0].count("|") == lines[1].count("|") == lines[2].count("|") == lines[3].count("|")
    assert "| 101.2 | 2,016 | 50,215 | 72.3 | fits | 512 / 1801 |" in lines[2]
    assert "41,315 / 83,640" in lines[2] and "`C1=3x25,C3=6x25`" in lines[2] and "| modern_int8 |" in lines[2]
    assert "| - | 2,016 | - | - | no: BRAM over by 138 |" in lines[3]
    assert lines[-1] == "Tools: nextpnr-ecp5: nextpnr-0.11.1; yosys: Yosys 0.70."


def test_replace_table_between_markers():
    text = f"# title\n\nintro\n{BEGIN}\nold table\n{END}\nafter\n"
    new = replace_table(text, "| new |")
    assert new == f"# title\n\nintro\n{BEGIN}\n| new |\n{END}\nafter\n"
    assert replace_table(new, "| new |") == new                      # idempotent


@pytest.mark.parametrize("text", ["no markers", f"{END}\n{BEGIN}\n", f"{BEGIN}\n{BEGIN}\n{END}\n"])
def test_replace_table_needs_the_markers(text):
    with pytest.raises(ValueError, match="README must contain"):
        replace_table(text, "x")


def test_readme_has_the_markers():
    from lenet5 import REPO_ROOT

    text = (REPO_ROOT / "README.md").read_text()
    assert replace_table(text, "x").count(BEGIN) == 1


def test_result_runs_are_valid_builds():
    """Every build of the table names an existing model, a known target and a fold the generator
    accepts (so `lenet5 results` cannot fail on its own list)."""
    from hw.arch.dataflow import Fold
    from hw.flow.synth import TARGETS
    from lenet5 import REPO_ROOT

    names = [r["name"] for r in RESULT_RUNS]
    assert len(set(names)) == len(names)
    for r in RESULT_RUNS:
        assert r["target"] in TARGETS and (REPO_ROOT / r["model"]).is_file()
        if r["fold"] is not None:
            Fold.parse(r["fold"])


def test_stored_results_match_the_runs():
    """docs/synth_results.json (the measured rows behind the README table) holds one row per build
    of RESULT_RUNS, no stale one, each with the build's target, model and fold."""
    import json

    from lenet5 import REPO_ROOT

    rows = json.loads((REPO_ROOT / "docs" / "synth_results.json").read_text())
    assert sorted(rows) == sorted(r["name"] for r in RESULT_RUNS)
    for r in RESULT_RUNS:
        row = rows[r["name"]]
        assert (row["target"], row["model"]) == (r["target"], r["model"])
        if r["fold"] is not None:
            assert row["fold_str"] == r["fold"]


def test_cli_results_unknown_build(capsys):
    from lenet5.cli import main

    assert main(["results", "--only", "nope"]) == 2
    err = capsys.readouterr().err
    assert "unknown build(s) nope" in err and RESULT_RUNS[0]["name"] in err
