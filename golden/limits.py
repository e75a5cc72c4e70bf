"""The widths the quantized description and the hardware support: one definition of each limit.

``golden.qnet`` validates a description against these; the hardware components (:mod:`hw`)
validate their parameters against the same numbers, so a description that loads is one the
generator can build.
"""

__all__ = ["WIDTH_RANGE", "MAX_MULTIPLIER_BITS", "MAX_ACC_BITS", "ACC_BITS_RANGE", "MAX_SHIFT",
           "OUT_BITS_RANGE"]

#: Widths (bits, inclusive range) of weights and activations, and of the LUT input of tanh.
WIDTH_RANGE = (2, 16)
#: Widest requantization multiplier (bits, unsigned).
MAX_MULTIPLIER_BITS = 16
#: Widest accumulator (bits, signed): ``acc * multiplier`` then needs at most
#: ``MAX_ACC_BITS + MAX_MULTIPLIER_BITS = 62`` bits, inside int64 in the golden model.
MAX_ACC_BITS = 46
#: Accumulator widths (bits, inclusive range).
ACC_BITS_RANGE = (2, MAX_ACC_BITS)
#: Largest requantization right shift (bits).
MAX_SHIFT = 62
#: Widths (bits) of the integers a pointwise stage (requantizer, lookup table) may output.
OUT_BITS_RANGE = (2, 32)
