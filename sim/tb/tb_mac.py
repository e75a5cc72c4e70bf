"""cocotb testbench of :class:`hw.components.mac.MACArray` on its emitted Verilog.

Parameters (:func:`sim.streams.tb_params`, set by ``tests/test_hw_mac.py``):
``lanes``, ``taps``, ``user_width``, ``a_fmt``, ``w_fmt``, ``acc_fmt`` (``QFormat.to_dict``),
``max_steps`` (steps per sum), ``bias_lo``/``bias_hi`` (bias range), ``sums``, ``seed``,
``gap_prob``, ``stall_prob``, ``latency``, ``ii`` (the component's properties).

The timing tests rebuild the :class:`hw.components.mac.MACArray` from these parameters and check its
:meth:`~hw.components.mac.MACArray.timing` model cycle for cycle (input offered on a seeded random
``avail`` schedule, or at full rate; output always ready).

The accumulator format is sized by the caller with :func:`golden.arith.accumulator_format` for
``max_steps * taps`` products at the operand extremes and biases in ``[bias_lo, bias_hi]``, so the
expected sums (:func:`golden.reference.dense_accumulate` per lane) never overflow it.
"""


import cocotb
import numpy as np
from cocotb.triggers import ClockCycles

from golden.qformat import QFormat
from golden.reference import dense_accumulate
from hw.components.mac import MACArray
from sim.streams import (StreamSink, StreamSource, clock_and_reset, cycle_of, pack_fields, tb_params,
                         unpack_fields)


def random_avail(rng, n, *, long_gap):
    """A seeded random non-decreasing ``avail`` schedule of ``n`` beats, from cycle 0: segments
    of bursts (beats available at once: offered back to back, and piling up when the DUT
    refuses them), of short random gaps (0..3 cycles between availabilities) and idle stretches
    of ``1 .. long_gap`` cycles followed by a burst."""
    avail, t = [], 0
    while len(avail) < n:
        kind = rng.integers(3)
        if kind == 2:
            t += int(rng.integers(1, long_gap, endpoint=True))
        for _ in range(int(rng.integers(1, max(4, n // 4), endpoint=True))):
            if kind == 1:
                t += int(rng.integers(0, 3, endpoint=True))
            avail.append(t)
    return avail[:n]


def first_mismatch(what, simulated, model):
    """``None`` if the cycle lists are equal, else a message naming the first differing beat."""
    for k, (s, m) in enumerate(zip(simulated, model)):
        if s != m:
            return f"{what} beat {k}: simulated cycle {s}, model cycle {m} (model - simulated = {m - s})"
    if len(simulated) != len(model):
        return f"{what}: {len(simulated)} beats simulated, {len(model)} in the model"
    return None


class _Point:
    """The parameter point, the step packing and the golden model of one sum."""

    def __init__(self, p):
        self.p = p
        self.lanes, self.taps, self.user_width = p["lanes"], p["taps"], p.get("user_width", 0)
        self.a_fmt, self.w_fmt, self.acc_fmt = (QFormat.from_dict(p[k], k) for k in ("a_fmt", "w_fmt", "acc_fmt"))

    def pack_step(self, a, w, bias, first, last, user):
        fields = [(int(v), self.a_fmt.bits, self.a_fmt.signed) for v in np.ravel(a)]
        fields += [(int(v), self.w_fmt.bits, self.w_fmt.signed) for v in np.ravel(w)]
        fields += [(int(v), self.acc_fmt.bits, self.acc_fmt.signed) for v in bias]
        fields += [(first, 1, False), (last, 1, False)]
        if self.user_width:
            fields.append((user, self.user_width, False))
        return pack_fields(fields)

    def unpack_result(self, word):
        fields = [(self.acc_fmt.bits, self.acc_fmt.signed)] * self.lanes
        if self.user_width:
            fields.append((self.user_width, False))
        values = unpack_fields(word, fields)
        return values[:self.lanes], (values[self.lanes] if self.user_width else 0)

    def operands(self, rng, fmt, shape, mode):
        """Operands of ``shape``: random, random extremes, or all at one extreme (``min``/``max``)."""
        if mode in ("min", "max"):
            return np.full(shape, getattr(fmt, mode), dtype=np.int64)
        values = rng.integers(fmt.min, fmt.max, size=shape, endpoint=True)
        if mode == "extremes":
            values = np.where(rng.random(shape) < 0.5, fmt.min, fmt.max)
        return values

    def make_sums(self, count, rng):
        """``count`` sums: (steps, a (n, lanes, taps), w (n, lanes, taps), bias (lanes,), user)."""
        shape_of = lambda n: (n, self.lanes, self.taps)
        lo, hi = self.p["bias_lo"], self.p["bias_hi"]
        corners = []
        for a_mode in ("min", "max"):            # every corner product, longest sum, extreme biases
            for w_mode in ("min", "max"):
                for bias in (lo, hi):
                    corners.append((a_mode, w_mode, bias))
        sums = []
        for j in range(count):
            n = int(rng.integers(1, self.p["max_steps"], endpoint=True))
            if j < len(corners):
                a_mode, w_mode, b = corners[j]
                n = self.p["max_steps"]
                bias = np.full(self.lanes, b, dtype=np.int64)
            else:
                a_mode = w_mode = "extremes" if rng.random() < 0.2 else "random"
                bias = rng.integers(lo, hi, size=self.lanes, endpoint=True)
            a = self.operands(rng, self.a_fmt, shape_of(n), a_mode)
            w = self.operands(rng, self.w_fmt, shape_of(n), w_mode)
            sums.append((n, a, w, bias, j % (1 << self.user_width) if self.user_width else 0))
        order = rng.permutation(len(sums))      # corner sums spread among the random ones
        return [sums[k] for k in order]

    def expected(self, s):
        """Golden accumulators of one sum: per lane, bias + dot product of its steps' operands."""
        n, a, w, bias, _ = s
        return [int(dense_accumulate(a[:, l, :].reshape(1, -1), w[:, l, :].reshape(1, -1),
                                     bias[l:l + 1])[0, 0]) for l in range(self.lanes)]

    def component(self):
        """The :class:`hw.components.mac.MACArray` of this parameter point (for its timing model)."""
        return MACArray(lanes=self.lanes, taps=self.taps, a_fmt=self.a_fmt, w_fmt=self.w_fmt,
                        acc_fmt=self.acc_fmt, user_width=self.user_width)

    def words(self, sums):
        words, last_index = [], []
        for n, a, w, bias, user in sums:
            for k in range(n):
                words.append(self.pack_step(a[k], w[k], bias, int(k == 0), int(k == n - 1), user))
            last_index.append(len(words) - 1)
        return words, last_index


@cocotb.test()
async def random_sums(dut):
    """Random sums (1..max_steps steps, back to back) incl. the operand/bias extremes, with random
    input gaps and output stalls: every lane of every result equals the golden sum."""
    p = tb_params()
    seed = p.get("seed", 1)
    dut._log.info("seed %d, point %s", seed, {k: v for k, v in p.items() if not k.endswith("_fmt")})
    point = _Point(p)
    rng = np.random.default_rng(seed)
    sums = point.make_sums(p.get("sums", 60), rng)
    words, _ = point.words(sums)
    source = StreamSource(dut, "i", dut.clk, gap_prob=p.get("gap_prob", 0.3), seed=seed + 1)
    sink = StreamSink(dut, "o", dut.clk, stall_prob=p.get("stall_prob", 0.3), seed=seed + 2)
    await clock_and_reset(dut)
    send = cocotb.start_soon(source.send(words))
    got = await sink.recv(len(sums), timeout_cycles=20 * len(words) + 200)
    await send
    await ClockCycles(dut.clk, 3 * p["latency"])
    assert len(sink.received) == len(sums), f"{len(sink.received)} results for {len(sums)} sums"
    errors = []
    for j, (s, word) in enumerate(zip(sums, got)):
        values, user = point.unpack_result(word)
        for lane, (g, e) in enumerate(zip(values, point.expected(s))):
            if g != e:
                errors.append(f"sum {j} ({s[0]} steps) lane {lane}: got {g}, expected {e}")
        if user != s[4]:
            errors.append(f"sum {j}: user got {user}, expected {s[4]}")
    assert not errors, f"{len(errors)} mismatches (seed {seed}):\n" + "\n".join(errors[:20])
    dut._log.info("%d sums / %d steps checked, last result in cycle %d", len(sums), len(words), sink.cycles[-1])


@cocotb.test()
async def latency_and_ii(dut):
    """No gaps, no stalls: one step accepted per cycle (II = ii), each result ``latency`` cycles
    after its last step, one-step sums leave one per cycle."""
    p = tb_params()
    seed = p.get("seed", 1) + 100
    point = _Point(p)
    rng = np.random.default_rng(seed)
    sums = point.make_sums(40, rng)
    # a run of one-step sums (first and last on every step) at the end
    sums += [(1, point.operands(rng, point.a_fmt, (1, point.lanes, point.taps), "random"),
              point.operands(rng, point.w_fmt, (1, point.lanes, point.taps), "random"),
              rng.integers(p["bias_lo"], p["bias_hi"], size=point.lanes, endpoint=True), 0) for _ in range(20)]
    words, last_index = point.words(sums)
    source = StreamSource(dut, "i", dut.clk, seed=seed)
    sink = StreamSink(dut, "o", dut.clk, seed=seed)
    await clock_and_reset(dut)
    cocotb.start_soon(source.send(words))
    got = await sink.recv(len(sums), timeout_cycles=4 * len(words) + 100)
    for j, (s, word) in enumerate(zip(sums, got)):
        assert point.unpack_result(word)[0] == point.expected(s), f"sum {j}: got {point.unpack_result(word)[0]}, " \
                                                                  f"expected {point.expected(s)}"
    step_intervals = {b - a for a, b in zip(source.cycles, source.cycles[1:])}
    latencies = {sink.cycles[j] - source.cycles[i] for j, i in enumerate(last_index)}
    tail = sink.cycles[-20:]
    out_intervals = {b - a for a, b in zip(tail, tail[1:])}
    dut._log.info("measured: latency %s, step intervals %s, one-step result intervals %s",
                  sorted(latencies), sorted(step_intervals), sorted(out_intervals))
    assert step_intervals == {p["ii"]}, f"step intervals {sorted(step_intervals)}, ii = {p['ii']}"
    assert latencies == {p["latency"]}, f"latencies {sorted(latencies)}, latency = {p['latency']}"
    assert out_intervals == {p["ii"]}, f"one-step result intervals {sorted(out_intervals)}"


async def _check_timing(dut, full_rate):
    """Sums back to back (incl. a run of one-step sums) offered on a schedule, output always
    ready: accept and result cycles equal :meth:`hw.components.mac.MACArray.timing`, values the golden sums."""
    p = tb_params()
    seed = p.get("seed", 1) + (200 if full_rate else 300)
    dut._log.info("seed %d, %s schedule", seed, "full-rate" if full_rate else "random")
    point = _Point(p)
    rng = np.random.default_rng(seed)
    sums = point.make_sums(p.get("sums", 60) // 2, rng)
    sums += [(1, point.operands(rng, point.a_fmt, (1, point.lanes, point.taps), "random"),
              point.operands(rng, point.w_fmt, (1, point.lanes, point.taps), "random"),
              rng.integers(p["bias_lo"], p["bias_hi"], size=point.lanes, endpoint=True), 0) for _ in range(10)]
    words, last_index = point.words(sums)
    last = [False] * len(words)
    for k in last_index:
        last[k] = True
    source = StreamSource(dut, "i", dut.clk, seed=seed)
    sink = StreamSink(dut, "o", dut.clk, stall_prob=0.0, seed=seed)
    await clock_and_reset(dut)
    base = cycle_of(dut.clk) + 1
    rel = [0] * len(words) if full_rate else random_avail(rng, len(words), long_gap=3 * p["latency"])
    avail = [base + a for a in rel]
    model = point.component().timing(avail, last)
    cocotb.start_soon(source.send(words, avail=avail))
    got = await sink.recv(len(sums), timeout_cycles=avail[-1] - base + 4 * len(words) + 100)
    await ClockCycles(dut.clk, 2)
    errors = [f"sum {j}: got {point.unpack_result(w)[0]}, expected {point.expected(s)}"
              for j, (s, w) in enumerate(zip(sums, got)) if point.unpack_result(w)[0] != point.expected(s)]
    assert not errors, "\n".join(errors[:20])
    for problem in (first_mismatch("step (accept)", source.cycles, model.accept),
                    first_mismatch("result (out)", sink.cycles, model.out)):
        assert problem is None, f"timing model differs (seed {seed}, cycles from reset; schedule base {base}): " \
                                f"{problem}"
    dut._log.info("timing model exact: %d steps, %d results, cycles %d..%d", len(words), len(sums),
                  source.cycles[0], sink.cycles[-1])


@cocotb.test()
async def timing_full_rate(dut):
    """Steps offered at full rate, output always ready: cycles equal the timing model."""
    await _check_timing(dut, full_rate=True)


@cocotb.test()
async def timing_random(dut):
    """Steps offered on a random schedule (bursts, gaps, idle stretches), output always ready:
    cycles equal the timing model."""
    await _check_timing(dut, full_rate=False)
