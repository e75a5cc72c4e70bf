# amaranth: UnusedElaboratable=no
"""hw.components.activation.TanhLUT (golden.arith.lut_lookup) and hw.components.activation.ReLU (golden.arith.relu):
Amaranth-simulator tests, lint, emission, parameter validation, cocotb + Verilator runs (``sim``)."""

import random

import numpy as np
import pytest
from amaranth.hdl import Fragment

from golden import arith
from golden.qformat import QFormat
from hw.components.activation import ReLU, TanhLUT
from hw.emit import emit_verilog
from hw.components.requant import Requantizer
from sim.runner import simulate_component
from tests.stream_sim import PATTERN, data_last, simulate_stream
from tests.test_hw_requant import lint_clean

TB = "sim.tb.tb_activation"


def random_lut(in_fmt, out_fmt, seed):
    """A random table for *in_fmt* with values inside *out_fmt* (extremes included)."""
    rng = np.random.default_rng(seed)
    lut = rng.integers(out_fmt.min, out_fmt.max + 1, 1 << in_fmt.bits)
    lut[:2] = [out_fmt.min, out_fmt.max]
    return [int(v) for v in lut]


def _beats(in_fmt, lanes, count, rng):
    """Every input value on every lane (shuffled, repeated as needed), ``last`` every 5 beats."""
    cols = []
    for _ in range(lanes):
        col = []
        while len(col) < count:
            sweep = list(range(in_fmt.min, in_fmt.max + 1))
            rng.shuffle(sweep)
            col += sweep
        cols.append(col[:count])
    return [{"data": [c[b] for c in cols], "last": int(b % 5 == 4)} for b in range(count)]


def _run(dut, beats, count, *, gap=0.0, stall=0.0, seed=0):
    """``count`` output beats and no more (tests.stream_sim): ``(outputs as (values, last), in_cycles, out_cycles)``."""
    run = simulate_stream(dut, beats, count, in_pause=gap, out_pause=stall, seed=seed, idle_after=20)
    return data_last(run.out), run.in_cycles, run.out_cycles


def _check(dut, golden, in_fmt, lanes, count, seed, gap=0.3, stall=0.3):
    beats = _beats(in_fmt, lanes, count, random.Random(seed))
    outputs, in_cycles, out_cycles = _run(dut, beats, count, gap=gap, stall=stall, seed=seed)
    for b, (values, last) in enumerate(outputs):
        assert last == beats[b]["last"], f"seed {seed} beat {b}: last {last}"
        expected = [int(v) for v in golden(beats[b]["data"])]
        assert values == expected, f"seed {seed} beat {b}: inputs {beats[b]['data']} -> {values}, golden {expected}"
    return in_cycles, out_cycles


# ------------------------------------------------------------------ fast: Amaranth simulator

LUT_POINTS = [  # (in_fmt, out_fmt, lanes)
    (QFormat(4, 2, True), QFormat(8, 7, True), 1),
    (QFormat(4, 0, False), QFormat(4, 3, True), 2),
    (QFormat(8, 7, True), QFormat(8, 6, True), 3),            # LeNet classic: sQ1.7 -> sQ2.6
    (QFormat(8, 8, False), QFormat(16, 8, False), 2),
    (QFormat(2, 0, True), QFormat(2, 0, True), 4),
]


@pytest.mark.parametrize("pause", [0.3, PATTERN], ids=["random", "pattern"])
@pytest.mark.parametrize("index", range(len(LUT_POINTS)),
                         ids=[f"{i}-{o}-l{n}" for i, o, n in LUT_POINTS])
def test_lut_matches_golden_with_gaps_and_stalls(index, pause):
    in_fmt, out_fmt, lanes = LUT_POINTS[index]
    seed = 200 + index
    print(f"seed {seed}")
    lut = random_lut(in_fmt, out_fmt, seed)
    dut = TanhLUT(in_fmt=in_fmt, out_fmt=out_fmt, lut=lut, lanes=lanes)
    count = max(60, 1 << in_fmt.bits)
    _check(dut, lambda x: arith.lut_lookup(x, lut, in_fmt), in_fmt, lanes, count, seed, gap=pause, stall=pause)


@pytest.mark.parametrize("fmt, lanes", [(QFormat(8, 4, True), 2), (QFormat(4, 0, False), 1),
                                        (QFormat(16, 8, True), 3)], ids=str)
@pytest.mark.parametrize("pause", [0.3, PATTERN], ids=["random", "pattern"])
def test_relu_matches_golden_with_gaps_and_stalls(fmt, lanes, pause):
    dut = ReLU(fmt=fmt, lanes=lanes)
    _check(dut, arith.relu, fmt, lanes, 80, seed=7, gap=pause, stall=pause)


@pytest.mark.parametrize("make", [
    lambda: TanhLUT(in_fmt=QFormat(8, 4, True), out_fmt=QFormat(8, 7, True),
                    lut=random_lut(QFormat(8, 4, True), QFormat(8, 7, True), 1), lanes=2),
    lambda: ReLU(fmt=QFormat(8, 4, True), lanes=2),
], ids=["tanh", "relu"])
def test_latency_and_ii(make):
    dut = make()
    fmt = dut.in_fmt if isinstance(dut, TanhLUT) else dut.fmt
    golden = (lambda x: arith.lut_lookup(x, dut.lut, fmt)) if isinstance(dut, TanhLUT) else arith.relu
    in_cycles, out_cycles = _check(dut, golden, fmt, 2, 40, seed=3, gap=0.0, stall=0.0)
    assert dut.latency == 1 and dut.ii == 1
    assert {o - i for i, o in zip(in_cycles, out_cycles)} == {dut.latency}
    assert set(np.diff(in_cycles)) == {dut.ii} and set(np.diff(out_cycles)) == {dut.ii}


@pytest.mark.parametrize("stall", [0.9, (1,) * 7 + (0,)], ids=["random", "pattern"])
def test_stall_holds_read_data(stall):
    """The classic synchronous-read bug: output stalled for many cycles while new inputs wait;
    the presented output must not change and nothing may be lost."""
    in_fmt, out_fmt = QFormat(4, 0, True), QFormat(8, 0, True)
    lut = random_lut(in_fmt, out_fmt, 5)
    dut = TanhLUT(in_fmt=in_fmt, out_fmt=out_fmt, lut=lut, lanes=1)
    beats = _beats(in_fmt, 1, 48, random.Random(5))
    outputs, _, _ = _run(dut, beats, len(beats), stall=stall, seed=5)
    assert [o[0] for o in outputs] == [[int(arith.lut_lookup(b["data"], lut, in_fmt)[0])] for b in beats]


def test_from_layer(random_qnet):
    """For tanh layers: Requantizer.from_layer feeding TanhLUT.from_layer is layer_postprocess."""
    from golden.reference import layer_postprocess
    _, qnet = random_qnet
    tanh_layers = [layer for layer in qnet.layers if layer.activation.kind == "tanh"]
    other = [layer for layer in qnet.layers if layer.has_mac and layer.activation.kind != "tanh"]
    with pytest.raises(ValueError, match="not 'tanh'"):
        TanhLUT.from_layer(other[0], lanes=1)
    for layer in tanh_layers:
        lut = TanhLUT.from_layer(layer, lanes=1)
        assert (lut.in_fmt, lut.out_fmt, lut.lut) == (layer.act_fmt, layer.out_fmt, tuple(layer.activation.lut))
        Fragment.get(lut, None)
    if not tanh_layers:
        return
    # Chain the two stages of the first tanh layer on accumulators around the LUT's input range.
    layer = tanh_layers[0]
    rq, lut = Requantizer.from_layer(layer, lanes=1), TanhLUT.from_layer(layer, lanes=1)
    span = ((layer.act_fmt.max + 2) << layer.requant.shift) // layer.requant.multiplier
    acc = np.random.default_rng(0).integers(max(-span, layer.acc_fmt.min), min(span, layer.acc_fmt.max), 200)
    out, _, _ = _run(rq, [{"data": [int(a)], "last": 0} for a in acc], len(acc))
    out, _, _ = _run(lut, [{"data": v, "last": last} for v, last in out], len(out))
    assert [v[0] for v, _ in out] == [int(v) for v in layer_postprocess(layer, acc)]


# ------------------------------------------------------------------ validation, emission, lint

S8, U8 = QFormat(8, 7, True), QFormat(8, 0, False)


BAD_PARAMETERS = [
    (dict(lut=[0] * 255), ValueError, r"lut has 255 entries; input format sQ1\.7 needs 2\*\*8 = 256"),
    (dict(lut=[0] * 255 + [128]), ValueError, r"lut\[255\] = 128 \(input 127\) is outside out_fmt sQ1\.7"),
    (dict(lut=[0.5] * 256), TypeError, r"lut must be a flat sequence of ints"),
    (dict(lut=[[0]] * 256), TypeError, r"lut must be a flat sequence of ints"),
    (dict(in_fmt=QFormat(17, 0, True), lut=[0] * 4), ValueError, r"in_fmt sQ17\.0 has 17 bits; supported: 2\.\.16"),
    (dict(out_fmt=QFormat(33, 0, True)), ValueError, r"out_fmt sQ33\.0 has 33 bits"),
    (dict(in_fmt=8), TypeError, r"in_fmt must be a golden.qformat.QFormat, not 8"),
    (dict(lanes=0), ValueError, r"lanes must be >= 1, not 0"),
    (dict(lanes="2"), TypeError, r"lanes must be an int, not '2'"),
]


@pytest.mark.parametrize("kwargs, error, match", BAD_PARAMETERS,
                         ids=["+".join(c) + "-" + e.__name__ for c, e, _ in BAD_PARAMETERS])
def test_lut_parameter_validation(kwargs, error, match):
    good = dict(in_fmt=S8, out_fmt=S8, lut=[0] * 256, lanes=1)
    with pytest.raises(error, match=match):
        TanhLUT(**{**good, **kwargs})


def test_relu_parameter_validation():
    with pytest.raises(TypeError, match=r"fmt must be a golden.qformat.QFormat, not None"):
        ReLU(fmt=None, lanes=1)
    with pytest.raises(ValueError, match=r"lanes must be >= 1, not -1"):
        ReLU(fmt=S8, lanes=-1)


def test_lut_is_a_memory():
    """The table is one Memory (block RAM), initialised from the LUT, with a read port per lane."""
    lut = random_lut(S8, S8, 9)
    text = emit_verilog(TanhLUT(in_fmt=S8, out_fmt=S8, lut=lut, lanes=2), "tanh_lut")
    assert "reg [7:0] \\table  [255:0];" in text
    assert f"\\table [255] = 8'h{lut[255] & 0xFF:02x};" in text
    assert text.count("\\table [") == 256 + 2      # 256 init entries, 2 read ports


def test_emission_deterministic():
    def make():
        return TanhLUT(in_fmt=S8, out_fmt=S8, lut=random_lut(S8, S8, 2), lanes=2)
    assert emit_verilog(make(), "tanh_lut") == emit_verilog(make(), "tanh_lut")


@pytest.mark.parametrize("make", [
    lambda: TanhLUT(in_fmt=S8, out_fmt=S8, lut=random_lut(S8, S8, 1), lanes=3),
    lambda: TanhLUT(in_fmt=U8, out_fmt=QFormat(4, 0, True), lut=random_lut(U8, QFormat(4, 0, True), 1), lanes=1),
    lambda: ReLU(fmt=S8, lanes=2),
    lambda: ReLU(fmt=U8, lanes=1),
], ids=["lut-s8", "lut-u8", "relu-s8", "relu-u8"])
def test_lint_clean(make, tmp_path):
    assert lint_clean(make(), "activation", tmp_path) == []


# ------------------------------------------------------------------ cocotb + Verilator

SIM_POINTS = [  # (kind, in_fmt, out_fmt, lanes)
    ("tanh", QFormat(4, 2, True), QFormat(8, 7, True), 2),
    ("tanh", QFormat(8, 7, True), QFormat(8, 6, True), 1),
    ("tanh", QFormat(8, 0, False), QFormat(16, 8, True), 3),
    ("relu", QFormat(8, 4, True), QFormat(8, 4, True), 2),
]


@pytest.mark.sim
@pytest.mark.parametrize("index", range(len(SIM_POINTS)),
                         ids=[f"{k}-{i}-{o}-l{n}" for k, i, o, n in SIM_POINTS])
def test_cocotb(index):
    kind, in_fmt, out_fmt, lanes = SIM_POINTS[index]
    seed = 40 + index
    params = dict(kind=kind, in_fmt=in_fmt.to_dict(), out_fmt=out_fmt.to_dict(), lanes=lanes,
                  count=max(300, 2 << in_fmt.bits), seed=seed, gap_prob=0.3, stall_prob=0.3)
    if kind == "tanh":
        params["lut"] = random_lut(in_fmt, out_fmt, seed)
        dut = TanhLUT(in_fmt=in_fmt, out_fmt=out_fmt, lut=params["lut"], lanes=lanes)
    else:
        dut = ReLU(fmt=in_fmt, lanes=lanes)
    params.update(latency=dut.latency, ii=dut.ii)
    results = simulate_component(dut, f"activation_{index}", TB, params=params)
    assert sorted(t.name for t in results.tests) == ["activation_golden", "activation_timing"]
