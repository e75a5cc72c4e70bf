# amaranth: UnusedElaboratable=no
"""hw.plan.window.WindowPlan: pure Python."""

import dataclasses

import pytest
from amaranth import signed, unsigned

from golden.qformat import QFormat
from hw.plan.window import WindowPlan

U8, S4 = QFormat(8, 0, False), QFormat(4, 3, True)


def test_lenet_sizes():
    # Values of tests/test_hw_window.py::test_properties_lenet_sizes (C1 and C3's inputs).
    c1 = WindowPlan(fmt=U8, channels=1, width=28, height=28, kernel=5, pad=2, lanes=1)
    assert (c1.padded_width, c1.padded_height, c1.out_width, c1.out_height) == (32, 32, 28, 28)
    assert (c1.in_beats, c1.out_beats, c1.frame_cycles, c1.ii, c1.latency) == (784, 784, 1024, 1, 1)
    assert c1.tail_latency == 1 + 2 * (32 + 1)
    assert c1.line_buffer_bits == 4 * 32 * 8 and c1.window_registers == 25
    assert c1.elem_shape == unsigned(8) and c1.window_bits == 25 * 8 + 1
    c3 = WindowPlan(elem_shape=unsigned(8), channels=6, width=14, height=14, kernel=5, lanes=2)
    assert (c3.groups, c3.out_width, c3.in_beats, c3.out_beats, c3.frame_cycles) == (3, 10, 588, 300, 588)
    assert c3.line_buffer_bits == 4 * 14 * 6 * 8 and c3.window_bits == 25 * 2 * 8 + 1
    assert WindowPlan(fmt=S4, channels=1, width=3, height=3, kernel=3, lanes=1).elem_shape == signed(4)
    r = c1.resources()
    assert r["ram_bits"] == 4 * 32 * 8 and r["multipliers"] == 0 and r["rom_bits"] == 0


def test_errors_and_replace():
    with pytest.raises(TypeError, match=r"exactly one of elem_shape"):
        WindowPlan(channels=1, width=3, height=3, kernel=3, lanes=1)
    with pytest.raises(ValueError, match=r"lanes \(4\) must divide channels \(6\)"):
        WindowPlan(fmt=U8, channels=6, width=7, height=6, kernel=3, lanes=4)
    with pytest.raises(ValueError, match=r"kernel 9 is larger than the padded width 7 \+ 2 \* 0"):
        WindowPlan(fmt=U8, channels=6, width=7, height=6, kernel=9, lanes=2)
    p = WindowPlan(fmt=U8, channels=2, width=5, height=4, kernel=3, pad=1, lanes=1)
    q = dataclasses.replace(p, pad=0)            # the resolved element shape carries over
    assert q.elem_shape == unsigned(8) and q.out_width == 3


def test_timing_small():
    # 1x1 kernel over a 2x1 map, no padding: one window per beat, valid the cycle after it.
    p = WindowPlan(fmt=U8, channels=1, width=2, height=1, kernel=1, lanes=1)
    t = p.timing([0, 0])
    assert (t.accept, t.out) == ([0, 1], [1, 2])
    t = p.timing([0, 4, 4, 4])                   # two frames, the second beat late
    assert (t.accept, t.out) == ([0, 4, 5, 6], [1, 5, 6, 7])
    # 3x3 kernel, pad 1, over a 1x1 map: one padded frame of 9 beats, the input at beat 4.
    p = WindowPlan(fmt=U8, channels=1, width=1, height=1, kernel=3, pad=1, lanes=1)
    t = p.timing([0], start=0)
    assert (t.accept, t.out) == ([4], [9])


def test_component_from_plan():
    from hw.components.window import WindowGenerator
    p = WindowPlan(fmt=U8, channels=6, width=14, height=14, kernel=5, lanes=2)
    wg = WindowGenerator.from_plan(p)
    assert wg.plan is p and wg.frame_cycles == 588 and wg.o.payload.shape().size == p.window_bits
    assert WindowGenerator(fmt=U8, channels=6, width=14, height=14, kernel=5, lanes=2).plan == p
