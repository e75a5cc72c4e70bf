"""cocotb testbench of :class:`hw.components.conv.ConvEngine` on its emitted Verilog.

Parameters (:func:`sim.streams.tb_params`, set by ``tests/test_hw_conv.py``): ``in_fmt``,
``w_fmt``, ``acc_fmt`` (``QFormat.to_dict``), ``in_channels``, ``out_channels``, ``width``,
``height``, ``kernel``, ``pad``, ``in_lanes``, ``weights`` (O*C*K*K list), ``bias`` (O list),
``out_lanes``, ``taps``, ``window_fifo``, ``table`` (None or a list of lists), ``frames``, ``timing_frames``,
``seed``, ``gap_prob``, ``stall_prob``, and the component's ``latency``, ``ii`` and
``cycles_per_position``.

Expected values: :func:`golden.reference.conv_accumulate` (stride 1, ``pad``). Expected cycles:
the timing tests rebuild the :class:`hw.components.conv.ConvEngine` from these parameters and check its
:meth:`~hw.components.conv.ConvEngine.timing` model cycle for cycle (``start``: the first cycle with reset
low), with ``timing_frames`` frames offered at full rate or on a seeded random ``avail``
schedule, the output always ready.
"""

import cocotb
import numpy as np
from cocotb.triggers import ClockCycles

from golden.qformat import QFormat
from golden.reference import conv_accumulate
from hw.components.conv import ConvEngine
from hw.plan.timing import offers
from sim.streams import (StreamSink, StreamSource, clock_and_reset, cycle_of, pack_fields, tb_params,
                         unpack_fields)
from sim.tb.tb_mac import first_mismatch, random_avail
from sim.tb.tb_requant import run_stream
from sim.tb.tb_window import mixed_frames


class _Point:
    def __init__(self, p):
        self.p = p
        self.in_fmt, self.w_fmt, self.acc_fmt = (QFormat.from_dict(p[k], k) for k in ("in_fmt", "w_fmt", "acc_fmt"))
        self.c, self.o = p["in_channels"], p["out_channels"]
        self.w, self.h, self.k, self.pad = p["width"], p["height"], p["kernel"], p["pad"]
        self.lanes = p["in_lanes"]
        self.g = self.c // self.lanes
        self.weights = np.array(p["weights"], dtype=np.int64).reshape(self.o, self.c, self.k, self.k)
        self.bias = np.array(p["bias"], dtype=np.int64)
        self.wo, self.ho = self.w + 2 * self.pad - self.k + 1, self.h + 2 * self.pad - self.k + 1

    def frames(self, count, rng):
        """``count`` input maps (C, H, W): the map maximising output channel 0 everywhere its weights
        agree in sign (pixels at max where the kernel's centre weight is positive), all max, all
        min, then random values with a fifth at the extremes."""
        f = self.in_fmt
        shape = (self.c, self.h, self.w)
        centre = self.weights[0, :, self.k // 2, self.k // 2]
        special = [np.broadcast_to(np.where(centre > 0, f.max, f.min)[:, None, None], shape),
                   np.full(shape, f.max), np.full(shape, f.min)]
        return mixed_frames(special, count, f, shape, rng)

    def component(self):
        """The :class:`hw.components.conv.ConvEngine` of this parameter point (for its timing model)."""
        p = self.p
        table = p.get("table")
        return ConvEngine(in_fmt=self.in_fmt, w_fmt=self.w_fmt, acc_fmt=self.acc_fmt, in_channels=self.c,
                          out_channels=self.o, width=self.w, height=self.h, kernel=self.k, pad=self.pad,
                          weights=self.weights, bias=self.bias, table=table, out_lanes=p["out_lanes"],
                          taps=p["taps"], in_lanes=self.lanes, window_fifo=p.get("window_fifo"))

    def words(self, x):
        f = self.in_fmt
        return [pack_fields([(int(frame[g * self.lanes + l, y, xx]), f.bits, f.signed) for l in range(self.lanes)]
                            + [(int(y == self.h - 1 and xx == self.w - 1 and g == self.g - 1), 1, False)])
                for frame in x for y in range(self.h) for xx in range(self.w) for g in range(self.g)]

    def check(self, x, got):
        """Mismatch messages naming (frame, output channel, y, x, expected, got)."""
        exp = conv_accumulate(x, self.weights, self.bias, 1, self.pad)          # N, O, Ho, Wo
        fields = [(self.acc_fmt.bits, self.acc_fmt.signed)] * self.o + [(1, False)]
        per_frame = self.ho * self.wo
        errors = []
        for n, word in enumerate(got):
            frame, pos = divmod(n, per_frame)
            y, xx = divmod(pos, self.wo)
            values = unpack_fields(word, fields)
            for oc in range(self.o):
                if values[oc] != exp[frame, oc, y, xx]:
                    errors.append(f"frame {frame} output channel {oc} (y={y}, x={xx}): "
                                  f"expected {int(exp[frame, oc, y, xx])}, got {values[oc]}")
            last = int(pos == per_frame - 1)
            if values[-1] != last:
                errors.append(f"frame {frame} position (y={y}, x={xx}): last = {values[-1]}, expected {last}")
        return errors


@cocotb.test()
async def frames(dut):
    """Frames back to back (extremes and random) through random input gaps and output stalls:
    every accumulator equals golden.reference.conv_accumulate."""
    p = tb_params()
    seed = p.get("seed", 1)
    point = _Point(p)
    dut._log.info("seed %d: %s x %s -> %s, C=%d O=%d %dx%d K=%d pad=%d, in_lanes=%d, %d cycles/position",
                  seed, point.in_fmt, point.w_fmt, point.acc_fmt, point.c, point.o, point.h, point.w, point.k,
                  point.pad, point.lanes, p["cycles_per_position"])
    x = point.frames(p.get("frames", 2), np.random.default_rng(seed))
    words = point.words(x)
    n_out = len(x) * point.ho * point.wo
    got, _, _ = await run_stream(dut, words, n_out, gap_prob=p.get("gap_prob", 0.3),
                                 stall_prob=p.get("stall_prob", 0.3), seed=seed,
                                 timeout_cycles=4 * len(x) * (p["ii"] + p["latency"]) + 500,
                                 drain=p["latency"] + 10)
    errors = point.check(x, got)
    assert not errors, f"{len(errors)} mismatches (seed {seed}):\n" + "\n".join(errors[:20])
    dut._log.info("%d frames, %d positions x %d channels checked", len(x), n_out, point.o)


async def _check_timing(dut, full_rate):
    """``timing_frames`` frames back to back offered on a schedule (full rate or seeded random),
    output always ready: the accept cycle of every input beat and the cycle of every output beat
    equal :meth:`ConvEngine.timing`, and the values equal the golden accumulators."""
    p = tb_params()
    seed = p.get("seed", 1) + (100 if full_rate else 300)
    point = _Point(p)
    engine = point.component()
    dut._log.info("seed %d, %s schedule", seed, "full-rate" if full_rate else "random")
    rng = np.random.default_rng(seed)
    count = p["timing_frames"]
    x = point.frames(count, rng)
    words = point.words(x)
    per_frame = point.ho * point.wo
    source = StreamSource(dut, "i", dut.clk, seed=seed)
    sink = StreamSink(dut, "o", dut.clk, stall_prob=0.0, seed=seed)
    await clock_and_reset(dut)
    base = cycle_of(dut.clk)
    start = base - 1                  # the first cycle with reset low (clock_and_reset returns after it)
    rel = [0] * len(words) if full_rate else random_avail(rng, len(words),
                                                          long_gap=engine.latency + 3 * engine.cycles_per_position)
    avail = [base + a for a in rel]
    model = engine.timing(avail, start=start)
    cocotb.start_soon(source.send(words, avail=avail))
    got = await sink.recv(count * per_frame, timeout_cycles=model.out[-1] - base + 200)
    await ClockCycles(dut.clk, engine.latency + 10)
    errors = point.check(x, got)
    assert not errors, f"{len(errors)} mismatches (seed {seed}):\n" + "\n".join(errors[:20])
    for problem in (first_mismatch("input (accept)", source.cycles, model.accept),
                    first_mismatch("output (out)", sink.cycles, model.out)):
        assert problem is None, f"timing model differs (seed {seed}, start {start}, schedule base {base}): {problem}"
    frame_ends = sink.cycles[per_frame - 1::per_frame]
    periods = [b - a for a, b in zip(frame_ends, frame_ends[1:])]
    refused = sum(a != o for a, o in zip(source.cycles, offers(avail)))
    dut._log.info("timing model exact: %d frames, %d input / %d output beats (%d input beats delayed by the "
                  "engine), cycles %d..%d, frame periods %s (ii %d)", count, len(words), len(got), refused,
                  source.cycles[0], sink.cycles[-1], periods, p["ii"])
    if full_rate:
        g = point.g
        completing = ((point.k - 1 - point.pad) * point.w + point.k - 1 - point.pad) * g + g - 1
        latency = sink.cycles[0] - source.cycles[completing]
        dut._log.info("measured: latency %d (property %d)", latency, p["latency"])
        assert latency == p["latency"], f"latency {latency}, property {p['latency']}"
        if count >= 3:
            assert periods[-1] == p["ii"], f"frame period {periods[-1]}, ii {p['ii']}"


@cocotb.test()
async def timing_full_rate(dut):
    """Frames offered at full rate, output always ready: cycles equal the timing model (so the
    frame period in steady state is ``ii``), and the first output comes ``latency`` cycles after
    the input beat completing its window."""
    await _check_timing(dut, full_rate=True)


@cocotb.test()
async def timing_random(dut):
    """Frames offered on a random schedule (bursts, gaps, idle stretches), output always ready:
    cycles equal the timing model."""
    await _check_timing(dut, full_rate=False)
