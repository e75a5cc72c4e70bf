# amaranth: UnusedElaboratable=no
# (a component refused by emit_verilog is never elaborated)
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


# --- item 2: the Verilog's interface header and the instantiation template -----------------------

def _header(text: str) -> list:
    """The comment lines between the HEADER line and the Verilog."""
    lines = text.splitlines()[1:]
    return lines[:next(k for k, line in enumerate(lines) if not line.startswith("//"))]


def test_verilog_starts_with_an_interface_description(gen):
    text = gen.verilog.read_text()
    header = _header(text)
    # Before: the HEADER line, then Amaranth's `/* Generated by Amaranth Yosys ... */` and the code.
    assert len(header) > 20
    assert text.index("\n".join(header)) < text.index("module lenet5_accel(")
    joined = " ".join(line[2:].strip() for line in header)
    m = gen.manifest
    for s in m["ports"]["signals"]:
        row = [line for line in header if f" {s['name']} " in line and line.split()[1] == s["direction"]]
        assert row, s["name"]
        assert (f"[{s['bits'] - 1}:0]" in row[0]) == (s["bits"] > 1)
    for phrase in ("one pixel per beat in raster order", "s_axis_tlast high on the last pixel",
                   "11 beats per image", "the 10 logits", f"each {m['logit_fmt']}", "then the class index",
                   "m_axis_tlast high", "rst is synchronous and active high", "rising edge of clk",
                   f"latency {m['predicted_latency_cycles']} cycles",
                   f"initiation interval (II) {m['predicted_ii_cycles']} cycles",
                   "model modern_int8.json", "architecture dataflow", "target none",
                   "C1=1x1, C3=1x1, C5=1x1, F6=1x1, OUT=1x1", "lenet5_accel_inst.vh"):
        assert phrase in joined, phrase


def test_verilog_is_deterministic_and_path_free(gen, tmp_path):
    with _Umask(0o022):
        again = generate(MODEL, tmp_path / "elsewhere", SMALL_FOLD, lint=False)
    assert again.verilog.read_bytes() == gen.verilog.read_bytes()
    assert again.instance_template.read_bytes() == gen.instance_template.read_bytes()
    for path in (gen.verilog, gen.instance_template):
        text = path.read_text()
        assert str(gen.verilog.parent) not in text and str(ROOT) not in text


def test_header_below_first_line_is_only_comments():
    """The header changes no Verilog: dropping the comment lines gives emit_verilog's plain text."""
    from amaranth import Module, Signal
    from amaranth.lib import wiring
    from amaranth.lib.wiring import In, Out

    from hw.emit import emit_verilog

    class Inv(wiring.Component):
        a: In(1)
        y: Out(1)

        def elaborate(self, platform):
            m = Module()
            r = Signal()
            m.d.sync += r.eq(~self.a)
            m.d.comb += self.y.eq(r)
            return m

    plain = emit_verilog(Inv(), "inv")
    commented = emit_verilog(Inv(), "inv", ["first", "", "third"])
    assert commented == HEADER + "// first\n//\n// third\n" + plain[len(HEADER):]
    with pytest.raises(ValueError):
        emit_verilog(Inv(), "inv", ["two\nlines"])


def test_instantiation_template_connects_every_port(gen):
    import re

    text = gen.instance_template.read_text()
    assert gen.instance_template.name == "lenet5_accel_inst.vh"
    assert _mode(gen.instance_template) == "-rw-r--r--"
    assert "lenet5_accel u_lenet5_accel (" in text and text.rstrip().endswith(");")
    code = "\n".join(line.split("//")[0] for line in text.splitlines())
    connected = re.findall(r"\.(\w+)\s*\((\w+)\)", code)
    assert {p for p, _ in connected} == set(_verilog_ports(gen.verilog.read_text()))
    assert all(p == s for p, s in connected)
    assert code.count(",") == len(connected) - 1
    assert gen.manifest["verilog"]["instance_template"] == "lenet5_accel_inst.vh"


def test_header_of_a_dsp_design_names_the_target():
    from golden.qnet import QNet
    from hw.arch import plan
    from hw.arch.signature import TopSignature, interface_header

    net = plan(QNet.load(MODEL), "C1=6x1,C3=3x5,C5=3x1,F6=1x1,OUT=1x1", target="ecp5-25k")
    sig = TopSignature(pixel_bits=8, out_bits=16, in_beats=net.in_beats, out_beats=net.out_beats)
    text = " ".join(interface_header(net.manifest(sig.describe("lenet5_accel")), {"file": "m.json", "sha256": "0" * 64}))
    assert "target ecp5-25k" in text and "DSP blocks instantiated (vendor ecp5)" in text
    assert "model m.json" in text
