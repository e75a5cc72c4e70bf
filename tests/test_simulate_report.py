"""`lenet5 simulate` on the user's own images (issue 15): the classes per image in the report and
the JSON, a per-image table for small sets, and --labels. Fast: the simulator processes are
replaced by the golden words (no Verilator), the CLI's errors come before any generation."""

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

import sim.accel
from golden.qnet import QNet
from lenet5 import cli
from lenet5.cmd_simulate import print_report
from sim.accel import PER_IMAGE_MAX, ImageError, expected_words, load_labels
from sim.images import ImageSet

ROOT = Path(__file__).resolve().parent.parent
MODEL = ROOT / "models" / "modern_int8.json"


@pytest.fixture(scope="module")
def qnet():
    return QNet.load(MODEL)


def _images(n, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, 28, 28), dtype=np.uint8)


def _fake_simulate(monkeypatch, qnet, images: ImageSet, flip=()):
    """sim.accel.simulate with the shards replaced by the golden words (``flip``: images whose RTL
    class is changed, as a mismatching design would)."""
    def run_shards(gen, imgs, expected, **kwargs):
        outputs = expected.copy()
        for i in flip:
            outputs[i, -1] = (outputs[i, -1] + 1) % 10
        bad = np.array(sorted(flip), dtype=np.int64)
        result = {"outputs": outputs, "mismatch_index": bad, "mismatch_reason": np.array(["class"] * len(bad)),
                  "tlast_cycles": np.arange(len(imgs), dtype=np.int64) * 2016 + 7331,
                  "first_accept": np.int64(0), "wall_s": 1.0, "cpu_s": 1.0, "complete": True}
        info = {"run_seconds": None, "build_seconds": None, "built": False, "run_dir": None, "waves": None,
                "worker": None}
        return [info], [result], np.array([0, len(imgs)])

    monkeypatch.setattr(sim.accel, "_run_shards", run_shards)
    gen = SimpleNamespace(qnet=qnet, verilog=Path("lenet5_accel.v"),
                          manifest={"predicted_ii_cycles": 2016, "predicted_latency_cycles": 7331,
                                    "fold": {}})
    return sim.accel.simulate(gen, images, jobs=1, diagnose_first=False)


def test_report_lists_the_classes_of_unlabelled_images(monkeypatch, qnet, capsys):
    imgs = _images(5)
    rep = _fake_simulate(monkeypatch, qnet, ImageSet(imgs, None, "mine.npy"))
    ref, words = expected_words(qnet, imgs)
    # Before: no rtl_classes / golden_classes / per_image keys; printed "RTL accuracy n/a, golden n/a".
    assert rep["rtl_classes"] == rep["golden_classes"] == ref.classes.tolist()
    assert rep["labels"] is None and rep["rtl_accuracy"] is None
    rows = rep["per_image"]
    assert [r["image"] for r in rows] == list(range(5))
    for r, w in zip(rows, words):
        logits = w[:-1]
        assert r["top2"][0]["class"] == r["rtl_class"] == int(np.argmax(logits))
        assert r["top2"][0]["logit"] >= r["top2"][1]["logit"]
        assert r["top2"][1]["logit"] == int(np.sort(logits)[-2])
        assert r["top2"][0]["value"] == r["top2"][0]["logit"] * 2.0 ** -qnet.output_fmt.frac
    print_report(rep)
    out = capsys.readouterr().out
    assert "n/a" not in out
    assert "no labels" in out and "agree on 5 of 5" in out
    table = out.splitlines()[1:7]
    assert table[0].split()[:3] == ["image", "RTL", "golden"] and "label" not in table[0]
    assert str(qnet.output_fmt) in table[0]
    for line, r in zip(table[1:], rows):
        assert line.split()[:3] == [str(r["image"]), str(r["rtl_class"]), str(r["golden_class"])]
        assert f"{r['top2'][0]['class']}: " in line and f"({r['top2'][1]['logit']})" in line


def test_report_with_labels_and_a_mismatch(monkeypatch, qnet, capsys):
    imgs = _images(4, seed=1)
    ref, _ = expected_words(qnet, imgs)
    labels = ref.classes.copy()
    labels[0] = (labels[0] + 1) % 10           # golden wrong on image 0
    rep = _fake_simulate(monkeypatch, qnet, ImageSet(imgs, labels, "mine.npy"), flip=[2])
    assert rep["labels"] == labels.tolist()
    assert rep["golden_accuracy"] == 0.75 and rep["rtl_accuracy"] == 0.5
    assert rep["rtl_classes"][2] != rep["golden_classes"][2]
    print_report(rep)
    out = capsys.readouterr().out.splitlines()
    assert "label" in out[1].split()
    assert out[2].split()[3] == str(labels[0])
    assert out[4].endswith("RTL != golden")


def test_large_sets_have_classes_but_no_table(monkeypatch, qnet, capsys):
    n = PER_IMAGE_MAX + 1
    rep = _fake_simulate(monkeypatch, qnet, ImageSet(_images(n, seed=2), None, "mine.npy"))
    assert len(rep["rtl_classes"]) == len(rep["golden_classes"]) == n
    assert "per_image" not in rep
    print_report(rep)
    assert "top-2 logits" not in capsys.readouterr().out


# --- --labels ------------------------------------------------------------------------------------

def test_load_labels_accepts_integer_classes(tmp_path):
    for dtype in (np.uint8, np.int32, np.int64):
        np.save(tmp_path / "l.npy", np.array([0, 9, 3], dtype=dtype))
        got = load_labels(tmp_path / "l.npy", 3)
        assert got.dtype == np.int64 and got.tolist() == [0, 9, 3]


@pytest.mark.parametrize("array, message", [
    (np.zeros((3, 1), np.int64), "shape (3, 1), must be one-dimensional (3,)"),
    (np.array([0.0, 1.0, 2.0]), "dtype float64, must be an integer type"),
    (np.array([1, 2], np.int64), "2 labels for 3 images"),
    (np.array([1, 10, 2], np.int64), "label 10 at index 1 is not a class 0..9"),
    (np.array([-1, 0, 2], np.int64), "label -1 at index 0 is not a class 0..9"),
])
def test_load_labels_refuses_bad_arrays(tmp_path, array, message):
    path = tmp_path / "l.npy"
    np.save(path, array)
    with pytest.raises(ImageError) as exc:
        load_labels(path, 3)
    assert message in str(exc.value) and str(path) in str(exc.value)
    assert "expected a .npy file of 3 integer class labels 0..9" in str(exc.value)


def test_load_labels_refuses_files_that_are_not_npy(tmp_path):
    text = tmp_path / "labels.npy"
    text.write_text("1 2 3\n")
    with pytest.raises(ImageError, match="not a readable .npy array"):
        load_labels(text, 3)
    with pytest.raises(ImageError, match="no such file"):
        load_labels(tmp_path / "missing.npy", 3)
    np.save(tmp_path / "obj.npy", np.array([1, None], dtype=object), allow_pickle=True)
    with pytest.raises(ImageError, match="not a readable .npy array"):
        load_labels(tmp_path / "obj.npy", 2)


def test_cli_refuses_bad_labels_before_generating(tmp_path, capsys):
    np.save(tmp_path / "mine.npy", _images(3))
    np.save(tmp_path / "labels.npy", np.array([1, 2], np.int64))
    out = tmp_path / "gen"
    rc = cli.main(["simulate", "--images", str(tmp_path / "mine.npy"), "--labels", str(tmp_path / "labels.npy"),
                   "--out", str(out)])
    assert rc == 2
    assert "2 labels for 3 images" in capsys.readouterr().err
    assert not out.exists()


def test_cli_help_names_labels(capsys):
    with pytest.raises(SystemExit):
        cli.main(["simulate", "--help"])
    assert "--labels FILE.npy" in capsys.readouterr().out
