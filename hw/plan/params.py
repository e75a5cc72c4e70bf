"""Parameter checks and stream layouts shared by the plans (:mod:`hw.plan`) and the components
built from them (:mod:`hw.components`): the Amaranth shape of a fixed-point format, the
feature-map beat layout, and validation with messages that name the parameter and quote the value."""

import numpy as np
from amaranth import signed, unsigned
from amaranth.lib import data

from golden.limits import ACC_BITS_RANGE, WIDTH_RANGE
from golden.qformat import QFormat

__all__ = ["fmt_shape", "beat_layout", "check_int", "check_fmt", "check_int_array", "check_divides",
           "OPERAND_BITS", "ACC_BITS"]

#: Supported widths (bits) of activations and weights (:data:`golden.limits.WIDTH_RANGE`).
OPERAND_BITS = WIDTH_RANGE
#: Supported accumulator widths (bits, :data:`golden.limits.ACC_BITS_RANGE`).
ACC_BITS = ACC_BITS_RANGE


def fmt_shape(fmt: QFormat):
    """Amaranth shape of the integers of *fmt*: ``signed(bits)`` or ``unsigned(bits)``."""
    return signed(fmt.bits) if fmt.signed else unsigned(fmt.bits)


def beat_layout(elem_shape, lanes: int) -> data.StructLayout:
    """Feature-map / vector beat: ``lanes`` elements of *elem_shape* and the frame's ``last`` flag."""
    return data.StructLayout({"data": data.ArrayLayout(elem_shape, lanes), "last": 1})


def check_int(name: str, value, lo: int = 1, hi=None) -> int:
    """*value* as an int inside ``[lo, hi]`` (``hi=None``: no upper bound).

    Raises ``TypeError`` for a non-integer (or a bool) and ``ValueError`` outside the range; both
    messages name the parameter and quote the value.
    """
    if isinstance(value, bool) or not hasattr(value, "__index__"):
        raise TypeError(f"{name} must be an int, not {value!r}")
    value = int(value.__index__())
    if value < lo or (hi is not None and value > hi):
        bound = f"{lo}..{hi}" if hi is not None else f">= {lo}"
        raise ValueError(f"{name} must be {bound}, not {value}")
    return value


def check_fmt(name: str, fmt, bits=None, signed=None) -> QFormat:
    """*fmt* as a :class:`QFormat` with ``bits`` in the ``(lo, hi)`` range and the given signedness.

    Raises ``TypeError`` when *fmt* is not a QFormat and ``ValueError`` otherwise.
    """
    if not isinstance(fmt, QFormat):
        raise TypeError(f"{name} must be a golden.qformat.QFormat, not {fmt!r}")
    if bits is not None and not bits[0] <= fmt.bits <= bits[1]:
        raise ValueError(f"{name} {fmt} has {fmt.bits} bits; supported: {bits[0]}..{bits[1]} bits")
    if signed is not None and fmt.signed != signed:
        raise ValueError(f"{name} {fmt} must be {'signed' if signed else 'unsigned'}")
    return fmt


def check_int_array(name: str, value, shape, fmt: QFormat):
    """*value* as a read-only int64 array of *shape* with every element inside *fmt*.

    Raises ``TypeError`` for non-integer elements and ``ValueError`` for a wrong shape or an
    out-of-range value (quoted, with the format's bounds).
    """
    arr = np.asarray(value)
    if arr.dtype.kind not in "iu" and not (arr.dtype == object and arr.size and
                                           all(isinstance(v, (int, np.integer)) for v in arr.flat)):
        raise TypeError(f"{name} must be an array of integers, not dtype {arr.dtype}")
    if arr.shape != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)}, not {arr.shape}")
    arr = arr.astype(np.int64)
    if arr.size and (arr.min() < fmt.min or arr.max() > fmt.max):
        bad = int(arr.min() if arr.min() < fmt.min else arr.max())
        raise ValueError(f"{name} value {bad} is outside {fmt} [{fmt.min}, {fmt.max}]")
    arr.flags.writeable = False
    return arr


def check_divides(name: str, value, total: int, what: str) -> int:
    """*value* as a positive int that divides *total*; the ``ValueError`` lists the valid values."""
    check_int(name, value, 1)
    if total % value:
        ok = [d for d in range(1, total + 1) if total % d == 0]
        raise ValueError(f"{name}={value} does not divide {what}={total}; possible values: {ok}")
    return value
