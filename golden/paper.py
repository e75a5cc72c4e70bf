"""Constants of LeNet-5 as published.

Source: Y. LeCun, L. Bottou, Y. Bengio, P. Haffner, "Gradient-based learning applied to document
recognition", Proc. IEEE 86(11), 1998, Sec. II-B and Table I.
"""

#: Input image side of LeNet-5 (pixels): the 28x28 MNIST digit zero-padded by 2 on each side.
INPUT_SIDE = 32
#: Side of an MNIST digit (pixels).
MNIST_SIDE = 28
#: Zero border added around the MNIST digit (pixels per side).
INPUT_PAD = (INPUT_SIDE - MNIST_SIDE) // 2

#: Input scaling of the paper (Sec. II-A): the background (white, pixel 0) is -0.1 and the
#: foreground (black, pixel 255) is 1.175, "which makes the mean input roughly 0, and the
#: variance roughly 1". With the pixel byte p: x = INPUT_BACKGROUND + (INPUT_FOREGROUND -
#: INPUT_BACKGROUND) * p / 255 = 0.005 p - 0.1.
INPUT_BACKGROUND = -0.1
INPUT_FOREGROUND = 1.175

#: Scaled hyperbolic tangent of the paper (Appendix A): f(a) = A * tanh(S * a).
TANH_A = 1.7159
TANH_S = 2.0 / 3.0


def _c3_table():
    # Table I: column j (C3 feature map) lists the S2 feature maps it is connected to.
    # Maps 0-5 take 3 contiguous S2 maps, 6-11 take 4 contiguous, 12-14 take 4 non-contiguous,
    # 15 takes all 6.
    table = []
    for j in range(6):
        table.append(tuple(sorted((j + k) % 6 for k in range(3))))
    for j in range(6):
        table.append(tuple(sorted((j + k) % 6 for k in range(4))))
    table += [(0, 1, 3, 4), (1, 2, 4, 5), (0, 2, 3, 5)]
    table.append(tuple(range(6)))
    return tuple(table)


#: C3 connection table (LeCun et al. 1998, Table I): ``C3_TABLE[o]`` is the sorted tuple of the
#: S2 maps (input channels) that C3 map ``o`` (output channel) reads. 60 of the 96 pairs.
C3_TABLE = _c3_table()


def c3_mask():
    """Return the C3 connection table as a 16x6 nested list of bools, ``mask[o][i]``."""
    return [[i in C3_TABLE[o] for i in range(6)] for o in range(16)]
