"""Cycle models of the pointwise and pooling stages against Amaranth's simulator (exact)."""

import numpy as np
import pytest

from golden.qformat import QFormat
from hw.components.activation import TanhLUT
from hw.components.pool import Pool2x2
from hw.components.requant import Requantizer
from tests.stream_sim import arrivals, check_timing

SEED = 11


KINDS = ["random", "trickle", "full"]


def _avail(kind, n, rng):
    """The arrival schedule ``kind`` (tests.stream_sim.arrivals), idle stretches up to 5 cycles."""
    return arrivals(kind, n, rng, long_gap=5)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("multiplier", [1, 3])
def test_requantizer_timing(multiplier, kind):
    rng = np.random.default_rng(SEED)
    dut = Requantizer(acc_fmt=QFormat(20, 10, True), out_fmt=QFormat(8, 4, False), multiplier=multiplier,
                      shift=6, lanes=2, relu=True)
    payloads = [{"data": [int(v) for v in rng.integers(-5000, 5000, 2)], "last": 0} for _ in range(60)]
    check_timing(dut, payloads, _avail(kind, 60, rng))


@pytest.mark.parametrize("kind", KINDS)
def test_tanh_timing(kind):
    rng = np.random.default_rng(SEED)
    fmt = QFormat(6, 3, True)
    dut = TanhLUT(in_fmt=fmt, out_fmt=QFormat(8, 6, True), lut=rng.integers(-128, 128, 64).tolist(), lanes=3)
    payloads = [{"data": [int(v) for v in rng.integers(fmt.min, fmt.max + 1, 3)], "last": 0} for _ in range(40)]
    check_timing(dut, payloads, _avail(kind, 40, rng))


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("mode,lanes", [("max", 1), ("max", 3), ("avg", 6), ("avg", 2)])
def test_pool_timing(mode, lanes, kind):
    rng = np.random.default_rng(SEED)
    c, h, w = 6, 4, 6
    fmt = QFormat(8, 0, False)
    kw = {}
    if mode == "avg":
        kw = dict(coef=rng.integers(-100, 100, c).tolist(), coef_fmt=QFormat(8, 7, True),
                  bias=rng.integers(-1000, 1000, c).tolist(), acc_fmt=QFormat(24, 7, True))
    dut = Pool2x2(mode=mode, in_fmt=fmt, channels=c, width=w, height=h, lanes=lanes, **kw)
    frames = 2
    n = frames * dut.in_beats
    payloads = [{"data": [int(v) for v in rng.integers(0, 256, lanes)], "last": int((k + 1) % dut.in_beats == 0)}
                for k in range(n)]
    check_timing(dut, payloads, _avail(kind, n, rng))
