"""Fixed-point formats (Q-notation).

A :class:`QFormat` describes how an integer ``q`` stored in ``bits`` bits represents the real value
``q * 2**-frac``. Its printable Q-notation is ``sQm.n`` (signed, two's complement) or ``uQm.n``
(unsigned) with ``n = frac`` fractional bits and ``m = bits - frac`` integer bits, **the sign bit
counted among the integer bits**: an 8-bit signed format with 7 fractional bits is ``sQ1.7`` and
covers [-1, 1 - 2**-7]; an 8-bit unsigned pixel read as a fraction is ``uQ0.8``. (This is the
convention of hls4ml's ``ap_fixed<W, I>``, whose ``I`` includes the sign.)

``m`` can be smaller than the sign bit needs: ``m = 0`` (signed) or even negative, when ``frac``
exceeds ``bits``. ``sQ-1.5`` is a 4-bit signed format with 5 fractional bits: the sign bit sits
one place *below* the binary point, the value is ``q * 2**-5`` with ``q`` in [-8, 7], so it covers
[-0.25, 0.21875]. ``str()`` keeps writing ``sQm.n`` for every format (the shipped models and
manifests hold these strings), and :meth:`QFormat.describe` gives the unambiguous forms beside
it: the HLS type (:attr:`QFormat.ap_type`, ``ap_fixed<W,I>`` / ``ap_ufixed<W,I>`` with ``W =
bits`` and ``I = m``, negative ``I`` allowed as in Vivado/Vitis HLS and hls4ml), the width, the
fractional bits and the real range, e.g. ``sQ-1.5 (ap_fixed<4,-1>: 4 bits, 5 fractional;
[-0.25, 0.21875] in steps of 2^-5)``.

A format also says how values are *brought into* it (as hls4ml's precision types do): the rounding
mode used when fractional bits are dropped and the overflow mode used when the value is out of
range. Requantization into a format uses that format's modes; see :mod:`golden.arith`.
"""

from dataclasses import dataclass

__all__ = ["QFormat", "ROUNDING_MODES", "OVERFLOW_MODES", "MAX_BITS"]

#: Rounding modes for a rounding right shift by ``s`` bits (see :func:`golden.arith.round_shift`):
#: ``half_up``: round to nearest, ties toward +infinity (``(x + 2**(s-1)) >> s``);
#: ``half_even``: round to nearest, ties to even (convergent rounding);
#: ``floor``: truncate toward -infinity (plain arithmetic shift).
ROUNDING_MODES = ("half_up", "half_even", "floor")
#: Overflow modes: ``saturate`` clamps to [min, max]; ``wrap`` keeps the low ``bits`` bits.
OVERFLOW_MODES = ("saturate", "wrap")
#: Widest supported format (bits); integer arithmetic is carried out in int64.
MAX_BITS = 48


@dataclass(frozen=True)
class QFormat:
    """A fixed-point format: ``bits`` total bits, ``frac`` fractional bits, signedness.

    Parameters
    ----------
    bits : int
        Total width in bits, sign included, 1 to :data:`MAX_BITS`.
    frac : int
        Fractional bits ``n``; the real value of the integer ``q`` is ``q * 2**-frac``. May be
        negative or exceed ``bits`` (e.g. accumulators of wide formats).
    signed : bool
        Two's complement when true, unsigned otherwise.
    rounding : str
        Rounding mode used when converting into this format, one of :data:`ROUNDING_MODES`.
    overflow : str
        Overflow mode used when converting into this format, one of :data:`OVERFLOW_MODES`.

    Raises
    ------
    TypeError, ValueError
        On a non-integer or out-of-range width, or an unknown mode; the message quotes the value.
    """

    bits: int
    frac: int
    signed: bool
    rounding: str = "half_up"
    overflow: str = "saturate"

    def __post_init__(self):
        if not isinstance(self.bits, int) or isinstance(self.bits, bool):
            raise TypeError(f"QFormat bits must be an int, not {self.bits!r}")
        if not isinstance(self.frac, int) or isinstance(self.frac, bool):
            raise TypeError(f"QFormat frac must be an int, not {self.frac!r}")
        if not isinstance(self.signed, bool):
            raise TypeError(f"QFormat signed must be a bool, not {self.signed!r}")
        if not 1 <= self.bits <= MAX_BITS:
            raise ValueError(f"QFormat bits must be 1..{MAX_BITS}, not {self.bits}")
        if self.signed and self.bits < 2:
            raise ValueError("a signed QFormat needs at least 2 bits (sign and one value bit)")
        if self.rounding not in ROUNDING_MODES:
            raise ValueError(f"QFormat rounding must be one of {ROUNDING_MODES}, not {self.rounding!r}")
        if self.overflow not in OVERFLOW_MODES:
            raise ValueError(f"QFormat overflow must be one of {OVERFLOW_MODES}, not {self.overflow!r}")

    @property
    def min(self):
        """Smallest representable integer (``-2**(bits-1)`` signed, 0 unsigned)."""
        return -(1 << (self.bits - 1)) if self.signed else 0

    @property
    def max(self):
        """Largest representable integer (``2**(bits-1)-1`` signed, ``2**bits-1`` unsigned)."""
        return (1 << (self.bits - 1)) - 1 if self.signed else (1 << self.bits) - 1

    @property
    def int_bits(self):
        """Integer bits ``m = bits - frac`` of the Q-notation, sign bit included."""
        return self.bits - self.frac

    @property
    def scale(self):
        """Real value of one LSB, ``2**-frac`` (a float; for documentation and float models)."""
        return 2.0 ** -self.frac

    def contains(self, lo, hi):
        """True when every integer in [lo, hi] is representable."""
        return self.min <= lo and hi <= self.max

    def with_(self, **changes):
        """A copy with some fields changed (``dataclasses.replace``)."""
        from dataclasses import replace
        return replace(self, **changes)

    def __str__(self):
        return f"{'s' if self.signed else 'u'}Q{self.int_bits}.{self.frac}"

    @property
    def ap_type(self):
        """The HLS type of the same format: ``ap_fixed<bits,m>`` (signed) or ``ap_ufixed<bits,m>``,
        ``m`` (:attr:`int_bits`) counting the sign bit, possibly zero or negative."""
        return f"{'ap_fixed' if self.signed else 'ap_ufixed'}<{self.bits},{self.int_bits}>"

    @property
    def unusual(self):
        """True when ``sQm.n`` alone misleads: fewer integer bits than the sign needs (signed
        ``m < 1``, unsigned ``m < 0``) or negative fractional bits."""
        return self.int_bits < (1 if self.signed else 0) or self.frac < 0

    def describe(self):
        """``sQm.n (ap_fixed<W,I>: W bits, n fractional; [lo, hi] in steps of 2^-n)``: the
        Q-notation with the HLS type, the width and the real range beside it."""
        def real(q):                         # exact: q * 2**-frac has at most frac decimals
            text = f"{q * self.scale:.{max(self.frac, 0)}f}"
            return text.rstrip("0").rstrip(".") if "." in text else text
        return (f"{self} ({self.ap_type}: {self.bits} bits, {self.frac} fractional; "
                f"[{real(self.min)}, {real(self.max)}] in steps of 2^{-self.frac})")

    def to_dict(self):
        """JSON form; ``min``/``max`` (the saturation bounds) are written for readers and checked on load."""
        return {"bits": self.bits, "frac": self.frac, "signed": self.signed,
                "rounding": self.rounding, "overflow": self.overflow,
                "q": str(self), "min": self.min, "max": self.max}

    @classmethod
    def from_dict(cls, d, where="format"):
        """Inverse of :meth:`to_dict`.

        Raises
        ------
        ValueError
            When a field is missing or wrong; the message starts with ``where``.
        """
        if not isinstance(d, dict):
            raise ValueError(f"{where}: expected an object with bits/frac/signed, got {type(d).__name__}")
        try:
            fmt = cls(bits=d["bits"], frac=d["frac"], signed=d["signed"],
                      rounding=d.get("rounding", "half_up"), overflow=d.get("overflow", "saturate"))
        except KeyError as exc:
            raise ValueError(f"{where}: missing field {exc.args[0]!r}") from None
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{where}: {exc}") from None
        for key in ("min", "max"):
            if key in d and d[key] != getattr(fmt, key):
                raise ValueError(f"{where}.{key}: {d[key]} does not match the format {fmt} "
                                 f"(expected {getattr(fmt, key)})")
        return fmt

    @staticmethod
    def signed_bits_for(lo, hi):
        """Fewest bits of a signed two's complement integer that holds every value in [lo, hi]."""
        bits = 2
        while not (-(1 << (bits - 1)) <= lo and hi <= (1 << (bits - 1)) - 1):
            bits += 1
        return bits
