"""cocotb testbench of the LeNet-5 accelerator (:class:`hw.arch.dataflow.LeNet5Accelerator`) on the
emitted Verilog: MNIST digits in on ``s_axis``, logits and class out on ``m_axis``.

Run by :mod:`sim.accel`, which computes the expected values with :func:`golden.reference.run`
in its own process and passes them here as a file: this testbench holds no arithmetic, it
compares words.

Tests (chosen with the runner's ``test_filter``)
------------------------------------------------
``stream_images``
    Streams the images back to back (no gap between images) and checks every image's
    ``classes`` logits and class index, and the framing (``tlast`` on the class beat only).
    Measures the cycle of each image's ``tlast`` beat and of the first accepted pixel.
``reset_recovery``
    A synchronous reset in the middle of an image (with the previous image still in flight),
    and another while an image's output beats are being sent, each followed by images that
    must come out exactly right, with nothing left over from before the reset, and with the
    idle-design latency.
``capture_taps``
    Streams one or two images while recording every beat (``valid & ready``, the payload) of
    each stage's output stream on the tap ports of a debug build (``generate(..., taps=True)``,
    see :mod:`sim.diagnose`).

Drivers
-------
``stall == 0`` uses a lean driver and sink written here (:class:`LeanSource`,
:class:`LeanSink`): they work at falling edges with immediate writes and direct reads of the
simulator objects, one Python wake-up per accepted beat, sleeping on ``ValueChange`` while
``s_axis_tready`` or ``m_axis_tvalid`` stays low; this is what makes the whole MNIST test set
affordable (see :mod:`sim.accel` for the measured speeds). ``stall > 0`` uses cocotbext-axi's
``AxiStreamSource`` / ``AxiStreamSink`` (``AxiStreamBus.from_prefix(dut, "s_axis")``) with
pause generators: each cycle the source pauses and the sink withholds ``tready`` with
probability ``stall``.

Cycle numbers follow :mod:`sim.streams`: a beat belongs to the cycle at whose end ``valid &
ready`` was sampled (read at the rising edge, where cocotb shows the values before the edge).

Parameters (:func:`sim.streams.tb_params`)
------------------------------------------
images : str
    ``.npy`` file, uint8 (N, 28, 28).
expected : str
    ``.npy`` file, int64 (N, classes + 1): the golden logits, then the class index.
out_bits, logit_bits : int; logit_signed : bool
    Width of ``m_axis_tdata`` and format of the logits in it.
stall : float; seed : int
driver : str
    ``"lean"`` or ``"axi"``; default lean without stalls, cocotbext-axi with.
results : str
    ``.npz`` file this testbench writes (see :func:`_save`).
progress : str, optional
    Text file holding the number of images checked so far (rewritten as they come).
timeout_cycles : int
    The test fails when no output beat arrives for this many cycles.
taps : list of dict
    ``capture_taps`` only: ``{"name", "valid", "ready", "payload"}``, the names of the
    top-level tap ports of each monitored stream (:func:`sim.diagnose.tap_ports`).
"""

from __future__ import annotations

import itertools
import random
import time
import warnings

import numpy as np

import cocotb
from cocotb.handle import Immediate
from cocotb.triggers import ClockCycles, Event, FallingEdge, First, Timer, ValueChange

from sim.streams import clock_and_reset, cycle_of, tb_params, to_signed, write_progress

#: Images between two updates of the progress file.
PROGRESS_EVERY = 10

# cocotbext-axi 0.1.28 still uses cocotb 1.x spellings (setimmediatevalue, Edge): not ours to fix.
warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"cocotbext\.")


# --------------------------------------------------------------------------- helpers

class Params:
    """The testbench parameters, with the images and expected values loaded."""

    def __init__(self):
        p = tb_params()
        self.raw = p
        self.images = np.load(p["images"]).astype(np.uint8)
        if self.images.ndim != 3:
            raise ValueError(f"images must be (N, H, W), got {self.images.shape}")
        self.expected = np.load(p["expected"]).astype(np.int64)
        self.pixels = self.images.shape[1] * self.images.shape[2]
        self.words = self.expected.shape[1]                 # classes + 1 output beats per image
        self.out_bits = int(p["out_bits"])
        self.logit_bits = int(p["logit_bits"])
        self.logit_signed = bool(p["logit_signed"])
        self.stall = float(p.get("stall", 0.0))
        self.seed = int(p.get("seed", 0))
        self.driver = p.get("driver") or ("axi" if self.stall else "lean")
        self.results = p["results"]
        self.progress = p.get("progress")
        self.timeout_cycles = int(p.get("timeout_cycles", 100_000))

    def decode(self, words):
        """Output words of one image -> logits (two's complement) then the class index."""
        logits = [to_signed(w, self.out_bits) if self.logit_signed else int(w) for w in words[:-1]]
        return logits + [int(words[-1])]


class Checker:
    """In-order comparison of received images with the expected words."""

    def __init__(self, dut, params: Params, first_index: int = 0, limit: int | None = None):
        self.dut, self.p = dut, params
        self.index = first_index                 # expected row of the next image
        self.outputs = []                        # decoded words per received image
        self.tlast_cycles = []
        self.mismatches = []                     # (image index, reason)
        self.done = Event()
        self.limit = limit if limit is not None else len(params.expected) - first_index

    def image(self, words, lasts, cycle):
        """One image's beats (up to and including the ``tlast`` beat)."""
        p = self.p
        got = p.decode(words)
        want = [int(v) for v in p.expected[self.index]] if self.index < len(p.expected) else None
        self.outputs.append((got + [0] * p.words)[:p.words])      # framing errors: padded/cut
        self.tlast_cycles.append(cycle)
        if len(words) != p.words or any(lasts[:-1]):
            self.mismatches.append((self.index, f"framing: {len(words)} beats up to tlast, "
                                                f"expected {p.words}"))
        elif got != want:
            self.mismatches.append((self.index, f"got {got}, expected {want}"))
        self.index += 1
        n = len(self.outputs)
        if n % PROGRESS_EVERY == 0 or n == self.limit:
            write_progress(p.progress, n)
        if n >= self.limit:
            self.done.set()


# --------------------------------------------------------------------------- lean drivers

#: GPI write action that takes effect at once (cocotb's ``Immediate``); the lean drivers write
#: only at falling edges, where no flip-flop samples, so an immediate write cannot race a
#: rising edge, and no ReadWrite callback is needed per write.
_NO_DELAY = 3


def _reader(handle):
    """Fast integer read of a signal of at most 64 bits (the simulator object under the handle)."""
    return handle._handle.get_signal_val_long


def _writer(handle):
    """Fast immediate write of an integer (see :data:`_NO_DELAY`); call at a falling edge only."""
    raw = handle._handle.set_signal_val_int
    return lambda value: raw(_NO_DELAY, value)


class LeanSource:
    """``s_axis`` driver without gaps, working at falling edges.

    At the falling edge of a cycle the inputs are settled: ``tready`` read there is the ready of
    that cycle (the accelerator's ``tready`` does not depend on ``tvalid`` / ``tdata`` within a
    cycle), so the beat on the bus is accepted at the rising edge that ends it; the next beat is
    written at the next falling edge. One Python wake-up per accepted beat; while ``tready``
    stays low the driver sleeps on its change. ``image_cycles[i]`` is the cycle in which the
    first pixel of the ``i``-th image sent was accepted.
    """

    def __init__(self, dut, pixels_per_image: int):
        self.dut = dut
        self.n = pixels_per_image
        self.image_cycles = []
        self.accepted = 0

    async def send(self, pixels):
        """Send ``pixels`` (flat list of ints, whole or partial images, starting on an image
        boundary); returns after the last one is accepted."""
        dut = self.dut
        fall = FallingEdge(dut.clk)
        ready = _reader(dut.s_axis_tready)
        data, last, valid = _writer(dut.s_axis_tdata), _writer(dut.s_axis_tlast), _writer(dut.s_axis_tvalid)
        n, total = self.n, len(pixels)
        if not total:
            return
        await fall
        k, low = 0, 0
        data(pixels[0])
        last(int(n == 1))
        valid(1)
        while True:
            if ready():                          # accepted at the end of this cycle
                low = 0
                if k % n == 0:
                    self.image_cycles.append(cycle_of(dut.clk))
                k += 1
                await fall
                if k == total:
                    break
                data(pixels[k])
                pos = k % n
                if pos == n - 1:
                    last(1)
                elif pos == 0:
                    last(0)
            else:
                low += 1
                if low > 1:                      # a longer wait: sleep until ready changes
                    await ValueChange(dut.s_axis_tready)
                await fall
        self.accepted += total
        valid(0)
        last(0)


class LeanSink:
    """``m_axis`` receiver working at falling edges (see :class:`LeanSource`): always ready
    unless :meth:`hold_after` was called; groups beats into images at ``tlast``; asleep while
    ``tvalid`` is low."""

    def __init__(self, dut, checker: Checker):
        self.dut, self.checker = dut, checker
        self.words, self.lasts = [], []
        self.beats = 0
        self._budget = None
        self.task = cocotb.start_soon(self._run())

    def hold_after(self, beats):
        """Accept only ``beats`` more beats, then keep ``tready`` low."""
        self._budget = beats

    def stop(self):
        self.task.cancel()

    async def _run(self):
        dut = self.dut
        fall = FallingEdge(dut.clk)
        valid, data, last = _reader(dut.m_axis_tvalid), _reader(dut.m_axis_tdata), _reader(dut.m_axis_tlast)
        set_ready = _writer(dut.m_axis_tready)
        limit = 4 * self.checker.p.words
        await fall
        set_ready(1)
        ready = 1
        while True:
            if self._budget is not None and self._budget <= 0 and ready:
                set_ready(0)                     # after the rising edge that took the last beat
                ready = 0
            if not valid():
                await ValueChange(dut.m_axis_tvalid)
                await fall
                continue
            if ready:                            # transferred at the end of this cycle
                self.beats += 1
                self.words.append(data())
                is_last = last()
                self.lasts.append(is_last)
                if is_last or len(self.words) > limit:
                    self.checker.image(self.words, self.lasts, cycle_of(dut.clk))
                    self.words, self.lasts = [], []
                if self._budget is not None:
                    self._budget -= 1
            await fall


# --------------------------------------------------------------------------- cocotbext-axi

def _pause_generator(prob: float, rng: random.Random):
    """cocotbext-axi pause generator: pause (True) in a cycle with probability ``prob``."""
    for _ in itertools.count():
        yield rng.random() < prob


async def _stream_axi(dut, params: Params, checker: Checker):
    from cocotbext.axi import AxiStreamBus, AxiStreamFrame, AxiStreamSink, AxiStreamSource

    source = AxiStreamSource(AxiStreamBus.from_prefix(dut, "s_axis"), dut.clk, dut.rst)
    sink = AxiStreamSink(AxiStreamBus.from_prefix(dut, "m_axis"), dut.clk, dut.rst,
                         byte_size=params.out_bits)
    for log in (source.log, sink.log):
        log.setLevel("WARNING")
    rng = random.Random(params.seed)
    if params.stall:
        source.set_pause_generator(_pause_generator(params.stall, random.Random(rng.random())))
        sink.set_pause_generator(_pause_generator(params.stall, random.Random(rng.random())))
    for image in params.images:
        source.send_nowait(AxiStreamFrame(bytes(image.reshape(-1))))

    async def receive():
        for _ in range(len(params.images)):
            frame = await sink.recv()
            words = list(frame.tdata)
            checker.image(words, [0] * (len(words) - 1) + [1], _time_to_cycle(frame.sim_time_end))

    return await receive()


#: Sim time (steps) of the start of cycle 0 and the clock period, set by :func:`_start`.
_CLOCK = {}


def _time_to_cycle(t_steps):
    """Cycle of a beat sampled at the rising edge at sim time ``t_steps``."""
    return (t_steps - _CLOCK["origin"]) // _CLOCK["period"] - 1


# --------------------------------------------------------------------------- tests

async def _start(dut):
    from cocotb.simtime import get_sim_time
    from cocotb.utils import get_sim_steps
    dut.s_axis_tvalid.value = 0
    dut.s_axis_tlast.value = 0
    dut.s_axis_tdata.value = 0
    dut.m_axis_tready.value = 0
    await clock_and_reset(dut, 4, period_ns=10)
    period = get_sim_steps(10, "ns")
    _CLOCK.update(period=period, origin=get_sim_time("step") - cycle_of(dut.clk) * period)


async def _wait_for(event, progress, limit_cycles):
    """Wait for ``event``; ``TimeoutError`` when ``progress()`` (output beats so far) has not
    moved for ``limit_cycles`` cycles (one timer per ``limit_cycles``: no per-cycle cost)."""
    last = None
    while not event.is_set():
        await First(event.wait(), Timer(limit_cycles * _CLOCK["period"], "step"))
        if event.is_set():
            break
        now = progress()
        if now == last:
            raise TimeoutError(f"no output beat for {limit_cycles} cycles ({now} beats so far)")
        last = now


def _save(params: Params, checker: Checker, **extra):
    """Write the results: ``outputs`` (images, classes + 1), ``tlast_cycles``, ``mismatch_index``,
    ``mismatch_reason`` and the measurements in ``extra``."""
    outputs = np.array(checker.outputs, dtype=np.int64).reshape(-1, params.words)
    np.savez(params.results, outputs=outputs, tlast_cycles=np.array(checker.tlast_cycles, np.int64),
             mismatch_index=np.array([i for i, _ in checker.mismatches], np.int64),
             mismatch_reason=np.array([r for _, r in checker.mismatches], dtype=str),
             **{k: np.asarray(v) for k, v in extra.items()})


@cocotb.test()
async def stream_images(dut):
    """Every image back to back; logits, class and framing compared with the golden values."""
    p = Params()
    dut._log.info("%d images, driver %s, stall %.2f, seed %d", len(p.images), p.driver, p.stall, p.seed)
    await _start(dut)
    checker = Checker(dut, p)
    wall, cpu = time.perf_counter(), time.process_time()
    first_accept = -1
    if p.driver == "lean":
        source = LeanSource(dut, p.pixels)
        sink = LeanSink(dut, checker)
        sender = cocotb.start_soon(source.send(p.images.reshape(-1).tolist()))
        await _wait_for(checker.done, lambda: sink.beats, p.timeout_cycles)
        await sender
        first_accept = source.image_cycles[0]
    else:
        cocotb.start_soon(_stream_axi(dut, p, checker))
        await _wait_for(checker.done, lambda: len(checker.outputs), p.timeout_cycles)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    _save(p, checker, first_accept=first_accept, wall_s=wall, cpu_s=cpu, complete=True)
    dut._log.info("%d images in %.1f s (%.1f s CPU), %d mismatches", len(checker.outputs), wall, cpu,
                  len(checker.mismatches))
    assert not checker.mismatches, (f"{len(checker.mismatches)} of {len(checker.outputs)} images differ; "
                                    f"first: image {checker.mismatches[0][0]}: {checker.mismatches[0][1]}")


async def _pulse_reset(dut, cycles=2):
    """``rst`` high for ``cycles`` rising edges (set and cleared at falling edges), ``tvalid`` low."""
    fall = FallingEdge(dut.clk)
    await fall
    dut.s_axis_tvalid.set(Immediate(0))
    dut.rst.set(Immediate(1))
    for _ in range(cycles):
        await fall
    dut.rst.set(Immediate(0))


@cocotb.test()
async def reset_recovery(dut):
    """Synchronous reset mid-image and mid-output; the next images come out right, at idle latency.

    Uses the first 7 images: P alone (the idle design's latency); A whole and B half, reset
    (A's result still in flight, B half in); C, D back to back; E, reset after 4 of its output
    beats (the sink then holding ``tready`` low); F.
    """
    p = Params()
    if len(p.images) < 7:
        raise ValueError(f"reset_recovery needs 7 images, got {len(p.images)}")
    await _start(dut)
    flat = [img.reshape(-1).tolist() for img in p.images[:7]]
    n = p.pixels
    fall = FallingEdge(dut.clk)

    async def run(indices, first_index):
        checker = Checker(dut, p, first_index=first_index, limit=len(indices))
        source, sink = LeanSource(dut, n), LeanSink(dut, checker)
        await source.send(sum((flat[i] for i in indices), []))
        await _wait_for(checker.done, lambda: sink.beats, p.timeout_cycles)
        for _ in range(100):                 # nothing more may come out
            await fall
        sink.stop()
        if len(checker.outputs) != len(indices):
            checker.mismatches.append((first_index, f"{len(checker.outputs)} images out, "
                                                    f"expected {len(indices)}"))
        return checker, checker.tlast_cycles[0] - source.image_cycles[0]

    # P: latency of an idle design.
    check_p, idle_latency = await run([0], 0)
    dut._log.info("idle latency %d cycles", idle_latency)

    # A whole, B half, then reset (with a deeply pipelined fold A's result may already be on
    # its way out: then it is checked as far as it got); anything of A or B coming out after
    # the reset would show up as a mismatch of C.
    check_a = Checker(dut, p, first_index=1, limit=10 ** 9)
    sink = LeanSink(dut, check_a)
    await LeanSource(dut, n).send(flat[1] + flat[2][: n // 2])
    await _pulse_reset(dut)
    sink.stop()
    dut._log.info("reset with %d output beats of A out", sink.beats)
    check_cd, latency_c = await run([3, 4], 3)

    # E, then reset after 4 of its output beats.
    partial = Checker(dut, p, first_index=5, limit=10 ** 9)
    sink = LeanSink(dut, partial)
    sink.hold_after(4)
    await LeanSource(dut, n).send(flat[5])
    while sink.beats < 4:
        await fall
    for _ in range(5):
        await fall
    await _pulse_reset(dut)
    sink.stop()
    assert sink.beats == 4 and not partial.outputs, f"{sink.beats} beats of E before the reset, expected 4"

    # F.
    check_f, latency_f = await run([6], 6)

    problems = [f"image {i}: {r}" for i, r in
                check_p.mismatches + check_a.mismatches[:1] + check_cd.mismatches + check_f.mismatches]
    if latency_c != idle_latency or latency_f != idle_latency:
        problems.append(f"latency after reset {latency_c} / {latency_f} cycles, idle design {idle_latency}")
    _save(p, check_cd, idle_latency=idle_latency, latency_after_reset=[latency_c, latency_f],
          complete=True)
    assert not problems, "; ".join(problems)


@cocotb.test()
async def capture_taps(dut):
    """Stream the images while recording every beat of the stages' tap ports."""
    p = Params()
    taps = p.raw["taps"]
    await _start(dut)
    handles = []
    for tap in taps:
        try:
            handles.append([dut[tap[k]] for k in ("valid", "ready", "payload")])
        except (AttributeError, KeyError) as exc:
            raise AttributeError(f"tap port of stage {tap['name']} not found ({exc}): the design must be "
                                 "generated with tap ports (hw.generate.generate(..., taps=True))") from None
    beats = [[] for _ in taps]

    async def monitor(valid, ready, payload, out):
        fall = FallingEdge(dut.clk)
        while True:
            await fall
            if valid.value:
                if ready.value:                  # transferred at the end of this cycle
                    out.append(int(payload.value))
            else:
                await ValueChange(valid)

    monitors = [cocotb.start_soon(monitor(*h, out)) for h, out in zip(handles, beats)]
    checker = Checker(dut, p)
    source = LeanSource(dut, p.pixels)
    sink = LeanSink(dut, checker)
    await source.send(p.images.reshape(-1).tolist())
    await _wait_for(checker.done, lambda: sink.beats, p.timeout_cycles)
    await ClockCycles(dut.clk, 10)
    for m in monitors:
        m.cancel()
    # Payloads can be wider than 64 bits: stored as hex strings.
    _save(p, checker, **{f"tap_{i}": np.array([f"{b:x}" for b in out], dtype=str)
                         for i, out in enumerate(beats)}, complete=True)
