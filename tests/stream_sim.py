"""Drive a stream component in Amaranth's simulator with random input gaps and output stalls."""

import numpy as np
from amaranth.sim import Simulator


def raster_beats(x, lanes):
    """Beats of frames ``x`` (N, C, H, W) in raster order, ``lanes`` channels per beat:
    a list of (data list, last flag), ``last`` on each frame's final beat."""
    n, c, h, w = np.shape(x)
    groups = c // lanes
    return [([int(v) for v in frame[g * lanes:(g + 1) * lanes, y, xx]],
             int(y == h - 1 and xx == w - 1 and g == groups - 1))
            for frame in x for y in range(h) for xx in range(w) for g in range(groups)]


def run_stream(dut, beats, n_out, decode, *, gap=0.0, stall=0.0, seed=0, max_cycles, monitors=()):
    """Offer ``beats`` (data, last) on ``dut.i`` (an idle cycle before a beat with probability
    ``gap``), accept ``n_out`` output beats (``o.ready`` low with probability ``stall``).
    ``monitors``: async testbench functions ``f(ctx)`` run in the background alongside.

    Returns (decoded outputs, their last flags, input accept cycles, output accept cycles);
    ``decode(payload)`` turns an output payload into a Python value. Fails after ``max_cycles``.
    """
    rng = np.random.default_rng(seed)
    got, lasts, in_cycles, out_cycles = [], [], [], []

    async def testbench(ctx):
        index, cycle, pending = 0, 0, False
        while len(got) < n_out:
            if not pending and index < len(beats) and rng.random() >= gap:
                ctx.set(dut.i.payload, {"data": beats[index][0], "last": beats[index][1]})
                pending = True
            ctx.set(dut.i.valid, pending)
            ctx.set(dut.o.ready, rng.random() >= stall)
            _, _, i_valid, i_ready, o_valid, o_ready, o_payload = await ctx.tick().sample(
                dut.i.valid, dut.i.ready, dut.o.valid, dut.o.ready, dut.o.payload)
            if i_valid and i_ready:
                in_cycles.append(cycle)
                index, pending = index + 1, False
            if o_valid and o_ready:
                got.append(decode(o_payload))
                lasts.append(int(o_payload.last))
                out_cycles.append(cycle)
            cycle += 1
            assert cycle < max_cycles, "simulation hangs"

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(testbench)
    for monitor in monitors:
        sim.add_testbench(monitor, background=True)
    sim.run()
    return got, lasts, in_cycles, out_cycles
