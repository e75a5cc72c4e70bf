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
