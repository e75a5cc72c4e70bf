"""RegisterSlice: order and count of beats under random and patterned gaps and stalls, throughput, timing
model, and no combinational path from ``o.ready`` to ``i.ready``."""

import numpy as np
import pytest
from amaranth import unsigned
from amaranth.lib import data
from amaranth.sim import Simulator

from hw.emit import emit_verilog
from hw.components.slice import RegisterSlice
from tests.stream_sim import PATTERN, simulate_stream

LAYOUT = data.StructLayout({"data": data.ArrayLayout(unsigned(7), 3), "last": 1})


def _beats(n, seed=1):
    rng = np.random.default_rng(seed)
    return [{"data": [int(v) for v in rng.integers(0, 128, 3)], "last": int(k % 5 == 4)} for k in range(n)]


def _decode(run):
    return [{"data": [int(v) for v in p.data], "last": int(p.last)} for p in run.out]


@pytest.mark.parametrize("gap,stall,seed", [(0.0, 0.0, 0), (0.3, 0.0, 1), (0.0, 0.5, 2),
                                            (0.3, 0.3, 3), (0.7, 0.7, 4), (PATTERN, 0.0, 5),
                                            (0.0, PATTERN, 6), (PATTERN, (0, 1), 7), ((0, 1), PATTERN, 8)])
def test_passes_every_beat_in_order(gap, stall, seed):
    beats = _beats(300, seed)
    run = simulate_stream(RegisterSlice(LAYOUT), beats, len(beats), in_pause=gap, out_pause=stall, seed=seed,
                          max_cycles=10_000)
    assert _decode(run) == beats
    assert all(o > i for i, o in zip(run.in_cycles, run.out_cycles))


def test_timing_model_at_full_rate():
    beats = _beats(50)
    dut = RegisterSlice(LAYOUT)
    _, in_cycles, out_cycles = simulate_stream(dut, beats, len(beats), max_cycles=1000)
    model = dut.timing(list(range(len(beats))))
    assert in_cycles == model.accept == list(range(len(beats)))
    assert out_cycles == model.out == [c + 1 for c in in_cycles]
    assert dut.latency == 1 and dut.ii == 1


def test_ready_is_registered():
    """Toggling ``o.ready`` (and ``i.valid``) within a cycle never changes ``i.ready`` before the
    clock edge: the slice cuts the combinational ready path."""
    dut = RegisterSlice(LAYOUT)
    seen = []

    async def testbench(ctx):
        rng = np.random.default_rng(7)
        for _ in range(200):
            ctx.set(dut.i.valid, int(rng.random() < 0.8))
            ctx.set(dut.o.ready, 0)
            before = ctx.get(dut.i.ready)
            ctx.set(dut.o.ready, 1)
            ctx.set(dut.i.valid, int(rng.random() < 0.5))
            after = ctx.get(dut.i.ready)
            ctx.set(dut.o.ready, int(rng.random() < 0.4))
            seen.append((before, after, ctx.get(dut.i.ready)))
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(testbench)
    sim.run()
    assert all(b == a == c for b, a, c in seen)
    assert {s[0] for s in seen} == {0, 1}          # both states were exercised


def test_plain_shape_payload_and_verilog():
    dut = RegisterSlice(unsigned(5))
    text = emit_verilog(dut, "slice5")
    assert "module slice5" in text
    for stall in (0.5, PATTERN):             # values through a plain-shape slice with output stalls
        run = simulate_stream(dut, list(range(20)), 20, out_pause=stall, seed=3, max_cycles=200)
        assert [int(v) for v in run.out] == list(range(20))


WIDE = data.StructLayout({"data": data.ArrayLayout(unsigned(20), 7), "last": 1})    # 141 bits


@pytest.mark.parametrize("gap,stall,seed", [(0.0, 0.0, 5), (0.3, 0.5, 6), (0.7, 0.7, 7), (PATTERN, PATTERN, 8)])
def test_wide_payload_in_pieces(gap, stall, seed):
    """A 141-bit payload is cut into 3 pieces of at most SLICE_BITS with their own valid-bit
    copies; under random gaps and stalls every bit of every beat still arrives, in order."""
    from hw.components.fifo import SLICE_BITS
    rng = np.random.default_rng(seed)
    beats = [{"data": [int(v) for v in rng.integers(0, 1 << 20, 7)], "last": int(k % 3 == 2)} for k in range(300)]
    dut = RegisterSlice(WIDE)
    assert dut.pieces == -(-141 // SLICE_BITS) == 3
    run = simulate_stream(dut, beats, len(beats), in_pause=gap, out_pause=stall, seed=seed, max_cycles=10_000)
    in_cycles, out_cycles = run.in_cycles, run.out_cycles
    assert _decode(run) == beats
    assert all(o > i for i, o in zip(in_cycles, out_cycles))
    if gap == stall == 0.0:
        assert out_cycles == [c + 1 for c in in_cycles] and in_cycles == list(range(len(beats)))
    text = emit_verilog(RegisterSlice(WIDE), "wide_slice")
    for k in range(3):
        assert f"dup_skid_valid{k}" in text and f"dup_main_valid{k}" in text
    assert "dup_skid_valid3" not in text and "dup_" not in emit_verilog(RegisterSlice(LAYOUT), "narrow")
