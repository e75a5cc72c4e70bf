# amaranth: UnusedElaboratable=no
"""PoolPlan: LeNet-5's S2/S4 geometry, latency, the exact cycle model on a hand-worked schedule,
validation, layers of the shipped models, and Pool2x2 built from its plan (pure Python, fast)."""

from pathlib import Path

import pytest

from golden.qformat import QFormat
from golden.qnet import QNet
from hw.components.pool import Pool2x2
from hw.plan import PoolPlan

MODELS = Path(__file__).resolve().parent.parent / "models"


def _layer(model, name):
    return next(layer for layer in QNet.load(MODELS / f"{model}.json").layers if layer.name == name)


def test_s2_max_pool_28x28x6():
    """S2 of LeNet-5 (LeCun et al. 1998, Sec. II-B): 6 maps of 28x28 pooled to 14x14."""
    plan = PoolPlan(mode="max", in_fmt=QFormat(8, 7, False), channels=6, width=28, height=28, lanes=1)
    assert plan.groups == 6
    assert plan.in_beats == plan.frame_cycles == 28 * 28 * 6 == 4704
    assert plan.out_beats == 14 * 14 * 6 == 1176
    assert plan.line_depth == 14 * 6 == 84
    assert (plan.latency, plan.ii) == (2, 1)
    assert plan.out_fmt == plan.in_fmt and plan.acc_fmt is None


def test_s2_two_lanes_as_the_component_test():
    """The values tests/test_hw_pool.py::test_properties asserts on the component."""
    plan = PoolPlan(mode="max", in_fmt=QFormat(8, 0, True), channels=6, width=28, height=28, lanes=2)
    assert (plan.groups, plan.line_depth, plan.in_beats, plan.out_beats) == (3, 42, 2352, 588)
    # Line buffer: 42 words of 2 lanes of 8-bit maxima.
    assert plan.resources()["ram_bits"] == 42 * 2 * 8
    assert plan.resources()["multipliers"] == 0


def test_s4_16_maps_of_10x10_all_lanes():
    plan = PoolPlan(mode="max", in_fmt=QFormat(8, 5, False), channels=16, width=10, height=10, lanes=16)
    assert (plan.groups, plan.in_beats, plan.out_beats, plan.line_depth) == (1, 100, 25, 5)


def test_timing_hand_worked():
    """One 4x2 map, one channel: the 2x2 blocks complete at beats 5 (y1, x1) and 7 (y1, x3);
    outputs follow 2 cycles (max) / 3 cycles (avg) after their acceptance."""
    plan = PoolPlan(mode="max", in_fmt=QFormat(8, 0, False), channels=1, width=4, height=2, lanes=1)
    t = plan.timing(list(range(8)))
    assert t.accept == list(range(8)) and t.out == [7, 9]
    # A producer that is late for beat 5 (cycle 10) and bursty: accept = max(avail, previous + 1).
    t = plan.timing([0, 0, 0, 0, 0, 10, 10, 10])
    assert t.accept == [0, 1, 2, 3, 4, 10, 11, 12] and t.out == [12, 14]
    avg = PoolPlan(mode="avg", in_fmt=QFormat(8, 0, False), channels=1, width=4, height=2, lanes=1,
                   coef=[3], coef_fmt=QFormat(8, 7, True))
    assert avg.latency == 3 and avg.timing(list(range(8))).out == [8, 10]
    assert avg.bias == (0,)
    # Two frames back to back: the position restarts at beat 8.
    assert plan.timing(list(range(16))).out == [7, 9, 15, 17]


def test_plans_of_the_shipped_layers():
    s2 = PoolPlan.from_layer(_layer("classic_int8", "S2"), lanes=6)
    assert s2.mode == "avg" and s2.acc_fmt == QFormat(17, 13, True) and len(s2.coef) == 6
    assert (s2.in_beats, s2.out_beats, s2.latency) == (784, 196, 3)
    assert s2.resources()["multipliers"] == 6
    s4 = PoolPlan.from_layer(_layer("modern_int8", "S4"), lanes=16)
    assert (s4.mode, s4.in_beats, s4.out_beats) == ("max", 100, 25)
    with pytest.raises(ValueError, match=r"layer C1 is a conv layer, not a pool layer"):
        PoolPlan.from_layer(_layer("modern_int8", "C1"), lanes=1)


@pytest.mark.parametrize("change, error, match", [
    (dict(width=27), ValueError, r"width must be even for 2x2 stride-2 pooling, not 27"),
    (dict(lanes=4), ValueError, r"lanes 4 does not divide channels 6"),
    (dict(mode="min"), ValueError, r"mode must be one of \('max', 'avg'\), not 'min'"),
    (dict(coef=[1] * 6), ValueError, r"max pooling takes no coef"),
    (dict(in_fmt="u8"), TypeError, r"in_fmt must be a golden.qformat.QFormat, not 'u8'"),
    (dict(mode="avg"), ValueError, r"avg pooling needs coef and coef_fmt"),
    (dict(mode="avg", coef=[1] * 6, coef_fmt=QFormat(8, 7, True), acc_fmt=QFormat(8, 7, True)),
     ValueError, r"acc_fmt sQ1\.7 \(8 bits\) cannot hold the worst-case range \[0, 1020\].*needs 11 bits"),
])
def test_validation(change, error, match):
    kw = dict(mode="max", in_fmt=QFormat(8, 0, False), channels=6, width=28, height=28, lanes=2)
    with pytest.raises(error, match=match):
        PoolPlan(**{**kw, **change})


def test_frozen():
    plan = PoolPlan(mode="max", in_fmt=QFormat(8, 0, False), channels=6, width=28, height=28, lanes=2)
    with pytest.raises(AttributeError):
        plan.lanes = 3


def test_component_built_from_plan():
    layer = _layer("classic_int8", "S2")
    plan = PoolPlan.from_layer(layer, lanes=2)
    by_plan, by_layer = Pool2x2.from_plan(plan), Pool2x2.from_layer(layer, lanes=2)
    assert by_plan.plan is plan and by_layer.plan == plan
    c, h, w = layer.in_shape
    by_kwargs = Pool2x2(mode="avg", in_fmt=layer.in_fmt, channels=c, width=w, height=h, lanes=2,
                        coef=layer.weights, coef_fmt=layer.w_fmt, bias=layer.bias, acc_fmt=layer.acc_fmt)
    assert by_kwargs.plan == plan
    assert (by_plan.groups, by_plan.in_beats, by_plan.latency, by_plan.coef) == (3, 2352, 3, plan.coef)
    assert by_plan.o.payload.shape().size == 2 * plan.acc_fmt.bits + 1
    with pytest.raises(TypeError, match=r"plan must be a hw.plan.pool.PoolPlan"):
        Pool2x2.from_plan(object())


def test_stream_layouts():
    """Payload widths of S2 avg with 2 lanes: 2 x 8-bit inputs + last, 2 x 17-bit sums + last."""
    plan = PoolPlan.from_layer(_layer("classic_int8", "S2"), lanes=2)
    assert (plan.in_layout.size, plan.out_layout.size) == (2 * 8 + 1, 2 * 17 + 1)
    dut = Pool2x2.from_plan(plan)
    assert dut.i.payload.shape() == plan.in_layout and dut.o.payload.shape() == plan.out_layout
