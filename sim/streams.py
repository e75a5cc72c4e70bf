"""cocotb 2.x testbench helpers for Amaranth components.

Port conventions of the emitted Verilog (see :mod:`hw.emit`): a stream member ``i`` of the
component signature becomes the ports ``i__valid``, ``i__ready`` and ``i__payload``; the payload
is the data layout packed into one vector, first struct field / array element in the lowest bits
(use :func:`pack_fields` / :func:`pack_array` and their inverses).  The clock is ``clk`` and the
reset ``rst`` (synchronous, active high).

Handshake timing: the drivers change their outputs right after a rising edge and sample the
handshake in the ``ReadOnly`` phase before the next edge, so they work with any simulator and with
combinational ``ready``/``valid`` paths in the design.  While a source waits for ``ready`` or a
sink for ``valid`` they sleep until that signal changes rather than waking every cycle (so long
idle stretches cost no Python time); this assumes the design's inputs change only right after
rising edges, as these drivers do.  A beat is transferred at the rising edge
that ends a cycle in which ``valid`` and ``ready`` were both high; its *cycle number* (recorded
in ``StreamSource.cycles`` / ``StreamSink.cycles``) is the number of that cycle, counted from the
start of the clock (see :func:`cycle_of`), so latencies and initiation intervals can be computed
by subtracting cycle numbers of the source and the sink.

Testbench parameters set by :func:`sim.runner.run_cocotb` are read with :func:`tb_params`.
"""

from __future__ import annotations

import collections
import json
import os
import random
from collections.abc import Iterable

import cocotb
from cocotb.clock import Clock
from cocotb.simtime import get_sim_time
from cocotb.utils import get_sim_steps
from cocotb.triggers import (ClockCycles, Event, First, ReadOnly, RisingEdge, Timer, ValueChange,
                             current_gpi_trigger)

__all__ = [
    "TB_PARAMS_ENV", "tb_params", "write_progress",
    "clock_and_reset", "cycle_of",
    "StreamSource", "StreamSink",
    "pack_fields", "unpack_fields", "pack_array", "unpack_array", "to_signed", "to_unsigned",
]

#: Environment variable with the JSON test parameters (same name as sim.runner.TB_PARAMS_ENV).
TB_PARAMS_ENV = "LENET5_TB_PARAMS"


def tb_params() -> dict:
    """The parameter point this simulation checks (``parameters_for_test`` / ``params``)."""
    return json.loads(os.environ.get(TB_PARAMS_ENV) or "{}")


# --------------------------------------------------------------------------- bit packing

def write_progress(path, count: int) -> None:
    """Replace the text file ``path`` (if given) by ``count`` (a testbench's images checked so far,
    read by the caller while the simulator runs; written whole, never half)."""
    if path:
        tmp = f"{path}.tmp"
        with open(tmp, "w") as f:
            f.write(f"{count}\n")
        os.replace(tmp, path)


def to_unsigned(value: int, width: int, signed: bool = False) -> int:
    """*value* as a *width*-bit two's complement bit pattern; ``ValueError`` if it does not fit."""
    if signed:
        lo, hi = -(1 << (width - 1)) if width else 0, (1 << (width - 1)) - 1 if width else 0
    else:
        lo, hi = 0, (1 << width) - 1
    value = int(value)
    if not lo <= value <= hi:
        kind = "signed" if signed else "unsigned"
        raise ValueError(f"{value} does not fit in {width} bits {kind}")
    return value & ((1 << width) - 1)


def to_signed(bits: int, width: int) -> int:
    """The *width*-bit pattern *bits* read as a two's complement number."""
    bits = int(bits) & ((1 << width) - 1)
    return bits - (1 << width) if width and bits >> (width - 1) else bits


def pack_fields(fields: Iterable[tuple[int, int, bool]]) -> int:
    """Pack ``(value, width, signed)`` fields LSB-first: the first field in the lowest bits, as
    in :class:`amaranth.lib.data.StructLayout` (fields in declaration order)."""
    word, offset = 0, 0
    for value, width, signed in fields:
        word |= to_unsigned(value, width, signed) << offset
        offset += width
    return word


def unpack_fields(word: int, fields: Iterable[tuple[int, bool]]) -> list[int]:
    """Inverse of :func:`pack_fields`: split *word* into ``(width, signed)`` fields, LSB-first."""
    word = int(word)
    values, offset = [], 0
    for width, signed in fields:
        bits = (word >> offset) & ((1 << width) - 1)
        values.append(to_signed(bits, width) if signed else bits)
        offset += width
    return values


def pack_array(values: Iterable[int], width: int, signed: bool) -> int:
    """Pack an :class:`amaranth.lib.data.ArrayLayout` value: element 0 in the lowest bits."""
    return pack_fields((v, width, signed) for v in values)


def unpack_array(word: int, count: int, width: int, signed: bool) -> list[int]:
    """Inverse of :func:`pack_array`: *count* elements of *width* bits."""
    return unpack_fields(word, [(width, signed)] * count)


# --------------------------------------------------------------------------- clock and cycles

class _Timebase:
    """Cycle numbers of one clock: from the clock's period when :func:`clock_and_reset` started it,
    else by counting rising edges in a background task."""

    def __init__(self, clock, origin: int | None = None, period: int | None = None):
        self.clock = clock
        self.origin, self.period = origin, period
        self.count = 0
        self.task = None
        if period is None:
            self.task = cocotb.start_soon(self._count())

    async def _count(self):
        while True:
            await RisingEdge(self.clock)
            self.count += 1

    def alive(self) -> bool:
        return self.task is None or not self.task.done()

    @property
    def cycle(self) -> int:
        if self.period is not None:
            return (get_sim_time("step") - self.origin) // self.period
        return self.count


_timebases: dict[int, _Timebase] = {}


def _timebase(clock) -> _Timebase:
    base = _timebases.get(id(clock))
    if base is None or base.clock is not clock or not base.alive():
        base = _timebases[id(clock)] = _Timebase(clock)
    return base


def cycle_of(clock) -> int:
    """Number of the current cycle of *clock* (call it in the ``ReadOnly`` phase or right after a
    rising edge): 0 during the cycle that starts at the first rising edge."""
    return _timebase(clock).cycle


async def clock_and_reset(dut, cycles: int = 2, *, period_ns: int = 10, clock: str = "clk",
                          reset: str = "rst") -> Clock:
    """Start a *period_ns* clock on ``dut.clk`` and hold ``dut.rst`` high for *cycles* rising
    edges.  Returns right after the rising edge at which reset is released (the drivers'
    ``send``/``recv`` may be called straight away).  Returns the :class:`cocotb.clock.Clock`."""
    clk, rst = getattr(dut, clock), getattr(dut, reset)
    rst.value = 1
    clk_driver = Clock(clk, period_ns, unit="ns")
    clk_driver.start(start_high=True)          # rising edge now, then every period
    _timebases[id(clk)] = _Timebase(clk, origin=get_sim_time("step"),
                                    period=get_sim_steps(period_ns, "ns"))
    await ClockCycles(clk, max(1, cycles), rising=True)
    rst.value = 0
    await RisingEdge(clk)
    return clk_driver


# --------------------------------------------------------------------------- stream drivers

def _port(dut, prefix: str, name: str, required: bool = True):
    full = f"{prefix.rstrip('_')}__{name}"
    try:
        return getattr(dut, full)
    except AttributeError:
        if required:
            raise AttributeError(f"{dut._name} has no port {full!r}") from None
        return None


class _Driver:
    def __init__(self, dut, prefix: str, clock, seed):
        self.dut, self.prefix, self.clock = dut, prefix, clock
        self.rng = random.Random(seed)
        self._edge_time = None        # sim time of the last rising edge seen by this driver
        self.valid = _port(dut, prefix, "valid", required=False)
        self.ready = _port(dut, prefix, "ready", required=False)
        self.payload = _port(dut, prefix, "payload", required=False)

    async def _after_edge(self):
        """Make sure we are in the drive region right after a rising edge (waiting for the next
        edge unless the scheduling pass we are in was started by one)."""
        if self._edge_time == get_sim_time("step"):
            return
        try:
            trigger = current_gpi_trigger()
        except RuntimeError:          # no trigger has fired yet
            trigger = None
        if isinstance(trigger, RisingEdge) and trigger.signal is self.clock:
            self._edge_time = get_sim_time("step")
            return
        await self._edge()

    async def _edge(self):
        await RisingEdge(self.clock)
        self._edge_time = get_sim_time("step")


class StreamSource(_Driver):
    """Drives the stream input ``<prefix>__valid/__payload`` of *dut*, obeying ``<prefix>__ready``.

    ``valid`` never waits for ``ready``; a presented beat keeps ``valid`` high and the payload
    stable until it is accepted.  Before each beat, idle cycles are inserted, each with probability
    *gap_prob*.  ``cycles[i]`` is the cycle number in which beat *i* was accepted.
    """

    def __init__(self, dut, prefix: str, clock, *, gap_prob: float = 0.0, seed):
        super().__init__(dut, prefix, clock, seed)
        if not 0.0 <= gap_prob < 1.0:
            raise ValueError("gap_prob must be in [0, 1)")
        self.gap_prob = gap_prob
        self.sent: list[int] = []
        self.cycles: list[int] = []
        if self.valid is not None:
            self.valid.value = 0

    async def send(self, values: Iterable[int], avail: Iterable[int] | None = None) -> None:
        """Send packed payload ints, one beat each; returns after the last one is accepted.

        With *avail* (cycle numbers, see :mod:`hw.plan.timing`), beat *k* is not offered before cycle
        ``avail[k]``: the schedule that timing models are checked with. Random gaps are inserted
        only without *avail*.
        """
        await self._after_edge()
        avail = None if avail is None else list(avail)
        for k, value in enumerate(values):
            if avail is not None:
                while cycle_of(self.clock) < avail[k]:
                    if self.valid is not None:
                        self.valid.value = 0
                    await self._edge()
            while avail is None and self.gap_prob and self.rng.random() < self.gap_prob:
                if self.valid is not None:
                    self.valid.value = 0
                await self._edge()
            if self.payload is not None:
                self.payload.value = int(value)
            if self.valid is not None:
                self.valid.value = 1
            while True:
                await ReadOnly()
                if self.ready is None or self.ready.value == 1:
                    cycle = cycle_of(self.clock)
                    await self._edge()
                    break
                # Not ready: sleep until ready changes instead of waking every cycle.
                await ValueChange(self.ready)
            self.sent.append(int(value))
            self.cycles.append(cycle)
        if self.valid is not None:
            self.valid.value = 0


class StreamSink(_Driver):
    """Accepts beats from the stream output ``<prefix>__valid/__payload`` of *dut*, driving
    ``<prefix>__ready`` low in a cycle with probability *stall_prob*.

    Runs in the background from construction; ``received`` holds every payload int accepted and
    ``cycles`` the cycle numbers they were accepted in; :meth:`recv` hands them out in order.
    """

    def __init__(self, dut, prefix: str, clock, *, stall_prob: float = 0.0, seed):
        super().__init__(dut, prefix, clock, seed)
        if not 0.0 <= stall_prob < 1.0:
            raise ValueError("stall_prob must be in [0, 1)")
        self.stall_prob = stall_prob
        if self.ready is None and stall_prob:
            raise ValueError(f"{prefix} has no ready port: cannot stall")
        self.received: list[int] = []
        self.cycles: list[int] = []
        self._queue: collections.deque[int] = collections.deque()
        self._event = Event()
        self._wanted: int | None = None     # recv() is waiting for this many queued beats
        if self.ready is not None:
            self.ready.value = 0
        self._task = cocotb.start_soon(self._run())

    async def _run(self) -> None:
        await self._after_edge()
        while True:
            ready = not (self.stall_prob and self.rng.random() < self.stall_prob)
            if self.ready is not None:
                self.ready.value = int(ready)
            await ReadOnly()
            valid = self.valid is None or self.valid.value == 1
            if ready and valid:
                data = int(self.payload.value) if self.payload is not None else 0
                cycle = cycle_of(self.clock)
                await self._edge()
                self.received.append(data)
                self.cycles.append(cycle)
                self._queue.append(data)
                if self._wanted is not None and len(self._queue) >= self._wanted:
                    self._event.set()
            elif not valid:
                # Idle: sleep until valid changes instead of waking every cycle.
                await ValueChange(self.valid)
            else:
                await self._edge()

    def stop(self) -> None:
        """Stop accepting beats: the background task ends and ``ready`` is driven low."""
        self._task.cancel()
        if self.ready is not None:
            self.ready.value = 0

    async def recv(self, n: int, *, timeout_cycles: int | None = None) -> list[int]:
        """The next *n* payload ints, in order of acceptance; waits for them to arrive.

        Raises ``TimeoutError`` if they have not all arrived within *timeout_cycles* cycles.
        """
        if len(self._queue) < n:
            self._wanted = n
            self._event.clear()
            if timeout_cycles is None:
                await self._event.wait()
            else:
                base = _timebase(self.clock)
                if base.period is not None:
                    limit = Timer(timeout_cycles * base.period, "step")
                else:
                    limit = ClockCycles(self.clock, timeout_cycles)
                await First(self._event.wait(), limit)
                if len(self._queue) < n:
                    self._wanted = None
                    raise TimeoutError(f"{self.prefix}: {len(self._queue)} of {n} beats after "
                                       f"{timeout_cycles} cycles")
            self._wanted = None
        return [self._queue.popleft() for _ in range(n)]
