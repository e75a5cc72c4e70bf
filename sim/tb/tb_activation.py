"""cocotb testbench of :class:`hw.components.activation.TanhLUT` and :class:`hw.components.activation.ReLU` on their
emitted Verilog.

Parameters (:func:`sim.streams.tb_params`): ``kind`` (``"tanh"`` or ``"relu"``), ``in_fmt``,
``out_fmt`` (``QFormat.to_dict()``; equal for ReLU), ``lut`` (tanh: the table), ``lanes``,
``latency``, ``ii`` (the component's values), ``count`` (beats), ``seed``, ``gap_prob``,
``stall_prob``.

Expected values: :func:`golden.arith.lut_lookup` / :func:`golden.arith.relu`, bit for bit. Every
input value (so every table entry) appears on every lane, in shuffled order, plus extremes.
"""

import random

import cocotb

from golden import arith
from golden.qformat import QFormat
from sim.streams import tb_params
from sim.tb.tb_requant import check_timing, pack_beat, run_stream, unpack_beat


def _setup():
    p = tb_params()
    return p, QFormat.from_dict(p["in_fmt"]), QFormat.from_dict(p["out_fmt"])


def _golden(p, x, in_fmt):
    if p["kind"] == "tanh":
        return arith.lut_lookup(x, p["lut"], in_fmt)
    return arith.relu(x)


def _stimulus(in_fmt, lanes, count, rng):
    """``count`` beats of ``lanes`` values: each lane runs through shuffled sweeps of every input
    value, each sweep preceded by a few extremes."""
    everything = list(range(in_fmt.min, in_fmt.max + 1))
    extremes = [in_fmt.min, in_fmt.max, 0, 1] + ([-1] if in_fmt.signed else [])
    columns = []
    for _ in range(lanes):
        col = []
        while len(col) < count:
            sweep = everything[:]
            rng.shuffle(sweep)
            col += [rng.choice(extremes) for _ in range(4)] + sweep
        columns.append(col[:count])
    return [[columns[lane][b] for lane in range(lanes)] for b in range(count)]


@cocotb.test()
async def activation_golden(dut):
    """Every input value through random gaps and stalls; every lane bit-exact with golden."""
    p, in_fmt, out_fmt = _setup()
    seed, lanes, count = p["seed"], p["lanes"], p["count"]
    dut._log.info("seed %d: %s %s -> %s, lanes %d", seed, p["kind"], in_fmt, out_fmt, lanes)
    rng = random.Random(seed)
    beats = _stimulus(in_fmt, lanes, count, rng)
    words = [pack_beat(beat, in_fmt, b % 5 == 4) for b, beat in enumerate(beats)]
    got, _, _ = await run_stream(dut, words, count, gap_prob=p["gap_prob"], stall_prob=p["stall_prob"],
                                 seed=seed, log=dut._log)
    for b, word in enumerate(got):
        values, last = unpack_beat(word, lanes, out_fmt)
        assert last == int(b % 5 == 4), f"beat {b}: last {last}, expected {int(b % 5 == 4)}"
        expected = _golden(p, beats[b], in_fmt)
        for lane, v in enumerate(values):
            assert v == int(expected[lane]), (f"beat {b} lane {lane}: input {beats[b][lane]} -> got {v}, "
                                              f"golden {int(expected[lane])}")


@cocotb.test()
async def activation_timing(dut):
    """Without gaps and stalls: latency and ii equal the component's properties."""
    p, in_fmt, out_fmt = _setup()
    rng = random.Random(p["seed"] + 100)
    lanes, count = p["lanes"], 40
    beats = [[rng.randint(in_fmt.min, in_fmt.max) for _ in range(lanes)] for _ in range(count)]
    got, in_cycles, out_cycles = await run_stream(dut, [pack_beat(b, in_fmt) for b in beats], count,
                                                  gap_prob=0.0, stall_prob=0.0, seed=p["seed"])
    for b, word in enumerate(got):
        assert unpack_beat(word, lanes, out_fmt)[0] == [int(v) for v in _golden(p, beats[b], in_fmt)]
    check_timing(in_cycles, out_cycles, range(count), latency=p["latency"], ii=p["ii"], log=dut._log)
    out_steps = sorted({b - a for a, b in zip(out_cycles, out_cycles[1:])})
    assert out_steps == [p["ii"]], f"output beats every {out_steps} cycles, expected {p['ii']}"
