"""What the synthesis flow and the long-running loops print (issue 15): no progress bar into a
log, honest messages about the abc9 fallback and missed timing, and what a board-less bitstream
is for. Stand-ins only: no Yosys or nextpnr run."""

import sys

import numpy as np
import pytest

from hw.flow import tools


# -- progress into a log ---------------------------------------------------------------------

def test_status_line_to_a_log_has_no_carriage_returns(capsys):
    """stderr captured (not a terminal): a line when a phase starts and one when it ends."""
    assert not sys.stderr.isatty()
    status = tools.Status(True, "yosys ecp5-25k")
    for i in range(50):
        status.update(f"{i}. Executing PASS")
        status.tick()
    status.close("done")
    err = capsys.readouterr().err
    assert "\r" not in err
    lines = err.splitlines()
    assert lines[0] == "[yosys ecp5-25k] started" and lines[-1].startswith("[yosys ecp5-25k] done after")
    assert len(lines) == 2


def test_training_to_a_log_prints_one_line_per_epoch(capsys):
    torch = pytest.importorskip("torch")
    from golden.model import LeNet5
    from golden.train import fit

    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.integers(0, 256, (64, 28, 28), dtype=np.uint8))
    y = torch.from_numpy(rng.integers(0, 10, 64)).long()
    fit(LeNet5("modern"), x, y, epochs=2, batch_size=32, lr=1e-3, augment=False, seed=0, progress=True,
        desc="QAT")
    err = capsys.readouterr().err
    assert "\r" not in err
    lines = err.splitlines()
    assert len(lines) == 2 and lines[0].startswith("QAT epoch 1/2: loss ") and "train " in lines[0]


# -- the abc9 abort and the abc fallback ----------------------------------------------------

def test_abc9_abort_status_line_is_honest(tmp_path, capsys):
    """A real subprocess standing in for Yosys: writes the abc9 abort into its log, exits 1."""
    from hw.flow import synth

    script = (f"import sys; open('yosys.log', 'w').write('ERROR: ' + {synth.ABC9_ABORT!r} + '\\n'); "
              "sys.exit(1)")
    rc, _ = tools.run_tool([sys.executable, "-c", script], cwd=tmp_path, out_name="yosys.out",
                           watch_name="yosys.log", phase="yosys ecp5-25k", progress=True,
                           outcome=synth._abc9_outcome(tmp_path / "yosys.log"))
    assert rc == 1
    last = capsys.readouterr().err.splitlines()[-1]
    assert last.startswith("[yosys ecp5-25k] abc9 aborted (known Yosys bug); retrying with abc after ")
    assert "failed" not in last
    # another failure is still reported as one
    rc, _ = tools.run_tool([sys.executable, "-c", "import sys; sys.exit(3)"], cwd=tmp_path, out_name="o",
                           watch_name="yosys.log", phase="yosys ecp5-25k", progress=True,
                           outcome=synth._abc9_outcome(tmp_path / "yosys.log"))
    assert capsys.readouterr().err.splitlines()[-1].startswith("[yosys ecp5-25k] failed (exit 3) after")


class _FakeBuild:
    """Stands in for hw.flow.synth._Build: abc9 aborts, abc writes captured statistics."""

    def __init__(self, tmp_path):
        from hw.targets import target

        self.target, self.dir, self.outcomes, self.scripts = target("ecp5-25k"), tmp_path, [], []

    def yosys(self, name, script, phase, outputs, outcome=None):
        from hw.flow import synth

        data = __import__("pathlib").Path(__file__).parent / "data" / "synth"
        self.scripts.append(script)
        log = self.dir / "yosys.log"
        if "abc -dress" not in script:         # the abc9 script
            log.write_text(f"ERROR: {synth.ABC9_ABORT}\n")
            self.outcomes.append(outcome(1))
            raise synth.SynthError(f"yosys failed (exit 1); see {log}:\nERROR: {synth.ABC9_ABORT}")
        for mine, captured in (("stat_pre.json", "ecp5_dense_stat_pre.json"),
                               ("stat_mid.json", "ecp5_dense_stat_pre.json"),
                               ("stat_post.json", "ecp5_dense_stat_post.json"),
                               ("cells_mid.json", "ecp5_dense_cells_mid.json"),
                               ("yosys.log", "ecp5_dense_memory_libmap.log")):
            (self.dir / mine).write_text((data / captured).read_text())
        self.outcomes.append(outcome(0) if outcome else "done")


def test_abc9_fallback_records_the_mapper(tmp_path):
    from hw.flow import synth

    run = _FakeBuild(tmp_path)
    mapper, stats = synth._run_yosys(run, "dense", ["dense.v"], None)
    assert mapper == "abc" and run.outcomes == [synth.ABC9_RETRY, "done"]
    assert (tmp_path / "yosys_abc9_abort.log").is_file()
    pnr = {"rc": 0, "fmax": 120.0, "util": {}, "log": {"errors": []}}
    report = synth._report(run.target, "dense", 1, 100, mapper, stats, pnr, None)
    assert report["lut_mapper"] == "abc" and "abc9 aborted" in report["lut_mapper_note"]
    report = synth._report(run.target, "dense", 1, 100, "abc9", stats, pnr, None)
    assert report["lut_mapper"] == "abc9" and report["lut_mapper_note"] is None


# -- timing in the summary line --------------------------------------------------------------

def _report(**kw):
    rep = {"target": "ecp5-25k", "fold_str": "C1=1x25", "luts": {"used": 10, "total": 24288},
           "ffs": {"used": 5, "total": 24288}, "dsps": {"used": 1, "total": 28}, "brams": {"used": 0, "total": 56},
           "fmax_mhz": 71.43, "freq_target_mhz": 100.0, "timing_met": False, "images_per_s": 34.9,
           "fits": True, "exhausted": []}
    rep.update(kw)
    return rep


def test_summary_line_says_when_timing_is_not_met():
    from hw.flow.report import summary_line

    line = summary_line(_report())
    assert "fmax 71.4 MHz (TIMING NOT MET: target 100 MHz)" in line and line.endswith("fits")
    assert "fmax 120.0 MHz (meets the 100 MHz target)" in summary_line(_report(fmax_mhz=120.0, timing_met=True))
    assert "fmax -" in summary_line(_report(fmax_mhz=None))


# -- the board-less bitstream ------------------------------------------------------------------

class _FakePnr:
    def __init__(self, tmp_path, target):
        from hw.targets import target as get

        self.target, self.dir, self.pnr_tool, self.pin_note = get(target), tmp_path, "nextpnr", None
        self.argv = None

    def run(self, tool, args, *, out_name, phase, **kw):
        self.argv = args
        data = __import__("pathlib").Path(__file__).parent / "data" / "synth"
        (self.dir / out_name).write_text((data / "ecp5_dense_nextpnr.log").read_text())
        return 0, 1.0


def test_boardless_build_notes_that_it_is_for_figures_only(tmp_path):
    import json

    from hw.flow import synth

    ports = {"clk": {"bits": [2]}, "rst": {"bits": [3]}, "s_axis_tdata": {"bits": list(range(4, 12))}}
    (tmp_path / "top.json").write_text(json.dumps({"modules": {"top": {"ports": ports}}}))
    run = _FakePnr(tmp_path, "ecp5-25k")
    synth._run_nextpnr(run, "top", 1, 100)
    assert "--lpf" in run.argv
    assert run.pin_note == ("board-less build: only the clock pin is constrained (to the ulx3s board's "
                            "oscillator); nextpnr places the other 9 I/O pins anywhere, so this placement "
                            "and any bitstream are for the resource and timing figures only, not for a board")


def test_cli_synth_prints_the_boardless_note(tmp_path, capsys, monkeypatch):
    from hw.flow import synth
    from lenet5.cli import main
    from tests.test_synth import modern_qnet

    model = tmp_path / "m.json"
    modern_qnet().save(model)
    note = synth.boardless_note(__import__("hw.targets").targets.target("ecp5-25k"), 31, True)

    def fake(accel, *, top, target, build_dir, manifest, **kw):
        return {**_report(fold_str=str(accel.fold)), "inference_warnings": [], "synth_s": 1.0, "pnr_s": 2.0,
                "bitstream": "lenet5_accel.bit", "note": note}

    monkeypatch.setattr(synth, "synthesize", fake)
    assert main(["synth", "--model", str(model), "--target", "ecp5-25k", "--fold", "C1=1x1", "--bitstream",
                 "--build-dir", str(tmp_path / "b"), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "lenet5_accel.bit: for resource and timing figures only, not for a board" in out
    assert f"  note: {note}" in out and "the other 30 I/O pins anywhere" in out
    assert "TIMING NOT MET" in out
