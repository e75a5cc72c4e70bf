"""What `lenet5 generate` hands on (issue 15): file permissions, the Verilog's interface header,
the instantiation template and the manifest's interface keys. Fast: one small design, no lint,
no simulation."""

import os
import stat
from pathlib import Path

import numpy as np
import pytest

from hw.emit import HEADER, current_umask, publish
from hw.generate import MANIFEST_NAME, _write_text, generate

ROOT = Path(__file__).resolve().parent.parent
MODEL = ROOT / "models" / "modern_int8.json"
#: The smallest fold (one multiplier per layer): the quickest design to emit.
SMALL_FOLD = "C1=1x1,C3=1x1,C5=1x1,F6=1x1,OUT=1x1"


class _Umask:
    """Context manager: run with this umask, restore the previous one."""

    def __init__(self, mask):
        self.mask = mask

    def __enter__(self):
        self.old = os.umask(self.mask)

    def __exit__(self, *exc):
        os.umask(self.old)


def _mode(path) -> str:
    return stat.filemode(Path(path).stat().st_mode)


@pytest.fixture(scope="module")
def gen(tmp_path_factory):
    out = tmp_path_factory.mktemp("generated")
    with _Umask(0o022):
        return generate(MODEL, out, SMALL_FOLD, lint=False)


# --- item 1: permissions from the umask ---------------------------------------------------------

def test_generated_files_are_world_readable_with_umask_022(gen):
    # Before: -rw------- (tempfile.mkstemp's owner-only mode) for both.
    assert _mode(gen.verilog) == "-rw-r--r--"
    assert _mode(gen.manifest_path) == "-rw-r--r--"
    assert gen.manifest_path.name == MANIFEST_NAME


@pytest.mark.parametrize("mask, expected", [(0o022, "-rw-r--r--"), (0o027, "-rw-r-----"),
                                            (0o002, "-rw-rw-r--"), (0o077, "-rw-------")])
def test_write_text_follows_the_umask(tmp_path, mask, expected):
    path = tmp_path / "f.txt"
    with _Umask(mask):
        assert current_umask() == mask
        _write_text(path, "x\n")
    assert _mode(path) == expected
    assert path.read_text() == "x\n"
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_simulation_inputs_follow_the_umask(tmp_path):
    from sim.shards import _save_npy

    with _Umask(0o022):
        _save_npy(tmp_path / "a.npy", np.arange(3))
    assert _mode(tmp_path / "a.npy") == "-rw-r--r--"
    assert np.load(tmp_path / "a.npy").tolist() == [0, 1, 2]


def test_publish_replaces_atomically(tmp_path):
    tmp, path = tmp_path / ".x.tmp", tmp_path / "x"
    path.write_text("old")
    tmp.write_text("new")
    os.chmod(tmp, 0o600)
    with _Umask(0o022):
        publish(tmp, path)
    assert path.read_text() == "new" and not tmp.exists() and _mode(path) == "-rw-r--r--"


def test_header_line_stays_first(gen):
    assert gen.verilog.read_text().startswith(HEADER)
