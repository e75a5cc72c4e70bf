# amaranth: UnusedElaboratable=no
"""ClassifierOutput: logits then argmax (golden.arith.argmax_first), framing and timing model."""

import numpy as np
import pytest
from amaranth.sim import Simulator

from golden.arith import argmax_first
from golden.qformat import QFormat
from hw.emit import emit_verilog, lint_verilog
from hw.output import ClassifierOutput

SEED = 7


def _run(dut, images, avail, ready_prob=1.0, seed=SEED):
    """Drive ``images`` (list of logit lists) with the avail schedule; return beats, accept/out cycles."""
    rng = np.random.default_rng(seed)
    lanes = dut.lanes
    beats = [img[b * lanes:(b + 1) * lanes] for img in images for b in range(dut.in_beats)]
    got, accept, out = [], [], []
    sim = Simulator(dut)
    sim.add_clock(1e-8)

    async def source(ctx):
        cycle = 0
        for k, beat in enumerate(beats):
            while cycle < avail[k]:
                await ctx.tick()
                cycle += 1
            ctx.set(dut.i.valid, 1)
            for l, v in enumerate(beat):
                ctx.set(dut.i.payload.data[l], int(v))
            while True:
                _, _, ready = await ctx.tick().sample(dut.i.ready)
                cycle += 1
                if ready:
                    accept.append(cycle - 1)
                    break
            ctx.set(dut.i.valid, 0)

    async def sink(ctx):
        cycle = 0
        n = len(images) * (dut.classes + 1)
        while len(got) < n:
            ready = rng.random() < ready_prob
            ctx.set(dut.o.ready, int(ready))
            _, _, valid, payload = await ctx.tick().sample(dut.o.valid, dut.o.payload)
            if valid and ready:
                got.append((int(payload.data), int(payload.last)))
                out.append(cycle)
            cycle += 1

    sim.add_testbench(source)
    sim.add_testbench(sink)
    sim.run()
    return got, accept, out


@pytest.mark.parametrize("lanes", [1, 2, 5, 10])
@pytest.mark.parametrize("fmt", [QFormat(16, 8, True), QFormat(4, 0, True), QFormat(8, 0, False)])
def test_output_values_and_timing(lanes, fmt):
    rng = np.random.default_rng(SEED + lanes)
    images = rng.integers(fmt.min, fmt.max + 1, (5, 10))
    images[1] = fmt.max                                # all tied: class 0
    images[2, 3] = images[2, 7] = fmt.max               # tie between 3 and 7: class 3
    images[3] = fmt.min
    dut = ClassifierOutput(logit_fmt=fmt, classes=10, lanes=lanes, out_width=16)
    n_beats = 5 * dut.in_beats
    avail = np.cumsum(rng.integers(0, 4, n_beats)).tolist()
    got, accept, out = _run(dut, images.tolist(), avail)
    classes = argmax_first(images)
    want = []
    for img, cls in zip(images, classes):
        want += [(int(v) & 0xFFFF, 0) for v in img] + [(int(cls), 1)]
    assert got == want
    model = dut.timing(avail)
    assert accept == model.accept and out == model.out


def test_output_backpressure_keeps_order():
    fmt = QFormat(16, 8, True)
    rng = np.random.default_rng(SEED)
    images = rng.integers(fmt.min, fmt.max + 1, (4, 10))
    dut = ClassifierOutput(logit_fmt=fmt, classes=10, lanes=2, out_width=16)
    got, _, _ = _run(dut, images.tolist(), [0] * 20, ready_prob=0.6)
    values = [v for v, _ in got]
    assert len(got) == 44
    for n, img in enumerate(images):
        assert [v - (1 << 16) if v >= 1 << 15 else v for v in values[n * 11:n * 11 + 10]] == img.tolist()
        assert values[n * 11 + 10] == argmax_first(img)


def test_output_lint_and_validation(tmp_path):
    dut = ClassifierOutput(logit_fmt=QFormat(16, 8, True), classes=10, lanes=5, out_width=16)
    path = tmp_path / "out.v"
    path.write_text(emit_verilog(dut, "out"))
    assert lint_verilog([path], "out") == []
    with pytest.raises(ValueError, match="lanes"):
        ClassifierOutput(logit_fmt=QFormat(16, 8, True), classes=10, lanes=3, out_width=16)
    with pytest.raises(ValueError, match="out_width"):
        ClassifierOutput(logit_fmt=QFormat(16, 8, True), classes=10, lanes=1, out_width=8)
