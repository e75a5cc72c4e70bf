"""cocotb testbench of :class:`hw.components.window.WindowGenerator` on its emitted Verilog.

Parameters (:func:`sim.streams.tb_params`, set by ``tests/test_hw_window.py``): ``fmt``
(``QFormat.to_dict``), ``channels``, ``width``, ``height``, ``kernel``, ``pad``, ``lanes``,
``frames``, ``seed``, ``gap_prob``, ``stall_prob``, and the component's ``latency``, ``ii``,
``frame_cycles`` and ``tail_latency``.

Expected cycles: the timing tests rebuild the :class:`hw.components.window.WindowGenerator` from these
parameters and check its :meth:`~hw.components.window.WindowGenerator.timing` model cycle for cycle (``start``:
the first cycle with reset low), frames offered at full rate or on a seeded random ``avail``
schedule, the output always ready.

Expected windows: :func:`golden.reference.conv_accumulate` with one-hot weights (output channel
``(c * K + ky) * K + kx`` has weight 1 at ``[c, ky, kx]``, bias 0), i.e. the padded map's
``xpad[c, y + ky, x + kx]`` for every output position.
"""

import cocotb
import numpy as np
from cocotb.triggers import ClockCycles

from golden.qformat import QFormat
from golden.reference import conv_accumulate
from hw.plan.timing import offers
from hw.components.window import WindowGenerator
from sim.streams import (StreamSink, StreamSource, clock_and_reset, cycle_of, pack_fields, tb_params,
                         unpack_fields)
from sim.tb.tb_mac import first_mismatch, random_avail


def mixed_frames(special, count, fmt, shape, rng):
    """``count`` int64 frames of *shape* in *fmt*: the *special* ones first (as many as fit while
    leaving the last frame random), then random values with a fifth of them at the extremes."""
    out = []
    for n in range(count):
        if n < len(special) and n < count - 1:
            out.append(special[n])
        else:
            x = rng.integers(fmt.min, fmt.max, shape, endpoint=True)
            ext = rng.random(shape) < 0.2
            out.append(np.where(ext, np.where(rng.random(shape) < 0.5, fmt.min, fmt.max), x))
    return np.array(out, dtype=np.int64)


class _Point:
    def __init__(self, p):
        self.fmt = QFormat.from_dict(p["fmt"], "fmt")
        self.c, self.w, self.h = p["channels"], p["width"], p["height"]
        self.k, self.pad, self.lanes = p["kernel"], p["pad"], p["lanes"]
        self.g = self.c // self.lanes
        self.wp, self.hp = self.w + 2 * self.pad, self.h + 2 * self.pad
        self.wo, self.ho = self.wp - self.k + 1, self.hp - self.k + 1

    def component(self):
        """The :class:`hw.components.window.WindowGenerator` of this parameter point (for its timing model)."""
        return WindowGenerator(fmt=self.fmt, channels=self.c, width=self.w, height=self.h, kernel=self.k,
                               pad=self.pad, lanes=self.lanes)

    def frames(self, count, rng):
        """``count`` frames (C, H, W): all max, all min, a min/max checkerboard, then random values
        with a fifth of them at the extremes."""
        f = self.fmt
        shape = (self.c, self.h, self.w)
        special = [np.full(shape, f.max), np.full(shape, f.min),
                   np.where(np.indices(shape).sum(axis=0) % 2 == 0, f.min, f.max)]
        return mixed_frames(special, count, f, shape, rng)

    def words(self, x):
        f = self.fmt
        words = []
        for frame in x:
            for y in range(self.h):
                for xx in range(self.w):
                    for g in range(self.g):
                        last = int(y == self.h - 1 and xx == self.w - 1 and g == self.g - 1)
                        words.append(pack_fields([(int(frame[g * self.lanes + l, y, xx]), f.bits, f.signed)
                                                  for l in range(self.lanes)] + [(last, 1, False)]))
        return words

    def expected(self, x):
        """(N, Ho, Wo, G, K, K, lanes) windows from the golden convolution with one-hot weights."""
        k, c = self.k, self.c
        onehot = np.eye(c * k * k, dtype=np.int64).reshape(c * k * k, c, k, k)
        acc = conv_accumulate(x, onehot, np.zeros(c * k * k, np.int64), 1, self.pad)   # N, C*K*K, Ho, Wo
        n = len(x)
        acc = acc.reshape(n, self.g, self.lanes, k, k, self.ho, self.wo)
        return acc.transpose(0, 5, 6, 1, 3, 4, 2)

    def check(self, x, got):
        """Mismatch messages (frame, position, group, ky, kx, lane, expected, got)."""
        exp = self.expected(x)
        f, k, lanes = self.fmt, self.k, self.lanes
        fields = [(f.bits, f.signed)] * (k * k * lanes) + [(1, False)]
        errors = []
        per_frame = self.ho * self.wo * self.g
        for n, word in enumerate(got):
            frame, rest = divmod(n, per_frame)
            pos, g = divmod(rest, self.g)
            y, xx = divmod(pos, self.wo)
            values = unpack_fields(word, fields)
            data = np.array(values[:-1]).reshape(k, k, lanes)
            want = exp[frame, y, xx, g]
            for ky, kx, lane in np.argwhere(data != want):
                errors.append(f"frame {frame} window (y={y}, x={xx}) group {g} [ky={ky}][kx={kx}][lane {lane}] "
                              f"(channel {g * lanes + lane}): expected {want[ky, kx, lane]}, got {data[ky, kx, lane]}")
            last = int(rest == per_frame - 1)
            if values[-1] != last:
                errors.append(f"frame {frame} window (y={y}, x={xx}) group {g}: last = {values[-1]}, expected {last}")
        return errors

    def padded_index(self, y, x, g):
        """Index of a beat of the padded map within its frame (the cycle it is processed at, ii = 1)."""
        return (y * self.wp + x) * self.g + g


@cocotb.test()
async def windows(dut):
    """Frames back to back (extremes and random) through random input gaps and output stalls:
    every element of every window equals the golden value, and ``last`` marks each frame's end."""
    p = tb_params()
    seed = p.get("seed", 1)
    point = _Point(p)
    dut._log.info("seed %d: %s C=%d %dx%d K=%d pad=%d lanes=%d", seed, point.fmt, point.c, point.h, point.w,
                  point.k, point.pad, point.lanes)
    x = point.frames(p.get("frames", 3), np.random.default_rng(seed))
    words = point.words(x)
    n_out = len(x) * point.ho * point.wo * point.g
    source = StreamSource(dut, "i", dut.clk, gap_prob=p.get("gap_prob", 0.3), seed=seed + 1)
    sink = StreamSink(dut, "o", dut.clk, stall_prob=p.get("stall_prob", 0.3), seed=seed + 2)
    await clock_and_reset(dut)
    send = cocotb.start_soon(source.send(words))
    got = await sink.recv(n_out, timeout_cycles=10 * len(x) * p["frame_cycles"] + 200)
    await send
    await ClockCycles(dut.clk, p["tail_latency"] + 10)
    assert len(sink.received) == n_out, f"{len(sink.received)} windows out, expected {n_out}"
    errors = point.check(x, got)
    assert not errors, f"{len(errors)} mismatches (seed {seed}):\n" + "\n".join(errors[:20])
    dut._log.info("%d frames, %d windows checked", len(x), n_out)


@cocotb.test()
async def latency_and_ii(dut):
    """No gaps or stalls: one padded beat per cycle (input beats accepted exactly when the frame
    counter reaches them, padding costing one cycle per beat), frames every ``frame_cycles``
    cycles, each window ``latency`` cycles after the beat completing it, and the frame's last
    window ``tail_latency`` cycles after its last input beat."""
    p = tb_params()
    point = _Point(p)
    frames = 3
    x = point.frames(frames, np.random.default_rng(p.get("seed", 1) + 100))
    words = point.words(x)
    n_out = frames * point.ho * point.wo * point.g
    source = StreamSource(dut, "i", dut.clk, seed=0)
    sink = StreamSink(dut, "o", dut.clk, seed=0)
    await clock_and_reset(dut)
    cocotb.start_soon(source.send(words))
    got = await sink.recv(n_out, timeout_cycles=2 * frames * p["frame_cycles"] + 100)
    errors = point.check(x, got)
    assert not errors, "\n".join(errors[:20])

    fc, pad, k, g_count = p["frame_cycles"], point.pad, point.k, point.g
    # Cycle of each padded beat, from the first input beat (input always valid, output always ready).
    origin = source.cycles[0] - point.padded_index(pad, pad, 0)
    in_expected = [origin + f * fc + point.padded_index(y + pad, xx + pad, g)
                   for f in range(frames) for y in range(point.h) for xx in range(point.w) for g in range(g_count)]
    assert source.cycles == in_expected, "input beats not accepted one padded beat per cycle (ii = 1): " \
        f"first differences at {[n for n, (a, b) in enumerate(zip(source.cycles, in_expected)) if a != b][:5]}"
    out_expected = [origin + f * fc + point.padded_index(y + k - 1, xx + k - 1, g) + p["latency"]
                    for f in range(frames) for y in range(point.ho) for xx in range(point.wo) for g in range(g_count)]
    assert sink.cycles == out_expected, "window timing differs from the padded-beat count + latency: " \
        f"first differences at {[n for n, (a, b) in enumerate(zip(sink.cycles, out_expected)) if a != b][:5]}"
    per_frame = point.ho * point.wo * g_count
    frame_ends = sink.cycles[per_frame - 1::per_frame]
    periods = {b - a for a, b in zip(frame_ends, frame_ends[1:])}
    tail = sink.cycles[-1] - source.cycles[-1]
    first = sink.cycles[0] - in_expected[0] - (point.padded_index(k - 1, k - 1, 0) - point.padded_index(pad, pad, 0))
    dut._log.info("measured: latency %d (property %d), frame period %s (frame_cycles %d, ii %d per beat), "
                  "tail latency %d (property %d)", first, p["latency"], sorted(periods), fc, p["ii"], tail,
                  p["tail_latency"])
    assert first == p["latency"], f"latency {first}, property {p['latency']}"
    assert periods == {fc}, f"frame periods {sorted(periods)}, frame_cycles {fc}"
    assert tail == p["tail_latency"], f"tail latency {tail}, property {p['tail_latency']}"
    assert p["ii"] == 1


async def _check_timing(dut, full_rate):
    """Frames back to back offered on a schedule (full rate or seeded random), output always
    ready: the accept cycle of every input beat and the valid cycle of every window equal
    :meth:`WindowGenerator.timing`, and the windows equal the golden ones."""
    p = tb_params()
    seed = p.get("seed", 1) + (200 if full_rate else 300)
    dut._log.info("seed %d, %s schedule", seed, "full-rate" if full_rate else "random")
    point = _Point(p)
    wg = point.component()
    rng = np.random.default_rng(seed)
    count = p.get("frames", 3)
    x = point.frames(count, rng)
    words = point.words(x)
    n_out = count * wg.out_beats
    source = StreamSource(dut, "i", dut.clk, seed=seed)
    sink = StreamSink(dut, "o", dut.clk, stall_prob=0.0, seed=seed)
    await clock_and_reset(dut)
    base = cycle_of(dut.clk)
    start = base - 1                  # the first cycle with reset low (clock_and_reset returns after it)
    rel = [0] * len(words) if full_rate else random_avail(rng, len(words), long_gap=2 * wg.padded_width * wg.groups)
    avail = [base + a for a in rel]
    model = wg.timing(avail, start=start)
    cocotb.start_soon(source.send(words, avail=avail))
    got = await sink.recv(n_out, timeout_cycles=model.out[-1] - base + 100)
    await ClockCycles(dut.clk, 5)
    errors = point.check(x, got)
    assert not errors, f"{len(errors)} mismatches (seed {seed}):\n" + "\n".join(errors[:20])
    for problem in (first_mismatch("input (accept)", source.cycles, model.accept),
                    first_mismatch("output (out)", sink.cycles, model.out)):
        assert problem is None, f"timing model differs (seed {seed}, start {start}, schedule base {base}): {problem}"
    frame_ends = sink.cycles[wg.out_beats - 1::wg.out_beats]
    periods = sorted({b - a for a, b in zip(frame_ends, frame_ends[1:])})
    refused = sum(a != o for a, o in zip(source.cycles, offers(avail)))
    dut._log.info("timing model exact: %d frames, %d input beats (%d delayed by padding beats), %d windows, "
                  "cycles %d..%d, frame periods %s (frame_cycles %d)", count, len(words), refused, n_out,
                  source.cycles[0], sink.cycles[-1], periods, p["frame_cycles"])
    if full_rate:
        assert periods == [p["frame_cycles"]], f"frame periods {periods}, frame_cycles {p['frame_cycles']}"


@cocotb.test()
async def timing_full_rate(dut):
    """Frames offered at full rate, output always ready: cycles equal the timing model, frames
    every ``frame_cycles``."""
    await _check_timing(dut, full_rate=True)


@cocotb.test()
async def timing_random(dut):
    """Frames offered on a random schedule (bursts, gaps, idle stretches), output always ready:
    cycles equal the timing model."""
    await _check_timing(dut, full_rate=False)
