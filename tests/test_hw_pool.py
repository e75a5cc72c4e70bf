# amaranth: UnusedElaboratable=no
"""hw.components.pool.Pool2x2 against golden.arith.max_pool2x2 / golden.reference.layer_accumulate:
Amaranth-simulator tests, lint, emission, parameter validation, cocotb + Verilator runs (``sim``)."""

import numpy as np
import pytest
from amaranth import Module
from amaranth.hdl import Fragment
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from golden import arith, reference
from golden.qformat import QFormat
from golden.qnet import Layer
from hw.components.activation import TanhLUT
from hw.emit import emit_verilog
from hw.components.pool import Pool2x2
from hw.components.requant import Requantizer
from sim.runner import simulate_component
from tests.stream_sim import PATTERN, data_last, simulate_stream
from tests.test_hw_requant import lint_clean

TB = "sim.tb.tb_pool"
COEF_FMT = QFormat(8, 7, True)


def _params(mode, in_fmt, channels, width, height, lanes, seed=0, coef_fmt=COEF_FMT):
    """Pool2x2 keyword arguments; avg gets random coefficients (extremes included) and biases."""
    p = dict(mode=mode, in_fmt=in_fmt, channels=channels, width=width, height=height, lanes=lanes)
    if mode == "avg":
        rng = np.random.default_rng(seed)
        coef = rng.integers(coef_fmt.min, coef_fmt.max + 1, channels)
        coef[:2] = [coef_fmt.min, coef_fmt.max][:channels]
        bias = rng.integers(-1000, 1000, channels)
        p.update(coef=[int(c) for c in coef], coef_fmt=coef_fmt, bias=[int(b) for b in bias])
    return p


def _layer(dut):
    """A golden pool Layer with the component's parameters (for golden.reference)."""
    c, h, w = dut.channels, dut.height, dut.width
    kw = {}
    if dut.mode == "avg":
        kw = dict(weights=np.array(dut.coef), bias=np.array(dut.bias), w_fmt=dut.coef_fmt, acc_fmt=dut.acc_fmt)
    return Layer(name="pool", kind="pool", in_shape=(c, h, w), out_shape=(c, h // 2, w // 2), in_fmt=dut.in_fmt,
                 out_fmt=dut.out_fmt, kernel=2, stride=2, pool=dut.mode, **kw)


def _golden(dut, x):
    layer = _layer(dut)
    return reference.layer_forward(layer, x) if dut.mode == "max" else reference.layer_accumulate(layer, x)


def _frames(fmt, shape, seed):
    """Input values: extremes with probability 0.4, otherwise uniform."""
    rng = np.random.default_rng(seed)
    x = rng.integers(fmt.min, fmt.max + 1, shape)
    return np.where(rng.random(shape) < 0.4, np.where(rng.random(shape) < 0.5, fmt.min, fmt.max), x)


def to_beats(t, lanes):
    """Raster beats of (N, C, H, W): ``{"data": lanes values, "last": ...}``, channel groups in order."""
    n, c, h, w = t.shape
    g = c // lanes
    return [{"data": [int(v) for v in t[i, k * lanes:(k + 1) * lanes, y, x]],
             "last": int(y == h - 1 and x == w - 1 and k == g - 1)}
            for i in range(n) for y in range(h) for x in range(w) for k in range(g)]


def _run(dut, beats, count, *, gap=0.0, stall=0.0, seed=0):
    """``count`` output beats and no more (tests.stream_sim): ``(outputs as (values, last), in_cycles, out_cycles)``."""
    run = simulate_stream(dut, beats, count, in_pause=gap, out_pause=stall, seed=seed, idle_after=20)
    return data_last(run.out), run.in_cycles, run.out_cycles


def _check(dut, frames, seed, gap=0.3, stall=0.3):
    x = _frames(dut.in_fmt, (frames, dut.channels, dut.height, dut.width), seed)
    expected = to_beats(_golden(dut, x), dut.lanes)
    outputs, in_cycles, out_cycles = _run(dut, to_beats(x, dut.lanes), len(expected), gap=gap, stall=stall,
                                          seed=seed)
    for k, ((values, last), want) in enumerate(zip(outputs, expected)):
        assert (values, last) == (want["data"], want["last"]), (
            f"seed {seed} output beat {k}: got {values} last {last}, golden {want['data']} last {want['last']}")
    return in_cycles, out_cycles


# ------------------------------------------------------------------ fast: Amaranth simulator

FAST_POINTS = [
    _params("max", QFormat(8, 7, True), 6, 8, 6, 1),
    _params("max", QFormat(4, 0, False), 6, 8, 6, 2),
    _params("max", QFormat(16, 8, True), 6, 8, 6, 6),
    _params("max", QFormat(8, 0, False), 1, 2, 2, 1),               # smallest: one block
    _params("avg", QFormat(8, 6, True), 6, 8, 6, 1, seed=1),
    _params("avg", QFormat(4, 0, False), 6, 8, 6, 2, seed=2),
    _params("avg", QFormat(16, 8, True), 6, 8, 6, 6, seed=3, coef_fmt=QFormat(16, 8, True)),
    _params("avg", QFormat(8, 0, True), 4, 4, 2, 2, seed=4, coef_fmt=QFormat(2, 0, True)),
]


def _point_id(p):
    return f"{p['mode']}-{p['in_fmt']}-c{p['channels']}-{p['width']}x{p['height']}-l{p['lanes']}"


@pytest.mark.parametrize("pause", [0.3, PATTERN], ids=["random", "pattern"])
@pytest.mark.parametrize("index", range(len(FAST_POINTS)), ids=[_point_id(p) for p in FAST_POINTS])
def test_matches_golden_with_gaps_and_stalls(index, pause):
    seed = 300 + index
    print(f"seed {seed}")
    _check(Pool2x2(**FAST_POINTS[index]), frames=3, seed=seed, gap=pause, stall=pause)


@pytest.mark.parametrize("mode", ["max", "avg"])
def test_latency_and_ii(mode):
    dut = Pool2x2(**_params(mode, QFormat(8, 0, True), 6, 8, 6, 2))
    in_cycles, out_cycles = _check(dut, frames=2, seed=5, gap=0.0, stall=0.0)
    assert dut.latency == (2 if mode == "max" else 3) and dut.ii == 1
    g = dut.groups
    completing = [((n * dut.height + 2 * oy + 1) * dut.width + 2 * ox + 1) * g + k
                  for n in range(2) for oy in range(dut.height // 2) for ox in range(dut.width // 2)
                  for k in range(g)]
    assert {out_cycles[j] - in_cycles[i] for j, i in enumerate(completing)} == {dut.latency}
    assert set(np.diff(in_cycles)) == {dut.ii}          # back-to-back frames, no pause


def test_realigns_on_last():
    """A short frame (truncated by an early ``last``) is dropped from the count: the next frame
    starts at row 0 again and pools correctly."""
    dut = Pool2x2(**_params("max", QFormat(8, 0, True), 2, 4, 4, 2))
    x = _frames(dut.in_fmt, (1, 2, 4, 4), 9)
    good = to_beats(x, 2)
    short = [dict(b) for b in good[:5]]
    short[-1]["last"] = 1
    expected = to_beats(arith.max_pool2x2(x), 2)
    outputs, _, _ = _run(dut, short + good, len(expected))
    assert [(v, last) for v, last in outputs] == [(e["data"], e["last"]) for e in expected]


def test_lenet_s2_chain(random_qnet):
    """LeNet-5's S2 (28x28x6, 6 lanes): Pool2x2.from_layer (+ Requantizer and TanhLUT for the
    classic avg pool) equals golden.reference.layer_forward."""
    _, qnet = random_qnet
    layer = next(lay for lay in qnet.layers if lay.kind == "pool")
    lanes = layer.in_shape[0]
    pool = Pool2x2.from_layer(layer, lanes=lanes)
    assert pool.out_fmt == (layer.acc_fmt if layer.pool == "avg" else layer.in_fmt)

    class Chain(wiring.Component):
        def __init__(self):
            self.stages = [pool]
            if layer.pool == "avg":
                self.stages.append(Requantizer.from_layer(layer, lanes=lanes))
                if layer.activation.kind == "tanh":
                    self.stages.append(TanhLUT.from_layer(layer, lanes=lanes))
            super().__init__({"i": In(pool.i.signature.flip()), "o": Out(self.stages[-1].o.signature)})

        def elaborate(self, platform):
            m = Module()
            for k, stage in enumerate(self.stages):
                m.submodules[f"stage{k}"] = stage
            for a, b in zip(self.stages, self.stages[1:]):
                wiring.connect(m, a.o, b.i)
            wiring.connect(m, wiring.flipped(self.i), self.stages[0].i)
            wiring.connect(m, self.stages[-1].o, wiring.flipped(self.o))
            return m

    x = _frames(layer.in_fmt, (2,) + layer.in_shape, 11)
    expected = to_beats(reference.layer_forward(layer, x), lanes)
    outputs, _, _ = _run(Chain(), to_beats(x, lanes), len(expected), gap=0.2, stall=0.2, seed=11)
    assert [(v, last) for v, last in outputs] == [(e["data"], e["last"]) for e in expected]


def test_default_acc_fmt_is_golden_accumulator_format():
    p = _params("avg", QFormat(8, 6, True), 6, 8, 6, 3, seed=1)
    dut = Pool2x2(**p)
    weights = np.repeat(np.array(p["coef"]).reshape(-1, 1), 4, axis=1)
    assert dut.acc_fmt == arith.accumulator_format(weights, p["bias"], p["in_fmt"], COEF_FMT.frac)
    assert dut.o.payload.shape().size == 3 * dut.acc_fmt.bits + 1
    assert Pool2x2(**{**p, "bias": None}).bias == (0,) * 6


def test_properties():
    dut = Pool2x2(**_params("max", QFormat(8, 0, True), 6, 28, 28, 2))
    assert (dut.groups, dut.line_depth, dut.in_beats, dut.out_beats) == (3, 42, 2352, 588)
    assert dut.out_fmt == dut.in_fmt and dut.coef is None and dut.acc_fmt is None


# ------------------------------------------------------------------ validation, emission, lint

GOOD = _params("avg", QFormat(8, 0, True), 6, 8, 6, 2, seed=1)


BAD_PARAMETERS = [
    (dict(mode="min"), ValueError, r"mode must be one of \('max', 'avg'\), not 'min'"),
    (dict(lanes=4), ValueError, r"lanes 4 does not divide channels 6"),
    (dict(lanes=0), ValueError, r"lanes must be >= 1, not 0"),
    (dict(channels=0), ValueError, r"channels must be >= 1, not 0"),
    (dict(width=7), ValueError, r"width must be even for 2x2 stride-2 pooling, not 7"),
    (dict(height=5), ValueError, r"height must be even for 2x2 stride-2 pooling, not 5"),
    (dict(width=0), ValueError, r"width must be >= 2, not 0"),
    (dict(height=6.0), TypeError, r"height must be an int, not 6\.0"),
    (dict(in_fmt=QFormat(17, 0, True)), ValueError, r"in_fmt sQ17\.0 has 17 bits; supported: 2\.\.16"),
    (dict(in_fmt="s8"), TypeError, r"in_fmt must be a golden.qformat.QFormat, not 's8'"),
    (dict(coef=None), ValueError, r"avg pooling needs coef and coef_fmt"),
    (dict(coef=[1, 2, 3]), ValueError, r"coef has 3 entries for 6 channels"),
    (dict(coef=[0.5] * 6), TypeError, r"coef must be a flat sequence of ints"),
    (dict(coef=[1, 2, 3, 4, 5, 128]), ValueError, r"coef\[5\] = 128 is outside coef_fmt sQ1\.7 \[-128, 127\]"),
    (dict(coef_fmt=QFormat(8, 7, False)), ValueError, r"coef_fmt uQ1\.7 must be signed"),
    (dict(bias=[0] * 5), ValueError, r"bias has 5 entries for 6 channels"),
    (dict(acc_fmt=QFormat(16, 7, True)), ValueError,
     r"acc_fmt sQ9\.7 \(16 bits\) cannot hold the worst-case range \[-\d+, \d+\] .* needs 18 bits"),
    (dict(acc_fmt=QFormat(20, 7, False)), ValueError, r"acc_fmt uQ13\.7 must be signed"),
]


@pytest.mark.parametrize("change, error, match", BAD_PARAMETERS,
                         ids=["+".join(c) + "-" + e.__name__ for c, e, _ in BAD_PARAMETERS])
def test_parameter_validation(change, error, match):
    with pytest.raises(error, match=match):
        Pool2x2(**{**GOOD, **change})


def test_max_rejects_avg_parameters():
    with pytest.raises(ValueError, match=r"max pooling takes no coef, coef_fmt, bias"):
        Pool2x2(**{**GOOD, "mode": "max", "acc_fmt": None})


def test_from_layer_rejects_other_layers(random_qnet):
    _, qnet = random_qnet
    with pytest.raises(ValueError, match=r"layer C1 is a conv layer, not a pool layer"):
        Pool2x2.from_layer(qnet.layers[0], lanes=1)
    for layer in qnet.layers:
        if layer.kind == "pool":
            Fragment.get(Pool2x2.from_layer(layer, lanes=2), None)


def test_line_buffer_is_a_memory():
    text = emit_verilog(Pool2x2(**GOOD), "pool")
    # width/2 * channels/lanes = 12 words of lanes * (in bits + 1) partial sums.
    assert "reg [17:0] line [11:0];" in text


def test_emission_deterministic():
    assert emit_verilog(Pool2x2(**GOOD), "pool") == emit_verilog(Pool2x2(**GOOD), "pool")


@pytest.mark.parametrize("index", [0, 2, 3, 5, 6], ids=lambda i: _point_id(FAST_POINTS[i]))
def test_lint_clean(index, tmp_path):
    assert lint_clean(Pool2x2(**FAST_POINTS[index]), "pool", tmp_path) == []


# ------------------------------------------------------------------ cocotb + Verilator

SIM_POINTS = [  # (parameters, frames)
    (_params("max", QFormat(8, 7, True), 6, 8, 6, 1), 3),
    (_params("max", QFormat(4, 0, False), 6, 8, 6, 2), 3),
    (_params("avg", QFormat(8, 6, True), 6, 8, 6, 6, seed=1), 3),
    (_params("avg", QFormat(16, 8, False), 6, 8, 6, 2, seed=2, coef_fmt=QFormat(16, 8, True)), 3),
    (_params("avg", QFormat(8, 6, True), 6, 28, 28, 6, seed=3), 2),          # LeNet-5 S2
]


@pytest.mark.sim
@pytest.mark.parametrize("index", range(len(SIM_POINTS)), ids=[_point_id(p) for p, _ in SIM_POINTS])
def test_cocotb(index):
    p, frames = SIM_POINTS[index]
    dut = Pool2x2(**p)
    params = dict(mode=dut.mode, in_fmt=dut.in_fmt.to_dict(), channels=dut.channels, width=dut.width,
                  height=dut.height, lanes=dut.lanes, latency=dut.latency, ii=dut.ii, frames=frames,
                  seed=60 + index, gap_prob=0.3, stall_prob=0.3)
    if dut.mode == "avg":
        params.update(coef=list(dut.coef), bias=list(dut.bias), coef_fmt=dut.coef_fmt.to_dict(),
                      acc_fmt=dut.acc_fmt.to_dict())
    results = simulate_component(dut, f"pool_{index}", TB, params=params)
    assert sorted(t.name for t in results.tests) == ["pool_golden", "pool_timing"]
