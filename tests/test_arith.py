"""Rounding, saturation, requantization and the accumulator bound, at the edges.

The expected values come from exact rational arithmetic (``fractions.Fraction``), a deliberately
naive model independent of the shift tricks in golden.arith.
"""

import math
from fractions import Fraction

import numpy as np
import pytest

from golden import arith
from golden.qformat import QFormat
from golden.reference import conv_accumulate, dense_accumulate

SEED = 1234


def exact_round(num: Fraction, mode):
    fl = math.floor(num)
    rem = num - fl
    if mode == "floor":
        return fl
    if rem > Fraction(1, 2):
        return fl + 1
    if rem < Fraction(1, 2):
        return fl
    if mode == "half_up":
        return fl + 1
    return fl + (fl % 2)          # half_even


def edge_values(bits):
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return [lo, lo + 1, -1, 0, 1, hi - 1, hi]


@pytest.mark.parametrize("mode", ["half_up", "half_even", "floor"])
@pytest.mark.parametrize("shift", [0, 1, 2, 5, 17, 40])
def test_round_shift_matches_exact_rational(mode, shift):
    rng = np.random.default_rng(SEED + shift)
    xs = list(rng.integers(-(1 << 46), 1 << 46, 500)) + edge_values(47)
    if shift:
        # exact ties (dropped bits equal to one half) and their neighbours, both signs
        base = rng.integers(-(1 << 20), 1 << 20, 50)
        half = 1 << (shift - 1)
        xs += [int(b) * (1 << shift) + half + d for b in base for d in (-1, 0, 1)]
    got = arith.round_shift(np.array(xs, dtype=np.int64), shift, mode)
    for x, g in zip(xs, got):
        assert g == exact_round(Fraction(int(x), 1 << shift), mode), (x, shift, mode)


def test_round_shift_ties_by_hand():
    # -2.5, -1.5, -0.5, 0.5, 1.5, 2.5 scaled by 2
    x = np.array([-5, -3, -1, 1, 3, 5])
    assert arith.round_shift(x, 1, "half_up").tolist() == [-2, -1, 0, 1, 2, 3]
    assert arith.round_shift(x, 1, "half_even").tolist() == [-2, -2, 0, 0, 2, 2]
    assert arith.round_shift(x, 1, "floor").tolist() == [-3, -2, -1, 0, 1, 2]


def test_round_shift_rejects_bad_arguments():
    with pytest.raises(ValueError, match="shift"):
        arith.round_shift(3, -1)
    with pytest.raises(ValueError, match="rounding"):
        arith.round_shift(3, 1, "nearest")


@pytest.mark.parametrize("fmt", [QFormat(8, 7, True), QFormat(8, 0, False), QFormat(4, 2, True),
                                 QFormat(16, 8, True), QFormat(2, 0, True)])
def test_saturate_both_directions(fmt):
    x = np.array([-(1 << 40), fmt.min - 1, fmt.min, 0, fmt.max, fmt.max + 1, 1 << 40])
    got = arith.saturate(x, fmt)
    assert got.tolist() == [fmt.min, fmt.min, fmt.min, max(0, fmt.min), fmt.max, fmt.max, fmt.max]


def test_wrap_overflow():
    fmt = QFormat(8, 0, True, overflow="wrap")
    assert arith.saturate(np.array([127, 128, 255, 256, -129, -128]), fmt).tolist() == [127, -128, -1, 0, 127, -128]
    ufmt = QFormat(4, 0, False, overflow="wrap")
    assert arith.saturate(np.array([15, 16, -1]), ufmt).tolist() == [15, 0, 15]


@pytest.mark.parametrize("mode", ["half_up", "half_even", "floor"])
@pytest.mark.parametrize("out", [QFormat(8, 4, True), QFormat(8, 4, False), QFormat(4, 0, True), QFormat(16, 3, True)])
@pytest.mark.parametrize("multiplier", [1, 3, 46341])
def test_requantize_matches_exact(mode, out, multiplier):
    out = out.with_(rounding=mode)
    rng = np.random.default_rng(SEED)
    acc = np.concatenate([rng.integers(-(1 << 30), 1 << 30, 300), edge_values(31)])
    shift = 9
    got = arith.requantize(acc, multiplier, shift, out)
    for a, g in zip(acc, got):
        want = exact_round(Fraction(int(a) * multiplier, 1 << shift), mode)
        assert g == min(max(want, out.min), out.max)
    with pytest.raises(ValueError, match="multiplier"):
        arith.requantize(acc, 0, 1, out)


def test_lut_lookup_indexes_from_min():
    fmt = QFormat(3, 0, True)
    lut = [10, 11, 12, 13, 14, 15, 16, 17]
    assert arith.lut_lookup(np.array([-4, -1, 0, 3]), lut, fmt).tolist() == [10, 13, 14, 17]
    with pytest.raises(ValueError, match="entries"):
        arith.lut_lookup([0], lut[:-1], fmt)
    with pytest.raises(ValueError, match="outside"):
        arith.lut_lookup([4], lut, fmt)


@pytest.mark.parametrize("in_fmt", [QFormat(8, 8, False), QFormat(8, 7, True), QFormat(4, 0, True), QFormat(16, 0, False)])
def test_accumulator_bound_holds_and_is_tight(in_fmt):
    """Worst-case inputs reach the bound exactly, and the chosen width holds it with no overflow."""
    rng = np.random.default_rng(SEED)
    w_fmt = QFormat(8, 7, True)
    w = rng.integers(w_fmt.min, w_fmt.max + 1, (5, 30))
    w[0] = w_fmt.min                      # most negative weights everywhere in one row
    w[1] = w_fmt.max
    b = rng.integers(-1000, 1000, 5)
    lo, hi = arith.accumulator_range(w, b, in_fmt)
    acc_fmt = arith.accumulator_format(w, b, in_fmt, w_fmt.frac)
    assert acc_fmt.signed and acc_fmt.contains(lo, hi)
    assert not QFormat(acc_fmt.bits - 1, 0, True).contains(lo, hi), "width is not minimal"
    # Inputs that drive each output to its extremes: x = max where w > 0 (for hi), etc.
    xmax = np.where(w > 0, in_fmt.max, in_fmt.min)
    xmin = np.where(w > 0, in_fmt.min, in_fmt.max)
    hi_reached = max(dense_accumulate(xmax[o:o + 1], w[o:o + 1], b[o:o + 1])[0, 0] for o in range(5))
    lo_reached = min(dense_accumulate(xmin[o:o + 1], w[o:o + 1], b[o:o + 1])[0, 0] for o in range(5))
    assert lo <= lo_reached and hi_reached <= hi
    if (b >= 0).all():
        assert hi_reached == hi
    # random inputs never leave the format, in any order of accumulation (prefix sums)
    x = rng.integers(in_fmt.min, in_fmt.max + 1, (200, 30))
    terms = x[:, None, :] * w[None]
    partial = b[None, :, None] + np.cumsum(terms, axis=2)
    assert partial.min() >= acc_fmt.min and partial.max() <= acc_fmt.max


def naive_conv(x, w, b, pad):
    n, c, h, wd = x.shape
    o, _, k, _ = w.shape
    xp = np.zeros((n, c, h + 2 * pad, wd + 2 * pad), dtype=np.int64)
    xp[:, :, pad:pad + h, pad:pad + wd] = x
    ho, wo = h + 2 * pad - k + 1, wd + 2 * pad - k + 1
    out = np.zeros((n, o, ho, wo), dtype=np.int64)
    for ni in range(n):
        for oi in range(o):
            for y in range(ho):
                for xx in range(wo):
                    s = int(b[oi])
                    for ci in range(c):
                        for ky in range(k):
                            for kx in range(k):
                                s += int(w[oi, ci, ky, kx]) * int(xp[ni, ci, y + ky, xx + kx])
                    out[ni, oi, y, xx] = s
    return out


@pytest.mark.parametrize("pad", [0, 2])
def test_conv_accumulate_matches_naive_loops(pad):
    rng = np.random.default_rng(SEED)
    x = rng.integers(0, 256, (2, 3, 7, 6))
    w = rng.integers(-128, 128, (4, 3, 5, 5))
    b = rng.integers(-5000, 5000, 4)
    assert np.array_equal(conv_accumulate(x, w, b, 1, pad), naive_conv(x, w, b, pad))


def test_pooling():
    x = np.arange(2 * 3 * 4 * 6).reshape(2, 3, 4, 6) * np.where(np.arange(6) % 2, -1, 1)
    s = arith.sum_pool2x2(x)
    m = arith.max_pool2x2(x)
    assert s.shape == m.shape == (2, 3, 2, 3)
    for n in range(2):
        for c in range(3):
            for y in range(2):
                for xx in range(3):
                    block = x[n, c, 2 * y:2 * y + 2, 2 * xx:2 * xx + 2]
                    assert s[n, c, y, xx] == block.sum() and m[n, c, y, xx] == block.max()


def test_argmax_ties_go_to_lower_index():
    assert arith.argmax_first(np.array([[1, 5, 5, 2], [7, 7, 7, 7]])).tolist() == [1, 0]


def test_qformat_notation_and_bounds():
    assert str(QFormat(8, 7, True)) == "sQ1.7" and str(QFormat(8, 8, False)) == "uQ0.8"
    f = QFormat(8, 7, True)
    assert (f.min, f.max) == (-128, 127)
    assert (QFormat(4, 0, False).min, QFormat(4, 0, False).max) == (0, 15)
    assert QFormat.from_dict(f.to_dict()) == f
    with pytest.raises(ValueError, match="bits"):
        QFormat(0, 0, True)
    with pytest.raises(ValueError, match="rounding"):
        QFormat(8, 0, True, rounding="stochastic")
    with pytest.raises(ValueError, match="max"):
        QFormat.from_dict({**f.to_dict(), "max": 100})
