"""The C3 connection table against LeCun et al. 1998, Table I (transcribed from the paper)."""

from golden.paper import C3_TABLE, c3_mask

# Rows: S2 feature maps 0-5; columns: C3 feature maps 0-15; X = connected (Table I as printed).
TABLE_I = """
X...XXX..XXXX.XX
XX...XXX..XXXX.X
XXX...XXX..X.XXX
.XXX..XXXX..X.XX
..XXX..XXXX.XX.X
...XXX..XXXX.XXX
"""


def test_c3_table_matches_table_i():
    rows = TABLE_I.split()
    for o in range(16):
        want = tuple(i for i in range(6) if rows[i][o] == "X")
        assert C3_TABLE[o] == want, f"C3 map {o}: {C3_TABLE[o]} != paper {want}"


def test_c3_table_has_60_connections():
    assert sum(len(r) for r in C3_TABLE) == 60
    assert sum(sum(row) for row in c3_mask()) == 60
