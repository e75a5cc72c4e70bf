# amaranth: UnusedElaboratable=no
"""ClassifierOutput: logits then argmax (golden.arith.argmax_first), framing and timing model."""

import numpy as np
import pytest

from golden.arith import argmax_first
from golden.qformat import QFormat
from hw.emit import emit_verilog, lint_verilog
from hw.components.output import ClassifierOutput
from tests.stream_sim import PATTERN, arrivals, check_timing, simulate_stream

SEED = 7


def _payloads(dut, images):
    lanes = dut.lanes
    return [{"data": [int(v) for v in img[b * lanes:(b + 1) * lanes]], "last": int(b == dut.in_beats - 1)}
            for img in images for b in range(dut.in_beats)]


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
    avail = arrivals("random", n_beats, rng, long_gap=8)
    run = check_timing(dut, _payloads(dut, images.tolist()), avail)
    got = [(int(v.data), int(v.last)) for v in run.out]
    classes = argmax_first(images)
    want = []
    for img, cls in zip(images, classes):
        want += [(int(v) & 0xFFFF, 0) for v in img] + [(int(cls), 1)]
    assert got == want


@pytest.mark.parametrize("stall", [0.4, PATTERN])
def test_output_backpressure_keeps_order(stall):
    """All beats offered at once, the sink paused (randomly, P = 0.4, or on PATTERN): logits and
    class in order."""
    fmt = QFormat(16, 8, True)
    rng = np.random.default_rng(SEED)
    images = rng.integers(fmt.min, fmt.max + 1, (4, 10))
    dut = ClassifierOutput(logit_fmt=fmt, classes=10, lanes=2, out_width=16)
    run = simulate_stream(dut, _payloads(dut, images.tolist()), len(images) * (dut.classes + 1),
                          out_pause=stall, seed=SEED, idle_after=20)
    values = [int(p.data) for p in run.out]
    assert [int(p.last) for p in run.out] == [int(k % 11 == 10) for k in range(44)]
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
