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


# --- item 3: the manifest's interface keys -------------------------------------------------------

def _verilog_ports(text: str, top: str = "lenet5_accel") -> dict:
    """Port name -> (direction, bits) of module *top*, read from the emitted Verilog."""
    import re

    body = text[text.index(f"module {top}("):]
    body = body[:body.index("endmodule")]
    ports = {}
    for direction, msb, name in re.findall(r"^\s*(input|output)\s+(?:\[(\d+):0\]\s+)?(\w+)\s*;", body, re.M):
        ports[name] = (direction, int(msb) + 1 if msb else 1)
    return ports


def test_manifest_names_clock_reset_and_logit_format(gen):
    m = gen.manifest
    # Before: none of these keys; the logit format only in layers[-1]["out_fmt"].
    assert m["clock"] == {"port": "clk", "domain": "sync", "edge": "rising"}
    assert m["reset"] == {"port": "rst", "active": "high", "synchronous": True}
    assert m["logit_fmt"] == m["layers"][-1]["out_fmt"] == str(gen.qnet.output_fmt)
    assert m["logit_format"] == gen.qnet.output_fmt.to_dict()
    assert m["logit_format"]["q"] == m["logit_fmt"]
    assert m["pixel_fmt"] == m["layers"][0]["in_fmt"]
    assert m["classes"] == 10
    assert m["target"] is None and m["arch"] == "dataflow"
    assert m["fold"] == {"C1": [1, 1], "C3": [1, 1], "C5": [1, 1], "F6": [1, 1], "OUT": [1, 1]}


def test_manifest_file_has_the_keys(gen):
    import json

    m = json.loads(gen.manifest_path.read_text())
    assert {"clock", "reset", "logit_fmt", "logit_format", "target", "arch", "fold"} <= set(m)


def test_manifest_signals_are_the_verilog_ports(gen):
    signals = gen.manifest["ports"]["signals"]
    ports = _verilog_ports(gen.verilog.read_text())
    assert {s["name"]: (s["direction"], s["bits"]) for s in signals} == ports
    assert [s["name"] for s in signals[:2]] == ["clk", "rst"]
    assert all(s["role"] for s in signals)


def test_signals_of_a_tapped_signature():
    from amaranth.lib import data

    from hw.arch.signature import TopSignature

    sig = TopSignature(pixel_bits=8, out_bits=16, in_beats=784, out_beats=11,
                       taps=[("c1_engine", data.ArrayLayout(8, 3))])
    rows = {r["name"]: r for r in sig.signals()}
    assert rows["tap_c1_engine__payload"]["bits"] == 24
    assert rows["tap_c1_engine__ready"]["direction"] == "output"
    assert "c1_engine" in rows["tap_c1_engine__valid"]["role"]
