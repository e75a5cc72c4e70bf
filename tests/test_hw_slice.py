"""RegisterSlice: order and count of beats under random gaps and stalls, throughput, timing
model, and no combinational path from ``o.ready`` to ``i.ready``."""

import numpy as np
import pytest
from amaranth import unsigned
from amaranth.lib import data
from amaranth.sim import Simulator

from hw.emit import emit_verilog
from hw.components.slice import RegisterSlice
from tests.stream_sim import run_stream

LAYOUT = data.StructLayout({"data": data.ArrayLayout(unsigned(7), 3), "last": 1})


def _beats(n, seed=1):
    rng = np.random.default_rng(seed)
    return [([int(v) for v in rng.integers(0, 128, 3)], int(k % 5 == 4)) for k in range(n)]


@pytest.mark.parametrize("gap,stall,seed", [(0.0, 0.0, 0), (0.3, 0.0, 1), (0.0, 0.5, 2),
                                            (0.3, 0.3, 3), (0.7, 0.7, 4)])
def test_passes_every_beat_in_order(gap, stall, seed):
    beats = _beats(300, seed)
    got, lasts, in_cycles, out_cycles = run_stream(
        RegisterSlice(LAYOUT), beats, len(beats), lambda p: [int(v) for v in p.data],
        gap=gap, stall=stall, seed=seed, max_cycles=10_000)
    assert got == [b[0] for b in beats]
    assert lasts == [b[1] for b in beats]
    assert all(o > i for i, o in zip(in_cycles, out_cycles))


def test_timing_model_at_full_rate():
    beats = _beats(50)
    dut = RegisterSlice(LAYOUT)
    _, _, in_cycles, out_cycles = run_stream(dut, beats, len(beats), lambda p: None, max_cycles=1000)
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
    got = _run_plain(dut, list(range(20)))
    assert got == list(range(20))


def _run_plain(dut, values):
    """Values through a plain-shape slice with random output stalls; the values received."""
    got = []

    async def testbench(ctx):
        k = 0
        rng = np.random.default_rng(3)
        for _ in range(200):
            if k < len(values):
                ctx.set(dut.i.payload, values[k])
            ctx.set(dut.i.valid, k < len(values))
            ctx.set(dut.o.ready, int(rng.random() < 0.5))
            _, _, iv, ir, ov, orr, op = await ctx.tick().sample(
                dut.i.valid, dut.i.ready, dut.o.valid, dut.o.ready, dut.o.payload)
            if iv and ir:
                k += 1
            if ov and orr:
                got.append(int(op))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(testbench)
    sim.run()
    return got


WIDE = data.StructLayout({"data": data.ArrayLayout(unsigned(20), 7), "last": 1})    # 141 bits


@pytest.mark.parametrize("gap,stall,seed", [(0.0, 0.0, 5), (0.3, 0.5, 6), (0.7, 0.7, 7)])
def test_wide_payload_in_pieces(gap, stall, seed):
    """A 141-bit payload is cut into 3 pieces of at most SLICE_BITS with their own valid-bit
    copies; under random gaps and stalls every bit of every beat still arrives, in order."""
    from hw.components.fifo import SLICE_BITS
    rng = np.random.default_rng(seed)
    beats = [([int(v) for v in rng.integers(0, 1 << 20, 7)], int(k % 3 == 2)) for k in range(300)]
    dut = RegisterSlice(WIDE)
    assert dut.pieces == -(-141 // SLICE_BITS) == 3
    got, lasts, in_cycles, out_cycles = run_stream(
        dut, beats, len(beats), lambda p: [int(v) for v in p.data],
        gap=gap, stall=stall, seed=seed, max_cycles=10_000)
    assert got == [b[0] for b in beats]
    assert lasts == [b[1] for b in beats]
    assert all(o > i for i, o in zip(in_cycles, out_cycles))
    if gap == stall == 0.0:
        assert out_cycles == [c + 1 for c in in_cycles] and in_cycles == list(range(len(beats)))
    text = emit_verilog(RegisterSlice(WIDE), "wide_slice")
    for k in range(3):
        assert f"dup_skid_valid{k}" in text and f"dup_main_valid{k}" in text
    assert "dup_skid_valid3" not in text and "dup_" not in emit_verilog(RegisterSlice(LAYOUT), "narrow")
