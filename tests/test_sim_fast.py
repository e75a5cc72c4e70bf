"""The fast simulation path (batch harness, sim/harness.py + sim/tb/tb_batch.py) on the shipped
models: the same results and cycle stamps as the per-beat cocotb testbench, a planted fault
reported by both, and the whole regression -- the 10,000 MNIST test images and 1,000 stress
images per model, with input gaps and output backpressure -- bit-exact against the golden model.

Expected values always come from golden.reference (via sim.accel); nothing here recomputes the
arithmetic.
"""

import json
import re
from dataclasses import replace

import numpy as np
import pytest

from lenet5 import MODELS_DIR, REPO_ROOT

WORK = REPO_ROOT / "build" / "test_sim_fast"
VARIANTS = ("modern", "classic")


def _model(variant):
    shipped = MODELS_DIR / f"{variant}_int8.json"
    if not shipped.is_file():
        pytest.fail(f"shipped model {shipped} is missing; regenerate it with `lenet5 quantize --checkpoint "
                    f"models/{variant}.pt --out {shipped.relative_to(REPO_ROOT)}` (README)", pytrace=False)
    return shipped


def _generate(variant):
    from hw.generate import generate

    return generate(_model(variant), REPO_ROOT / "build" / "test_accel" / f"{variant}-default", lint=False)


@pytest.fixture(scope="module", params=VARIANTS)
def generated(request):
    """The default-fold accelerator of each shipped model (the same Verilog as test_accel's, so the
    Verilator builds are shared through the build cache)."""
    return _generate(request.param)


def _summary(rep):
    return json.dumps({k: v for k, v in rep.items()
                       if k not in ("mismatch_list", "shards", "rtl_classes", "golden_classes", "labels",
                                    "image_done_cycles", "per_image")})


@pytest.mark.sim
def test_drivers_agree_on_results_and_cycle_stamps(generated):
    """200 MNIST images, one process each, no stalls: the batch harness and the per-beat cocotb
    testbench give the same words for every image and the same cycle (counted from the first
    pixel accepted) for every image's last output beat; both equal the prediction's timing."""
    from sim.accel import load_images, simulate

    images = load_images(200)
    fast = simulate(generated, images, jobs=1, driver="fast")
    beat = simulate(generated, images, jobs=1, driver="cocotb")
    print(_summary(fast))
    assert (fast["driver"], beat["driver"]) == ("fast", "lean")
    assert fast["mismatches"] == beat["mismatches"] == 0, (fast["mismatch_list"][:2], beat["mismatch_list"][:2])
    assert fast["rtl_classes"] == beat["rtl_classes"]
    assert len(fast["image_done_cycles"]) == 200
    assert fast["image_done_cycles"] == beat["image_done_cycles"]
    assert fast["timing_matches_prediction"] is True and beat["timing_matches_prediction"] is True
    assert fast["sim_cycles"] >= 200 * fast["predicted_ii_cycles"] and fast["sim_cycles_per_s"] > 0


@pytest.mark.sim
def test_fast_driver_with_stalls_bit_exact(generated):
    """200 images with input gaps and output backpressure (P = 0.3) from the harness's LFSRs,
    two processes: bit-exact; the cycles per image stay within 5 % of the II (the input of 784
    pixels needs 1,120 cycles at 70 %, less than the II; the mean over 200 images may fall
    either side of it)."""
    from sim.accel import load_images, simulate

    rep = simulate(generated, load_images(200), stall=0.3, seed=5, jobs=2)
    print(_summary(rep))
    assert rep["driver"] == "fast" and rep["mismatches"] == 0, rep["mismatch_list"][:3]
    assert rep["rtl_accuracy"] == rep["golden_accuracy"]
    assert 0.95 * rep["predicted_ii_cycles"] < rep["cycles_per_image"] < 1.05 * rep["predicted_ii_cycles"]
    assert rep["timing_matches_prediction"] is None                       # not compared with stalls


def _flip_output_weight_bit(text: str, bit: int = 6) -> str:
    """The emitted Verilog with bit ``bit`` of the first weight of the output layer's weight ROM
    (``w_rom[0]`` in module ``lenet5_accel.out_engine``) flipped."""
    start = text.index("module \\lenet5_accel.out_engine ")
    end = text.index("endmodule", start)
    body = text[start:end]
    m = re.search(r"(w_rom\[0\] = (\d+)'h)([0-9a-f]+);", body)
    assert m, "no w_rom[0] initialiser in the output engine"
    width = int(m.group(2))
    flipped = int(m.group(3), 16) ^ (1 << bit)
    body = body[:m.start()] + f"{m.group(1)}{flipped:0{(width + 3) // 4}x};" + body[m.end():]
    return text[:start] + body + text[end:]


@pytest.mark.sim
def test_planted_fault_is_reported_by_both_drivers():
    """One bit of one output-layer weight flipped in the emitted Verilog of the modern model (one
    model suffices: the fault is in the emitted file, the drivers are the same for both): both
    drivers report the same (non-empty) set of mismatching images, with the same wrong words."""
    from sim.accel import load_images, simulate

    generated = _generate("modern")
    folder = WORK / "fault"
    folder.mkdir(parents=True, exist_ok=True)
    faulty = folder / "lenet5_accel.v"
    faulty.write_text(_flip_output_weight_bit(generated.verilog.read_text()))
    gen = replace(generated, verilog=faulty, sim_sources=[faulty])
    images = load_images(30)
    reports = [simulate(gen, images, jobs=1, driver=d, diagnose_first=False) for d in ("fast", "cocotb")]
    sets = [[m["image"] for m in r["mismatch_list"]] for r in reports]
    print(sets)
    assert sets[0] and sets[0] == sets[1]
    assert [m["got"] for m in reports[0]["mismatch_list"]] == [m["got"] for m in reports[1]["mismatch_list"]]
    assert all(m["got"] != m["expected"] for m in reports[0]["mismatch_list"])


@pytest.mark.sim
def test_regression_mnist_test_set_with_stalls(generated):
    """The 10,000 MNIST test images with stalls (P = 0.3), two processes: 0 mismatches, the RTL's
    accuracy equal to the golden model's."""
    from sim.accel import load_images, simulate

    rep = simulate(generated, load_images("all"), stall=0.3, seed=1, jobs=2)
    print(_summary(rep))
    assert rep["images"] == 10_000
    assert rep["mismatches"] == 0, rep["mismatch_list"][:3]
    assert rep["rtl_accuracy"] == rep["golden_accuracy"] and rep["rtl_accuracy"] > 0.99


@pytest.mark.sim
def test_regression_stress_images(generated):
    """1,000 images outside MNIST's distribution (blank, saturated, noise, inverted, single
    pixels, bars, checkerboards, ramps, borders) with stalls: 0 mismatches."""
    from sim.accel import load_images, simulate

    images = load_images("stress")
    assert len(images) == 1000 and images.images.min() == 0 and images.images.max() == 255
    rep = simulate(generated, images, stall=0.3, seed=2, jobs=2)
    print(_summary(rep))
    assert rep["mismatches"] == 0, rep["mismatch_list"][:3]
    assert rep["rtl_golden_class_agreement"] == 1.0
    assert len(set(np.asarray(rep["rtl_classes"]).tolist())) > 1       # not one class for everything
