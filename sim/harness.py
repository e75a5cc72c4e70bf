"""Batch test harness: the emitted accelerator fed from and drained into simulator memories.

:class:`BatchHarness` is an Amaranth component (test equipment, not part of the product) that
instantiates the accelerator as the emitted Verilog module (``Instance`` of the manifest's top,
so the simulated design is the file :func:`hw.generate.generate` wrote, exactly), streams images
into its ``s_axis`` from a ring of image memory, takes its ``m_axis`` beats into a ring of
result memory with a cycle stamp per beat, and inserts seeded pseudo-random input gaps and
output backpressure with two LFSRs. A testbench (:mod:`sim.tb.tb_batch`) fills the image ring
and empties the result ring through the simulator's handles on these memories, waking up once
per refill period instead of once per beat: the per-cycle work is done by the simulator alone.

Ports (all synchronous to ``clk``; the harness has no reset port)
-----------------------------------------------------------------
``clk`` In(1)
    The only clock: the harness's ``sync`` domain and the accelerator's ``clk``.
``run`` In(1)
    While high (registered: from the next cycle) the cycle counter counts and the source and
    sink work; while low no new beat is offered and ``m_axis_tready`` is low (a beat already
    offered stays offered, as AXI4-Stream requires).
``accel_rst`` In(1)
    Drives the accelerator's synchronous ``rst`` (through a register: one cycle later).
``loaded`` In(32)
    Images written into the image ring so far (a running count); the source presents image
    ``k`` only once ``k < loaded``.
``in_stall``, ``out_stall`` In(16)
    Gap and backpressure thresholds: each cycle an idle source starts the next beat only when
    its LFSR's low 16 bits are ``>= in_stall`` (a gap with probability ``in_stall / 65536``),
    and ``m_axis_tready`` is high only when the sink LFSR's low 16 bits are ``>= out_stall``.
``in_seed``, ``out_seed`` In(32)
    LFSR seeds, loaded while the accelerator is held in reset (0 is replaced by 1: the all-zero
    state is stuck); the LFSRs advance in every cycle with ``run`` high.
``stop_at`` In(32)
    ``reached`` goes high once ``out_images >= stop_at`` (for waiting on the end in Amaranth's
    simulator, ``tests/test_sim_harness.py``; the cocotb testbench polls ``out_images`` and leaves
    both alone).
``cycle`` Out(32)
    Cycles counted while ``run`` is high: the stamps' time base.
``in_images`` Out(32), ``out_words`` Out(32), ``out_images`` Out(32)
    Images whose last pixel was accepted; result beats taken; results with ``tlast`` taken.
``reached`` Out(1)

Memories (visible to the simulator as arrays of the harness's top module)
--------------------------------------------------------------------------
``images``: ``ring_images * words_per_image`` words of ``pixels_per_word * pixel_bits`` bits;
image ``k`` occupies words ``(k % ring_images) * words_per_image ..``, pixel ``j`` in bits
``(j % pixels_per_word) * pixel_bits ..`` of word ``j // pixels_per_word`` (little-endian).
``res_data`` (``out_bits + 1`` bits: ``tlast`` above the data) and ``res_cycle`` (32 bits):
beat ``b`` in entry ``b % ring_words``. ``first_cycle`` (32 bits): the cycle in which the first
pixel of image ``k`` was accepted, entry ``k % ring_images``. Each memory also has a host port
(``host_*``; writes to ``images``, reads of the other three) so that it is an ordinary RAM and
not folded into constants by the simulator's optimiser.

Cycle stamps follow :mod:`sim.streams`: a beat belongs to the cycle at whose end ``valid &
ready`` was sampled; the cycle counter reads 0 in the first cycle with ``run`` high.

The source obeys AXI4-Stream: once ``tvalid`` is high it stays high, with the same data, until
the beat is taken; gaps are inserted only between beats. Without stalls (thresholds 0) the
pixels of all loaded images go back to back, as the per-beat testbench's lean driver sends them.
"""

from __future__ import annotations

import math

from amaranth.hdl import Cat, ClockDomain, ClockSignal, Instance, Module, Mux, ResetInserter, Signal
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from sim.stall import LFSR_TAPS, lfsr_sequence, stall_threshold

__all__ = ["BatchHarness", "LFSR_TAPS", "stall_threshold", "lfsr_sequence", "HARNESS_TOP"]

#: Verilog module name of the harness.
HARNESS_TOP = "lenet5_batch_harness"


class _Lfsr:
    """32-bit Galois LFSR in ``m``: loads ``seed`` (0 -> 1) while ``load``, else advances every
    cycle while ``run``."""

    def __init__(self, m: Module, name: str, run, load, seed):
        self.state = Signal(32, init=1, name=f"{name}_lfsr")
        with m.If(load):
            m.d.sync += self.state.eq(seed | (seed == 0))
        with m.Elif(run):
            m.d.sync += self.state.eq((self.state >> 1) ^ Mux(self.state[0], LFSR_TAPS, 0))


class BatchHarness(wiring.Component):
    """Images in from an image-memory ring, results out into a result-memory ring, around the
    emitted accelerator (see the module docstring for ports, memories and timing).

    Parameters
    ----------
    manifest : dict
        The design's manifest (:func:`hw.generate.generate`): its ``top`` and ``ports``
        (:meth:`hw.arch.signature.TopSignature.describe`: ``s_axis_tdata_bits``,
        ``m_axis_tdata_bits``, ``in_beats_per_image``, ``out_beats_per_image``).
    ring_images : int
        Images the image ring holds (a power of two, >= 4); the result ring holds as many
        images' beats and the ``first_cycle`` ring as many entries.
    pixels_per_word : int
        Pixels per image-memory word (1 .. 64).
    dut : amaranth.lib.wiring.Component, optional
        An Amaranth component with the accelerator's stream ports (``s_axis_*``, ``m_axis_*``,
        as :class:`hw.arch.signature.TopSignature`) and a ``sync`` domain, used instead of the
        emitted module (for tests of the harness itself in Amaranth's simulator); its reset is
        the harness's ``accel_rst`` register.

    Raises
    ------
    ValueError
        A ring size that is not a power of two >= 4, or ``pixels_per_word`` outside 1..64.
    """

    def __init__(self, manifest: dict, ring_images: int = 256, pixels_per_word: int = 8, dut=None):
        if ring_images < 4 or ring_images & (ring_images - 1):
            raise ValueError(f"ring_images must be a power of two >= 4, not {ring_images}")
        if not 1 <= pixels_per_word <= 64:
            raise ValueError(f"pixels_per_word must be 1..64, not {pixels_per_word}")
        interface = manifest["ports"]
        self.top = str(manifest["top"])
        self.pixel_bits = int(interface["s_axis_tdata_bits"])
        self.out_bits = int(interface["m_axis_tdata_bits"])
        self.pixels = int(interface["in_beats_per_image"])
        self.words_out = int(interface["out_beats_per_image"])
        self.dut = dut
        self.ring_images = ring_images
        self.pixels_per_word = pixels_per_word
        self.words_per_image = math.ceil(self.pixels / pixels_per_word)
        self.ring_words = ring_images * self.words_out
        self.image_depth = ring_images * self.words_per_image
        abits = max(1, (self.image_depth - 1).bit_length())
        rbits = max(1, (self.ring_words - 1).bit_length())
        fbits = max(1, (ring_images - 1).bit_length())
        super().__init__({
            "clk": In(1), "run": In(1), "accel_rst": In(1),
            "loaded": In(32), "stop_at": In(32),
            "in_stall": In(16), "out_stall": In(16), "in_seed": In(32), "out_seed": In(32),
            "cycle": Out(32), "in_images": Out(32), "out_words": Out(32), "out_images": Out(32),
            "reached": Out(1),
            "host_image_addr": In(abits), "host_image_data": In(pixels_per_word * self.pixel_bits),
            "host_image_en": In(1),
            "host_res_addr": In(rbits), "host_res_data": Out(self.out_bits + 1), "host_res_cycle": Out(32),
            "host_first_addr": In(fbits), "host_first_cycle": Out(32),
        })

    def parameters(self) -> dict:
        """What the testbench needs to address the memories."""
        return {"pixels": self.pixels, "pixel_bits": self.pixel_bits, "out_bits": self.out_bits,
                "words_out": self.words_out, "ring_images": self.ring_images,
                "pixels_per_word": self.pixels_per_word, "words_per_image": self.words_per_image,
                "ring_words": self.ring_words}

    def elaborate(self, platform):
        m = Module()
        m.domains.sync = cd = ClockDomain("sync", reset_less=True)
        m.d.comb += cd.clk.eq(self.clk)

        images = m.submodules.images = memory.Memory(
            shape=self.pixels_per_word * self.pixel_bits, depth=self.image_depth, init=[])
        res_data = m.submodules.res_data = memory.Memory(shape=self.out_bits + 1, depth=self.ring_words, init=[])
        res_cycle = m.submodules.res_cycle = memory.Memory(shape=32, depth=self.ring_words, init=[])
        first = m.submodules.first_cycle = memory.Memory(shape=32, depth=self.ring_images, init=[])

        run = Signal()
        rst = Signal(init=1)
        m.d.sync += [run.eq(self.run), rst.eq(self.accel_rst)]
        cycle = Signal(32)
        with m.If(run):
            m.d.sync += cycle.eq(cycle + 1)
        m.d.comb += self.cycle.eq(cycle)

        in_lfsr = _Lfsr(m, "in", run, rst, self.in_seed)
        out_lfsr = _Lfsr(m, "out", run, rst, self.out_seed)

        # Source: image k, pixel j; the word address advances with the pixel.
        tvalid, tready, tlast = Signal(), Signal(), Signal()
        m_tvalid, m_tready, m_tlast = Signal(), Signal(), Signal()
        m_tdata = Signal(self.out_bits)
        image, pixel, slot = Signal(32), Signal(range(self.pixels)), Signal(range(self.pixels_per_word))
        base = Signal(range(self.image_depth))           # first word of image's ring slot
        word = Signal(range(self.image_depth))
        rd = images.read_port(domain="comb")
        m.d.comb += rd.addr.eq(word)
        tdata = Signal(self.pixel_bits)
        m.d.comb += [tdata.eq(rd.data.word_select(slot, self.pixel_bits)),
                     tlast.eq(pixel == self.pixels - 1)]
        start_beat = Signal()
        m.d.comb += start_beat.eq(run & (image < self.loaded) & (in_lfsr.state[:16] >= self.in_stall))
        fw = first.write_port()
        m.d.comb += [fw.addr.eq(image[:len(fw.addr)]), fw.data.eq(cycle)]
        with m.If(tvalid & tready):
            m.d.comb += fw.en.eq(pixel == 0)
            with m.If(tlast):
                next_base = Signal.like(base)
                m.d.comb += next_base.eq(Mux(base == self.image_depth - self.words_per_image, 0,
                                             base + self.words_per_image))
                m.d.sync += [image.eq(image + 1), pixel.eq(0), slot.eq(0), base.eq(next_base),
                             word.eq(next_base), self.in_images.eq(self.in_images + 1)]
            with m.Else():
                m.d.sync += pixel.eq(pixel + 1)
                with m.If(slot == self.pixels_per_word - 1):
                    m.d.sync += [slot.eq(0), word.eq(word + 1)]
                with m.Else():
                    m.d.sync += slot.eq(slot + 1)
            # Next beat: decided now, like an idle source's (the image count is updated below).
            m.d.sync += tvalid.eq(start_beat & ~(tlast & (image + 1 >= self.loaded)))
        with m.Elif(~tvalid):
            m.d.sync += tvalid.eq(start_beat)

        # Sink: ready from the LFSR; every beat taken is written with its cycle stamp.
        m.d.sync += m_tready.eq(run & (out_lfsr.state[:16] >= self.out_stall))
        wd, wc = res_data.write_port(), res_cycle.write_port()
        wptr = Signal(range(self.ring_words))
        m.d.comb += [wd.addr.eq(wptr), wc.addr.eq(wptr), wd.data.eq(Cat(m_tdata, m_tlast)), wc.data.eq(cycle)]
        with m.If(m_tvalid & m_tready):
            m.d.comb += [wd.en.eq(1), wc.en.eq(1)]
            m.d.sync += [wptr.eq(Mux(wptr == self.ring_words - 1, 0, wptr + 1)),
                         self.out_words.eq(self.out_words + 1)]
            with m.If(m_tlast):
                m.d.sync += self.out_images.eq(self.out_images + 1)
        m.d.comb += self.reached.eq(self.out_images >= self.stop_at)

        # Host ports (keep the memories ordinary RAMs; see the module docstring).
        hw_ = images.write_port()
        m.d.comb += [hw_.addr.eq(self.host_image_addr), hw_.data.eq(self.host_image_data),
                     hw_.en.eq(self.host_image_en & ~run)]
        for mem, out in ((res_data, self.host_res_data), (res_cycle, self.host_res_cycle)):
            port = mem.read_port(domain="comb")
            m.d.comb += [port.addr.eq(self.host_res_addr), out.eq(port.data)]
        port = first.read_port(domain="comb")
        m.d.comb += [port.addr.eq(self.host_first_addr), self.host_first_cycle.eq(port.data)]

        if self.dut is None:
            m.submodules.accel = Instance(
                self.top,
                i_clk=ClockSignal("sync"), i_rst=rst,
                i_s_axis_tdata=tdata, i_s_axis_tvalid=tvalid, i_s_axis_tlast=tlast, o_s_axis_tready=tready,
                o_m_axis_tdata=m_tdata, o_m_axis_tvalid=m_tvalid, o_m_axis_tlast=m_tlast, i_m_axis_tready=m_tready)
        else:
            d = self.dut
            m.submodules.accel = ResetInserter(rst)(d)
            m.d.comb += [d.s_axis_tdata.eq(tdata), d.s_axis_tvalid.eq(tvalid), d.s_axis_tlast.eq(tlast),
                         tready.eq(d.s_axis_tready), m_tdata.eq(d.m_axis_tdata), m_tvalid.eq(d.m_axis_tvalid),
                         m_tlast.eq(d.m_axis_tlast), d.m_axis_tready.eq(m_tready)]
        return m
