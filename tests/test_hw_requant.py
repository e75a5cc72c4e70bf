# amaranth: UnusedElaboratable=no
"""hw.components.requant.Requantizer against golden.arith.requantize: Amaranth-simulator tests (fast), lint,
emission, parameter validation, and cocotb + Verilator runs of the emitted Verilog (``sim``).

The Amaranth-simulator streams are driven by tests.stream_sim, with random and patterned pauses.
"""

import random

import numpy as np
import pytest
from amaranth.hdl import Fragment

from golden import arith
from golden.qformat import QFormat
from hw.emit import emit_verilog, lint_verilog, write_verilog
from hw.components.requant import Requantizer
from sim.runner import simulate_component
from sim.tb.tb_requant import requant_stimulus
from tests.stream_sim import PATTERN, data_last, simulate_stream

TB = "sim.tb.tb_requant"


# ------------------------------------------------------------------ shared helpers

def lint_clean(dut, name, tmp_path):
    """``lint_verilog`` of *dut* emitted as *name* (a list; ``[]`` is clean)."""
    return lint_verilog([write_verilog(dut, name, tmp_path)], name)


# ------------------------------------------------------------------ fast: Amaranth simulator

def _golden(acc, p):
    y = arith.requantize(acc, p["multiplier"], p["shift"], p["out_fmt"])
    return arith.relu(y) if p["relu"] else y


def _run_against_golden(p, count, seed, gap=0.3, stall=0.3):
    dut = Requantizer(**p)
    rng = random.Random(seed)
    lanes = p["lanes"]
    acc = requant_stimulus(p["acc_fmt"], p["out_fmt"], p["multiplier"], p["shift"], count * lanes, rng)
    beats = [{"data": acc[b * lanes:(b + 1) * lanes], "last": int(b % 5 == 4)} for b in range(count)]
    run = simulate_stream(dut, beats, count, in_pause=gap, out_pause=stall, seed=seed, idle_after=20)
    outputs, in_cycles, out_cycles = data_last(run.out), run.in_cycles, run.out_cycles
    expected = _golden(acc, p)
    for b, (values, last) in enumerate(outputs):
        assert last == beats[b]["last"], f"seed {seed} beat {b}: last {last}"
        for lane, v in enumerate(values):
            k = b * lanes + lane
            assert v == expected[k], f"seed {seed} beat {b} lane {lane}: acc {acc[k]} -> {v}, golden {expected[k]}"
    return dut, in_cycles, out_cycles


def _p(acc_bits, out_bits, signed, rounding, overflow, multiplier, shift, lanes, relu=False):
    return dict(acc_fmt=QFormat(acc_bits, acc_bits // 2, True),
                out_fmt=QFormat(out_bits, out_bits // 2, signed, rounding, overflow),
                multiplier=multiplier, shift=shift, lanes=lanes, relu=relu)


# Every rounding and overflow mode, signed and unsigned 2/4/8/16/32-bit outputs, multiplier 1 and
# not (odd, even, widest), shifts 0, 1, typical and huge, ReLU, lanes 1..4.
FAST_POINTS = [
    _p(20, 8, False, "half_up", "saturate", 1, 10, 1, relu=True),       # LeNet modern ReLU layer
    _p(20, 8, True, "half_up", "saturate", 21845, 22, 2),
    _p(16, 4, True, "half_even", "saturate", 1, 5, 4),
    _p(16, 4, False, "half_even", "saturate", 12, 7, 1),                  # even multiplier: ties
    _p(24, 16, True, "floor", "saturate", 40000, 15, 2),
    _p(12, 8, True, "half_up", "saturate", 3, 0, 1),                      # shift 0
    _p(12, 8, True, "half_even", "saturate", 1, 0, 2, relu=True),         # shift 0, signed ReLU
    _p(18, 8, True, "half_even", "wrap", 5, 4, 1),
    _p(18, 4, False, "half_up", "wrap", 255, 9, 2),
    _p(18, 8, True, "floor", "wrap", 1, 1, 1, relu=True),
    _p(10, 16, True, "half_up", "saturate", 65535, 1, 1),                 # output wider than needed
    _p(2, 2, True, "half_even", "saturate", 1, 1, 1),                     # narrowest
    _p(46, 32, True, "half_even", "saturate", 65535, 40, 1),              # widest (62-bit product)
    _p(46, 32, False, "floor", "wrap", 7, 62, 3),                         # shift beyond the product
    _p(32, 32, False, "half_up", "wrap", 1, 3, 1, relu=True),
]


def _point_id(p):
    return (f"{p['acc_fmt']}-{p['out_fmt']}-{p['out_fmt'].rounding}-{p['out_fmt'].overflow}"
            f"-m{p['multiplier']}-s{p['shift']}-l{p['lanes']}{'-relu' if p['relu'] else ''}")


@pytest.mark.parametrize("pauses", ["random", "pattern"])
@pytest.mark.parametrize("index", range(len(FAST_POINTS)), ids=[_point_id(p) for p in FAST_POINTS])
def test_matches_golden_with_gaps_and_stalls(index, pauses):
    """Random input gaps and output stalls (P = 0.3), or the deterministic PATTERN on both sides."""
    seed = 100 + index
    print(f"seed {seed}")
    pause = 0.3 if pauses == "random" else PATTERN
    _run_against_golden(FAST_POINTS[index], count=120, seed=seed, gap=pause, stall=pause)


@pytest.mark.parametrize("multiplier", [1, 300])
def test_latency_and_ii(multiplier):
    p = _p(20, 8, True, "half_even", "saturate", multiplier, 9, 2)
    dut, in_cycles, out_cycles = _run_against_golden(p, count=30, seed=1, gap=0.0, stall=0.0)
    assert dut.latency == (2 if multiplier != 1 else 1) and dut.ii == 1
    assert {o - i for i, o in zip(in_cycles, out_cycles)} == {dut.latency}
    assert set(np.diff(in_cycles)) == {dut.ii} and set(np.diff(out_cycles)) == {dut.ii}


def test_exhaustive_small_formats():
    """Every 6-bit accumulator into 3-bit formats, all modes, with a multiplier and a shift."""
    acc = list(range(-32, 32))
    for rounding in ("half_up", "half_even", "floor"):
        for overflow in ("saturate", "wrap"):
            for signed in (True, False):
                for relu in (False, True):
                    p = dict(acc_fmt=QFormat(6, 0, True), out_fmt=QFormat(3, 0, signed, rounding, overflow),
                             multiplier=3, shift=2, lanes=len(acc), relu=relu)
                    run = simulate_stream(Requantizer(**p), [{"data": acc, "last": 1}], 1, idle_after=20)
                    assert data_last(run.out)[0][0] == list(_golden(acc, p)), p


def test_from_layer(random_qnet):
    _, qnet = random_qnet
    for layer in qnet.layers:
        if not layer.has_mac:
            continue
        dut = Requantizer.from_layer(layer, lanes=2)
        assert (dut.acc_fmt, dut.out_fmt, dut.multiplier, dut.shift) == (
            layer.acc_fmt, layer.act_fmt, layer.requant.multiplier, layer.requant.shift)
        assert dut.relu == (layer.activation.kind == "relu")
        Fragment.get(dut, None)         # elaborates


# ------------------------------------------------------------------ validation, emission, lint

GOOD = _p(20, 8, True, "half_up", "saturate", 3, 9, 2)


BAD_PARAMETERS = [
    (dict(acc_fmt=QFormat(20, 0, False)), ValueError, r"acc_fmt uQ20\.0 must be signed"),
    (dict(acc_fmt=QFormat(47, 0, True), multiplier=65535), ValueError, r"acc_fmt sQ47\.0 has 47 bits; supported: 2\.\.46"),
    (dict(out_fmt=QFormat(33, 0, True)), ValueError, r"out_fmt sQ33\.0 has 33 bits; supported: 2\.\.32"),
    (dict(out_fmt=QFormat(1, 0, False)), ValueError, r"out_fmt uQ1\.0 has 1 bits"),
    (dict(acc_fmt="s20"), TypeError, r"acc_fmt must be a golden.qformat.QFormat, not 's20'"),
    (dict(multiplier=0), ValueError, r"multiplier must be 1\.\.65535, not 0"),
    (dict(multiplier=1 << 16), ValueError, r"multiplier must be 1\.\.65535, not 65536"),
    (dict(multiplier=2.0), TypeError, r"multiplier must be an int, not 2\.0"),
    (dict(shift=-1), ValueError, r"shift must be 0\.\.62, not -1"),
    (dict(shift=63), ValueError, r"shift must be 0\.\.62, not 63"),
    (dict(shift=True), TypeError, r"shift must be an int, not True"),
    (dict(lanes=0), ValueError, r"lanes must be >= 1, not 0"),
    (dict(relu=1), TypeError, r"relu must be a bool, not 1"),
]


@pytest.mark.parametrize("change, error, match", BAD_PARAMETERS,
                         ids=["+".join(c) + "-" + e.__name__ for c, e, _ in BAD_PARAMETERS])
def test_parameter_validation(change, error, match):
    with pytest.raises(error, match=match):
        Requantizer(**{**GOOD, **change})


def test_numpy_ints_accepted():
    dut = Requantizer(**{**GOOD, "multiplier": np.int64(3), "shift": np.uint8(9), "lanes": np.int32(2)})
    assert (dut.multiplier, dut.shift, dut.lanes) == (3, 9, 2) and type(dut.shift) is int


def test_ports_and_properties():
    dut = Requantizer(**GOOD)
    assert dut.i.payload.shape().size == 2 * 20 + 1 and dut.o.payload.shape().size == 2 * 8 + 1
    assert dut.product_bits == 22 and dut.stages == 2 and dut.latency == 2 and dut.ii == 1


def test_emission_deterministic():
    assert emit_verilog(Requantizer(**GOOD), "requant") == emit_verilog(Requantizer(**GOOD), "requant")


@pytest.mark.parametrize("p", [GOOD, FAST_POINTS[0], FAST_POINTS[7], FAST_POINTS[13]], ids=_point_id)
def test_lint_clean(p, tmp_path):
    assert lint_clean(Requantizer(**p), "requant", tmp_path) == []


# ------------------------------------------------------------------ cocotb + Verilator

SIM_POINTS = [
    # LeNet's ReLU layers: unsigned 8-bit output, ReLU folded in, serial.
    _p(20, 8, False, "half_up", "saturate", 19661, 18, 1, relu=True),
    # 4-bit signed, ties to even, shift only, two lanes.
    _p(14, 4, True, "half_even", "saturate", 1, 5, 2),
    # 16-bit signed, floor, wide multiplier, four lanes.
    _p(24, 16, True, "floor", "saturate", 40000, 15, 4),
    # shift 0, even multiplier, saturation both ways; and wrap-around with ties to even.
    _p(10, 8, True, "half_up", "saturate", 6, 0, 2),
    _p(16, 8, False, "half_even", "wrap", 3, 4, 1),
]


@pytest.mark.sim
@pytest.mark.parametrize("index", range(len(SIM_POINTS)), ids=[_point_id(p) for p in SIM_POINTS])
def test_cocotb(index):
    p = SIM_POINTS[index]
    dut = Requantizer(**p)
    params = dict(acc_fmt=p["acc_fmt"].to_dict(), out_fmt=p["out_fmt"].to_dict(), multiplier=p["multiplier"],
                  shift=p["shift"], lanes=p["lanes"], relu=p["relu"], latency=dut.latency, ii=dut.ii,
                  count=400, seed=20 + index, gap_prob=0.3, stall_prob=0.3)
    results = simulate_component(dut, f"requant_{index}", TB, params=params)
    assert sorted(t.name for t in results.tests) == ["requant_golden", "requant_timing"]
