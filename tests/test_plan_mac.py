# amaranth: UnusedElaboratable=no
"""hw.plan.mac.MACPlan and the hw.vendor interface: pure Python, no elaboration."""

import dataclasses
from pathlib import Path

import pytest

from golden.qformat import QFormat
from hw.plan.mac import MACPlan
from hw.vendor import VENDORS, vendor

U8, S8 = QFormat(8, 0, False), QFormat(8, 7, True)
ACC = QFormat(24, 15, True)


def plan(**kw):
    return MACPlan(**{**dict(lanes=1, taps=1, a_fmt=U8, w_fmt=S8, acc_fmt=ACC), **kw})


@pytest.mark.parametrize("taps, tree, latency", [(1, 0, 5), (2, 0, 5), (3, 1, 6), (5, 1, 6), (8, 1, 6),
                                                 (9, 2, 7), (25, 2, 7)])
def test_latency(taps, tree, latency):
    # Values of the MAC array's documented latency (tests/test_hw_mac.py::test_latency_formula).
    p = plan(taps=taps)
    assert (p.tree_stages, p.latency, p.ii, p.fifo_depth) == (tree, latency, 1, latency + 1)


def test_fifo_depth_and_errors():
    assert plan(fifo_depth=9).fifo_depth == 9
    with pytest.raises(ValueError, match=r"fifo_depth must be >= 6, not 5"):
        plan(fifo_depth=5)
    with pytest.raises(ValueError, match=r"dsp_vendor must be None or one of ecp5, not 'xilinx'"):
        plan(dsp_vendor="xilinx", dsp_multipliers=1)
    with pytest.raises(ValueError, match=r"dsp_primitive must be None or one of ecp5, not 'xilinx'"):
        plan(dsp_primitive="xilinx", dsp_multipliers=1)
    with pytest.raises(ValueError, match=r"dsp_vendor='ecp5' needs dsp_multipliers"):
        plan(dsp_vendor="ecp5")
    with pytest.raises(ValueError, match=r"differ"):
        plan(dsp_vendor="ecp5", dsp_primitive="other", dsp_multipliers=1)


def test_dsp_primitive_alias_and_products():
    p = plan(lanes=2, taps=5, dsp_multipliers=7, dsp_primitive="ecp5")
    assert p.dsp_vendor == p.dsp_primitive == "ecp5" and p.multipliers == 10
    assert [p.is_dsp_product(l, t) for l in range(2) for t in range(5)] == [True] * 7 + [False] * 3
    assert all(plan(taps=3).is_dsp_product(0, t) for t in range(3))
    assert plan(lanes=2, taps=5, dsp_multipliers=7, dsp_vendor="ecp5") == p     # frozen value, equal by fields


def test_timing():
    p = plan()                                          # latency 5
    assert p.timing([0, 0, 0, 5]).accept == [0, 1, 2, 5]
    assert p.timing([0, 0, 0, 5]).out == [5, 6, 7, 10]
    assert p.timing([0, 0, 0, 5], last=2).out == [6, 10]
    assert p.timing([0, 0, 3], last=[False, True, True]).out == [6, 8]
    with pytest.raises(ValueError, match=r"last has 1 flags for 2 steps"):
        p.timing([0, 0], last=[True])


def test_replace_derives_again():
    p = plan(taps=25)
    assert dataclasses.replace(p, taps=1, fifo_depth=None).fifo_depth == 6
    with pytest.raises(ValueError, match=r"fifo_depth must be >= 8, not 3"):
        dataclasses.replace(p, fifo_depth=3)


def test_resources():
    r = plan(lanes=2, taps=5).resources()
    assert set(r) == {"multipliers", "rom_bits", "ram_bits", "register_bits"}
    assert r["multipliers"] == 10 and r["rom_bits"] == 0
    assert r["ram_bits"] == 7 * 2 * 24            # latency 6 + 1 results of 2 x 24 bits
    assert r["register_bits"] > 0


def test_component_from_plan():
    from hw.components.mac import MACArray
    p = plan(lanes=2, taps=25, user_width=3)
    mac = MACArray.from_plan(p)
    assert mac.plan is p and (mac.latency, mac.fifo_depth, mac.lanes, mac.taps) == (7, 8, 2, 25)
    assert MACArray(lanes=2, taps=25, a_fmt=U8, w_fmt=S8, acc_fmt=ACC, user_width=3).plan == p
    with pytest.raises(TypeError, match=r"plan must be a hw.plan.mac.MACPlan"):
        MACArray.from_plan("nope")


def test_vendor_interface():
    assert VENDORS == ("ecp5",)
    ecp5 = vendor("ecp5")
    assert ecp5.DSP_LATENCY == 2
    models = ecp5.simulation_models()
    assert list(models) == ["MULT18X18D"]
    text = "  MULT18X18D #(\n    .GSR(\"DISABLED\")\n  ) dsp_0_0 (\n"
    assert ecp5.strip_instance_parameters(text) == "  MULT18X18D dsp_0_0 (\n"
    with pytest.raises(ValueError, match=r"unknown vendor 'xilinx'; known vendors: ecp5"):
        vendor("xilinx")


def test_generic_mac_names_no_primitive():
    text = (Path(__file__).parent.parent / "hw" / "components" / "mac.py").read_text()
    for word in ("ecp5", "MULT18X18D", "SB_MAC16"):
        assert word not in text
