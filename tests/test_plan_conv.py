# amaranth: UnusedElaboratable=no
"""hw.plan.conv.ConvPlan and the schedule: pure Python (no elaboration)."""

import numpy as np
import pytest

from golden.paper import C3_TABLE
from golden.qformat import QFormat
from hw.plan.conv import STEP_STAGES, ConvPlan, conv_schedule

U8, S8 = QFormat(8, 0, False), QFormat(8, 7, True)
ACC = QFormat(24, 15, True)


def params(c, o, k, table=None, **kw):
    """Zero weights (absent table pairs must be zero) and biases: the plan only needs shapes."""
    return dict(in_fmt=U8, w_fmt=S8, acc_fmt=ACC, in_channels=c, out_channels=o, kernel=k,
                weights=np.zeros((o, c, k, k), np.int64), bias=np.zeros(o, np.int64), table=table, **kw)


def c3(**kw):
    return ConvPlan(**params(6, 16, 5, C3_TABLE), width=14, height=14, out_lanes=4, taps=5, in_lanes=2, **kw)


def test_c3_schedule_four_lanes():
    # LeCun et al. 1998 Table I: 60 connections, 15 per lane on 4 lanes (greedy alone: 16).
    sched = conv_schedule(C3_TABLE, 4, 5)
    assert sched.connections == (15, 15, 15, 15)
    assert sched.slots_per_position == 15 and sched.cycles_per_position == 75
    assert sorted(o for lane in sched.lanes for o in lane) == list(range(16))


def test_c3_plan():
    # Values of tests/test_hw_conv.py::test_properties.
    p = c3()
    assert (p.connections, p.cycles_per_position, p.multipliers, p.positions) == (60, 75, 20, 100)
    assert (p.in_beats, p.padded_cycles, p.compute_cycles, p.ideal_ii) == (588, 588, 7500, 7500)
    assert p.window_fifo == 4 and p.ii == p.frame_cycles == 7500
    assert p.mac.latency == 6 and STEP_STAGES == p.step_stages == 2
    # window, window FIFO, load decision, staging register, channel multiplexer register, 75 steps, MAC.
    assert p.latency == 1 + 1 + 1 + 1 + 1 + 75 + 6
    assert p.window_fifo_bits == 4 * (25 * 2 * 8 + 1)
    assert p.pending_limit == 2 and len(p.macs) == 4
    assert all((m.lanes, m.taps, m.user_width) == (1, 5, 1) for m in p.macs)
    nofifo = c3(window_fifo=0)
    assert nofifo.ii == 7500 + (4 * 14 * 3 + 5 * 3) - 75 and nofifo.latency == 1 + 1 + 1 + 1 + 75 + 6
    assert nofifo.window_fifo_bits == 0


def test_c1_window_fifo_sizing():
    # ConvEngine docstring: C1 (28x28, pad 2) at 2 steps per position: ii 1780 without a window
    # FIFO for an ideal 1568, which the automatic depth of 67 windows reaches.
    p = dict(**params(1, 6, 5), width=28, height=28, pad=2, out_lanes=3, taps=25, in_lanes=1)
    assert ConvPlan(**p, window_fifo=0).ii == 1780
    auto = ConvPlan(**p)
    assert (auto.ideal_ii, auto.window_fifo, auto.ii) == (1568, 67, 1568)
    full = ConvPlan(**{**p, "out_lanes": 6})
    assert (full.cycles_per_position, full.window_fifo, full.ii) == (1, 0, 1024)


def test_dsp_split_and_alias():
    p = c3(dsp_multipliers=7, dsp_primitive="ecp5")
    assert [m.dsp_multipliers for m in p.macs] == [5, 2, 0, 0]
    assert p.dsp_vendor == "ecp5" and all(m.dsp_vendor == "ecp5" for m in p.macs)
    assert [m.dsp_multipliers for m in c3().macs] == [None] * 4
    with pytest.raises(ValueError, match=r"dsp_multipliers must be 0..20, not 21"):
        c3(dsp_multipliers=21)
    with pytest.raises(ValueError, match=r"dsp_vendor must be None or one of ecp5"):
        c3(dsp_multipliers=1, dsp_vendor="xilinx")


def test_errors():
    base = dict(**params(2, 3, 3), width=6, height=6, out_lanes=2, taps=3, in_lanes=1)
    with pytest.raises(ValueError, match=r"window_fifo must be 0 \(no FIFO\) or >= 2, not 1"):
        ConvPlan(**base, window_fifo=1)
    with pytest.raises(ValueError, match=r"taps=2 does not divide kernel\*kernel=9"):
        ConvPlan(**{**base, "taps": 2})
    with pytest.raises(ValueError, match=r"table\[1\] is empty"):
        ConvPlan(**{**base, "table": ((0,), (), (1,))})


def test_roms_and_resources():
    p = c3()
    weight_words, slot_words = p.rom_contents()
    assert len(weight_words) == 75 and len(slot_words) == 15
    assert all(len(w) == 4 and all(len(lane) == 5 for lane in w) for w in weight_words)
    assert sum(lane["first"] for w in slot_words for lane in w) == 16          # one sum per output channel
    assert sorted(l for bank in p.banks for l in bank) == [0, 1, 2, 3]
    assert [list(g) for g in p.tap_groups] == [[0, 1, 2, 3, 4]]
    r = p.resources()
    assert set(r) == {"multipliers", "rom_bits", "ram_bits", "register_bits"} and r["multipliers"] == 20
    assert r["rom_bits"] >= 75 * 20 * 8                                        # the weight ROMs
    assert r["ram_bits"] >= 4 * 14 * 6 * 8 + p.window_fifo_bits                # line buffers and window FIFO


def test_component_from_plan():
    from hw.components.conv import ConvEngine, ConvSchedule, share_banks        # noqa: F401  (re-exported)
    p = c3()
    engine = ConvEngine.from_plan(p)
    assert engine.plan is p and engine.latency == p.latency and engine.window_fifo == 4
    assert len(engine.macs) == 4 and all(m.plan is q for m, q in zip(engine.macs, p.macs))
    assert engine.window.plan is p.window
