"""Stream test helpers for Amaranth's simulator: one put/get pair, pause patterns, arrival schedules.

As Glasgow's ``stream_put`` / ``stream_get``, the two helpers are async functions taking the
simulator context and an ``amaranth.lib.stream`` interface (``valid`` / ``ready`` / ``payload``).
As cocotbext-axi's sources and sinks they take a *pause* iterable, consumed one value per cycle:
a true value pauses that cycle (the source offers no new beat, the sink holds ``ready`` low).
A beat once offered stays valid until it is accepted (the stream rules), so a pause never
withdraws it. Deterministic patterns (``itertools.cycle([1, 1, 1, 0])``, :data:`PATTERN`) and
seeded random ones (:func:`random_pause`) go through the same parameter.

Cycles are counted from the helper's start, so a source and a sink started together (as by
:func:`simulate_stream`) report comparable cycle numbers; the cycle of a beat is the clock cycle
at whose end it was accepted.

- :func:`stream_put`, :func:`stream_get`, :func:`expect_idle`: the testbench pieces.
- :func:`simulate_stream`: a Simulator around one component's ``i`` and ``o`` streams.
- :func:`check_timing`: the simulation's accept and output cycles equal ``dut.timing(avail)``.
- :func:`random_pause`, :data:`PATTERN`, :func:`as_pause`: pause iterables.
- :func:`arrivals`: ``avail`` schedules (input beat ``k`` offered from cycle ``avail[k]`` on).
- :func:`raster_beats`: frames (N, C, H, W) as raster-order beat payloads; :func:`data_last`: back.
"""

import itertools
from typing import NamedTuple

import numpy as np
from amaranth.sim import Simulator

#: The deterministic pause pattern of cocotbext-axi's tests: paused three cycles in four.
PATTERN = (1, 1, 1, 0)


def random_pause(prob, seed):
    """An endless seeded iterable pausing each cycle with probability ``prob``."""
    rng = np.random.default_rng(seed)
    while True:
        yield bool(rng.random() < prob)


def as_pause(spec, seed=0):
    """A pause iterable from a short description: ``None`` or ``0`` (never), a probability in
    (0, 1] (:func:`random_pause` seeded by ``seed``), or a sequence of 0/1 repeated for ever
    (``itertools.cycle``, e.g. :data:`PATTERN`)."""
    if spec is None or (isinstance(spec, (int, float)) and spec == 0):
        return None
    if isinstance(spec, (int, float)):
        if not 0 < spec <= 1:
            raise ValueError(f"a pause probability must be in (0, 1], not {spec!r}")
        return random_pause(spec, seed)
    return itertools.cycle(spec)


async def stream_put(ctx, stream, payloads, *, pause=None, avail=None, max_cycles=None):
    """Offer ``payloads`` on ``stream`` in order; return the cycle each was accepted in.

    ``pause``: iterable, one value per cycle, true: offer no new beat this cycle. ``avail``:
    beat ``k`` is offered no earlier than cycle ``avail[k]``. Fails after ``max_cycles``.
    """
    pause = iter(pause) if pause is not None else itertools.repeat(False)
    accepted, cycle, pending = [], 0, False
    while len(accepted) < len(payloads):
        k = len(accepted)
        paused = next(pause)
        if not pending and not paused and (avail is None or cycle >= avail[k]):
            ctx.set(stream.payload, payloads[k])
            pending = True
        ctx.set(stream.valid, pending)
        _, _, ready = await ctx.tick().sample(stream.ready)
        if pending and ready:
            accepted.append(cycle)
            pending = False
        cycle += 1
        assert max_cycles is None or cycle < max_cycles, \
            f"simulation hangs: {len(accepted)} of {len(payloads)} input beats accepted in {cycle} cycles"
    ctx.set(stream.valid, 0)
    return accepted


async def stream_get(ctx, stream, count, *, pause=None, max_cycles=None):
    """Accept ``count`` beats from ``stream``; return (payloads, the cycle of each).

    ``pause``: iterable, one value per cycle, true: ``ready`` low this cycle. Fails after
    ``max_cycles``.
    """
    pause = iter(pause) if pause is not None else itertools.repeat(False)
    payloads, cycles, cycle = [], [], 0
    while len(payloads) < count:
        ready = not next(pause)
        ctx.set(stream.ready, ready)
        _, _, valid, payload = await ctx.tick().sample(stream.valid, stream.payload)
        if valid and ready:
            payloads.append(payload)
            cycles.append(cycle)
        cycle += 1
        assert max_cycles is None or cycle < max_cycles, \
            f"simulation hangs: {len(payloads)} of {count} output beats in {cycle} cycles"
    ctx.set(stream.ready, 0)
    return payloads, cycles


async def expect_idle(ctx, stream, cycles):
    """With ``ready`` high, ``stream`` offers nothing for ``cycles`` cycles (no extra beats)."""
    ctx.set(stream.ready, 1)
    for cycle in range(cycles):
        _, _, valid = await ctx.tick().sample(stream.valid)
        assert not valid, f"an output beat more than expected, {cycle} cycles after the last one"


class StreamRun(NamedTuple):
    """What :func:`simulate_stream` measured."""
    out: list               # output payloads (Amaranth constants: ``p.data[k]``, ``p.last``)
    in_cycles: list         # accept cycle of each input beat
    out_cycles: list        # cycle of each output beat


def simulate_stream(dut, payloads, count, *, in_pause=None, out_pause=None, seed=0, avail=None,
                    max_cycles=None, monitors=(), idle_after=0):
    """Put ``payloads`` on ``dut.i`` while getting ``count`` beats from ``dut.o`` (see
    :func:`stream_put`, :func:`stream_get`; ``in_pause`` and ``out_pause`` are pause iterables or
    :func:`as_pause` descriptions, random ones seeded by ``seed`` and ``seed + 1``); then, with ``idle_after``, check that no further beat
    comes for that many cycles. ``monitors``: async functions ``f(ctx)`` run in the background.
    Fails after ``max_cycles`` (default: generous for the beats and the last ``avail``)."""
    if max_cycles is None:
        max_cycles = 50 * (len(payloads) + count) + 1000 + (max(avail) if avail else 0)
    if not hasattr(in_pause, "__next__"):
        in_pause = as_pause(in_pause, seed)
    if not hasattr(out_pause, "__next__"):
        out_pause = as_pause(out_pause, seed + 1)
    result = {}

    async def source(ctx):
        result["in"] = await stream_put(ctx, dut.i, payloads, pause=in_pause, avail=avail, max_cycles=max_cycles)

    async def sink(ctx):
        result["out"] = await stream_get(ctx, dut.o, count, pause=out_pause, max_cycles=max_cycles)
        if idle_after:
            await expect_idle(ctx, dut.o, idle_after)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(source)
    sim.add_testbench(sink)
    for monitor in monitors:
        sim.add_testbench(monitor, background=True)
    sim.run()
    out, out_cycles = result["out"]
    return StreamRun(out, result["in"], out_cycles)


def check_timing(dut, payloads, avail, *, idle_after=100, max_cycles=None):
    """Offer ``payloads`` on ``avail`` (output always ready) and assert that the accept and output
    cycles equal ``dut.timing(avail)`` (the first differing beat reported) and that no output beat
    beyond the model's comes in the ``idle_after`` cycles after the last. Returns the run."""
    model = dut.timing(avail)
    run = simulate_stream(dut, payloads, len(model.out), avail=avail, max_cycles=max_cycles,
                          idle_after=idle_after)
    for what, got, want in (("accept", run.in_cycles, model.accept), ("output", run.out_cycles, model.out)):
        for k, (g, w) in enumerate(zip(got, want)):
            assert g == w, f"{what} beat {k}: simulated cycle {g}, model {w}"
        assert len(got) == len(want), f"{what}: {len(got)} beats simulated, model has {len(want)}"
    return run


def arrivals(kind, n, rng=None, long_gap=10):
    """An ``avail`` schedule of ``n`` beats: ``"full"`` (all at cycle 0: full rate), ``"late"``
    (all at cycle ``long_gap``), ``"trickle"`` (one beat every 3 cycles), ``"random"`` (seeded by
    ``rng``: bursts, short gaps of 0..3 cycles and idle stretches of up to ``long_gap``)."""
    if kind == "full":
        return [0] * n
    if kind == "late":
        return [long_gap] * n
    if kind == "trickle":
        return [3 * k for k in range(n)]
    if kind != "random":
        raise ValueError(f"kind must be 'full', 'late', 'trickle' or 'random', not {kind!r}")
    avail, t = [], 0
    while len(avail) < n:
        segment = int(rng.integers(3))
        if segment == 2:
            t += int(rng.integers(1, long_gap, endpoint=True))
        for _ in range(int(rng.integers(1, max(4, n // 6), endpoint=True))):
            if segment == 1:
                t += int(rng.integers(0, 3, endpoint=True))
            avail.append(t)
    return avail[:n]


def raster_beats(x, lanes):
    """Payloads of frames ``x`` (N, C, H, W) in raster order, ``lanes`` channels per beat:
    ``{"data": [...], "last": 0/1}``, ``last`` on each frame's final beat."""
    n, c, h, w = np.shape(x)
    groups = c // lanes
    return [{"data": [int(v) for v in frame[g * lanes:(g + 1) * lanes, y, xx]],
             "last": int(y == h - 1 and xx == w - 1 and g == groups - 1)}
            for frame in x for y in range(h) for xx in range(w) for g in range(groups)]


def data_last(payloads):
    """``(data as a list of ints, last)`` of each payload with ``data`` lanes and ``last``."""
    return [([int(v) for v in p.data], int(p.last)) for p in payloads]
