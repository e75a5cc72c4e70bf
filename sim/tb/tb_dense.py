"""cocotb testbench of :class:`hw.components.dense.DenseEngine` on its emitted Verilog.

Parameters (:func:`sim.streams.tb_params`, set by ``tests/test_hw_dense.py``): ``in_features``,
``out_features``, ``out_lanes``, ``taps``, ``in_lanes``, ``in_fmt``, ``w_fmt``, ``acc_fmt``
(``QFormat.to_dict``), ``weights`` (O x I list), ``bias`` (O list), ``vectors``, ``seed``,
``gap_prob``, ``stall_prob``, and the component's ``latency``, ``ii``, ``compute_cycles`` and
``frame_cycles``.

Expected values: :func:`golden.reference.dense_accumulate`. Expected cycles: the timing tests
rebuild the :class:`hw.components.dense.DenseEngine` from these parameters and check its
:meth:`~hw.components.dense.DenseEngine.timing` model cycle for cycle, with the vectors offered on a seeded
random ``avail`` schedule or at full rate and the output always ready.
"""

import cocotb
import numpy as np
from cocotb.triggers import ClockCycles

from golden.qformat import QFormat
from golden.reference import dense_accumulate
from hw.components.dense import DenseEngine
from hw.plan.timing import offers
from sim.streams import (StreamSink, StreamSource, clock_and_reset, cycle_of, pack_fields, tb_params,
                         unpack_fields)
from sim.tb.tb_mac import first_mismatch, random_avail
from sim.tb.tb_requant import run_stream


class _Point:
    def __init__(self, p):
        self.p = p
        self.i, self.o = p["in_features"], p["out_features"]
        self.po, self.b = p["out_lanes"], p["in_lanes"]
        self.in_fmt, self.w_fmt, self.acc_fmt = (QFormat.from_dict(p[k], k) for k in ("in_fmt", "w_fmt", "acc_fmt"))
        self.weights = np.array(p["weights"], dtype=np.int64).reshape(self.o, self.i)
        self.bias = np.array(p["bias"], dtype=np.int64)

    def vectors(self, count, rng):
        """``count`` input vectors: the extremes first (the vectors reaching the largest and the
        smallest possible accumulator of output 0 and 1, all-min, all-max), then random ones
        (some of them random extremes)."""
        f = self.in_fmt
        w = self.weights
        special = [np.where(w[0] > 0, f.max, f.min), np.where(w[0] > 0, f.min, f.max),
                   np.where(w[min(1, self.o - 1)] > 0, f.min, f.max), np.full(self.i, f.min), np.full(self.i, f.max)]
        rows = []
        for v in range(count):
            if v < len(special):
                rows.append(special[v])
            elif v % 3 == 0:
                rows.append(np.where(rng.random(self.i) < 0.5, f.min, f.max))
            else:
                rows.append(rng.integers(f.min, f.max, self.i, endpoint=True))
        return np.array(rows, dtype=np.int64)

    def component(self):
        """The :class:`hw.components.dense.DenseEngine` of this parameter point (for its timing model)."""
        p = self.p
        return DenseEngine(in_features=self.i, out_features=self.o, in_fmt=self.in_fmt, w_fmt=self.w_fmt,
                           acc_fmt=self.acc_fmt, weights=self.weights, bias=self.bias, out_lanes=self.po,
                           taps=p["taps"], in_lanes=self.b)

    def words(self, x):
        beats = self.i // self.b
        return [pack_fields([(int(v), self.in_fmt.bits, self.in_fmt.signed) for v in row[j * self.b:(j + 1) * self.b]]
                            + [(int(j == beats - 1), 1, False)])
                for row in x for j in range(beats)]

    def unpack(self, word):
        values = unpack_fields(word, [(self.acc_fmt.bits, self.acc_fmt.signed)] * self.po + [(1, False)])
        return values[:self.po], values[self.po]

    def check(self, x, got):
        """Mismatch messages (empty when every lane of every beat equals the golden value)."""
        expected = dense_accumulate(x, self.weights, self.bias)
        groups = self.o // self.po
        errors = []
        for n, word in enumerate(got):
            v, g = divmod(n, groups)
            values, last = self.unpack(word)
            for lane, value in enumerate(values):
                o = g * self.po + lane
                if value != expected[v, o]:
                    errors.append(f"vector {v} output {o} (beat {g} lane {lane}): got {value}, "
                                  f"expected {int(expected[v, o])}")
            if last != int(g == groups - 1):
                errors.append(f"vector {v} beat {g}: last = {last}, expected {int(g == groups - 1)}")
        return errors


@cocotb.test()
async def vectors(dut):
    """Vectors back to back (extremes and random) through random input gaps and output stalls:
    every output accumulator equals golden.reference.dense_accumulate."""
    p = tb_params()
    seed = p.get("seed", 1)
    dut._log.info("seed %d, I=%d O=%d P_o=%d P_i=%d B=%d, %s x %s -> %s", seed, p["in_features"],
                  p["out_features"], p["out_lanes"], p["taps"], p["in_lanes"],
                  QFormat.from_dict(p["in_fmt"]), QFormat.from_dict(p["w_fmt"]), QFormat.from_dict(p["acc_fmt"]))
    point = _Point(p)
    x = point.vectors(p.get("vectors", 8), np.random.default_rng(seed))
    words = point.words(x)
    n_out = len(x) * (point.o // point.po)
    got, _, out_cycles = await run_stream(dut, words, n_out, gap_prob=p.get("gap_prob", 0.3),
                                          stall_prob=p.get("stall_prob", 0.3), seed=seed,
                                          timeout_cycles=4 * len(x) * (p["ii"] + p["latency"]) + 200,
                                          drain=p["latency"] + 10)
    errors = point.check(x, got)
    assert not errors, f"{len(errors)} mismatches (seed {seed}):\n" + "\n".join(errors[:20])
    dut._log.info("%d vectors checked; last output in cycle %d", len(x), out_cycles[-1])


@cocotb.test()
async def latency_and_ii(dut):
    """No gaps or stalls: the first vector's last output beat comes ``latency`` cycles after its
    last input beat, and vectors leave every ``ii`` cycles."""
    p = tb_params()
    point = _Point(p)
    x = point.vectors(5, np.random.default_rng(p.get("seed", 1) + 100))
    words = point.words(x)
    groups = point.o // point.po
    source = StreamSource(dut, "i", dut.clk, seed=0)
    sink = StreamSink(dut, "o", dut.clk, seed=0)
    await clock_and_reset(dut)
    cocotb.start_soon(source.send(words))
    got = await sink.recv(len(x) * groups, timeout_cycles=2 * len(x) * (p["ii"] + p["latency"]) + 100)
    errors = point.check(x, got)
    assert not errors, "\n".join(errors[:20])
    beats = len(words) // len(x)
    in_last = source.cycles[beats - 1::beats]
    out_last = sink.cycles[groups - 1::groups]
    latency = out_last[0] - in_last[0]
    intervals = {b - a for a, b in zip(out_last, out_last[1:])}
    dut._log.info("measured: latency %d (property %d), vector intervals %s (ii %d, compute_cycles %d)",
                  latency, p["latency"], sorted(intervals), p["ii"], p["compute_cycles"])
    assert latency == p["latency"], f"latency {latency}, property {p['latency']}"
    assert intervals == {p["ii"]}, f"vector intervals {sorted(intervals)}, ii = {p['ii']}"


async def _check_timing(dut, full_rate):
    """Vectors back to back offered on a schedule, output always ready: the accept cycle of
    every input beat and the cycle of every output beat equal :meth:`DenseEngine.timing`, and
    the values equal the golden accumulators."""
    p = tb_params()
    seed = p.get("seed", 1) + (200 if full_rate else 300)
    dut._log.info("seed %d, %s schedule", seed, "full-rate" if full_rate else "random")
    point = _Point(p)
    engine = point.component()
    rng = np.random.default_rng(seed)
    x = point.vectors(p.get("vectors", 8), rng)
    words = point.words(x)
    groups = point.o // point.po
    source = StreamSource(dut, "i", dut.clk, seed=seed)
    sink = StreamSink(dut, "o", dut.clk, stall_prob=0.0, seed=seed)
    await clock_and_reset(dut)
    base = cycle_of(dut.clk) + 1
    rel = [0] * len(words) if full_rate else random_avail(rng, len(words), long_gap=engine.latency + engine.ii)
    avail = [base + a for a in rel]
    model = engine.timing(avail)
    cocotb.start_soon(source.send(words, avail=avail))
    got = await sink.recv(len(x) * groups, timeout_cycles=model.out[-1] - base + 100)
    await ClockCycles(dut.clk, 2)
    errors = point.check(x, got)
    assert not errors, f"{len(errors)} mismatches (seed {seed}):\n" + "\n".join(errors[:20])
    for problem in (first_mismatch("input (accept)", source.cycles, model.accept),
                    first_mismatch("output (out)", sink.cycles, model.out)):
        assert problem is None, f"timing model differs (seed {seed}, cycles from reset; schedule base {base}): " \
                                f"{problem}"
    out_last = sink.cycles[groups - 1::groups]
    periods = sorted({b - a for a, b in zip(out_last, out_last[1:])})
    refused = sum(a != o for a, o in zip(source.cycles, offers(avail)))
    dut._log.info("timing model exact: %d vectors, %d input / %d output beats (%d input beats delayed "
                  "by the engine: both buffer halves busy), cycles %d..%d, vector periods %s (frame_cycles %d)", len(x),
                  len(words), len(got), refused, source.cycles[0], sink.cycles[-1], periods, engine.frame_cycles)
    if full_rate:
        assert periods == [p["frame_cycles"]], f"vector periods {periods}, frame_cycles = {p['frame_cycles']}"


@cocotb.test()
async def timing_full_rate(dut):
    """Vectors offered at full rate, output always ready: cycles equal the timing model, and
    vectors leave every ``frame_cycles`` cycles."""
    await _check_timing(dut, full_rate=True)


@cocotb.test()
async def timing_random(dut):
    """Vectors offered on a random schedule (bursts, gaps, idle stretches), output always ready:
    cycles equal the timing model."""
    await _check_timing(dut, full_rate=False)
