# amaranth: UnusedElaboratable=no
"""Squared-distance engine (RBF output units) and the argmin classifier against the golden model
(golden.arith.squared_distances / argmin_first): values, ties, worst-case corners, backpressure,
the exact timing model, Verilog lint, parameter errors."""

import numpy as np
import pytest

from golden.arith import argmin_first, distance_format, squared_distances
from golden.qformat import QFormat
from golden.rbf_bitmaps import BITMAPS
from hw.components.output import ClassifierOutput
from hw.components.rbf import SquaredDistanceEngine
from hw.emit import emit_verilog, lint_verilog
from hw.plan.rbf import RBFPlan
from tests.stream_sim import PATTERN, arrivals, check_timing, simulate_stream

SEED = 11
#: F6's output format in the shipped classic models (sQ2.6: +-1 is +-64).
F6_FMT = QFormat(8, 6, True)


def _bitmap_centers(fmt):
    return np.array(BITMAPS, dtype=np.int64) << fmt.frac


def _engine(centers, fmt, lanes):
    return SquaredDistanceEngine(features=centers.shape[1], units=centers.shape[0], in_fmt=fmt,
                                 centers=centers, acc_fmt=distance_format(centers, fmt), in_lanes=lanes)


def _payloads(dut, vectors):
    b = dut.in_lanes
    return [{"data": [int(v) for v in vec[k * b:(k + 1) * b]], "last": int(k == dut.in_beats - 1)}
            for vec in vectors for k in range(dut.in_beats)]


def _corner_vectors(fmt, centers, rng, n_random=3):
    """Random vectors, the vectors at the ends of the range (the worst-case distance of the
    accumulator's bound), each centre itself (a distance of 0) and a vector half way between two
    centres (a tie)."""
    j = centers.shape[1]
    vecs = [rng.integers(fmt.min, fmt.max + 1, j) for _ in range(n_random)]
    vecs += [np.full(j, fmt.min), np.full(j, fmt.max), centers[3].copy()]
    vecs.append((centers[6] + centers[8]) // 2)      # equidistant from 6 and 8 (and maybe others)
    return np.array(vecs, dtype=np.int64)


@pytest.mark.parametrize("lanes", [1, 2, 12])
@pytest.mark.parametrize("schedule", ["full", "random"])
def test_distances_and_timing(lanes, schedule):
    rng = np.random.default_rng(SEED + lanes)
    centers = _bitmap_centers(F6_FMT)
    dut = _engine(centers, F6_FMT, lanes)
    vecs = _corner_vectors(F6_FMT, centers, rng)
    avail = arrivals(schedule, len(vecs) * dut.in_beats, rng, long_gap=6)
    run = check_timing(dut, _payloads(dut, vecs), avail)
    want = squared_distances(vecs, centers)
    got = np.array([[int(v) for v in p.data] for p in run.out])
    for n in range(len(vecs)):
        bad = np.flatnonzero(got[n] != want[n])
        assert not bad.size, (f"vector {n}: unit {bad[0]}: RTL {got[n, bad[0]]}, golden {want[n, bad[0]]}")
    assert all(int(p.last) == 1 for p in run.out)
    assert want[-2, 3] == 0 and argmin_first(want)[-2] == 3      # a centre itself: distance 0


def test_worst_case_fills_the_accumulator():
    """Centres all at one end and the input at the other: the distance is the bound the
    accumulator width comes from, and it fits exactly (no overflow, no saturation needed)."""
    fmt = QFormat(4, 0, True)
    centers = np.array([[fmt.max] * 6, [fmt.min] * 6], dtype=np.int64)
    dut = _engine(centers, fmt, 2)
    vecs = np.array([[fmt.min] * 6, [fmt.max] * 6, [0] * 6])
    run = simulate_stream(dut, _payloads(dut, vecs), len(vecs))
    got = [[int(v) for v in p.data] for p in run.out]
    want = squared_distances(vecs, centers)
    assert got == want.tolist()
    assert want.max() == 6 * (fmt.max - fmt.min) ** 2
    assert int(want.max()).bit_length() == dut.acc_fmt.bits


@pytest.mark.parametrize("stall", [0.4, PATTERN])
def test_backpressure_keeps_values(stall):
    rng = np.random.default_rng(SEED)
    centers = _bitmap_centers(F6_FMT)
    dut = _engine(centers, F6_FMT, 4)
    vecs = _corner_vectors(F6_FMT, centers, rng, n_random=2)
    run = simulate_stream(dut, _payloads(dut, vecs), len(vecs), in_pause=0.3, out_pause=stall, seed=SEED,
                          idle_after=20)
    assert [[int(v) for v in p.data] for p in run.out] == squared_distances(vecs, centers).tolist()


@pytest.mark.parametrize("lanes", [1, 10])
def test_argmin_classifier_ties_and_corners(lanes):
    """ClassifierOutput(select="min"): the distances, then the first smallest (golden argmin_first)."""
    fmt = QFormat(22, 12, False)
    rng = np.random.default_rng(SEED)
    rows = rng.integers(0, fmt.max + 1, (6, 10))
    rows[1] = fmt.max                      # all tied at the largest value: class 0
    rows[2] = 0                            # all tied at 0: class 0
    rows[3, 4] = rows[3, 8] = 0            # tie between 4 and 8: class 4
    rows[4, 9] = 0                         # the last class alone smallest
    rows[5, :] = fmt.max
    rows[5, 7] = fmt.max - 1               # one step below the rest
    dut = ClassifierOutput(logit_fmt=fmt, classes=10, lanes=lanes, out_width=24, select="min")
    payloads = [{"data": [int(v) for v in r[b * lanes:(b + 1) * lanes]], "last": int(b == dut.in_beats - 1)}
                for r in rows for b in range(dut.in_beats)]
    run = check_timing(dut, payloads, arrivals("random", len(payloads), rng, long_gap=8))
    got = [(int(v.data), int(v.last)) for v in run.out]
    want = []
    for r, cls in zip(rows, argmin_first(rows)):
        want += [(int(v), 0) for v in r] + [(int(cls), 1)]
    assert got == want
    assert [int(c) for c in argmin_first(rows)[1:]] == [0, 0, 4, 9, 7]


def test_lint_and_validation(tmp_path):
    centers = _bitmap_centers(F6_FMT)
    dut = _engine(centers, F6_FMT, 2)
    path = tmp_path / "rbf.v"
    path.write_text(emit_verilog(dut, "rbf"))
    assert lint_verilog([path], "rbf") == []
    # the argmin classifier as classic-rbf uses it: all 10 distances in one beat
    argmin = ClassifierOutput(logit_fmt=QFormat(22, 12, False), classes=10, lanes=10, out_width=24, select="min")
    path = tmp_path / "argmin.v"
    path.write_text(emit_verilog(argmin, "argmin"))
    assert lint_verilog([path], "argmin") == []
    narrow = QFormat(distance_format(centers, F6_FMT).bits - 1, 12, False)
    with pytest.raises(ValueError, match="too narrow"):
        RBFPlan(features=84, units=10, in_fmt=F6_FMT, centers=centers, acc_fmt=narrow)
    with pytest.raises(ValueError, match="unsigned"):
        RBFPlan(features=84, units=10, in_fmt=F6_FMT, centers=centers, acc_fmt=QFormat(24, 12, True))
    with pytest.raises(ValueError, match="in_lanes=5 does not divide"):
        RBFPlan(features=84, units=10, in_fmt=F6_FMT, centers=centers,
                acc_fmt=distance_format(centers, F6_FMT), in_lanes=5)
    with pytest.raises(ValueError, match="outside"):
        RBFPlan(features=84, units=10, in_fmt=QFormat(6, 4, True), centers=centers,
                acc_fmt=distance_format(centers, F6_FMT))
    with pytest.raises(ValueError, match="select"):
        ClassifierOutput(logit_fmt=QFormat(16, 8, True), classes=10, lanes=1, out_width=16, select="median")


def test_plan_timing_and_resources_by_hand():
    centers = _bitmap_centers(F6_FMT)
    plan = RBFPlan(features=84, units=10, in_fmt=F6_FMT, centers=centers,
                   acc_fmt=distance_format(centers, F6_FMT), in_lanes=2)
    assert (plan.latency, plan.ii, plan.in_beats, plan.multipliers) == (3, 42, 42, 20)
    # two vectors, the second offered from cycle 50 on; one beat per cycle otherwise
    t = plan.timing([0] * 42 + [50] * 42)
    assert t.accept == list(range(42)) + list(range(50, 92))
    assert t.out == [41 + 3, 91 + 3]
    # an incomplete trailing vector gives no output
    assert plan.timing([0] * 50).out == [44]
    res = plan.resources()
    assert res["multipliers"] == 20 and res["rom_bits"] == 10 * 84 * 8 and res["ram_bits"] == 0
    words = plan.center_words()
    assert len(words) == 42 and words[0][1] == [int(centers[1, 0]), int(centers[1, 1])]


def test_dataflow_plan_of_an_rbf_network():
    """The dataflow architecture ends an RBF network with the squared-distance engine and the
    argmin classifier; the manifest says what m_axis carries."""
    from golden.qnet import QNet
    from hw.arch.dataflow.planning import plan
    from hw.plan.output import OutputPlan
    from tests.conftest import _random_qnet

    _, qnet = _random_qnet("classic-rbf")
    net = plan(QNet.from_dict(qnet.to_dict()), fold="F6=1x5")
    roles = [(s.layer, type(s.plan).__name__) for s in net.stages if not s.is_slice][-3:]
    assert roles == [("F6", "TanhPlan"), ("OUT", "RBFPlan"), ("OUT", "OutputPlan")]
    out = net.stages[-1].plan
    assert isinstance(out, OutputPlan) and out.select == "min" and out.lanes == 10
    assert out.logit_fmt == qnet.layers[-1].acc_fmt and out.out_width == 24
    words = net.output_words()
    assert words["values"] == "rbf_distances" and "argmin" in words["class"]
    assert "OUT" not in net.fold
