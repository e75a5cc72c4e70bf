"""cocotb testbench of the simulation infrastructure's test component (tests/test_sim_infra.py):
a register slice with skid buffer that adds 1 to a signed payload field and passes first/last.

Parameters (sim.streams.tb_params): width, count, seed, gap_prob, stall_prob, expect_wrong.
"""

import random

import cocotb
from cocotb.triggers import ClockCycles

from sim.streams import (StreamSink, StreamSource, clock_and_reset, cycle_of, pack_fields,
                         tb_params, to_signed, unpack_fields)


def _layout(width):
    return [(width, True), (1, False), (1, False)]          # value, first, last


def _beats(count, width, rng):
    lo, hi = -(1 << (width - 1)), (1 << (width - 1)) - 1
    values = [lo, hi, 0, -1] + [rng.randint(lo, hi) for _ in range(count - 4)]
    return [(v, int(i % 7 == 0), int(i % 7 == 6)) for i, v in enumerate(values[:count])]


@cocotb.test()
async def stream_increment(dut):
    """Random values through random gaps and stalls: every output in order, none lost or doubled."""
    p = tb_params()
    width, count, seed = p.get("width", 8), p.get("count", 200), p.get("seed", 1)
    rng = random.Random(seed)
    source = StreamSource(dut, "i", dut.clk, gap_prob=p.get("gap_prob", 0.3), seed=seed + 1)
    sink = StreamSink(dut, "o", dut.clk, stall_prob=p.get("stall_prob", 0.3), seed=seed + 2)
    await clock_and_reset(dut)

    beats = _beats(count, width, rng)
    words = [pack_fields([(v, width, True), (f, 1, False), (l, 1, False)]) for v, f, l in beats]
    send = cocotb.start_soon(source.send(words))
    got = await sink.recv(count, timeout_cycles=20 * count + 100)
    await send
    await ClockCycles(dut.clk, 20)          # nothing more may come out

    step = 2 if p.get("expect_wrong") else 1
    expected = [[to_signed(v + step, width), f, l] for v, f, l in beats]
    actual = [unpack_fields(w, _layout(width)) for w in got]
    for i, (e, a) in enumerate(zip(expected, actual)):
        assert a == e, f"beat {i}: got {a}, expected {e} (input {beats[i]})"
    assert len(sink.received) == count, f"{len(sink.received)} beats out for {count} in"
    assert source.sent == words
    # Causality and the recorded cycle numbers: each beat leaves at least one cycle after it enters.
    assert all(o >= i + 1 for i, o in zip(source.cycles, sink.cycles)), (source.cycles, sink.cycles)
    assert sink.cycles == sorted(set(sink.cycles)) and source.cycles == sorted(set(source.cycles))
    dut._log.info("%d beats; last accepted in cycle %d (in) / %d (out)", count,
                  source.cycles[-1], sink.cycles[-1])


@cocotb.test()
async def full_throughput(dut):
    """No gaps, no stalls: latency 1 cycle, one beat per cycle (II = 1), via the cycle records."""
    p = tb_params()
    width, count = p.get("width", 8), 50
    source = StreamSource(dut, "i", dut.clk, seed=0)
    sink = StreamSink(dut, "o", dut.clk, seed=0)
    await clock_and_reset(dut)
    start = cycle_of(dut.clk)
    words = [pack_fields([(to_signed(i, width), width, True), (0, 1, False), (0, 1, False)])
             for i in range(count)]
    cocotb.start_soon(source.send(words))
    got = await sink.recv(count, timeout_cycles=4 * count)
    assert [unpack_fields(w, _layout(width))[0] for w in got] == \
        [to_signed(i + 1, width) for i in range(count)]
    intervals = {b - a for a, b in zip(sink.cycles, sink.cycles[1:])}
    latencies = {o - i for i, o in zip(source.cycles, sink.cycles)}
    assert intervals == {1}, f"initiation intervals {sorted(intervals)}"
    assert latencies == {1}, f"latencies {sorted(latencies)}"
    assert source.cycles[0] == start, "the first beat goes in in the first cycle after reset"
