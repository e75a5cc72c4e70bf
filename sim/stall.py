"""The batch harness's seeded stall patterns in plain Python (no Amaranth, so that the
testbench running inside the simulator does not import it): the LFSR's feedback, its Python
model, and the threshold of a stall probability. :mod:`sim.harness` builds the same LFSR in
hardware.
"""

__all__ = ["LFSR_TAPS", "stall_threshold", "lfsr_sequence"]

#: Galois LFSR feedback mask of a maximal-length 32-bit sequence (x^32 + x^22 + x^2 + x + 1).
LFSR_TAPS = 0x80200003


def stall_threshold(probability: float) -> int:
    """The 16-bit threshold of a gap/backpressure ``probability`` in ``[0, 1)``: ``round(p * 65536)``.

    Raises
    ------
    ValueError
        ``probability`` outside ``[0, 1)``.
    """
    if not 0.0 <= probability < 1.0:
        raise ValueError(f"stall probability {probability} must be in [0, 1)")
    return min(65535, round(probability * 65536))


def lfsr_sequence(seed: int, count: int) -> list[int]:
    """The harness LFSR's first ``count`` states after ``seed`` (a Python model, for tests):
    Galois form, shift right, XOR :data:`LFSR_TAPS` when the bit shifted out is 1."""
    state = (seed & 0xFFFF_FFFF) or 1
    out = []
    for _ in range(count):
        state = (state >> 1) ^ (LFSR_TAPS if state & 1 else 0)
        out.append(state)
    return out

