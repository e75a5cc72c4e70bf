# amaranth: UnusedElaboratable=no
"""ClassifierOutput: logits then argmax (golden.arith.argmax_first), framing and timing model."""

import numpy as np
import pytest
from amaranth.sim import Simulator

from golden.arith import argmax_first
from golden.qformat import QFormat
from hw.emit import emit_verilog, lint_verilog
from hw.components.output import ClassifierOutput
from tests.timing_check import check_timing

SEED = 7


def _payloads(dut, images):
    lanes = dut.lanes
    return [{"data": [int(v) for v in img[b * lanes:(b + 1) * lanes]], "last": int(b == dut.in_beats - 1)}
            for img in images for b in range(dut.in_beats)]


def _run_backpressured(dut, images, ready_prob, seed=SEED):
    """All payloads at once, the sink ready with probability ``ready_prob``; returns (data, last)."""
    rng = np.random.default_rng(seed)
    beats = _payloads(dut, images)
    got = []
    sim = Simulator(dut)
    sim.add_clock(1e-8)

    async def source(ctx):
        for beat in beats:
            ctx.set(dut.i.valid, 1)
            ctx.set(dut.i.payload, beat)
            while not (await ctx.tick().sample(dut.i.ready))[2]:
                pass
        ctx.set(dut.i.valid, 0)

    async def sink(ctx):
        while len(got) < len(images) * (dut.classes + 1):
            ready = rng.random() < ready_prob
            ctx.set(dut.o.ready, int(ready))
            _, _, valid, payload = await ctx.tick().sample(dut.o.valid, dut.o.payload)
            if valid and ready:
                got.append((int(payload.data), int(payload.last)))

    sim.add_testbench(source)
    sim.add_testbench(sink)
    sim.run()
    return got


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
    values = check_timing(dut, _payloads(dut, images.tolist()), avail)
    got = [(int(v.data), int(v.last)) for v in values]
    classes = argmax_first(images)
    want = []
    for img, cls in zip(images, classes):
        want += [(int(v) & 0xFFFF, 0) for v in img] + [(int(cls), 1)]
    assert got == want


def test_output_backpressure_keeps_order():
    fmt = QFormat(16, 8, True)
    rng = np.random.default_rng(SEED)
    images = rng.integers(fmt.min, fmt.max + 1, (4, 10))
    dut = ClassifierOutput(logit_fmt=fmt, classes=10, lanes=2, out_width=16)
    got = _run_backpressured(dut, images.tolist(), ready_prob=0.6)
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
