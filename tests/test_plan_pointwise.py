# amaranth: UnusedElaboratable=no
"""Plans of the pointwise stages (requantizer, tanh table, ReLU, register slice), the classifier
output and the wide FIFO: latencies, the exact cycle models on hand-worked schedules, validation,
layers of the shipped models, and the components built from their plans (pure Python, fast)."""

from pathlib import Path

import pytest
from amaranth import unsigned
from amaranth.lib import data

from golden.qformat import QFormat
from golden.qnet import QNet
from hw.components.activation import ReLU, TanhLUT
from hw.components.fifo import WideFIFO
from hw.components.output import ClassifierOutput
from hw.components.requant import Requantizer
from hw.components.slice import RegisterSlice
from hw.plan import FIFOPlan, OutputPlan, ReLUPlan, RequantPlan, SlicePlan, TanhPlan

MODELS = Path(__file__).resolve().parent.parent / "models"
#: The requantizer of tests/test_hw_requant.py's GOOD point: sQ10.10 accumulators, multiplier 3.
REQUANT = dict(acc_fmt=QFormat(20, 10, True), out_fmt=QFormat(8, 4, True), multiplier=3, shift=9, lanes=2)


def _layer(model, name):
    return next(layer for layer in QNet.load(MODELS / f"{model}.json").layers if layer.name == name)


# ------------------------------------------------------------------ requantizer

def test_requant_latency_and_product():
    plan = RequantPlan(**REQUANT)
    # 20-bit accumulator times a 2-bit multiplier (3): a 22-bit product, two stages.
    assert (plan.product_bits, plan.stages, plan.latency, plan.ii) == (22, 2, 2, 1)
    shift_only = RequantPlan(**{**REQUANT, "multiplier": 1})
    assert (shift_only.product_bits, shift_only.latency) == (20, 1)
    assert shift_only.resources()["multipliers"] == 0 and plan.resources()["multipliers"] == 2
    # The widest case: a 46-bit accumulator times a 16-bit multiplier, 62 bits (int64 golden).
    assert RequantPlan(**{**REQUANT, "acc_fmt": QFormat(46, 0, True), "multiplier": 65535}).product_bits == 62


def test_requant_timing_hand_worked():
    plan = RequantPlan(**REQUANT)
    t = plan.timing([0, 0, 3, 3, 10])
    assert t.accept == [0, 1, 3, 4, 10] and t.out == [2, 3, 5, 6, 12]


def test_requant_from_shipped_layers():
    c1 = _layer("modern_int8", "C1")      # sQ3.15 accumulators, shift 8, ReLU into uQ1.7
    plan = RequantPlan.from_layer(c1, lanes=6)
    assert (plan.acc_fmt, plan.out_fmt, plan.multiplier, plan.shift, plan.relu) == \
        (QFormat(18, 15, True), QFormat(8, 7, False), 1, 8, True)
    assert plan.latency == 1
    assert RequantPlan.from_layer(_layer("classic_int8", "C1"), lanes=1).relu is False
    dut = Requantizer.from_layer(c1, lanes=6)
    assert dut.plan == plan and (dut.latency, dut.ii, dut.shift) == (1, 1, 8)


@pytest.mark.parametrize("change, error, match", [
    (dict(multiplier=0), ValueError, r"multiplier must be 1\.\.65535, not 0"),
    (dict(shift=63), ValueError, r"shift must be 0\.\.62, not 63"),
    (dict(relu=1), TypeError, r"relu must be a bool, not 1"),
    (dict(acc_fmt=QFormat(20, 0, False)), ValueError, r"acc_fmt uQ20\.0 must be signed"),
    (dict(acc_fmt=QFormat(47, 0, True), multiplier=65535), ValueError, r"acc_fmt sQ47\.0 has 47 bits; supported: 2\.\.46"),
])
def test_requant_validation(change, error, match):
    with pytest.raises(error, match=match):
        RequantPlan(**{**REQUANT, **change})


def test_requant_component_from_plan():
    plan = RequantPlan(**REQUANT)
    dut = Requantizer.from_plan(plan)
    assert dut.plan is plan and Requantizer(**REQUANT).plan == plan
    assert (dut.latency, dut.product_bits, dut.timing([0, 1]).out) == (2, 22, [2, 3])
    with pytest.raises(TypeError, match=r"plan must be a hw.plan.pointwise.RequantPlan"):
        Requantizer.from_plan(TanhPlan(in_fmt=QFormat(2, 0, False), out_fmt=QFormat(2, 0, False),
                                       lut=[0, 1, 0, 1], lanes=1))


# ------------------------------------------------------------------ tanh table, ReLU

def test_tanh_of_the_classic_model():
    """Classic LeNet-5 (LeCun et al. 1998, Appendix A): a 256-entry table sQ4.4 -> sQ2.6."""
    layer = _layer("classic_int8", "C3")
    plan = TanhPlan.from_layer(layer, lanes=16)
    assert (plan.depth, plan.latency, plan.ii) == (256, 1, 1)
    assert plan.resources()["rom_bits"] == 256 * 8
    assert plan.lut == tuple(layer.activation.lut)
    assert plan.timing([0, 0, 5]).out == [1, 2, 6]
    dut = TanhLUT.from_layer(layer, lanes=16)
    assert dut.plan == plan and dut.lut == plan.lut and dut.latency == 1
    with pytest.raises(ValueError, match="not 'tanh'"):
        TanhPlan.from_layer(_layer("modern_int8", "C3"), lanes=1)


@pytest.mark.parametrize("change, error, match", [
    (dict(lut=[0] * 255), ValueError, r"lut has 255 entries; input format sQ4\.4 needs 2\*\*8 = 256"),
    (dict(lut=[200] + [0] * 255), ValueError, r"lut\[0\] = 200 \(input -128\) is outside out_fmt sQ2\.6"),
    (dict(lut=[0.5] * 256), TypeError, r"lut must be a flat sequence of ints"),
    (dict(lanes=0), ValueError, r"lanes must be >= 1, not 0"),
])
def test_tanh_validation(change, error, match):
    kw = dict(in_fmt=QFormat(8, 4, True), out_fmt=QFormat(8, 6, True), lut=[0] * 256, lanes=1)
    with pytest.raises(error, match=match):
        TanhPlan(**{**kw, **change})


def test_relu():
    plan = ReLUPlan(fmt=QFormat(8, 4, True), lanes=3)
    assert (plan.latency, plan.ii, plan.timing([2, 2]).out) == (1, 1, [3, 4])
    assert ReLU.from_plan(plan).plan is plan and ReLU(fmt=QFormat(8, 4, True), lanes=3).plan == plan
    with pytest.raises(TypeError, match=r"fmt must be a golden.qformat.QFormat, not None"):
        ReLUPlan(fmt=None, lanes=1)


# ------------------------------------------------------------------ register slice, FIFO

def test_slice_pieces():
    """A 141-bit payload is cut into 3 pieces (tests/test_hw_slice.py); C5's 30 sums of 20 bits
    are a 600-bit payload in 10 pieces of at most 64 bits."""
    plan = SlicePlan(layout=unsigned(141))
    assert (plan.width, plan.pieces, plan.latency, plan.ii) == (141, 3, 1, 1)
    layout = data.StructLayout({"data": data.ArrayLayout(unsigned(20), 30)})
    c5 = SlicePlan(layout=layout)
    assert (c5.width, c5.pieces) == (600, 10)
    assert c5.resources()["register_bits"] == 2 * 600 + 2 * 10
    assert c5.timing([0, 0, 0]).out == [1, 2, 3]
    dut = RegisterSlice.from_plan(c5)
    assert dut.plan is c5 and dut.pieces == 10 and dut.layout is layout
    assert RegisterSlice(layout).pieces == 10 and RegisterSlice(layout).latency == 1


def test_fifo_plan():
    plan = FIFOPlan(width=201, depth=67)        # tests/test_hw_fifo.py::test_lint_clean
    assert (plan.slices, plan.words, plan.latency, plan.ii) == (4, 68, 1, 1)
    assert plan.resources()["ram_bits"] == 201 * 68
    dut = WideFIFO.from_plan(plan)
    assert dut.plan is plan and (dut.width, dut.depth, dut.slices) == (201, 67, 4)
    with pytest.raises(ValueError, match=r"depth must be >= 1, not 0"):
        FIFOPlan(width=8, depth=0)


# ------------------------------------------------------------------ classifier output

def test_output_of_lenet5():
    """10 classes (LeCun et al. 1998, Sec. II-B, the output layer): one logit per beat takes 10
    cycles to collect and 11 to send (10 logits and the class)."""
    plan = OutputPlan(logit_fmt=QFormat(16, 10, True), classes=10, lanes=1, out_width=16)
    assert (plan.in_beats, plan.out_beats, plan.latency) == (10, 11, 1)
    assert plan.frame_cycles == plan.ii == 21
    wide = OutputPlan(logit_fmt=QFormat(16, 10, True), classes=10, lanes=10, out_width=16)
    assert (wide.in_beats, wide.frame_cycles) == (1, 12)


def test_output_timing_hand_worked():
    """Two classes, one per beat: image 0's logits are accepted in cycles 0, 1; its 3 output beats
    leave in 2, 3, 4, when input is refused; image 1 is accepted in 5, 6 and leaves in 7, 8, 9."""
    plan = OutputPlan(logit_fmt=QFormat(8, 0, True), classes=2, lanes=1, out_width=8)
    t = plan.timing([0, 1, 2, 3])
    assert t.accept == [0, 1, 5, 6] and t.out == [2, 3, 4, 7, 8, 9]


def test_output_validation_and_component():
    with pytest.raises(ValueError, match=r"lanes \(3\) must divide classes \(10\)"):
        OutputPlan(logit_fmt=QFormat(16, 8, True), classes=10, lanes=3, out_width=16)
    with pytest.raises(ValueError, match=r"out_width must be >= 16, not 8"):
        OutputPlan(logit_fmt=QFormat(16, 8, True), classes=10, lanes=1, out_width=8)
    plan = OutputPlan(logit_fmt=QFormat(16, 8, True), classes=10, lanes=5, out_width=16)
    dut = ClassifierOutput.from_plan(plan)
    assert dut.plan is plan and (dut.in_beats, dut.frame_cycles, dut.ii) == (2, 13, 13)
    assert ClassifierOutput(logit_fmt=QFormat(16, 8, True), classes=10, lanes=5, out_width=16).plan == plan


def test_stream_layouts():
    """The plans give the payload layouts, so a slice can be planned behind a stage without
    building the stage: modern C1's requantizer (6 lanes of sQ3.15 in, uQ1.7 out)."""
    plan = RequantPlan.from_layer(_layer("modern_int8", "C1"), lanes=6)
    assert (plan.in_layout.size, plan.out_layout.size) == (6 * 18 + 1, 6 * 8 + 1)
    assert Requantizer.from_plan(plan).o.payload.shape() == plan.out_layout
    behind = SlicePlan(layout=plan.out_layout)
    assert behind.width == 49 and behind.pieces == 1
    out = OutputPlan(logit_fmt=QFormat(16, 10, True), classes=10, lanes=2, out_width=16)
    assert (out.in_layout.size, out.out_layout.size) == (2 * 16 + 1, 16 + 1)
    tanh = TanhPlan.from_layer(_layer("classic_int8", "C1"), lanes=6)
    assert TanhLUT.from_plan(tanh).i.payload.shape() == tanh.in_layout
