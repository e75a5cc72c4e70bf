# amaranth: UnusedElaboratable=no
"""hw.components.fifo.WideFIFO: cycle for cycle the same as Amaranth's SyncFIFO (run side by side in the
Amaranth simulator under random writes and reads), lint, and parameter errors."""

import numpy as np
import pytest
from amaranth import Module
from amaranth.lib.fifo import SyncFIFO
from amaranth.sim import Simulator

from hw.emit import lint_verilog, write_verilog
from hw.components.fifo import SLICE_BITS, WideFIFO

SEED = 20261201


@pytest.mark.parametrize("width, depth, p_write, p_read", [
    (201, 5, 0.7, 0.5), (1201, 3, 0.9, 0.9), (8, 1, 0.5, 0.5), (130, 2, 1.0, 0.6), (64, 7, 0.4, 0.9),
])
def test_same_as_syncfifo(width, depth, p_write, p_read):
    wide, ref = WideFIFO(width=width, depth=depth), SyncFIFO(width=width, depth=depth)
    assert wide.slices == -(-width // SLICE_BITS)
    m = Module()
    m.submodules.wide, m.submodules.ref = wide, ref
    rng = np.random.default_rng(SEED + width + depth)
    checked = {"reads": 0}

    async def bench(ctx):
        for cycle in range(600):
            data = int(rng.integers(0, 2 ** 62)) * (2 ** max(0, width - 62)) % (2 ** width) + cycle % 7
            w_en, r_en = int(rng.random() < p_write), int(rng.random() < p_read)
            for fifo in (wide, ref):
                ctx.set(fifo.w_data, data)
                ctx.set(fifo.w_en, w_en)
                ctx.set(fifo.r_en, r_en)
            got = [ctx.get(s) for s in (wide.w_rdy, wide.r_rdy, wide.level)]
            want = [ctx.get(s) for s in (ref.w_rdy, ref.r_rdy, ref.level)]
            assert got == want, f"cycle {cycle}: w_rdy, r_rdy, level {got} != SyncFIFO {want}"
            if want[1]:
                assert ctx.get(wide.r_data) == ctx.get(ref.r_data), f"cycle {cycle}: r_data differs"
                checked["reads"] += r_en
            await ctx.tick()

    sim = Simulator(m)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert checked["reads"] > 100


def test_lint_clean(tmp_path):
    path = write_verilog(WideFIFO(width=201, depth=67), "wide_fifo", tmp_path)
    assert lint_verilog([path], "wide_fifo") == []


@pytest.mark.parametrize("kw, error", [(dict(width=0, depth=2), ValueError), (dict(width=8, depth=0), ValueError),
                                       (dict(width=8.0, depth=2), TypeError)])
def test_parameter_errors(kw, error):
    with pytest.raises(error):
        WideFIFO(**kw)
