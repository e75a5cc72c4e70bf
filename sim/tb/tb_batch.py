"""cocotb testbench of the batch harness (:mod:`sim.harness`) around the emitted accelerator.

The fast simulation path of :mod:`sim.accel`: Python fills the harness's image ring and empties
its result ring through the simulator's handles on the memories, and otherwise sleeps for a
whole refill period (a quarter of the ring's images at one pixel per cycle, the fastest the
accelerator can take them), so the simulator runs without Python between wake-ups. The
harness inserts the input gaps and output backpressure itself (seeded LFSRs), and stamps every
result beat with its cycle. The testbench compares words with the expected ones the caller
computed (:func:`golden.reference.run`): it holds no arithmetic.

Test ``stream_batch``
    All images through the rings; writes the same results file as :mod:`sim.tb.tb_accel`'s
    ``stream_images`` (``outputs``, ``tlast_cycles``, ``first_accept``, ``mismatch_index``,
    ``mismatch_reason``, ``wall_s``, ``cpu_s``, ``complete``) plus ``word_cycles`` (every result
    beat's cycle stamp, images x words), ``first_cycles`` (the cycle each image's first pixel was
    accepted) and ``cycles`` (cycles simulated while running).

Parameters (:func:`sim.streams.tb_params`): ``images``, ``expected``, ``results``, ``progress``,
``out_bits``, ``logit_bits``, ``logit_signed``, ``stall``, ``seed``, ``timeout_cycles`` as for
:mod:`sim.tb.tb_accel`; ``harness``: :meth:`sim.harness.BatchHarness.parameters`.
"""

from __future__ import annotations

import gc
import random
import time

import numpy as np

import cocotb
from cocotb.clock import Clock
from cocotb.handle import Immediate
from cocotb.triggers import RisingEdge, Timer

from sim.stall import stall_threshold
from sim.streams import tb_params, to_signed, write_progress

#: GPI action of an immediate write (cocotb's ``Immediate``).
_NO_DELAY = 3
#: Clock period (ns) and the offset of the testbench's wake-ups after a rising edge (ns): away
#: from both clock edges, so a wake-up never races an edge.
PERIOD_NS, OFFSET_NS = 10, 2


class Rings:
    """Raw simulator access to the harness's memories and counters (32-bit words)."""

    def __init__(self, dut, h: dict):
        self.h = h
        self.image_words = [dut.images[i]._handle for i in range(h["ring_images"] * h["words_per_image"])]
        self.res_data = [dut.res_data[i]._handle for i in range(h["ring_words"])]
        self.res_cycle = [dut.res_cycle[i]._handle for i in range(h["ring_words"])]
        self.first = [dut.first_cycle[i]._handle for i in range(h["ring_images"])]
        self.counter = {name: getattr(dut, name)._handle for name in ("in_images", "out_words", "out_images", "cycle")}

    def read(self, name: str) -> int:
        return self.counter[name].get_signal_val_long() & 0xFFFF_FFFF

    def put_image(self, index: int, words: list):
        """Write image ``index``'s words (binary strings, most significant bit first)."""
        base = (index % self.h["ring_images"]) * self.h["words_per_image"]
        for k, w in enumerate(words):
            self.image_words[base + k].set_signal_val_binstr(_NO_DELAY, w)

    def get_first(self, start: int, stop: int) -> list:
        n = self.h["ring_images"]
        return [self.first[k % n].get_signal_val_long() & 0xFFFF_FFFF for k in range(start, stop)]

    def get_results(self, start: int, stop: int):
        n = self.h["ring_words"]
        data = [self.res_data[b % n].get_signal_val_long() for b in range(start, stop)]
        cycles = [self.res_cycle[b % n].get_signal_val_long() & 0xFFFF_FFFF for b in range(start, stop)]
        return data, cycles


def pack_words(image: np.ndarray, h: dict) -> list:
    """One image (H, W) of unsigned pixels -> its image-memory words as binary strings (most
    significant bit first; pixel ``j`` of a word in bits ``j * pixel_bits ..``)."""
    ppw, bits = h["pixels_per_word"], h["pixel_bits"]
    flat = np.zeros(h["words_per_image"] * ppw, dtype=np.int64)
    flat[:h["pixels"]] = image.reshape(-1)
    bitmat = (flat[:, None] >> np.arange(bits)[None, :]) & 1          # (pixels, bits), LSB first
    words = bitmat.reshape(h["words_per_image"], ppw * bits)[:, ::-1]
    return [row.tobytes().decode("ascii") for row in (words + ord("0")).astype(np.uint8)]


@cocotb.test()
async def stream_batch(dut):
    """Every image through the harness; logits, class and framing compared with the golden values."""
    p = tb_params()
    h = p["harness"]
    images = np.load(p["images"]).astype(np.uint8)
    expected = np.load(p["expected"]).astype(np.int64)
    n, words = len(images), int(h["words_out"])
    stall, seed = float(p.get("stall", 0.0)), int(p.get("seed", 0))
    out_bits, signed = int(p["out_bits"]), bool(p["logit_signed"])
    timeout = int(p.get("timeout_cycles", 100_000))
    rng = random.Random(seed)

    t_setup = time.perf_counter()
    rings = Rings(dut, h)
    t_setup = time.perf_counter() - t_setup
    for name, value in (("run", 0), ("accel_rst", 1), ("loaded", 0),
                        ("in_stall", stall_threshold(stall)), ("out_stall", stall_threshold(stall)),
                        ("in_seed", rng.getrandbits(32)), ("out_seed", rng.getrandbits(32))):
        getattr(dut, name).value = value
    if p.get("clock", "cocotb") == "cocotb":
        Clock(dut.clk, PERIOD_NS, unit="ns", impl="gpi", set_action=Immediate).start(start_high=False)
    # else the simulator's main toggles clk (sim/clocked_main.cpp): the same waveform, low from
    # time 0 and rising every PERIOD_NS from PERIOD_NS / 2.
    await RisingEdge(dut.clk)
    await Timer(OFFSET_NS, "ns")

    wall, cpu = time.perf_counter(), time.process_time()
    loaded = min(n, h["ring_images"])
    for k in range(loaded):
        rings.put_image(k, pack_words(images[k], h))
    dut.loaded.value = loaded
    for _ in range(3):                                   # the accelerator's reset, registered
        await Timer(PERIOD_NS, "ns")
    dut.accel_rst.value = 0
    await Timer(PERIOD_NS, "ns")
    dut.run.value = 1

    period = max(1, h["ring_images"] // 4) * h["pixels"]
    finished = 0                      # images whose last word has come out
    data, cycles, first_cycles = [], [], []
    read, idle, progress_mark = 0, 0, 0
    python_s = 0.0
    gc.collect()
    gc.freeze()                       # the handles made above: not scanned again
    while True:
        python_s += time.perf_counter()
        # A whole refill period, or near the end the fewest cycles the remaining images can take
        # (one pixel per cycle): only timed wake-ups, no value-change callback in every step.
        wait = min(period, max(h["pixels"], (n - finished) * h["pixels"]))
        await Timer(wait * PERIOD_NS, "ns")
        python_s -= time.perf_counter()
        out_words = rings.read("out_words")
        if out_words - read > h["ring_words"]:
            raise RuntimeError(f"result ring overrun: {out_words - read} beats unread, ring holds {h['ring_words']}")
        d, c = rings.get_results(read, out_words)
        data += d
        cycles += c
        idle = 0 if out_words > read else idle + wait
        read = out_words
        consumed = rings.read("in_images")
        first_cycles += rings.get_first(len(first_cycles), consumed)
        new = min(n, consumed + h["ring_images"])
        for k in range(loaded, new):
            rings.put_image(k, pack_words(images[k], h))
        if new != loaded:
            loaded = new
            dut.loaded.value = loaded
        done_images = read // words
        if done_images >= progress_mark + 50 or done_images >= n:
            write_progress(p.get("progress"), min(done_images, n))
            progress_mark = done_images
        finished = rings.read("out_images")
        if finished >= n:
            await Timer(PERIOD_NS, "ns")              # the beat with tlast may still be in flight
            out_words = rings.read("out_words")
            d, c = rings.get_results(read, out_words)
            data += d
            cycles += c
            read = out_words
            break
        if idle > timeout:
            raise TimeoutError(f"no output beat for {idle} cycles ({read} beats, {read // words} images so far)")
    total_cycles = rings.read("cycle")
    first_cycles += rings.get_first(len(first_cycles), rings.read("in_images"))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    python_s += wall

    # Decode: images are framed by tlast (bit out_bits of each entry).
    mask = (1 << out_bits) - 1
    outputs, tlast_cycles, word_cycles, mismatches = [], [], [], []
    beat, i = 0, 0
    while beat < len(data) and i < n:
        start = beat
        while beat < len(data) and not (data[beat] >> out_bits) & 1 and beat - start <= 4 * words:
            beat += 1
        stop = min(beat + 1, len(data))
        got_words = [d & mask for d in data[start:stop]]
        got = [to_signed(w, out_bits) if signed else w for w in got_words[:-1]] + got_words[-1:]
        outputs.append((got + [0] * words)[:words])
        word_cycles.append(([*cycles[start:stop]] + [-1] * words)[:words])
        tlast_cycles.append(cycles[stop - 1])
        want = [int(v) for v in expected[i]]
        if stop - start != words:
            mismatches.append((i, f"framing: {stop - start} beats up to tlast, expected {words}"))
        elif got != want:
            mismatches.append((i, f"got {got}, expected {want}"))
        beat, i = stop, i + 1
    if i < n:
        mismatches.append((i, f"only {i} of {n} images came out"))
    first_accept = first_cycles[0] if first_cycles else -1
    np.savez(p["results"], outputs=np.array(outputs, np.int64).reshape(-1, words),
             tlast_cycles=np.array(tlast_cycles, np.int64), word_cycles=np.array(word_cycles, np.int64),
             first_accept=first_accept, first_cycles=np.array(first_cycles, np.int64),
             mismatch_index=np.array([k for k, _ in mismatches], np.int64),
             mismatch_reason=np.array([r for _, r in mismatches], dtype=str),
             cycles=total_cycles, wall_s=wall, cpu_s=cpu, python_s=python_s, complete=True)
    dut._log.info("handles %.2f s", t_setup)
    dut._log.info("%d images, %d cycles in %.1f s (%.1f s CPU, %.0f cycles/s), %d mismatches", len(outputs),
                  total_cycles, wall, cpu, total_cycles / max(wall, 1e-9), len(mismatches))
    assert not mismatches, (f"{len(mismatches)} of {n} images differ; first: image {mismatches[0][0]}: "
                            f"{mismatches[0][1]}")
