"""The batch harness (sim/harness.py) on its own, in Amaranth's simulator, around a small stand-in
accelerator: AXI4-Stream rules kept (tvalid held until taken, data stable), results and cycle
stamps recorded, the rings refilled, gap and backpressure rates as asked.

The stand-in (``_Summer``) takes ``PIXELS`` pixels per image and answers with ``WORDS`` beats: the
pixel sum, the first pixel, the image count (tlast on the last), and is itself ready only every
other cycle, so that the harness sees backpressure on its input.
"""

import random

import pytest
from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator

from sim.harness import LFSR_TAPS, BatchHarness, lfsr_sequence, stall_threshold

PIXELS, WORDS, OUT_BITS = 6, 3, 16


class _Summer(wiring.Component):
    s_axis_tdata: In(8)
    s_axis_tvalid: In(1)
    s_axis_tlast: In(1)
    s_axis_tready: Out(1)
    m_axis_tdata: Out(OUT_BITS)
    m_axis_tvalid: Out(1)
    m_axis_tlast: Out(1)
    m_axis_tready: In(1)

    def elaborate(self, platform):
        m = Module()
        total, first, count, phase = Signal(16), Signal(8), Signal(16), Signal()
        busy, beat, pos = Signal(), Signal(range(WORDS)), Signal(range(PIXELS))
        m.d.sync += phase.eq(~phase)
        m.d.comb += self.s_axis_tready.eq(~busy & phase)
        with m.If(self.s_axis_tvalid & self.s_axis_tready):
            m.d.sync += [total.eq(total + self.s_axis_tdata), pos.eq(pos + 1)]
            with m.If(pos == 0):
                m.d.sync += [first.eq(self.s_axis_tdata), total.eq(self.s_axis_tdata)]
            with m.If(self.s_axis_tlast):
                m.d.sync += [busy.eq(1), pos.eq(0), count.eq(count + 1)]
        words = [total, first, count]
        with m.Switch(beat):
            for k, w in enumerate(words):
                with m.Case(k):
                    m.d.comb += self.m_axis_tdata.eq(w)
        m.d.comb += [self.m_axis_tvalid.eq(busy), self.m_axis_tlast.eq(beat == WORDS - 1)]
        with m.If(self.m_axis_tvalid & self.m_axis_tready):
            m.d.sync += beat.eq(beat + 1)
            with m.If(self.m_axis_tlast):
                m.d.sync += [beat.eq(0), busy.eq(0)]
        return m


MANIFEST = {"top": "summer", "ports": {"s_axis_tdata_bits": 8, "m_axis_tdata_bits": OUT_BITS,
                                       "in_beats_per_image": PIXELS, "out_beats_per_image": WORDS}}


def test_stall_threshold_and_lfsr():
    assert stall_threshold(0.0) == 0 and stall_threshold(0.3) == 19661 and stall_threshold(0.5) == 32768
    for bad in (-0.1, 1.0, 1.5):
        with pytest.raises(ValueError, match=r"in \[0, 1\)"):
            stall_threshold(bad)
    # Galois steps by hand: an odd state shifts and takes the taps, an even one only shifts.
    assert lfsr_sequence(1, 2) == [LFSR_TAPS, (LFSR_TAPS >> 1) ^ LFSR_TAPS]     # the taps are odd
    assert lfsr_sequence(2, 1) == [1] and lfsr_sequence(0, 1) == [LFSR_TAPS]   # seed 0 runs as 1


def test_bad_parameters():
    with pytest.raises(ValueError, match="power of two"):
        BatchHarness(MANIFEST, ring_images=6)
    with pytest.raises(ValueError, match="pixels_per_word"):
        BatchHarness(MANIFEST, ring_images=4, pixels_per_word=0)


def _run(stall: float, n_images: int, seed: int = 3):
    """Simulate ``n_images`` random images through the harness around the stand-in; returns the
    images, the result entries (data, tlast, cycle), per-cycle bus samples and the counters."""
    h = BatchHarness(MANIFEST, ring_images=4, pixels_per_word=4, dut=_Summer())
    rng = random.Random(seed)
    images = [[rng.randrange(256) for _ in range(PIXELS)] for _ in range(n_images)]
    sim = Simulator(h)
    samples, results = [], []
    accel = h.dut

    async def tb(ctx):
        async def cycle():
            ctx.set(h.clk, 1)
            await ctx.delay(5e-9)
            ctx.set(h.clk, 0)
            await ctx.delay(5e-9)

        def put(k):                            # image k into its ring slot, through the host port
            base = (k % h.ring_images) * h.words_per_image
            for w in range(h.words_per_image):
                px = images[k][w * 4:(w + 1) * 4]
                ctx.set(h.host_image_addr, base + w)
                ctx.set(h.host_image_data, sum(p << (8 * j) for j, p in enumerate(px)))
                ctx.set(h.host_image_en, 1)
                yield

        ctx.set(h.accel_rst, 1)
        ctx.set(h.in_stall, stall_threshold(stall))
        ctx.set(h.out_stall, stall_threshold(stall))
        ctx.set(h.in_seed, 11)
        ctx.set(h.out_seed, 12)
        ctx.set(h.stop_at, n_images)
        loaded = min(n_images, h.ring_images)
        for k in range(loaded):
            for _ in put(k):
                await cycle()
        ctx.set(h.host_image_en, 0)
        ctx.set(h.loaded, loaded)
        for _ in range(3):
            await cycle()
        ctx.set(h.accel_rst, 0)
        await cycle()
        ctx.set(h.run, 1)
        read = 0
        for _ in range(400 * n_images):
            ctx.set(h.clk, 1)
            await ctx.delay(5e-9)
            ctx.set(h.clk, 0)
            await ctx.delay(1e-9)
            samples.append(tuple(ctx.get(s) for s in (accel.s_axis_tvalid, accel.s_axis_tready,
                                                       accel.s_axis_tdata, accel.m_axis_tready)))
            await ctx.delay(4e-9)
            # Empty the result ring and refill the image ring (with the clock stopped: the
            # testbench of the Verilator build does the same between its wake-ups).
            if ctx.get(h.cycle) % 16 == 0 or ctx.get(h.reached):
                ctx.set(h.run, 0)
                samples.append(None)           # not consecutive across the refill
                await cycle()                  # the harness registers run: stopped from here
                while read < ctx.get(h.out_words):
                    ctx.set(h.host_res_addr, read % h.ring_words)
                    await ctx.delay(1e-9)
                    entry = ctx.get(h.host_res_data)
                    results.append((entry & 0xFFFF, entry >> OUT_BITS, ctx.get(h.host_res_cycle)))
                    read += 1
                consumed = ctx.get(h.in_images)
                new = min(n_images, consumed + h.ring_images)
                for k in range(loaded, new):
                    for _ in put(k):
                        await cycle()
                ctx.set(h.host_image_en, 0)
                loaded = new
                ctx.set(h.loaded, loaded)
                if ctx.get(h.reached):
                    break
                ctx.set(h.run, 1)

    sim.add_testbench(tb)
    sim.run()
    return images, results, samples


@pytest.mark.parametrize("stall", [0.0, 0.3])
def test_results_framing_and_axi_rules(stall):
    n = 12
    images, results, samples = _run(stall, n)
    assert len(results) == n * WORDS
    for k in range(n):
        got = results[k * WORDS:(k + 1) * WORDS]
        assert [d for d, _, _ in got] == [sum(images[k]) & 0xFFFF, images[k][0], k + 1], f"image {k}"
        assert [t for _, t, _ in got] == [0] * (WORDS - 1) + [1], f"image {k}: tlast"
    stamps = [c for _, _, c in results]
    assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)     # one beat per cycle at most
    # AXI4-Stream: once tvalid is high it stays high, with the same data, until the beat is taken.
    pairs = [(a, b) for a, b in zip(samples, samples[1:]) if a and b]
    for (v0, r0, d0, _), (v1, _, d1, _) in pairs:
        if v0 and not r0:
            assert v1 and d1 == d0
    if stall == 0:                                                          # sink always ready
        assert all(b[3] for a, b in pairs if a[3])


def test_gap_and_backpressure_rates():
    """With P = 0.3 an idle source starts a beat in about 70 % of the cycles it could, and the
    sink is ready in about 70 % of the cycles (LFSR, 16-bit threshold)."""
    _, _, samples = _run(0.3, 40)
    pairs = [(a, b) for a, b in zip(samples, samples[1:]) if a and b]
    ready = [b[3] for a, b in pairs if a[3] is not None]
    assert 0.65 < sum(ready) / len(ready) < 0.75
    starts = idle = 0
    for (v0, r0, _, _), (v1, _, _, _) in pairs:
        if not v0 or r0:            # the source was free to start a beat in the next cycle
            idle += 1
            starts += v1
    assert 0.6 < starts / idle < 0.8
