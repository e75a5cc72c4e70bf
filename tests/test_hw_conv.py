# amaranth: UnusedElaboratable=no
"""hw.components.conv.ConvEngine: the balanced schedule (C3's sparse table), parameter validation,
Amaranth-simulator tests against golden.reference.conv_accumulate (every accumulator, exact
timing against the engine's cycle model), lint, deterministic emission, and cocotb + Verilator
simulations of the emitted Verilog (``sim/tb/tb_conv.py``)."""

import re

import numpy as np
import pytest

from golden.arith import accumulator_format
from golden.paper import C3_TABLE
from golden.qformat import QFormat
from golden.qnet import Activation, Layer, Requant
from golden.reference import conv_accumulate
from hw.components.conv import LANES_PER_BANK, SELECT_GROUP_TAPS, SPLIT_ROM_WORDS, ConvEngine, conv_schedule, share_banks
from hw.emit import emit_verilog, lint_verilog, write_verilog
from tests.stream_sim import PATTERN, arrivals, raster_beats, simulate_stream
from tests.stream_sim import check_timing as check_cycle_model

TB = "sim.tb.tb_conv"
SEED = 20240614

S4, U4, S8, U8, S16, U16 = (QFormat(4, 3, True), QFormat(4, 4, False), QFormat(8, 7, True), QFormat(8, 8, False),
                            QFormat(16, 15, True), QFormat(16, 12, False))


def conv_params(c, o, k, in_fmt, w_fmt, seed, table=None):
    """Weights with extremes (output 0 all max, output 1 all min, a fifth of the rest at min/max),
    zero at pairs absent from ``table``; biases at +-(a quarter of the largest sum) on outputs
    0/1; the accumulator format from golden.arith.accumulator_format."""
    rng = np.random.default_rng(seed)
    shape = (o, c, k, k)
    w = rng.integers(w_fmt.min, w_fmt.max, shape, endpoint=True)
    w = np.where(rng.random(shape) < 0.2, np.where(rng.random(shape) < 0.5, w_fmt.min, w_fmt.max), w)
    w[0] = w_fmt.max
    if o > 1:
        w[1] = w_fmt.min
    if table is not None:
        for oc in range(o):
            w[oc, [i for i in range(c) if i not in table[oc]]] = 0
    bound = c * k * k * max(abs(w_fmt.min), w_fmt.max) * max(abs(in_fmt.min), in_fmt.max) // 4
    b = rng.integers(-bound, bound, o, endpoint=True)
    b[0] = bound
    if o > 1:
        b[1] = -bound
    acc_fmt = accumulator_format(w, b, in_fmt, w_fmt.frac)
    return dict(in_channels=c, out_channels=o, kernel=k, in_fmt=in_fmt, w_fmt=w_fmt, acc_fmt=acc_fmt,
                weights=w, bias=b, table=table)


def make_frames(fmt, shape, count, rng):
    """All max, all min, then random frames with a fifth of the values at the extremes."""
    frames = [np.full(shape, fmt.max), np.full(shape, fmt.min)]
    for _ in range(count - 2):
        x = rng.integers(fmt.min, fmt.max, shape, endpoint=True)
        frames.append(np.where(rng.random(shape) < 0.2, np.where(rng.random(shape) < 0.5, fmt.min, fmt.max), x))
    return np.array(frames[:count], dtype=np.int64)


def simulate(conv, x, *, gap=0.0, stall=0.0, seed=0, monitors=()):
    """Stream frames ``x`` (N, C, H, W) through ``conv`` (Amaranth simulator; input/output pauses
    ``gap`` / ``stall``: see tests.stream_sim.as_pause). Returns accumulators (N, O, Ho, Wo), last
    flags, input and output accept cycles."""
    run = simulate_stream(conv, raster_beats(x, conv.in_lanes), len(x) * conv.positions, in_pause=gap,
                          out_pause=stall, seed=seed, max_cycles=40 * len(x) * (conv.ii + conv.latency) + 500,
                          monitors=monitors)
    got = np.array([[int(v) for v in p.data] for p in run.out])
    got = got.reshape(len(x), conv.out_height, conv.out_width, -1).transpose(0, 3, 1, 2)
    return got, [int(p.last) for p in run.out], run.in_cycles, run.out_cycles


def check(conv, x, **kwargs):
    got, lasts, in_cycles, out_cycles = simulate(conv, x, **kwargs)
    expected = conv_accumulate(x, conv.weights, conv.bias, 1, conv.pad)
    bad = np.argwhere(got != expected)
    assert not len(bad), "; ".join(f"frame {n} output channel {o} (y={y}, x={xx}): expected {expected[n, o, y, xx]}, "
                                   f"got {got[n, o, y, xx]}" for n, o, y, xx in bad[:10])
    assert lasts == [int(q == conv.positions - 1) for _ in x for q in range(conv.positions)]
    return in_cycles, out_cycles


def check_timing(conv, in_cycles, out_cycles, frames):
    """Without gaps or stalls (every input beat available from cycle 0): the cycles equal the
    timing model; latency of the first position; the last frame period is ``ii``."""
    k, p, g_count = conv.kernel, conv.pad, conv.in_channels // conv.in_lanes
    model = conv.timing([0] * len(in_cycles))
    assert in_cycles == model.accept
    assert out_cycles == model.out
    completing = ((k - 1 - p) * conv.width + k - 1 - p) * g_count + g_count - 1
    assert out_cycles[0] - in_cycles[completing] == conv.latency
    if frames >= 3:
        ends = out_cycles[conv.positions - 1::conv.positions]
        assert ends[-1] - ends[-2] == conv.ii


# ------------------------------------------------------------------ schedule (pure Python)

def test_c3_schedule_balanced_and_sparse():
    """C3 (LeCun et al. 1998, Table I): 60 of the 96 pairs; each lane's load is its connection count,
    absent pairs never appear; the largest lane load is the optimum: ceil(60 / P_o) where the
    channel sizes (one of 6, nine of 4, six of 3) allow it (greedy longest-first alone gives 16 on 4
    lanes), else the smallest feasible load (6 lanes: loads of exactly 10 would need bins 6+4 or
    4+3+3 only, using six 4s, not nine; 8 lanes: 8 fails; 10 lanes: 6 fails)."""
    assert sum(len(row) for row in C3_TABLE) == 60
    expected = {1: 60, 2: 30, 3: 20, 4: 15, 5: 12, 6: 11, 7: 10, 8: 9, 10: 7, 16: 6}
    for po, longest in expected.items():
        sched = conv_schedule(C3_TABLE, po, 5)
        assert sorted(o for lane in sched.lanes for o in lane) == list(range(16))
        pairs = [pair for lane in sched.slots for pair in lane if pair[1] >= 0]
        assert sorted(pairs) == sorted((o, i) for o, row in enumerate(C3_TABLE) for i in row)
        assert sched.connections == tuple(sum(len(C3_TABLE[o]) for o in lane) for lane in sched.lanes)
        assert sched.slots_per_position == max(sched.connections) == longest
        assert sched.cycles_per_position == longest * 5
        for lane, slots in zip(sched.lanes, sched.slots):
            assert [o for o, _ in slots] == sorted(o for o, _ in slots)        # a channel's slots in a row
            assert all(o == lane[-1] for o, i in slots if i < 0)               # padding extends the last one


def test_schedule_dense_table():
    sched = conv_schedule(tuple(tuple(range(2)) for _ in range(3)), 2, 9)
    assert sched.lanes == ((0, 2), (1,)) and sched.connections == (4, 2)
    assert sched.slots[1] == ((1, 0), (1, 1), (1, -1), (1, -1)) and sched.cycles_per_position == 36


def test_properties():
    p = conv_params(6, 16, 5, U8, S8, SEED, table=C3_TABLE)
    c3 = ConvEngine(**p, width=14, height=14, out_lanes=4, taps=5, in_lanes=2)
    assert (c3.connections, c3.cycles_per_position, c3.multipliers, c3.positions) == (60, 75, 20, 100)
    assert (c3.in_beats, c3.padded_cycles, c3.compute_cycles, c3.ideal_ii) == (588, 588, 7500, 7500)
    # The window FIFO (automatic depth: the smallest reaching the ideal ii) adds its 1 cycle.
    assert c3.window_fifo == 4 and c3.ii == c3.frame_cycles == 7500
    # window, window FIFO, load decision, staging register, channel multiplexer register, 75 steps,
    # MAC, output register.
    assert c3.latency == 1 + 1 + 1 + 1 + 1 + 75 + c3.macs[0].latency
    assert c3.window_fifo_bits == 4 * (25 * 2 * 8 + 1)
    # Without it: strongly compute-bound, yet the K-1 = 4 rows at the start of a frame (4 * 14 * 3
    # beats, plus 5 * 3 to the first window) take longer than the one position of look-ahead (75).
    c3_nofifo = ConvEngine(**p, width=14, height=14, out_lanes=4, taps=5, in_lanes=2, window_fifo=0)
    assert c3_nofifo.ii == 7500 + (4 * 14 * 3 + 5 * 3) - 75
    assert c3_nofifo.latency == 1 + 1 + 1 + 1 + 75 + c3.macs[0].latency and c3_nofifo.window_fifo_bits == 0
    assert len(c3.macs) == 4 and all(m.lanes == 1 and m.taps == 5 for m in c3.macs)
    dense = ConvEngine(**conv_params(6, 16, 5, U8, S8, SEED), width=14, height=14, out_lanes=4, taps=5, in_lanes=2)
    assert dense.cycles_per_position == 24 * 5 and dense.connections == 96
    p = conv_params(1, 6, 5, U8, S8, SEED)
    c1 = ConvEngine(**p, width=28, height=28, pad=2, out_lanes=6, taps=25, in_lanes=1)
    assert (c1.cycles_per_position, c1.multipliers, c1.padded_cycles, c1.ii) == (1, 150, 1024, 1024)
    assert c1.frame_cycles == c1.ii
    assert c1.window_fifo == 0                 # input-bound: no FIFO needed
    # Without a window FIFO the window generator runs at most one window ahead: frame-start rows
    # cost cycles when the MACs and the window generator are nearly balanced.
    c1_half = ConvEngine(**p, width=28, height=28, pad=2, out_lanes=3, taps=25, in_lanes=1, window_fifo=0)
    assert c1_half.ideal_ii == 784 * 2 and c1_half.ii > c1_half.ideal_ii
    c1_half = ConvEngine(**p, width=28, height=28, pad=2, out_lanes=3, taps=25, in_lanes=1)
    assert c1_half.ii == c1_half.ideal_ii and c1_half.window_fifo > 0
    assert ConvEngine(**p, width=28, height=28, pad=2, out_lanes=3, taps=25, in_lanes=1,
                      window_fifo=c1_half.window_fifo - 1).ii > c1_half.ideal_ii


@pytest.mark.parametrize("change, error, match", [
    (dict(out_lanes=0), ValueError, r"out_lanes must be 1..3, not 0"),
    (dict(out_lanes=4), ValueError, r"out_lanes must be 1..3, not 4"),
    (dict(taps=2), ValueError, r"taps=2 does not divide kernel\*kernel=9; possible values: \[1, 3, 9\]"),
    (dict(in_lanes=3), ValueError, r"in_lanes=3 does not divide in_channels=2; possible values: \[1, 2\]"),
    (dict(taps=1.0), TypeError, r"taps must be an int, not 1.0"),
    (dict(width=0), ValueError, r"width must be >= 1, not 0"),
    (dict(pad=-1), ValueError, r"pad must be >= 0, not -1"),
    (dict(kernel=7, taps=1, weights=np.zeros((3, 2, 7, 7), int)), ValueError, r"kernel 7 is larger than the padded width 6"),
    (dict(in_fmt=QFormat(20, 0, True)), ValueError, r"in_fmt .* 20 bits; supported: 2..16"),
    (dict(w_fmt="s8"), TypeError, r"w_fmt must be a golden.qformat.QFormat, not 's8'"),
    (dict(acc_fmt=QFormat(10, 0, True), bias=np.zeros(3, int)), ValueError, r"acc_fmt sQ10.0 \(10 bits, .*too narrow"),
    (dict(weights=np.zeros((3, 2, 3, 2), int)), ValueError, r"weights must have shape \(3, 2, 3, 3\), not \(3, 2, 3, 2\)"),
    (dict(weights=np.full((3, 2, 3, 3), 128)), ValueError, r"weights value 128 is outside sQ1.7 \[-128, 127\]"),
    (dict(weights=np.full((3, 2, 3, 3), 0.5)), TypeError, r"weights must be an array of integers"),
    (dict(bias=np.zeros(2, int)), ValueError, r"bias must have shape \(3,\), not \(2,\)"),
    (dict(table=((0,), (1,))), ValueError, r"table has 2 rows for out_channels=3"),
    (dict(table=((0,), (), (1,))), ValueError, r"table\[1\] is empty"),
    (dict(table=((0,), (2,), (1,))), ValueError, r"table\[1\] = \(2,\): entry 2 is not an input channel 0..1"),
    (dict(table=((0,), (1, 1), (1,))), ValueError, r"table\[1\] = \(1, 1\) lists an input channel twice"),
    (dict(table=7), TypeError, r"table must be None or a sequence of sequences"),
    (dict(table=((0,), (0, 1), (1,))), ValueError, r"weights\[0, 1\] must be zero: input channel 1 is not in table\[0\]"),
    (dict(window_fifo=1), ValueError, r"window_fifo must be 0 \(no FIFO\) or >= 2, not 1"),
    (dict(window_fifo=-1), ValueError, r"window_fifo must be >= 0, not -1"),
    (dict(window_fifo=2.0), TypeError, r"window_fifo must be an int, not 2.0"),
])
def test_parameter_errors(change, error, match):
    p = {**conv_params(2, 3, 3, U8, S8, SEED), "width": 6, "height": 6, "out_lanes": 2, "taps": 3, "in_lanes": 1}
    p.update(change)
    with pytest.raises(error, match=match):
        ConvEngine(**p)


# ------------------------------------------------------------------ Amaranth simulator

SMALL = [
    # in_fmt, w_fmt, out_lanes, taps, in_lanes, pad
    pytest.param(U8, S8, 1, 1, 1, 0, id="serial-u8xs8"),
    pytest.param(S8, S8, 1, 1, 2, 1, id="serial-s8xs8-p1"),
    pytest.param(S4, S4, 2, 3, 1, 1, id="partial-s4xs4-p1"),
    pytest.param(U4, S4, 2, 9, 2, 0, id="partial-u4xs4"),
    pytest.param(U16, S16, 3, 1, 1, 2, id="lanes-u16xs16-p2"),
    pytest.param(S16, S16, 3, 9, 2, 1, id="full-s16xs16-p1"),
    pytest.param(U8, S8, 3, 9, 1, 0, id="full-u8xs8"),
]


@pytest.mark.parametrize("in_fmt, w_fmt, po, pk, il, pad", SMALL)
def test_small(in_fmt, w_fmt, po, pk, il, pad):
    """2 -> 3 channels, 6x6, K = 3, at serial, partial and full folds."""
    seed = SEED + 100 * po + 10 * pk + il
    print(f"seed {seed}")
    conv = ConvEngine(**conv_params(2, 3, 3, in_fmt, w_fmt, seed), width=6, height=6, pad=pad, out_lanes=po,
                      taps=pk, in_lanes=il)
    x = make_frames(in_fmt, (2, 6, 6), 4, np.random.default_rng(seed))      # max, min, random, random
    in_cycles, out_cycles = check(conv, x[[0, 2]])
    check_timing(conv, in_cycles, out_cycles, 2)
    check(conv, x[[1, 3]], gap=0.3, stall=0.3, seed=seed)
    check(conv, x[[3, 1]], gap=PATTERN, stall=PATTERN)


@pytest.mark.parametrize("po, pk, il", [(1, 25, 6), (4, 5, 2), (5, 25, 1), (16, 5, 3)])
def test_c3_table_small_map(po, pk, il):
    """C3's sparse table (6 -> 16, K = 5) on a 7x6 map: exact accumulators, the balanced schedule's
    cycles per position, and the cycle model."""
    seed = SEED + po + pk + il
    print(f"seed {seed}")
    conv = ConvEngine(**conv_params(6, 16, 5, U8, S8, seed, table=C3_TABLE), width=7, height=6, out_lanes=po,
                      taps=pk, in_lanes=il)
    assert conv.cycles_per_position == conv_schedule(C3_TABLE, po, 25 // pk).slots_per_position * 25 // pk
    x = make_frames(U8, (6, 6, 7), 4, np.random.default_rng(seed))
    in_cycles, out_cycles = check(conv, x[[0, 2]])
    check_timing(conv, in_cycles, out_cycles, 2)
    check(conv, x[[1, 3]], gap=0.3, stall=0.3, seed=seed)
    check(conv, x[[3]], gap=PATTERN, stall=PATTERN)


@pytest.mark.parametrize("stall", [0.98, (1,) * 49 + (0,)], ids=["random", "pattern"])
@pytest.mark.parametrize("po, pk, table", [(6, 25, C3_TABLE), (1, 25, C3_TABLE), (16, 5, C3_TABLE), (16, 25, None)])
def test_output_stall_stops_at_position_boundaries(po, pk, table, stall):
    """Output ready one cycle in fifty (at random or every fiftieth cycle): exact results, and no lane MAC is ever offered a step
    it refuses (the engine's per-position flow control keeps every MAC FIFO from filling; the MACs'
    ``i.ready`` is left unconnected)."""
    seed = SEED + po + pk
    print(f"seed {seed}")
    conv = ConvEngine(**conv_params(6, 16, 5, U8, S8, seed, table=table), width=6, height=6, out_lanes=po,
                      taps=pk, in_lanes=6)
    refused = []

    async def watch(ctx):
        cycle = 0
        async for values in ctx.tick().sample(*(s for mac in conv.macs for s in (mac.i.valid, mac.i.ready))):
            pairs = values[2:]
            refused.extend((cycle, lane) for lane in range(po) if pairs[2 * lane] and not pairs[2 * lane + 1])
            cycle += 1

    x = make_frames(U8, (6, 6, 6), 3, np.random.default_rng(seed))
    got, _, _, _ = simulate(conv, x, stall=stall, seed=seed, monitors=[watch])
    expected = conv_accumulate(x, conv.weights, conv.bias, 1, conv.pad)
    bad = np.argwhere(got != expected)
    assert not len(bad), "; ".join(f"frame {n} output channel {o} (y={y}, x={xx}): expected {expected[n, o, y, xx]}, "
                                   f"got {got[n, o, y, xx]}" for n, o, y, xx in bad[:10])
    assert not refused, f"(cycle, lane) with a step offered while the lane MAC was not ready: {refused[:10]}"


def check_model(dut, x, avail):
    """Frames ``x`` offered on ``avail``, output always ready (Amaranth simulator): accept and
    output cycles equal ``dut.timing(avail)`` (tests.stream_sim.check_timing); returns the run."""
    return check_cycle_model(dut, raster_beats(x, dut.in_lanes), avail, idle_after=3 * dut.cycles_per_position + 20)


TIMING_POINTS = [
    # c, o, k, w, h, pad, po, pk, il, table, window_fifo (None: automatic depth)
    pytest.param(2, 3, 3, 5, 4, 0, 1, 1, 2, None, None, id="serial-5x4"),
    pytest.param(2, 3, 3, 6, 5, 1, 2, 3, 1, None, None, id="partial-6x5-p1"),
    pytest.param(2, 3, 3, 6, 5, 1, 2, 3, 1, None, 0, id="partial-6x5-p1-nofifo"),
    pytest.param(2, 3, 3, 4, 5, 2, 3, 9, 1, None, None, id="full-4x5-p2"),
    pytest.param(1, 6, 5, 8, 8, 2, 6, 25, 1, None, None, id="C1like-8x8-p2-full"),
    pytest.param(1, 6, 5, 8, 8, 2, 3, 25, 1, None, None, id="C1like-8x8-p2-cpp2"),
    pytest.param(1, 6, 5, 8, 8, 2, 3, 25, 1, None, 3, id="C1like-8x8-p2-cpp2-fifo3"),
    pytest.param(1, 6, 5, 8, 8, 2, 3, 25, 1, None, 5, id="C1like-8x8-p2-cpp2-fifo5"),
    pytest.param(6, 16, 5, 6, 5, 0, 16, 25, 6, C3_TABLE, None, id="C3table-6x5-cpp6"),
    pytest.param(6, 16, 5, 6, 5, 0, 16, 25, 6, C3_TABLE, 0, id="C3table-6x5-cpp6-nofifo"),
    pytest.param(6, 16, 5, 6, 5, 1, 8, 5, 3, C3_TABLE, None, id="C3table-6x5-p1-cpp40"),
    pytest.param(1, 1, 1, 6, 5, 0, 1, 1, 1, None, None, id="IN-1x1-6x5"),       # an imported model's input layer
]


@pytest.mark.parametrize("kind", ["full", "random", "trickle"])
@pytest.mark.parametrize("c, o, k, w, h, pad, po, pk, il, table, fifo", TIMING_POINTS)
def test_timing_model(c, o, k, w, h, pad, po, pk, il, table, fifo, kind):
    """The cycle model (:meth:`ConvEngine.timing`) against the Amaranth simulation, exactly: frames
    back to back offered on a schedule, output always ready; at full rate (three frames) the frame
    period is ``ii``; the values are the golden accumulators."""
    seed = SEED + 7 * c + o + po + pk + il + pad
    print(f"seed {seed}")
    rng = np.random.default_rng(seed)
    conv = ConvEngine(**conv_params(c, o, k, U8, S8, seed, table), width=w, height=h, pad=pad, out_lanes=po,
                      taps=pk, in_lanes=il, window_fifo=fifo)
    frames = 3 if kind == "full" else 2
    x = make_frames(U8, (c, h, w), frames, rng)
    avail = arrivals(kind, frames * conv.in_beats, rng, conv.latency + conv.cycles_per_position * 3)
    run = check_model(conv, x, avail)
    got = np.array([[int(v) for v in p.data] for p in run.out]).reshape(frames, conv.out_height, conv.out_width, o)
    assert (got.transpose(0, 3, 1, 2) == conv_accumulate(x, conv.weights, conv.bias, 1, pad)).all()
    if kind == "full":
        ends = run.out_cycles[conv.positions - 1::conv.positions]        # measured frame period
        assert ends[-1] - ends[-2] == conv.ii == conv.frame_cycles >= conv.ideal_ii


def test_timing_partial_frame():
    """A trailing incomplete frame: the model stops at its first missing beat (no outputs)."""
    conv = ConvEngine(**conv_params(2, 3, 3, U8, S8, SEED), width=4, height=4, pad=1, out_lanes=3, taps=9,
                      in_lanes=1)
    full = conv.timing([0] * conv.in_beats)
    part = conv.timing([0] * (conv.in_beats + 5))
    assert part.accept[:conv.in_beats] == full.accept and len(part.accept) == conv.in_beats + 5
    assert part.out == full.out
    assert conv.timing([]).accept == [] and conv.timing([]).out == []
    shifted = conv.timing([100] * conv.in_beats, start=100)
    assert shifted.accept == [a + 100 for a in full.accept] and shifted.out == [t + 100 for t in full.out]


@pytest.mark.parametrize("c, o, w, pad, il, po, pk, ii_nofifo, fifo", [
    (1, 6, 28, 2, 1, 6, 25, 1024, 0), (1, 6, 28, 2, 1, 3, 25, 1780, 67), (1, 6, 28, 2, 1, 6, 5, 4048, 26),
    (6, 16, 14, 0, 6, 8, 25, 1249, 5), (6, 16, 14, 0, 6, 16, 25, 655, 10), (6, 16, 14, 0, 6, 4, 25, 2437, 2),
])
def test_lenet_ii(c, o, w, pad, il, po, pk, ii_nofifo, fifo):
    """ii (the model's steady-state frame period) at LeNet-5 sizes, C1 and C3 (full table): the
    ideal with the automatic window FIFO, and without it."""
    p = dict(**conv_params(c, o, 5, U8, S8, SEED), width=w, height=w, pad=pad, out_lanes=po, taps=pk, in_lanes=il)
    conv = ConvEngine(**p)
    assert conv.ii == conv.frame_cycles == conv.ideal_ii and conv.window_fifo == fifo
    assert ConvEngine(**p, window_fifo=0).ii == ii_nofifo


def test_from_layer():
    p = conv_params(1, 6, 5, U8, S8, SEED)
    layer = Layer(name="C1", kind="conv", in_shape=(1, 8, 8), out_shape=(6, 8, 8), in_fmt=U8, out_fmt=S8,
                  kernel=5, pad=2, weights=p["weights"], bias=p["bias"], w_fmt=S8, acc_fmt=p["acc_fmt"],
                  act_fmt=S8, requant=Requant(1, 8), activation=Activation("none"))
    conv = ConvEngine.from_layer(layer, out_lanes=3, taps=25, in_lanes=1)
    assert (conv.width, conv.height, conv.pad, conv.out_width) == (8, 8, 2, 8)
    x = make_frames(U8, (1, 8, 8), 2, np.random.default_rng(SEED))
    check(conv, x, gap=0.3, stall=0.3)
    with pytest.raises(ValueError, match="needs a conv layer"):
        ConvEngine.from_layer(Layer(name="S", kind="pool", in_shape=(1, 2, 2), out_shape=(1, 1, 1),
                                    in_fmt=U8, out_fmt=U8), out_lanes=1, taps=1, in_lanes=1)


# ------------------------------------------------------------------ Verilog: lint, determinism

@pytest.mark.parametrize("c, o, k, w, pad, po, pk, il, in_fmt, w_fmt, table", [
    (2, 3, 3, 6, 0, 1, 1, 1, U8, S8, None),
    (2, 3, 3, 6, 1, 2, 3, 2, S4, S4, None),
    (1, 1, 3, 3, 1, 1, 9, 1, U16, S16, None),
    (6, 16, 5, 14, 0, 4, 5, 2, U8, S8, C3_TABLE),
    (1, 6, 5, 28, 2, 2, 5, 1, U8, S8, None),
])
def test_lint_clean(tmp_path, c, o, k, w, pad, po, pk, il, in_fmt, w_fmt, table):
    conv = ConvEngine(**conv_params(c, o, k, in_fmt, w_fmt, SEED, table), width=w, height=w, pad=pad,
                      out_lanes=po, taps=pk, in_lanes=il)
    path = write_verilog(conv, "conv_engine", tmp_path)
    assert lint_verilog([path], "conv_engine") == []


def test_emission_deterministic_and_memories():
    def make():
        return ConvEngine(**conv_params(6, 16, 5, U8, S8, SEED, C3_TABLE), width=14, height=14, out_lanes=4,
                          taps=5, in_lanes=2)
    text = emit_verilog(make(), "conv_engine")
    assert text == emit_verilog(make(), "conv_engine")
    # Line buffers (84 / 2 = 42 words of 4 rows x 2 lanes x 8 bits), one weight ROM per lane (75
    # steps x 5 taps x 8 bits), one slot ROM per lane (15 slots) and one channel-select ROM per
    # lane and group of up to 5 taps (15 slots x 6 channels, one-hot) are memories.
    memories = [(int(msb) + 1, int(top) + 1) for msb, _, top in
                re.findall(r"^\s*reg \[(\d+):0\] (\S+) \[(\d+):0\];", text, re.M)]
    assert (64, 42) in memories and memories.count((40, 75)) == 4
    assert memories.count((6, 15)) == 4 and sum(depth == 15 for _, depth in memories) == 8


# ------------------------------------------------------------------ cocotb + Verilator

SIM_POINTS = [
    # c, o, k, w, pad, po, pk, il, in_fmt, w_fmt, table, window_fifo (None: automatic), frames, timing_frames
    pytest.param(2, 3, 3, 6, 0, 1, 1, 1, U8, S8, None, None, 3, 3, id="small-serial-u8xs8"),
    pytest.param(2, 3, 3, 6, 1, 2, 3, 1, S4, S4, None, 3, 3, 3, id="small-partial-s4xs4-p1-fifo3"),
    pytest.param(2, 3, 3, 6, 1, 3, 9, 2, S16, S16, None, None, 3, 3, id="small-full-s16xs16-p1"),
    pytest.param(1, 6, 5, 28, 2, 2, 5, 1, U8, S8, None, None, 2, 2, id="C1-28x28-p2-u8xs8"),
    pytest.param(6, 16, 5, 14, 0, 4, 5, 2, U8, S8, C3_TABLE, None, 1, 2, id="C3-table-14x14-u8xs8"),
]


@pytest.mark.sim
@pytest.mark.parametrize("c, o, k, w, pad, po, pk, il, in_fmt, w_fmt, table, fifo, frames, timing_frames",
                         SIM_POINTS)
def test_cocotb(c, o, k, w, pad, po, pk, il, in_fmt, w_fmt, table, fifo, frames, timing_frames):
    from sim.runner import simulate_component

    p = conv_params(c, o, k, in_fmt, w_fmt, SEED + c + o + po, table)
    conv = ConvEngine(**p, width=w, height=w, pad=pad, out_lanes=po, taps=pk, in_lanes=il, window_fifo=fifo)
    params = dict(in_fmt=in_fmt.to_dict(), w_fmt=w_fmt.to_dict(), acc_fmt=p["acc_fmt"].to_dict(), in_channels=c,
                  out_channels=o, width=w, height=w, kernel=k, pad=pad, in_lanes=il, out_lanes=po, taps=pk,
                  window_fifo=conv.window_fifo,
                  table=None if table is None else [list(row) for row in table],
                  weights=p["weights"].reshape(-1).tolist(), bias=p["bias"].tolist(), frames=frames,
                  timing_frames=timing_frames, seed=SEED + o, gap_prob=0.3, stall_prob=0.3,
                  latency=conv.latency, ii=conv.ii, cycles_per_position=conv.cycles_per_position)
    results = simulate_component(conv, "conv_engine", TB, params=params)
    assert sorted(t.name for t in results.tests) == ["frames", "timing_full_rate", "timing_random"]


def test_share_banks():
    """Lanes share a window bank only when they walk the same input channels, at most
    ``lanes_per_bank`` of them; every lane is in one bank."""
    assert share_banks([[1, 2]] * 6, 4) == [[0, 1, 2, 3], [4, 5]]
    assert share_banks([[1, 2], [2, 1], [1, 2], [2, 1], [1, 2]], 2) == [[0, 2], [1, 3], [4]]
    assert share_banks([[1, 2]] * 3, 1) == [[0], [1], [2]]
    for po in (4, 16):                              # C3's table: lanes differ, sharing is rare
        sched = conv_schedule(C3_TABLE, po, 1)
        words = [[1 << i if i >= 0 else 0 for _, i in slots] for slots in sched.slots]
        banks = share_banks(words, LANES_PER_BANK)
        assert sorted(l for bank in banks for l in bank) == list(range(po))
        assert all(len({tuple(words[l]) for l in bank}) == 1 and len(bank) <= LANES_PER_BANK for bank in banks)
    with pytest.raises(ValueError, match="lanes_per_bank must be at least 1"):
        share_banks([[1]], 0)


def test_banks_in_verilog():
    """A dense 3 -> 16 engine on 16 lanes has 16 / LANES_PER_BANK window banks (``dup_win*``), each
    loaded under registered loads of its own, one per group of SELECT_GROUP_TAPS taps
    (``dup_bank_load{bank}_{group}``: 9 taps, 2 groups)."""
    conv = ConvEngine(**conv_params(3, 16, 3, U8, S8, SEED), width=5, height=5, out_lanes=16, taps=9, in_lanes=1)
    text = emit_verilog(conv, "conv_banks")
    banks = 16 // LANES_PER_BANK
    assert sorted(set(re.findall(r"\bdup_win(\d+)\b", text)), key=int) == [str(b) for b in range(banks)]
    loads = {(int(b), int(g)) for b, g in re.findall(r"\bdup_bank_load(\d+)_(\d+)\b", text)}
    assert loads == {(b, g) for b in range(banks) for g in range(-(-9 // SELECT_GROUP_TAPS))}


def test_shallow_weight_rom_split_per_tap_group():
    """A weight ROM of at most SPLIT_ROM_WORDS words is split per group of SELECT_GROUP_TAPS taps,
    each part on its own step counter copy (``dup_s{lane}_{group}``); a deeper one stays whole."""
    shallow = ConvEngine(**conv_params(2, 3, 3, U8, S8, SEED), width=6, height=6, out_lanes=3, taps=9, in_lanes=1)
    assert shallow.cycles_per_position <= SPLIT_ROM_WORDS
    text = emit_verilog(shallow, "conv_shallow")
    groups = -(-9 // SELECT_GROUP_TAPS)
    assert {f"{l}_{g}" for l in range(3) for g in range(groups)} <= set(re.findall(r"\bdup_s(\d+_\d+)\b", text))
    assert not re.search(r"\bdup_s\d+\b", text)
    deep = ConvEngine(**conv_params(3, 16, 3, U8, S8, SEED), width=5, height=5, out_lanes=1, taps=9, in_lanes=1)
    assert deep.cycles_per_position > SPLIT_ROM_WORDS
    text = emit_verilog(deep, "conv_deep")
    assert re.search(r"\bdup_s0\b", text) and not re.search(r"\bdup_s0_\d+\b", text)
