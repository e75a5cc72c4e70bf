# amaranth: UnusedElaboratable=no
"""hw.components.dense.DenseEngine: parameter validation, Amaranth-simulator tests against
golden.reference.dense_accumulate, lint and deterministic emission, and cocotb + Verilator
simulations of the emitted Verilog (``sim/tb/tb_dense.py``)."""

import re

import numpy as np
import pytest

from golden.arith import accumulator_format
from golden.qformat import QFormat
from golden.qnet import Activation, Layer, Requant
from golden.reference import dense_accumulate
from hw.components.dense import DenseEngine
from hw.emit import emit_verilog, lint_verilog, write_verilog
from tests.stream_sim import PATTERN, arrivals, simulate_stream

TB = "sim.tb.tb_dense"
SEED = 20240612

S4, U4, S8, U8, S16, U16 = (QFormat(4, 3, True), QFormat(4, 4, False), QFormat(8, 7, True), QFormat(8, 8, False),
                            QFormat(16, 15, True), QFormat(16, 12, False))


def layer_params(i, o, in_fmt, w_fmt, seed):
    """Weights with extremes (row 0 all max, row 1 all min, 20 % of the rest at min/max), biases at
    +-(a quarter of the largest sum) on rows 0/1, and the accumulator format from
    golden.arith.accumulator_format."""
    rng = np.random.default_rng(seed)
    w = rng.integers(w_fmt.min, w_fmt.max, (o, i), endpoint=True)
    w = np.where(rng.random((o, i)) < 0.2, np.where(rng.random((o, i)) < 0.5, w_fmt.min, w_fmt.max), w)
    w[0] = w_fmt.max
    if o > 1:
        w[1] = w_fmt.min
    bound = i * max(abs(w_fmt.min), w_fmt.max) * max(abs(in_fmt.min), in_fmt.max) // 4
    b = rng.integers(-bound, bound, o, endpoint=True)
    b[0] = bound
    if o > 1:
        b[1] = -bound
    acc_fmt = accumulator_format(w, b, in_fmt, w_fmt.frac)
    return dict(in_features=i, out_features=o, in_fmt=in_fmt, w_fmt=w_fmt, acc_fmt=acc_fmt, weights=w, bias=b)


def make_vectors(dut_params, count, rng):
    f, w = dut_params["in_fmt"], dut_params["weights"]
    rows = [np.where(w[0] > 0, f.max, f.min), np.where(w[0] > 0, f.min, f.max),
            np.full(w.shape[1], f.min), np.full(w.shape[1], f.max)]
    rows += [rng.integers(f.min, f.max, w.shape[1], endpoint=True) for _ in range(count - len(rows))]
    return np.array(rows[:count], dtype=np.int64)


def simulate(dut, x, *, gap=0.0, stall=0.0, seed=0, avail=None, cycles=False, monitors=()):
    """Stream the vectors ``x`` (N, I) through ``dut`` (Amaranth simulator, tests.stream_sim) with
    input/output pauses ``gap`` / ``stall`` (see tests.stream_sim.as_pause), or (``avail``) input
    beat ``k`` offered from cycle ``avail[k]`` on. Returns (accumulators (N, O), last flags, cycles
    of the accepted last input beats, cycles of the last output beats), and with ``cycles`` also
    (accept cycles of all input beats, cycles of all output beats). ``monitors``: async testbench
    functions run in the background alongside."""
    bl = dut.in_lanes
    beats = [{"data": row[j * bl:(j + 1) * bl].tolist(), "last": int(j == len(row) // bl - 1)}
             for row in x for j in range(len(row) // bl)]
    limit = 20 * len(x) * (dut.ii + dut.latency) + 200 + (avail[-1] if avail is not None else 0)
    run = simulate_stream(dut, beats, len(x) * dut.groups, in_pause=gap, out_pause=stall, seed=seed, avail=avail,
                          max_cycles=limit, monitors=monitors)
    lasts = [int(p.last) for p in run.out]
    in_last = [c for c, b in zip(run.in_cycles, beats) if b["last"]]
    out_last = [c for c, last in zip(run.out_cycles, lasts) if last]
    result = np.array([[int(v) for v in p.data] for p in run.out]).reshape(len(x), -1), lasts, in_last, out_last
    return result + (run.in_cycles, run.out_cycles) if cycles else result


def check(dut, x, gap=0.0, stall=0.0, seed=SEED):
    got, lasts, in_last, out_last = simulate(dut, x, gap=gap, stall=stall, seed=seed)
    expected = dense_accumulate(x, dut.weights, dut.bias)
    bad = np.argwhere(got != expected)
    assert not len(bad), "; ".join(f"vector {v} output {o}: got {got[v, o]}, expected {expected[v, o]}"
                                   for v, o in bad[:10])
    assert lasts == [int(g == dut.groups - 1) for _ in x for g in range(dut.groups)]
    return in_last, out_last


# ------------------------------------------------------------------ parameters and properties

def test_properties():
    p = layer_params(120, 84, S8, S8, SEED)
    dense = DenseEngine(**p, out_lanes=4, taps=6, in_lanes=4)
    assert (dense.groups, dense.chunks, dense.in_beats, dense.compute_cycles) == (21, 20, 30, 420)
    assert dense.ii == dense.frame_cycles == 420 and dense.latency == 420 + 3 + dense.mac.latency == 429
    assert (dense.mac.lanes, dense.mac.taps) == (4, 6) and dense.buffer_word == 12
    wide = DenseEngine(**layer_params(12, 6, U8, S8, SEED), out_lanes=6, taps=12, in_lanes=1)
    assert wide.compute_cycles == 1 and wide.ii == wide.frame_cycles == 12      # input-bound: one element per beat


@pytest.mark.parametrize("o, lanes, allowed", [
    (120, 7, "[1, 2, 3, 4, 5, 6, 8, 10, 12, 15, 20, 24, 30, 40, 60, 120]"),
    (10, 3, "[1, 2, 5, 10]"),
    (84, 5, "[1, 2, 3, 4, 6, 7, 12, 14, 21, 28, 42, 84]"),
])
def test_fold_errors(o, lanes, allowed):
    p = layer_params(12, o, S8, S8, SEED)
    with pytest.raises(ValueError, match=rf"out_lanes={lanes} does not divide out_features={o}; "
                                         rf"possible values: {re.escape(allowed)}"):
        DenseEngine(**p, out_lanes=lanes, taps=1)


@pytest.mark.parametrize("change, error, match", [
    (dict(taps=5), ValueError,
     r"taps=5 does not divide in_features=12; possible values: \[1, 2, 3, 4, 6, 12\]"),
    (dict(in_lanes=8), ValueError, r"in_lanes=8 does not divide in_features=12"),
    (dict(out_lanes=0), ValueError, r"out_lanes must be >= 1, not 0"),
    (dict(taps=1.5), TypeError, r"taps must be an int, not 1.5"),
    (dict(in_features=0), ValueError, r"in_features must be >= 1, not 0"),
    (dict(in_fmt=QFormat(20, 0, True)), ValueError, r"in_fmt sQ20.0 has 20 bits; supported: 2..16"),
    (dict(w_fmt="s8"), TypeError, r"w_fmt must be a golden.qformat.QFormat, not 's8'"),
    (dict(acc_fmt=QFormat(10, 14, True), bias=np.zeros(6, int)), ValueError,
     r"acc_fmt sQ-4.14 \(10 bits, .* is too narrow"),
    (dict(weights=np.zeros((6, 11), int)), ValueError, r"weights must have shape \(6, 12\), not \(6, 11\)"),
    (dict(weights=np.full((6, 12), 128)), ValueError, r"weights value 128 is outside sQ1.7 \[-128, 127\]"),
    (dict(weights=np.full((6, 12), 0.5)), TypeError, r"weights must be an array of integers"),
    (dict(bias=np.zeros(5, int)), ValueError, r"bias must have shape \(6,\), not \(5,\)"),
])
def test_parameter_errors(change, error, match):
    p = {**layer_params(12, 6, S8, S8, SEED), "out_lanes": 2, "taps": 3, **change}
    with pytest.raises(error, match=match):
        DenseEngine(**p)


# ------------------------------------------------------------------ Amaranth simulator

SMALL_FOLDS = [(1, 1, 1), (2, 3, 1), (2, 3, 4), (3, 4, 6), (6, 12, 1), (6, 12, 12), (1, 6, 4), (6, 2, 3), (3, 12, 2)]


@pytest.mark.parametrize("po, pi, bl", SMALL_FOLDS)
@pytest.mark.parametrize("in_fmt, w_fmt", [(U8, S8), (S4, S4), (S16, S16), (U4, S8)])
def test_small_folds(po, pi, bl, in_fmt, w_fmt):
    seed = SEED + 100 * po + 10 * pi + bl
    print(f"seed {seed}")
    p = layer_params(12, 6, in_fmt, w_fmt, seed)
    dense = DenseEngine(**p, out_lanes=po, taps=pi, in_lanes=bl)
    x = make_vectors(p, 6, np.random.default_rng(seed))
    in_last, out_last = check(dense, x)
    assert out_last[0] - in_last[0] == dense.latency
    assert set(np.diff(out_last)) == {dense.ii}
    check(dense, x, gap=0.3, stall=0.3, seed=seed)
    check(dense, x, gap=PATTERN, stall=PATTERN)


@pytest.mark.parametrize("stall", [0.98, (1,) * 49 + (0,)], ids=["random", "pattern"])
@pytest.mark.parametrize("po, pi", [(1, 12), (1, 6), (2, 1)])
def test_output_stall_stops_at_group_boundaries(po, pi, stall):
    """Output ready one cycle in fifty (at random or every fiftieth cycle): exact sums, and the MAC array is never offered a step it
    refuses (the engine starts an output group only while the MAC FIFO has room for it)."""
    p = layer_params(12, 6, U8, S8, SEED + po)
    dense = DenseEngine(**p, out_lanes=po, taps=pi)
    refused = []

    async def watch(ctx):
        cycle = 0
        async for _, _, valid, ready in ctx.tick().sample(dense.mac.i.valid, dense.mac.i.ready):
            if valid and not ready:
                refused.append(cycle)
            cycle += 1

    x = make_vectors(p, 6, np.random.default_rng(SEED + po))
    got, _, _, _ = simulate(dense, x, stall=stall, seed=SEED + po, monitors=[watch])
    expected = dense_accumulate(x, dense.weights, dense.bias)
    bad = np.argwhere(got != expected)
    assert not len(bad), "; ".join(f"vector {v} output {o}: got {got[v, o]}, expected {expected[v, o]}"
                                   for v, o in bad[:10])
    assert not refused, f"cycles with a step offered while the MAC array was not ready: {refused[:10]}"


def test_output_layer_84_to_10():
    p = layer_params(84, 10, U8, S8, SEED)
    dense = DenseEngine(**p, out_lanes=5, taps=14, in_lanes=4)
    x = make_vectors(p, 4, np.random.default_rng(SEED))
    in_last, out_last = check(dense, x)
    assert out_last[0] - in_last[0] == dense.latency and set(np.diff(out_last)) == {dense.ii}
    check(dense, x, gap=0.3, stall=0.3)
    check(dense, x, gap=PATTERN, stall=PATTERN)


def steady_period(dense, vectors=6):
    """Period of the last output beats of vectors offered at full rate, from the timing model."""
    t = dense.timing([0] * (vectors * dense.in_beats))
    ends = t.out[dense.groups - 1::dense.groups]
    periods = {b - a for a, b in zip(ends, ends[1:])}
    assert len(periods) == 1, periods
    return periods.pop()


@pytest.mark.parametrize("i, o, po, pi, bl", [(12, 6, *f) for f in SMALL_FOLDS]
                         + [(120, 84, 4, 6, 4), (120, 84, 12, 20, 1), (84, 10, 5, 14, 4), (84, 10, 10, 84, 84)])
def test_timing_model_properties(i, o, po, pi, bl):
    """latency and frame_cycles (= ii) are what the timing model gives: out - accept of one
    vector's last beats in an idle engine, and the steady-state vector period at full rate."""
    dense = DenseEngine(**layer_params(i, o, S8, S8, SEED), out_lanes=po, taps=pi, in_lanes=bl)
    t = dense.timing([0] * dense.in_beats)
    assert t.out[-1] - t.accept[-1] == dense.latency
    assert steady_period(dense) == dense.frame_cycles == dense.ii
    assert len(t.out) == dense.groups and t.accept == list(range(dense.in_beats))


def test_timing_model_double_buffer():
    """Hand-worked F6 (C = 420 steps, 30 beats per vector) at full rate: vectors 0 and 1 are
    accepted at once (two buffer halves); vector 2 waits until vector 0's last read (cycle
    30 + 419) has freed its half; vector n's reads start right after vector n-1's."""
    dense = DenseEngine(**layer_params(120, 84, S8, S8, SEED), out_lanes=4, taps=6, in_lanes=4)
    c, beats, chunks, lat = dense.compute_cycles, dense.in_beats, dense.chunks, dense.mac.latency
    t = dense.timing([0] * (4 * beats))
    starts = [beats + n * c for n in range(4)]                     # first read of each vector
    assert t.accept[:2 * beats] == list(range(2 * beats))
    for n in (2, 3):
        assert t.accept[n * beats:(n + 1) * beats] == list(range(starts[n - 2] + c, starts[n - 2] + c + beats))
    assert t.out == [s + 3 + (g + 1) * chunks - 1 + lat for s in starts for g in range(dense.groups)]
    # a gap: vector 1 offered long after vector 0 has finished -> like an idle engine
    late = 5000
    t = dense.timing([0] * beats + [late] * beats)
    assert t.accept[beats:] == list(range(late, late + beats))
    assert t.out[-1] == late + beats - 1 + dense.latency
    # a trailing incomplete vector is accepted but gives no output
    assert len(dense.timing([0] * (beats + 3)).out) == dense.groups


@pytest.mark.parametrize("po, pi, bl", SMALL_FOLDS)
@pytest.mark.parametrize("schedule", ["full", "random", "trickle"])
def test_timing_model_amaranth(po, pi, bl, schedule):
    """Amaranth simulator, vectors back to back, output always ready: the accept cycle of every
    input beat and the cycle of every output beat equal DenseEngine.timing."""
    seed = SEED + 100 * po + 10 * pi + bl + (schedule == "random")
    print(f"seed {seed}")
    p = layer_params(12, 6, S8, S8, seed)
    dense = DenseEngine(**p, out_lanes=po, taps=pi, in_lanes=bl)
    rng = np.random.default_rng(seed)
    x = make_vectors(p, 6, rng)
    n = len(x) * dense.in_beats
    avail = arrivals(schedule, n, rng, dense.latency + dense.ii)
    got, _, _, _, accept, out = simulate(dense, x, avail=avail, cycles=True)
    assert (got == dense_accumulate(x, dense.weights, dense.bias)).all()
    model = dense.timing(avail)
    assert accept == model.accept and out == model.out


def test_malformed_frame_resynchronises():
    """A vector cut short by ``last`` ends there; the next well-formed vector is exact again."""
    p = layer_params(12, 6, S8, S8, SEED)
    dense = DenseEngine(**p, out_lanes=2, taps=3, in_lanes=4)
    x = make_vectors(p, 2, np.random.default_rng(SEED))
    beats = [{"data": x[0, :4].tolist(), "last": 1}] + [{"data": x[1, j * 4:(j + 1) * 4].tolist(), "last": int(j == 2)}
                                                        for j in range(3)]
    got = [[int(v) for v in p.data] for p in simulate_stream(dense, beats, 2 * dense.groups).out]
    expected = dense_accumulate(x[1:], p["weights"], p["bias"])[0]
    assert np.array(got[dense.groups:]).reshape(-1).tolist() == expected.tolist()


def test_from_layer_permutes_chw_to_stream_order():
    rng = np.random.default_rng(SEED)
    c, h, w, o = 3, 2, 2, 4
    weights = rng.integers(-128, 127, (o, c * h * w), endpoint=True)
    bias = rng.integers(-1000, 1000, o, endpoint=True)
    acc_fmt = accumulator_format(weights, bias, U8, 7)
    layer = Layer(name="F", kind="dense", in_shape=(c, h, w), out_shape=(o,), in_fmt=U8, out_fmt=S8,
                  weights=weights, bias=bias, w_fmt=S8, acc_fmt=acc_fmt, act_fmt=S8,
                  requant=Requant(1, 8), activation=Activation("none"))
    dense = DenseEngine.from_layer(layer, out_lanes=2, taps=3, in_lanes=3)
    x = rng.integers(0, 255, (3, c, h, w), endpoint=True)
    stream_order = x.transpose(0, 2, 3, 1).reshape(3, -1)         # raster order, channels per position
    got, _, _, _ = simulate(dense, stream_order)
    assert (got == dense_accumulate(x, weights, bias)).all()
    with pytest.raises(ValueError, match="needs a dense layer"):
        DenseEngine.from_layer(Layer(name="S", kind="pool", in_shape=(1, 2, 2), out_shape=(1, 1, 1),
                                     in_fmt=U8, out_fmt=U8), out_lanes=1, taps=1)


# ------------------------------------------------------------------ Verilog: lint, determinism

@pytest.mark.parametrize("i, o, po, pi, bl, in_fmt, w_fmt", [
    (12, 6, 1, 1, 1, U8, S8), (12, 6, 2, 3, 4, S4, S4), (12, 6, 6, 12, 3, U16, S16), (84, 10, 2, 7, 4, U8, S8)])
def test_lint_clean(tmp_path, i, o, po, pi, bl, in_fmt, w_fmt):
    dense = DenseEngine(**layer_params(i, o, in_fmt, w_fmt, SEED), out_lanes=po, taps=pi, in_lanes=bl)
    path = write_verilog(dense, "dense_engine", tmp_path)
    assert lint_verilog([path], "dense_engine") == []


def test_emission_deterministic():
    p = layer_params(12, 6, S8, S8, SEED)
    assert emit_verilog(DenseEngine(**p, out_lanes=2, taps=3), "dense_engine") == \
        emit_verilog(DenseEngine(**p, out_lanes=2, taps=3), "dense_engine")


# ------------------------------------------------------------------ cocotb + Verilator

SIM_POINTS = [
    pytest.param(12, 6, 1, 1, 1, S4, S4, id="12x6-serial-s4xs4"),
    pytest.param(12, 6, 2, 3, 4, U16, S16, id="12x6-partial-u16xs16"),
    pytest.param(8, 4, 4, 8, 2, U8, S8, id="8x4-full-u8xs8"),
    pytest.param(120, 84, 4, 6, 4, S8, S8, id="F6-120x84-s8xs8"),
    pytest.param(84, 10, 2, 7, 4, U8, S8, id="OUT-84x10-u8xs8"),
]


@pytest.mark.sim
@pytest.mark.parametrize("i, o, po, pi, bl, in_fmt, w_fmt", SIM_POINTS)
def test_cocotb(i, o, po, pi, bl, in_fmt, w_fmt):
    from sim.runner import simulate_component

    p = layer_params(i, o, in_fmt, w_fmt, SEED + i + o)
    dense = DenseEngine(**p, out_lanes=po, taps=pi, in_lanes=bl)
    params = dict(in_features=i, out_features=o, out_lanes=po, taps=pi, in_lanes=bl,
                  in_fmt=in_fmt.to_dict(), w_fmt=w_fmt.to_dict(), acc_fmt=p["acc_fmt"].to_dict(),
                  weights=p["weights"].tolist(), bias=p["bias"].tolist(), vectors=8 if i * o < 1000 else 4,
                  seed=SEED, gap_prob=0.3, stall_prob=0.3,
                  latency=dense.latency, ii=dense.ii, compute_cycles=dense.compute_cycles,
                  frame_cycles=dense.frame_cycles)
    results = simulate_component(dense, "dense_engine", TB, params=params)
    assert sorted(t.name for t in results.tests) == ["latency_and_ii", "timing_full_rate", "timing_random",
                                                     "vectors"]
