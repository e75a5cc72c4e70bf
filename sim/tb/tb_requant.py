"""cocotb testbench of :class:`hw.components.requant.Requantizer` on its emitted Verilog.

Parameters (:func:`sim.streams.tb_params`): ``acc_fmt``, ``out_fmt`` (``QFormat.to_dict()``),
``multiplier``, ``shift``, ``lanes``, ``relu``, ``latency``, ``ii`` (the component's values),
``count`` (beats), ``seed``, ``gap_prob``, ``stall_prob``.

Expected values: :func:`golden.arith.requantize` (then :func:`golden.arith.relu`), compared bit
for bit. The stimulus weighs extremes, exact rounding ties (dropped bits exactly one half), their
neighbours and values around both saturation bounds heavily.

The helpers :func:`run_stream` and :func:`check_timing` are shared with ``tb_activation`` and
``tb_pool``.
"""

import random

import cocotb
from cocotb.triggers import ClockCycles

from golden import arith
from golden.qformat import QFormat
from sim.streams import (StreamSink, StreamSource, clock_and_reset, pack_fields, tb_params,
                         unpack_fields)

__all__ = ["run_stream", "check_timing", "pack_beat", "unpack_beat", "requant_stimulus"]


def pack_beat(values, fmt: QFormat, last=0):
    """Payload int of a beat ``{"data": values (in fmt), "last": last}``."""
    return pack_fields([(int(v), fmt.bits, fmt.signed) for v in values] + [(int(last), 1, False)])


def unpack_beat(word, lanes, fmt: QFormat):
    """``(values, last)`` of a beat payload int."""
    fields = unpack_fields(word, [(fmt.bits, fmt.signed)] * lanes + [(1, False)])
    return fields[:-1], fields[-1]


async def run_stream(dut, words, n_out, *, gap_prob, stall_prob, seed, log=None, timeout_cycles=None, drain=30):
    """Reset *dut*, send *words* into ``i`` (random gaps) and take *n_out* beats from ``o``
    (random stalls, within *timeout_cycles*: by default ``20 * (len(words) + n_out) + 200``);
    check that nothing more comes out in the *drain* cycles after.

    Returns ``(outputs, in_cycles, out_cycles)``: the output payload ints and the cycle numbers
    in which each input and output beat was accepted.
    """
    source = StreamSource(dut, "i", dut.clk, gap_prob=gap_prob, seed=seed + 1)
    sink = StreamSink(dut, "o", dut.clk, stall_prob=stall_prob, seed=seed + 2)
    await clock_and_reset(dut)
    send = cocotb.start_soon(source.send(words))
    if timeout_cycles is None:
        timeout_cycles = 20 * (len(words) + n_out) + 200
    got = await sink.recv(n_out, timeout_cycles=timeout_cycles)
    await send
    await ClockCycles(dut.clk, drain)       # nothing more may come out
    sink.stop()
    assert len(sink.received) == n_out, f"{len(sink.received)} output beats, expected {n_out}"
    if log is not None:
        log.info("%d beats in, %d out in %d cycles (gap %.2f, stall %.2f)", len(words), n_out,
                 sink.cycles[-1] - source.cycles[0] + 1 if n_out else 0, gap_prob, stall_prob)
    return got, source.cycles, sink.cycles


def check_timing(in_cycles, out_cycles, sources, *, latency, ii, log=None):
    """Check a run without gaps and stalls: output ``k`` (from input beat ``sources[k]``) comes
    exactly *latency* cycles after it, and inputs are accepted every *ii* cycles."""
    lat = sorted({out_cycles[k] - in_cycles[j] for k, j in enumerate(sources)})
    steps = sorted({b - a for a, b in zip(in_cycles, in_cycles[1:])})
    if log is not None:
        log.info("measured latency %s (expected %d), input ii %s (expected %d)", lat, latency, steps, ii)
    assert lat == [latency], f"measured latency {lat}, component says {latency}"
    assert steps == [ii], f"measured input ii {steps}, component says {ii}"


def _tie_grid(multiplier, shift):
    """(base, step): acc = base + k*step makes ``acc * multiplier`` an exact rounding tie
    (low ``shift`` bits = ``2**(shift-1)``), or None when no tie exists."""
    if shift == 0:
        return None
    k = (multiplier & -multiplier).bit_length() - 1      # trailing zeros
    if k > shift - 1:
        return None
    step = 1 << (shift - k)
    base = ((1 << (shift - 1 - k)) * pow(multiplier >> k, -1, step)) % step
    return base, step


def requant_stimulus(acc_fmt, out_fmt, multiplier, shift, n, rng):
    """*n* accumulators: extremes, exact ties and their neighbours, values around the saturation
    bounds of *out_fmt*, and uniform ones."""
    lo, hi = acc_fmt.min, acc_fmt.max
    ties = _tie_grid(multiplier, shift)
    targets = [out_fmt.min, out_fmt.max, out_fmt.min - 1, out_fmt.max + 1, 0, -1, 1]

    def near(t):    # an accumulator whose result lands near the output value t
        return (t << shift) // multiplier + rng.randint(-2, 2)

    values = [lo, hi, 0, -1, 1, lo + 1, hi - 1]
    while len(values) < n:
        r = rng.random()
        if r < 0.2:
            v = rng.choice([lo, hi, lo + 1, hi - 1, 0, -1, 1])
        elif r < 0.55 and ties:
            base, step = ties
            centre = near(rng.choice(targets)) if rng.random() < 0.5 else rng.randint(lo, hi)
            v = base + step * ((centre - base + step // 2) // step)
            if not lo <= v <= hi:
                v -= step * (1 if v > hi else -1)
            v += rng.choice([0, 0, 0, 0, -1, 1])            # mostly exact ties, some neighbours
        elif r < 0.75:
            v = near(rng.choice(targets))
        else:
            v = rng.randint(lo, hi)
        values.append(min(max(v, lo), hi))
    return values[:n]


def _setup():
    p = tb_params()
    acc_fmt, out_fmt = QFormat.from_dict(p["acc_fmt"]), QFormat.from_dict(p["out_fmt"])
    return p, acc_fmt, out_fmt


def _expected(acc, p, out_fmt):
    y = arith.requantize(acc, p["multiplier"], p["shift"], out_fmt)
    return arith.relu(y) if p["relu"] else y


@cocotb.test()
async def requant_golden(dut):
    """Random accumulators through random gaps and stalls; every lane bit-exact with golden."""
    p, acc_fmt, out_fmt = _setup()
    seed, lanes, count = p["seed"], p["lanes"], p["count"]
    dut._log.info("seed %d: %s -> %s, multiplier %d, shift %d, %s, %s, relu %s, lanes %d", seed,
                  acc_fmt, out_fmt, p["multiplier"], p["shift"], out_fmt.rounding, out_fmt.overflow,
                  p["relu"], lanes)
    rng = random.Random(seed)
    acc = requant_stimulus(acc_fmt, out_fmt, p["multiplier"], p["shift"], count * lanes, rng)
    ties = sum((a * p["multiplier"]) % (1 << p["shift"]) == 1 << (p["shift"] - 1) for a in acc) \
        if p["shift"] else 0
    expected = _expected(acc, p, out_fmt)
    lo_hits = sum(int(e) == out_fmt.min for e in expected)
    hi_hits = sum(int(e) == out_fmt.max for e in expected)
    dut._log.info("%d values: %d exact ties, %d at out min, %d at out max", len(acc), ties, lo_hits, hi_hits)
    grid = _tie_grid(p["multiplier"], p["shift"])
    if grid and grid[0] - grid[1] * ((grid[0] - acc_fmt.min) // grid[1]) <= acc_fmt.max:
        assert ties, "the stimulus has no exact rounding tie although the accumulator range has some"
    words = [pack_beat(acc[b * lanes:(b + 1) * lanes], acc_fmt, b % 7 == 6) for b in range(count)]
    got, _, _ = await run_stream(dut, words, count, gap_prob=p["gap_prob"], stall_prob=p["stall_prob"],
                                 seed=seed, log=dut._log)
    for b, word in enumerate(got):
        values, last = unpack_beat(word, lanes, out_fmt)
        assert last == int(b % 7 == 6), f"beat {b}: last {last}, expected {int(b % 7 == 6)}"
        for lane, v in enumerate(values):
            k = b * lanes + lane
            assert v == int(expected[k]), (f"beat {b} lane {lane}: acc {acc[k]} -> got {v}, "
                                           f"golden {int(expected[k])}")


@cocotb.test()
async def requant_timing(dut):
    """Without gaps and stalls: latency and ii equal the component's properties."""
    p, acc_fmt, out_fmt = _setup()
    rng = random.Random(p["seed"] + 100)
    lanes, count = p["lanes"], 40
    acc = [rng.randint(acc_fmt.min, acc_fmt.max) for _ in range(count * lanes)]
    words = [pack_beat(acc[b * lanes:(b + 1) * lanes], acc_fmt) for b in range(count)]
    got, in_cycles, out_cycles = await run_stream(dut, words, count, gap_prob=0.0, stall_prob=0.0,
                                                  seed=p["seed"])
    expected = _expected(acc, p, out_fmt)
    assert [v for w in got for v in unpack_beat(w, lanes, out_fmt)[0]] == [int(e) for e in expected]
    check_timing(in_cycles, out_cycles, range(count), latency=p["latency"], ii=p["ii"], log=dut._log)
    out_steps = sorted({b - a for a, b in zip(out_cycles, out_cycles[1:])})
    assert out_steps == [p["ii"]], f"output beats every {out_steps} cycles, expected {p['ii']}"
