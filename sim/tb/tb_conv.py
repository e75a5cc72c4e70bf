"""cocotb testbench of :class:`hw.conv.ConvEngine` on its emitted Verilog.

Parameters (:func:`sim.streams.tb_params`, set by ``tests/test_hw_conv.py``): ``in_fmt``,
``w_fmt``, ``acc_fmt`` (``QFormat.to_dict``), ``in_channels``, ``out_channels``, ``width``,
``height``, ``kernel``, ``pad``, ``in_lanes``, ``weights`` (O*C*K*K list), ``bias`` (O list),
``frames``, ``seed``, ``gap_prob``, ``stall_prob``, and the component's ``latency``, ``ii``,
``cycles_per_position`` and ``loads`` (the cycle model's load cycle of every output position,
:meth:`hw.conv.ConvEngine.timing`, for ``timing_frames`` frames).

Expected values: :func:`golden.reference.conv_accumulate` (stride 1, ``pad``).
"""

import cocotb
import numpy as np
from cocotb.triggers import ClockCycles

from golden.qformat import QFormat
from golden.reference import conv_accumulate
from sim.streams import StreamSink, StreamSource, clock_and_reset, pack_fields, tb_params, unpack_fields


class _Point:
    def __init__(self, p):
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
        out = []
        for n in range(count):
            if n < len(special) and n < count - 1:
                out.append(special[n])
            else:
                x = rng.integers(f.min, f.max, shape, endpoint=True)
                ext = rng.random(shape) < 0.2
                out.append(np.where(ext, np.where(rng.random(shape) < 0.5, f.min, f.max), x))
        return np.array(out, dtype=np.int64)

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
    source = StreamSource(dut, "i", dut.clk, gap_prob=p.get("gap_prob", 0.3), seed=seed + 1)
    sink = StreamSink(dut, "o", dut.clk, stall_prob=p.get("stall_prob", 0.3), seed=seed + 2)
    await clock_and_reset(dut)
    send = cocotb.start_soon(source.send(words))
    got = await sink.recv(n_out, timeout_cycles=4 * len(x) * (p["ii"] + p["latency"]) + 500)
    await send
    await ClockCycles(dut.clk, p["latency"] + 10)
    assert len(sink.received) == n_out, f"{len(sink.received)} output beats, expected {n_out}"
    errors = point.check(x, got)
    assert not errors, f"{len(errors)} mismatches (seed {seed}):\n" + "\n".join(errors[:20])
    dut._log.info("%d frames, %d positions x %d channels checked", len(x), n_out, point.o)


@cocotb.test()
async def latency_and_ii(dut):
    """No gaps or stalls: the first position's output comes ``latency`` cycles after the input
    beat completing its window; every output follows the cycle model (``loads``), so frames
    follow every ``ii`` cycles and, where the MACs are the bottleneck, positions every
    ``cycles_per_position`` cycles."""
    p = tb_params()
    point = _Point(p)
    count = p["timing_frames"]
    x = point.frames(count, np.random.default_rng(p.get("seed", 1) + 100))
    words = point.words(x)
    per_frame = point.ho * point.wo
    source = StreamSource(dut, "i", dut.clk, seed=0)
    sink = StreamSink(dut, "o", dut.clk, seed=0)
    await clock_and_reset(dut)
    cocotb.start_soon(source.send(words))
    got = await sink.recv(count * per_frame, timeout_cycles=2 * count * (p["ii"] + p["latency"]) + 500)
    errors = point.check(x, got)
    assert not errors, "\n".join(errors[:20])

    completing = ((point.k - 1 - point.pad) * point.w + point.k - 1 - point.pad) * point.g + point.g - 1
    latency = sink.cycles[0] - source.cycles[completing]
    loads = p["loads"]
    model = [c - loads[0] for c in loads]
    measured = [c - sink.cycles[0] for c in sink.cycles]
    frame_ends = sink.cycles[per_frame - 1::per_frame]
    periods = [b - a for a, b in zip(frame_ends, frame_ends[1:])]
    steps = min(b - a for a, b in zip(sink.cycles, sink.cycles[1:]))
    dut._log.info("measured: latency %d (property %d), frame periods %s (ii %d), shortest output interval %d "
                  "(cycles_per_position %d)", latency, p["latency"], periods, p["ii"], steps,
                  p["cycles_per_position"])
    assert latency == p["latency"], f"latency {latency}, property {p['latency']}"
    bad = [n for n, (a, b) in enumerate(zip(measured, model)) if a != b]
    assert not bad, (f"{len(bad)} outputs off the cycle model, first at position {bad[0]}: "
                     f"{measured[bad[0]]} vs {model[bad[0]]}")
    assert periods[-1] == p["ii"], f"frame period {periods[-1]}, ii {p['ii']}"
    assert steps == max(p["cycles_per_position"], point.g), \
        f"shortest output interval {steps}, expected max(cycles_per_position, C / in_lanes)"
