"""Mismatch diagnosis (sim.diagnose): the debug build's tap ports come from the plan, and a planted
fault is located by layer, stage, channel and position with the expected and the received value.

The hardware is correct, so faults are planted on the golden side (a wrong network description
given as ``gen.qnet``, while ``gen.accel`` keeps the right one); the expected location of the
first difference is computed here from :func:`golden.reference.run` by walking the map in raster
order, independently of the diagnosis's own index arithmetic.
"""

import re
from dataclasses import replace

import numpy as np
import pytest

from golden import reference
from golden.qnet import QNet
from lenet5 import MODELS_DIR, REPO_ROOT

WORK = REPO_ROOT / "build" / "test_sim_diagnose"
MODEL = MODELS_DIR / "modern_int8.json"


@pytest.fixture(scope="module")
def generated():
    """The default-fold modern accelerator (the shipped model is required)."""
    from hw.generate import generate

    assert MODEL.is_file(), f"shipped model {MODEL} missing"
    return generate(MODEL, WORK / "modern-default", lint=False)


@pytest.fixture(scope="module")
def tapped(generated):
    from sim.diagnose import tapped_design

    return tapped_design(generated)


def _raster_first_difference(a, b):
    """First (channel, y, x) in stream order (rows, columns, then channels) where maps differ."""
    c_, h_, w_ = a.shape
    for y in range(h_):
        for x in range(w_):
            for c in range(c_):
                if a[c, y, x] != b[c, y, x]:
                    return c, y, x
    return None


def test_tap_ports_are_ports_of_the_tapped_build(generated, tapped):
    """Every datapath stage but the slices and the output stage has valid/ready/payload ports,
    the payload as wide as the stage's output; the design under test has none."""
    from sim.diagnose import tap_ports

    names = [s.name for s in generated.accel.stages if not s.is_slice]
    ports = tap_ports(tapped.accel.tap_stages)
    assert [p["name"] for p in ports] == names[:-1] and names[-1] == "out_output"
    text = tapped.verilog.read_text()
    for stage, port in zip(tapped.accel.tap_stages, ports):
        width = stage.component.o.payload.shape().size
        for kind, bits in (("valid", 1), ("ready", 1), ("payload", width)):
            decl = re.search(rf"^\s*output\s+(?:\[(\d+):0\]\s+)?{re.escape(port[kind])}\s*;", text, re.M)
            assert decl, f"no output port {port[kind]}"
            assert (int(decl.group(1)) + 1 if decl.group(1) else 1) == bits, port[kind]
    assert "tap_" not in generated.verilog.read_text()
    assert tapped.verilog.parent != generated.verilog.parent
    assert tapped.manifest["predicted_ii_cycles"] == generated.manifest["predicted_ii_cycles"]


def test_first_difference_in_stream_order(generated):
    """A planted difference in a (C, H, W) map is reported at its channel, row and column, with
    the beat and lane that carried it."""
    from sim.diagnose import _stream_order, first_difference

    stage = next(s for s in generated.accel.stages if s.name == "c3_engine")
    lanes = len(stage.component.o.payload.data)
    rng = np.random.default_rng(7)
    print("seed 7")
    want = rng.integers(-1000, 1000, size=(16, 10, 10))
    assert first_difference(stage, want, _stream_order(want), len(want.reshape(-1)) // lanes) is None
    for c, y, x in ((5, 2, 3), (0, 0, 0), (15, 9, 9)):
        got = want.copy()
        got[c, y, x] += 3
        f = first_difference(stage, want, _stream_order(got), 100)
        e = (y * 10 + x) * 16 + c
        assert f == {"layer": "C3", "stage": "c3_engine", "channel": c, "position": [y, x],
                     "expected": int(want[c, y, x]), "got": int(want[c, y, x]) + 3,
                     "beat": e // lanes, "lane": e % lanes, "beats_seen": 100,
                     "beats_expected": 1600 // lanes}
    # a short stream: the first missing value
    f = first_difference(stage, want, _stream_order(want)[:32], 32 // lanes)
    assert f["got"] is None and f["position"] == [0, 2] and f["channel"] == 0


@pytest.mark.sim
def test_planted_requant_fault_is_located(generated, tapped):
    """C1's requantization shift off by one on the golden side: the engine's accumulators still
    agree, the first difference is in c1_requant, at the first raster position whose value
    changes, with the hardware's (right) value as ``got``."""
    from sim.diagnose import diagnose
    from sim.images import load_images

    images = load_images(2)
    d = generated.qnet.to_dict()
    c1 = next(layer for layer in d["layers"] if layer["name"] == "C1")
    c1["requant"]["shift"] += 1
    wrong = QNet.from_dict(d)
    right_c1 = reference.run(generated.qnet, images.images, taps=True).taps["C1"][1]
    wrong_c1 = reference.run(wrong, images.images, taps=True).taps["C1"][1]
    where = _raster_first_difference(wrong_c1, right_c1)
    assert where is not None, "the planted fault must change C1's output"
    c, y, x = where

    diag = diagnose(replace(generated, qnet=wrong), images, 1, previous=True)
    print(diag)
    f = diag["first_difference"]
    assert diag["reproduced"] and diag["images_run"] == [0, 1]
    assert diag["stages_checked"] == ["c1_engine", "c1_requant"]
    assert (f["layer"], f["stage"], f["channel"], f["position"]) == ("C1", "c1_requant", c, [y, x])
    assert (f["expected"], f["got"]) == (int(wrong_c1[c, y, x]), int(right_c1[c, y, x]))
    assert f["beats_seen"] == f["beats_expected"]



@pytest.mark.parametrize("target", [None, "ecp5-25k", "ecp5-45k", "ecp5-85k", "ice40-up5k"])
def test_tapped_build_keeps_the_target(target):
    """The debug build is generated for a target that gives the design the same DSP blocks and
    primitive (what :func:`hw.arch.accelerator` takes from the target)."""
    from types import SimpleNamespace

    from hw.targets import TARGETS
    from sim.diagnose import _target_of

    def planned(name):
        tgt = None if name is None else TARGETS[name]
        blocks = None if tgt is None else tgt.dsp_budget()
        return SimpleNamespace(dsp_blocks=blocks, dsp_primitive=None if blocks is None else tgt.vendor)

    accel = planned(target)
    assert vars(planned(_target_of(accel))) == vars(accel)
    with pytest.raises(ValueError, match="cannot generate the same design"):
        _target_of(SimpleNamespace(dsp_blocks=3, dsp_primitive="ecp5"))
