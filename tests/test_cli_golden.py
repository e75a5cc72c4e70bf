"""The golden-model commands end to end (quantize, evaluate) and the shipped int8 models' accuracy."""

import json

import numpy as np
import pytest

from golden import reference
from golden.mnist import load_mnist
from golden.qnet import QNet
from lenet5 import MODELS_DIR
from lenet5.cli import main

#: Integer-model accuracy targets on the 10,000 MNIST test images (issues: golden model; the
#: paper's complete classic network for classic-rbf).
INT8_TARGETS = {"modern": 0.992, "classic": 0.990, "classic-rbf": 0.990}


@pytest.mark.parametrize("variant", ["modern", "classic", "classic-rbf"])
def test_shipped_int8_model_meets_its_accuracy_target(variant):
    qnet = QNet.load(MODELS_DIR / f"{variant.replace('-', '_')}_int8.json")
    assert qnet.variant == variant
    images, labels = load_mnist("test")
    acc = float(np.mean(reference.run(qnet, images, taps=False).classes == labels))
    assert acc >= INT8_TARGETS[variant], f"{variant} int8: {acc:.4f} < {INT8_TARGETS[variant]}"
    for layer in qnet.layers:
        if layer.has_mac:
            assert layer.w_fmt.bits == 8
            assert layer.act_fmt.bits in (8, 16)


def test_quantize_then_evaluate(tmp_path, capsys):
    out = tmp_path / "m.json"
    assert main(["quantize", "--checkpoint", str(MODELS_DIR / "modern.pt"), "--out", str(out),
                 "--calib-images", "300", "--quiet"]) == 0
    qnet = QNet.load(out)
    assert qnet.meta["checkpoint"].endswith("modern.pt")
    report = tmp_path / "eval.json"
    png = tmp_path / "confusion.png"
    assert main(["evaluate", "--model", str(out), "--images", "1000", "--json", str(report),
                 "--confusion", str(png)]) == 0
    r = json.loads(report.read_text())
    for key in ("float_accuracy", "int_accuracy", "images", "agreement", "fakequant_accuracy"):
        assert key in r
    assert r["images"] == 1000
    assert r["agreement"] == 1.0 and r["logits_identical"] == 1.0
    assert r["int_accuracy"] > 0.97
    assert png.stat().st_size > 1000 and png.read_bytes()[:4] == b"\x89PNG"


def test_quantize_is_deterministic(tmp_path):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    for out in (a, b):
        assert main(["quantize", "--checkpoint", str(MODELS_DIR / "classic.pt"), "--out", str(out),
                     "--calib-images", "200", "--w-bits", "6", "--layer-a-bits", "C1=6", "--quiet"]) == 0
    assert a.read_bytes() == b.read_bytes()
    qnet = QNet.load(a)
    assert qnet.layer("C3").w_fmt.bits == 6 and qnet.layer("C1").act_fmt.bits == 6
    assert qnet.layer("C3").table is not None and len(qnet.layer("C3").connections) == 60


@pytest.mark.parametrize("argv,match", [
    (["evaluate", "--model", "/nonexistent/model.json"], "no such model file"),
    (["quantize", "--checkpoint", "/nonexistent.pt", "--out", "x.json"], "nonexistent"),
    (["evaluate", "--images", "0"], "--images must be positive"),
])
def test_bad_input_gives_a_clear_error(argv, match, capsys):
    assert main(argv) == 2
    assert match in capsys.readouterr().err


def test_bad_width_is_refused_by_the_parser(capsys):
    with pytest.raises(SystemExit):
        main(["quantize", "--w-bits", "17"])
    assert "2..16" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["evaluate", "generate"])
def test_unknown_variant_is_refused(tmp_path, capsys, command):
    d = json.loads((MODELS_DIR / "modern_int8.json").read_text())
    d["variant"] = "resnet"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(d))
    argv = [command, "--model", str(bad)] + (["--out", str(tmp_path / "out")] if command == "generate" else [])
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "variant" in err and "resnet" in err and "modern, classic" in err
