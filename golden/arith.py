"""Integer arithmetic of the accelerator: the one place where rounding and saturation are defined.

Every function works element-wise on Python ints or numpy integer arrays (computed in ``int64``)
and uses integer operations only. The integer reference (:mod:`golden.reference`) and the
hardware testbenches call these same functions; the hardware (:mod:`hw`) implements them in
logic and is tested against them bit for bit.
"""

import numpy as np

from .qformat import QFormat, ROUNDING_MODES

__all__ = ["round_shift", "saturate", "requantize", "relu", "lut_lookup", "accumulator_range",
           "accumulator_format", "sum_pool2x2", "max_pool2x2", "argmax_first", "argmin_first",
           "squared_distances", "distance_range", "distance_format"]


def _as_int64(x):
    return np.asarray(x, dtype=np.int64)


def round_shift(x, shift, rounding="half_up"):
    """Arithmetic right shift by ``shift`` bits with rounding: ``x / 2**shift`` to an integer.

    Parameters
    ----------
    x : int or array of int
        Signed integers (any width up to 62 bits).
    shift : int
        Right shift in bits, ``>= 0`` (``0`` returns ``x`` unchanged).
    rounding : str
        ``half_up`` (ties toward +inf: ``(x + 2**(shift-1)) >> shift``), ``half_even`` (ties to
        the even neighbour), or ``floor`` (``x >> shift``, toward -inf).

    Returns
    -------
    numpy.ndarray of int64 (a 0-d array for scalar input)

    Raises
    ------
    ValueError
        On a negative shift or an unknown rounding mode.
    """
    if not isinstance(shift, (int, np.integer)) or shift < 0:
        raise ValueError(f"shift must be a non-negative int, not {shift!r}")
    if rounding not in ROUNDING_MODES:
        raise ValueError(f"rounding must be one of {ROUNDING_MODES}, not {rounding!r}")
    x = _as_int64(x)
    shift = int(shift)
    if shift == 0:
        return x.copy()
    if rounding == "floor":
        return x >> shift
    half = np.int64(1) << (shift - 1)
    if rounding == "half_up":
        return (x + half) >> shift
    # half_even: truncate, then add one when the remainder is above half, or exactly half and
    # the truncated value is odd.
    q = x >> shift
    r = x & ((np.int64(1) << shift) - 1)
    return q + ((r > half) | ((r == half) & ((q & 1) == 1))).astype(np.int64)


def saturate(x, fmt: QFormat):
    """Bring integers into ``fmt`` using its overflow mode.

    ``saturate`` clamps to ``[fmt.min, fmt.max]``; ``wrap`` keeps the low ``fmt.bits`` bits
    (two's complement for signed formats).

    Returns
    -------
    numpy.ndarray of int64
    """
    x = _as_int64(x)
    if fmt.overflow == "saturate":
        return np.clip(x, fmt.min, fmt.max)
    mask = (np.int64(1) << fmt.bits) - 1
    y = x & mask
    if fmt.signed:
        y = np.where(y > fmt.max, y - (np.int64(1) << fmt.bits), y)
    return y


def requantize(acc, multiplier, shift, out_fmt: QFormat):
    """Requantization: ``saturate(round_shift(acc * multiplier, shift, out_fmt.rounding), out_fmt)``.

    Parameters
    ----------
    acc : int or array of int
        Accumulator values (signed).
    multiplier : int
        Positive integer multiplier (``1`` for shift-only requantization).
    shift : int
        Right shift in bits (``>= 0``).
    out_fmt : QFormat
        Target format; its ``rounding`` and ``overflow`` modes apply.

    Returns
    -------
    numpy.ndarray of int64, every value inside ``out_fmt``.
    """
    if not isinstance(multiplier, (int, np.integer)) or multiplier < 1:
        raise ValueError(f"multiplier must be a positive int, not {multiplier!r}")
    return saturate(round_shift(_as_int64(acc) * np.int64(multiplier), shift, out_fmt.rounding), out_fmt)


def relu(x):
    """``max(x, 0)`` element-wise (int64)."""
    return np.maximum(_as_int64(x), 0)


def lut_lookup(x, lut, in_fmt: QFormat):
    """Table lookup of an activation: ``lut[x - in_fmt.min]``.

    Parameters
    ----------
    x : array of int
        Values inside ``in_fmt``.
    lut : sequence of int
        ``2**in_fmt.bits`` entries; entry ``i`` is the output for input ``in_fmt.min + i``.

    Raises
    ------
    ValueError
        When ``lut`` has the wrong length or ``x`` leaves ``in_fmt``.
    """
    lut = _as_int64(lut)
    if lut.shape != (1 << in_fmt.bits,):
        raise ValueError(f"activation LUT must have {1 << in_fmt.bits} entries for input format "
                         f"{in_fmt}, not {lut.shape}")
    x = _as_int64(x)
    if x.size and (x.min() < in_fmt.min or x.max() > in_fmt.max):
        raise ValueError(f"LUT input outside {in_fmt}: [{x.min()}, {x.max()}]")
    return lut[x - in_fmt.min]


def accumulator_range(weights, bias, in_fmt: QFormat):
    """Worst-case accumulator range of a multiply-accumulate, over every input and every order.

    For each output ``o`` the accumulator starts from ``bias[o]`` and adds ``w[o, i] * x[i]`` for
    every ``i`` in any order, with each ``x[i]`` anywhere in ``[in_fmt.min, in_fmt.max]``. Every
    partial sum lies in ``[min(bias,0) + sum_i min(0, w*xmin, w*xmax), max(bias,0) + sum_i
    max(0, w*xmin, w*xmax)]``; this function returns the extremes of that interval over all
    outputs, so an accumulator holding them never overflows, whatever the folding.

    Parameters
    ----------
    weights : array of int, shape (O, ...)
        Integer weights; all axes after the first are summed.
    bias : array of int, shape (O,)
        Integer biases at the accumulator's scale (zeros when absent).
    in_fmt : QFormat
        Format of the inputs ``x``.

    Returns
    -------
    (lo, hi) : tuple of int
    """
    w = _as_int64(weights).reshape(len(weights), -1)
    b = _as_int64(bias).reshape(-1)
    if b.shape[0] != w.shape[0]:
        raise ValueError(f"bias has {b.shape[0]} entries for {w.shape[0]} outputs")
    a, c = w * in_fmt.min, w * in_fmt.max
    hi = np.maximum(b, 0) + np.maximum(0, np.maximum(a, c)).sum(axis=1)
    lo = np.minimum(b, 0) + np.minimum(0, np.minimum(a, c)).sum(axis=1)
    return int(lo.min()), int(hi.max())


def accumulator_format(weights, bias, in_fmt: QFormat, w_frac: int):
    """Signed accumulator format wide enough for :func:`accumulator_range` (no sum can overflow).

    The fractional bits are ``in_fmt.frac + w_frac`` (the product of the two formats).
    """
    lo, hi = accumulator_range(weights, bias, in_fmt)
    return QFormat(QFormat.signed_bits_for(lo, hi), in_fmt.frac + w_frac, True)


def sum_pool2x2(x):
    """Sum of each non-overlapping 2x2 block: (N, C, H, W) -> (N, C, H//2, W//2), int64.

    Odd trailing rows/columns are dropped (as a 2x2, stride-2 pooling does).
    """
    x = _as_int64(x)
    n, c, h, w = x.shape
    x = x[:, :, : h // 2 * 2, : w // 2 * 2].reshape(n, c, h // 2, 2, w // 2, 2)
    return x.sum(axis=(3, 5))


def max_pool2x2(x):
    """Maximum of each non-overlapping 2x2 block: (N, C, H, W) -> (N, C, H//2, W//2), int64."""
    x = _as_int64(x)
    n, c, h, w = x.shape
    x = x[:, :, : h // 2 * 2, : w // 2 * 2].reshape(n, c, h // 2, 2, w // 2, 2)
    return x.max(axis=(3, 5))


def argmax_first(logits):
    """Class index of each row: the first index of the maximum (ties go to the lower index)."""
    return np.argmax(_as_int64(logits), axis=-1)


def argmin_first(values):
    """Class index of each row: the first index of the minimum (ties go to the lower index).

    The decision of LeNet-5's RBF output (LeCun et al. 1998, Sec. II-B): the unit with the
    smallest distance.
    """
    return np.argmin(_as_int64(values), axis=-1)


def squared_distances(x, centers):
    """Squared Euclidean distances of integer vectors to integer centres (RBF units).

    ``y[n, i] = sum_j (x[n, j] - centers[i, j])**2``, exactly: subtract, square, accumulate
    (LeCun et al. 1998, Sec. II-B, Eq. 7). ``x`` and ``centers`` must share one fixed-point
    format, so ``y`` has twice its fractional bits.

    Parameters
    ----------
    x : array of int, shape (N, J) (or (N, ...), flattened)
    centers : array of int, shape (I, J)

    Returns
    -------
    numpy.ndarray of int64, shape (N, I), non-negative.
    """
    x = _as_int64(x)
    x = x.reshape(len(x), -1)
    c = _as_int64(centers)
    if c.ndim != 2 or c.shape[1] != x.shape[1]:
        raise ValueError(f"centers of shape {c.shape} do not match inputs of {x.shape[1]} elements")
    d = x[:, None, :] - c[None, :, :]
    return (d * d).sum(axis=2)


def distance_range(centers, in_fmt: QFormat):
    """Worst-case range ``(0, hi)`` of :func:`squared_distances` and of every partial sum.

    For each unit ``i`` the largest sum is ``sum_j max((in_fmt.min - c[i,j])**2,
    (in_fmt.max - c[i,j])**2)`` (a square is largest at an end of the input range); every
    partial sum, in any order, lies in ``[0, hi]``.
    """
    c = _as_int64(centers)
    c = c.reshape(len(c), -1)
    worst = np.maximum((in_fmt.min - c) ** 2, (in_fmt.max - c) ** 2).sum(axis=1)
    return 0, int(worst.max())


def distance_format(centers, in_fmt: QFormat):
    """Unsigned accumulator format of an RBF layer: wide enough for :func:`distance_range`
    (no sum can overflow), ``2 * in_fmt.frac`` fractional bits."""
    _, hi = distance_range(centers, in_fmt)
    return QFormat(max(1, hi.bit_length()), 2 * in_fmt.frac, False)
