"""The fixed parameters of LeNet-5's RBF output units: a 7x12 bitmap of each digit.

Source: LeCun et al. 1998, Sec. II-B and Fig. 3: "the parameter vectors of these units were chosen
by hand and kept fixed (at least initially). The components of those parameters vectors were set
to -1 or +1 ... designed to represent a stylized image of the corresponding character class drawn
on a 7x12 bitmap (hence the number 84)". The paper's own bitmaps (a font of the whole printable
ASCII set) are only published as a figure; the ten digits below were drawn for this project
(a 7-column, 12-row font with a blank first and last row), not copied from it.

``#`` is +1 (ink), ``.`` is -1 (background). The 84 components of digit ``d`` are its bitmap read
row by row, top to bottom, each row left to right: component ``j = 7 * row + col`` is RBF unit
``d``'s parameter ``w[d, j]`` for the F6 output ``x[j]``. The closest pair, 6 and 8, differs in 10
of 84 components (:func:`hamming_distances`).
"""

#: Columns (width) of a bitmap.
COLS = 7
#: Rows (height) of a bitmap.
ROWS = 12
#: Components of a bitmap: the number of F6 units (84).
SIZE = COLS * ROWS

#: The ten digits side by side, one 7-character column per digit, 12 rows (the first line of the
#: string is the header naming the digits).
DRAWING = """
0        1        2        3        4        5        6        7        8        9
.......  .......  .......  .......  .......  .......  .......  .......  .......  .......
..###..  ...##..  .#####.  .#####.  ....##.  #######  ..####.  #######  .#####.  .#####.
.##.##.  ..###..  ##...##  ##...##  ...###.  ##.....  .##....  .....##  ##...##  ##...##
##...##  .####..  .....##  .....##  ..####.  ##.....  ##.....  ....##.  ##...##  ##...##
##...##  ...##..  .....##  .....##  .##.##.  ######.  ##.....  ....##.  ##...##  ##...##
##...##  ...##..  ....##.  ..####.  ##..##.  .....##  ######.  ...##..  .#####.  ##...##
##...##  ...##..  ...##..  .....##  #######  .....##  ##...##  ...##..  ##...##  .######
##...##  ...##..  ..##...  .....##  ....##.  .....##  ##...##  ..##...  ##...##  .....##
##...##  ...##..  .##....  .....##  ....##.  .....##  ##...##  ..##...  ##...##  .....##
.##.##.  ...##..  ##.....  ##...##  ....##.  ##...##  ##...##  ..##...  ##...##  ....##.
..###..  .######  #######  .#####.  ....##.  .#####.  .#####.  ..##...  .#####.  .####..
.......  .......  .......  .......  .......  .......  .......  .......  .......  .......
"""


def _parse(drawing):
    lines = drawing.strip("\n").split("\n")
    header, rows = lines[0].split(), lines[1:]
    if header != [str(d) for d in range(10)] or len(rows) != ROWS:
        raise ValueError("the bitmap drawing needs a header 0..9 and 12 rows")
    bitmaps = [[] for _ in range(10)]
    for r, line in enumerate(rows):
        cells = line.split()
        if len(cells) != 10 or any(len(c) != COLS or set(c) - set("#.") for c in cells):
            raise ValueError(f"bitmap row {r}: expected 10 groups of 7 '#'/'.' characters, got {line!r}")
        for d, cell in enumerate(cells):
            bitmaps[d].extend(1 if ch == "#" else -1 for ch in cell)
    return tuple(tuple(b) for b in bitmaps)


#: ``BITMAPS[d][j]``: the +1/-1 parameter of RBF unit ``d`` (digit d) for F6 output ``j``;
#: 10 tuples of 84 ints.
BITMAPS = _parse(DRAWING)


def bitmap_rows(digit):
    """The bitmap of `digit` (0..9) as 12 strings of 7 characters (``#`` = +1, ``.`` = -1)."""
    if digit not in range(10):
        raise ValueError(f"digit must be 0..9, got {digit!r}")
    b = BITMAPS[digit]
    return ["".join("#" if v > 0 else "." for v in b[r * COLS:(r + 1) * COLS]) for r in range(ROWS)]


def hamming_distances():
    """``{(a, b): n}`` for digits a < b: the number of the 84 components where their bitmaps differ."""
    return {(a, b): sum(x != y for x, y in zip(BITMAPS[a], BITMAPS[b]))
            for a in range(10) for b in range(a + 1, 10)}
