# amaranth: UnusedElaboratable=no
"""hw.plan.dense.DensePlan: pure Python (no elaboration)."""

import numpy as np
import pytest

from golden.qformat import QFormat
from hw.plan.dense import READ_STAGES, DensePlan

S8 = QFormat(8, 7, True)
ACC = QFormat(24, 14, True)


def params(i, o, **kw):
    return dict(in_features=i, out_features=o, in_fmt=S8, w_fmt=S8, acc_fmt=ACC,
                weights=np.zeros((o, i), np.int64), bias=np.zeros(o, np.int64), **kw)


def test_f6():
    # Values of tests/test_hw_dense.py::test_properties (F6 at P_o = 4, P_i = 6, 4 elements per beat).
    p = DensePlan(**params(120, 84), out_lanes=4, taps=6, in_lanes=4)
    assert (p.groups, p.chunks, p.in_beats, p.compute_cycles) == (21, 20, 30, 420)
    assert p.ii == p.frame_cycles == 420 and p.latency == 420 + 3 + 6 == 429 and READ_STAGES == 3
    assert (p.mac.lanes, p.mac.taps, p.mac.latency) == (4, 6, 6) and p.buffer_word == 12
    wide = DensePlan(**params(12, 6), out_lanes=6, taps=12)
    assert wide.compute_cycles == 1 and wide.ii == 12


def test_timing_small():
    # I = 4, O = 2, P_o = P_i = 2, one element per beat: 4 beats accepted in cycles 0..3, reads
    # from cycle 4, steps at 4 + 3 + q (q = 0, 1), the one sum's last step at 8, the MAC's latency
    # 5 (2 taps): output valid in cycle 13, 10 cycles after the last beat (= latency 2 + 3 + 5).
    p = DensePlan(**params(4, 2), out_lanes=2, taps=2)
    t = p.timing([0, 0, 0, 0])
    assert (t.accept, t.out) == ([0, 1, 2, 3], [13]) and p.latency == 10


def test_dsp_alias_roms_resources():
    p = DensePlan(**params(12, 6), out_lanes=2, taps=3, dsp_multipliers=4, dsp_primitive="ecp5")
    assert p.dsp_vendor == p.mac.dsp_vendor == "ecp5" and p.mac.dsp_multipliers == 4
    assert len(p.weight_words()) == 3 * 4 and len(p.bias_words()) == 3
    r = p.resources()
    assert r["multipliers"] == 6 and r["rom_bits"] == 72 * 8 + 6 * 24
    with pytest.raises(ValueError, match=r"out_lanes=5 does not divide out_features=6"):
        DensePlan(**params(12, 6), out_lanes=5, taps=3)


def test_component_from_plan():
    from hw.components.dense import DenseEngine
    p = DensePlan(**params(120, 84), out_lanes=4, taps=6, in_lanes=4)
    engine = DenseEngine.from_plan(p)
    assert engine.plan is p and engine.latency == 429 and engine.mac.plan is p.mac
