# amaranth: UnusedElaboratable=no
"""The sweep's points, presets, accuracy column and picture (fast: stand-in synthesis reports).

The builds themselves (Yosys + nextpnr as Dask tasks) are tested in tests/test_cluster.py.
"""

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from hw.flow import sweep
from lenet5 import REPO_ROOT

INT8 = REPO_ROOT / "models" / "modern_int8.json"
W4A8 = REPO_ROOT / "models" / "modern_w4a8_qat.json"


def test_pareto_optimal_three_objectives():
    # (-LUTs, images/s, accuracy): 0 and 1 trade LUTs for speed; 2 is dominated by 0 in every
    # coordinate; 3 is slower and bigger than 1 but more accurate; 4 equals 0 (both kept)
    pts = [(-100, 10.0, 0.99), (-200, 50.0, 0.99), (-150, 5.0, 0.98), (-300, 40.0, 0.995), (-100, 10.0, 0.99)]
    assert sweep.pareto_optimal(pts) == [0, 1, 3, 4]
    assert sweep.pareto_optimal([]) == []


def _row(luts, ips, fits, acc, target="ecp5-25k", ii=1000, mults=5, model="m"):
    return {"fold": f"C1={mults}x1", "multipliers": mults, "ii_cycles": ii, "luts_used": luts, "luts_total": 24288,
            "images_per_s": ips if fits else None, "fits": fits, "accuracy": acc, "target": target,
            "model": model}


def test_plot_is_deterministic_and_skips_failed_builds(tmp_path):
    rows = [_row(5000, 400.0, True, 0.9936), _row(9000, 1500.0, True, 0.9937, model="w"),
            _row(30000, None, False, 0.9936, ii=500, mults=60), _row(2000, 90.0, True, None, target="ice40-up5k"),
            {**_row(None, None, False, 0.99), "luts_total": None}]          # a failed build: no figures
    a = sweep.plot_pareto(rows, tmp_path / "a.png", title="t", freq_mhz=100)
    b = sweep.plot_pareto(list(rows), tmp_path / "b.png", title="t", freq_mhz=100)
    assert a.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert a.read_bytes() == b.read_bytes()
    c = sweep.plot_pareto(rows[:2], tmp_path / "c.png", title="t", freq_mhz=100)
    assert c.read_bytes() != a.read_bytes()
    sweep.plot_pareto([], tmp_path / "empty.png")                          # nothing to plot: still a picture
    assert (tmp_path / "empty.png").is_file()


def _fake_report(accel, target, fits=True, luts=1000):
    m = accel.manifest()
    return {"target": target, "device": "dev", "fold_str": str(accel.fold), "multipliers_predicted": m["multipliers"],
            "ii_cycles": m["predicted_ii_cycles"], "latency_cycles": 1, "luts": {"used": luts, "total": 24288},
            "ffs": {"used": 1, "total": 2}, "dsps": {"used": 1, "total": 28}, "brams": {"used": 1, "total": 56},
            "fits": fits, "status": "ok", "exhausted": [], "fmax_mhz": 100.0,
            "images_per_s": 1e8 / m["predicted_ii_cycles"]}


def test_run_points_models_and_targets(tmp_path):
    """Two models x two targets x one fold: four builds in folders named by model, target and
    fold; each row carries its model, precision, target and accuracy."""
    from golden.qnet import QNet

    serial = "C1=1x1,C3=1x1,C5=1x1,F6=1x1,OUT=1x1"
    qnets = {"modern_int8": (QNet.load(INT8), 0.9936), "modern_w4a8_qat": (QNet.load(W4A8), 0.9937)}
    points = [sweep.SweepPoint(name, q, target, serial, acc) for name, (q, acc) in qnets.items()
              for target in ("ecp5-25k", "ice40-up5k")]
    calls = []

    def fake_synth(accel, *, target, build_dir, **kw):
        calls.append(Path(build_dir).relative_to(tmp_path).as_posix())
        return _fake_report(accel, target)

    reports = sweep.run_points(points, out_dir=tmp_path, synth=fake_synth, max_dsps="auto", log=lambda s: None)
    slug = serial.replace("=", "-").replace(",", "_")
    assert calls == [f"runs/{m}_{t}_{slug}" for m in qnets for t in ("ecp5-25k", "ice40-up5k")]
    with open(tmp_path / "sweep.csv") as f:
        rows = list(csv.DictReader(f))
    assert [(r["model"], r["precision"], r["target"], r["accuracy"]) for r in rows] == [
        ("modern_int8", "w8a8", "ecp5-25k", "0.9936"), ("modern_int8", "w8a8", "ice40-up5k", "0.9936"),
        ("modern_w4a8_qat", "w4a8", "ecp5-25k", "0.9937"), ("modern_w4a8_qat", "w4a8", "ice40-up5k", "0.9937")]
    data = json.loads((tmp_path / "sweep.json").read_text())
    assert data["targets"] == ["ecp5-25k", "ice40-up5k"] and data["target"] is None
    assert data["models"] == sorted(qnets) and len(data["reports"]) == len(reports) == 4
    assert (tmp_path / "pareto.png").is_file()
    with pytest.raises(ValueError, match="same point twice"):
        sweep.run_points(points + points[:1], out_dir=tmp_path / "twice", synth=fake_synth, log=lambda s: None)


def test_presets_cover_serial_to_line_rate_bits_and_targets():
    from golden.qnet import QNet
    from hw.arch.dataflow.planning import preset_folds
    from hw.flow.presets import SWEEP_PRESETS, preset_points

    all7 = [str(f) for f in preset_folds(QNet.load(INT8), 7)]
    assert set(all7[-1].replace(",", "=").split("=")[1::2]) == {"1x1"}          # fully serial last
    models, targets, folds = preset_points("bits-targets", root=REPO_ROOT)
    assert [Path(m).name for m in models] == ["modern_int8.json", "modern_w4a8_qat.json"]
    assert targets == ["ecp5-25k", "ecp5-85k", "ice40-up5k"]
    assert [str(f) for f in folds] == all7                                       # line rate ... serial
    _, _, small = preset_points("bits-serial-25k", root=REPO_ROOT)
    assert [str(f) for f in small] == all7[-3:]
    models, targets, folds = preset_points("folds", model=INT8, target="ice40-up5k")
    assert models == [str(INT8)] and targets == ["ice40-up5k"] and [str(f) for f in folds] == all7
    with pytest.raises(ValueError, match="unknown sweep preset 'nope'; valid: " + ", ".join(SWEEP_PRESETS)):
        preset_points("nope")
    with pytest.raises(ValueError, match="--target"):
        preset_points("folds", model=INT8)


def test_cli_preset_dry_run_lists_the_points(capsys):
    from lenet5.cli import main

    assert main(["sweep", "--preset", "bits-serial-25k", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("6 points (2 models x 1 target x 3 folds):")
    assert out.count("modern_int8 ecp5-25k ") == 3 and out.count("modern_w4a8_qat ecp5-25k ") == 3
    assert main(["sweep", "--folds", "C1=1x1", "--dry-run"]) == 2
    assert "--target is required with --folds" in capsys.readouterr().err


def test_integer_accuracy_is_the_reference_and_cached(tmp_path, monkeypatch):
    from golden import mnist, reference
    from golden.qnet import QNet
    from hw.flow.accuracy import integer_accuracy, precision_label

    images, labels = mnist.load_mnist("test")
    images, labels = images[:64], labels[:64]
    monkeypatch.setattr(mnist, "load_mnist", lambda split, data=None: (images, labels))
    qnet = QNet.load(W4A8)
    expected = float(np.mean(reference.run(qnet, images, taps=False).classes == labels))
    assert integer_accuracy(qnet, cache_dir=tmp_path) == expected
    assert len(list(tmp_path.glob("accuracy-*.json"))) == 1

    def no_run(*a, **kw):
        raise AssertionError("the cached accuracy should have been used")

    monkeypatch.setattr(reference, "run", no_run)
    assert integer_accuracy(qnet, cache_dir=tmp_path) == expected
    assert precision_label(qnet) == "w4a8" and precision_label(QNet.load(INT8)) == "w8a8"


def test_interrupted_sweep_keeps_the_finished_points(tmp_path, monkeypatch):
    """Ctrl-C during the builds: the table and picture of the points finished so far are written."""
    from golden.qnet import QNet

    qnet = QNet.load(INT8)
    folds = ["C1=1x1,C3=1x1,C5=1x1,F6=1x1,OUT=1x1", "C1=2x1,C3=3x1,C5=1x1,F6=1x1,OUT=1x1"]
    points = [sweep.SweepPoint("modern_int8", qnet, "ecp5-25k", f, 0.9936) for f in folds]

    def first_then_interrupt(points, accels, dirs, finish, **kw):
        finish(1, _fake_report(accels[1], "ecp5-25k"))
        raise KeyboardInterrupt

    monkeypatch.setattr(sweep, "_run_on_cluster", first_then_interrupt)
    lines = []
    with pytest.raises(KeyboardInterrupt):
        sweep.run_points(points, out_dir=tmp_path, log=lines.append)
    with open(tmp_path / "sweep.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["fold"] for r in rows] == [folds[1]]
    assert (tmp_path / "pareto.png").is_file()
    assert lines == [f"interrupted: wrote the 1 finished of 2 points to {tmp_path}"]
