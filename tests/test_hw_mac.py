# amaranth: UnusedElaboratable=no
"""hw.components.mac.MACArray: parameter validation, Amaranth-simulator tests against a naive numpy model,
lint and deterministic emission, and cocotb + Verilator simulations of the emitted Verilog
(``sim/tb/tb_mac.py``)."""

import itertools

import numpy as np
import pytest

from golden.arith import accumulator_format, saturate
from golden.qformat import QFormat
from hw.emit import emit_verilog, lint_verilog, write_verilog
from hw.components.mac import MACArray
from tests.stream_sim import PATTERN, arrivals, simulate_stream

TB = "sim.tb.tb_mac"
SEED = 20240611

S4, S8, U8, S16, U16 = (QFormat(4, 3, True), QFormat(8, 7, True), QFormat(8, 8, False),
                        QFormat(16, 15, True), QFormat(16, 8, False))


def sized_point(lanes, taps, a_fmt, w_fmt, max_steps=4, user_width=0):
    """A MACArray parameter point whose accumulator is sized by golden.arith.accumulator_format for
    ``max_steps * taps`` products at every operand corner and biases as large as one step's sum."""
    terms = max_steps * taps
    prod = max(abs(a * w) for a in (a_fmt.min, a_fmt.max) for w in (w_fmt.min, w_fmt.max))
    bias_lo, bias_hi = -prod * taps, prod * taps - 1
    weights = np.array([[w] * terms for w in (w_fmt.min, w_fmt.max) for _ in range(2)])
    bias = np.array([bias_lo, bias_hi] * 2)
    acc_fmt = accumulator_format(weights, bias, a_fmt, w_fmt.frac)
    kw = dict(lanes=lanes, taps=taps, a_fmt=a_fmt, w_fmt=w_fmt, acc_fmt=acc_fmt, user_width=user_width)
    extra = dict(max_steps=max_steps, bias_lo=bias_lo, bias_hi=bias_hi)
    return kw, extra


def naive_sums(sums):
    """Deliberately naive model: bias + sum of numpy int64 products over the steps and taps."""
    return [(bias + (a.astype(np.int64) * w.astype(np.int64)).sum(axis=(0, 2))).tolist()
            for a, w, bias in sums]


def random_sums(rng, count, lanes, taps, a_fmt, w_fmt, max_steps, bias_lo, bias_hi):
    sums = []
    for j in range(count):
        n = int(rng.integers(1, max_steps, endpoint=True))
        if j % 5 == 0:                          # operand extremes
            a = np.where(rng.random((n, lanes, taps)) < 0.5, a_fmt.min, a_fmt.max)
            w = np.where(rng.random((n, lanes, taps)) < 0.5, w_fmt.min, w_fmt.max)
        else:
            a = rng.integers(a_fmt.min, a_fmt.max, (n, lanes, taps), endpoint=True)
            w = rng.integers(w_fmt.min, w_fmt.max, (n, lanes, taps), endpoint=True)
        sums.append((a, w, rng.integers(bias_lo, bias_hi, lanes, endpoint=True)))
    return sums


def simulate(dut, sums, *, gap=0.0, stall=0.0, seed=0, user=None, avail=None):
    """Drive the steps of ``sums`` into ``dut`` (Amaranth simulator, tests.stream_sim) with input
    gaps and output stalls ``gap`` / ``stall`` (see tests.stream_sim.as_pause), or (``avail``) step
    ``k`` offered from cycle ``avail[k]`` on. Returns (results, users, cycles of the accepted last
    steps, result cycles, cycles of all accepted steps)."""
    steps = []
    for j, (a, w, bias) in enumerate(sums):
        for k in range(len(a)):
            step = {"a": a[k].tolist(), "w": w[k].tolist(), "bias": bias.tolist(),
                    "first": int(k == 0), "last": int(k == len(a) - 1)}
            if user is not None:
                step["user"] = user(j)
            steps.append(step)
    run = simulate_stream(dut, steps, len(sums), in_pause=gap, out_pause=stall, seed=seed, avail=avail,
                          max_cycles=50 * len(steps) + 100 + (avail[-1] if avail is not None else 0))
    results = [[int(v) for v in p.data] for p in run.out]
    users = [int(p.user) if user is not None else None for p in run.out]
    last_cycles = [c for c, step in zip(run.in_cycles, steps) if step["last"]]
    return results, users, last_cycles, run.out_cycles, run.in_cycles


# ------------------------------------------------------------------ parameters and properties

def test_latency_formula():
    for taps, tree, latency in ((1, 0, 5), (2, 0, 5), (3, 1, 6), (5, 1, 6), (8, 1, 6), (9, 2, 7), (25, 2, 7)):
        mac = MACArray(lanes=1, taps=taps, a_fmt=U8, w_fmt=S8, acc_fmt=QFormat(24, 15, True))
        assert (mac.tree_stages, mac.latency, mac.ii, mac.fifo_depth) == (tree, latency, 1, latency + 1)


def test_layouts():
    mac = MACArray(lanes=3, taps=2, a_fmt=U8, w_fmt=S4, acc_fmt=QFormat(20, 11, True), user_width=2)
    members = mac.step_layout.members
    assert list(members) == ["a", "w", "bias", "first", "last", "user"]
    assert members["a"].size == 3 * 2 * 8 and members["w"].size == 3 * 2 * 4 and members["bias"].size == 60
    assert list(mac.result_layout.members) == ["data", "user"] and mac.result_layout.size == 62
    plain = MACArray(lanes=1, taps=1, a_fmt=S8, w_fmt=S8, acc_fmt=QFormat(16, 14, True))
    assert list(plain.step_layout.members) == ["a", "w", "bias", "first", "last"]
    assert list(plain.result_layout.members) == ["data"]


@pytest.mark.parametrize("kw, error, match", [
    (dict(lanes=0), ValueError, r"lanes must be >= 1, not 0"),
    (dict(taps=0), ValueError, r"taps must be >= 1, not 0"),
    (dict(lanes=2.0), TypeError, r"lanes must be an int, not 2.0"),
    (dict(taps=True), TypeError, r"taps must be an int"),
    (dict(a_fmt=QFormat(17, 0, True)), ValueError, r"a_fmt sQ17.0 has 17 bits; supported: 2..16"),
    (dict(w_fmt=QFormat(1, 0, False)), ValueError, r"w_fmt uQ1.0 has 1 bits; supported: 2..16"),
    (dict(acc_fmt=QFormat(1, 0, False)), ValueError, r"acc_fmt uQ1.0 has 1 bits; supported: 2..46"),
    (dict(a_fmt=8), TypeError, r"a_fmt must be a golden.qformat.QFormat, not 8"),
    (dict(user_width=-1), ValueError, r"user_width must be >= 0, not -1"),
    (dict(fifo_depth=5), ValueError, r"fifo_depth must be >= 6, not 5"),
    (dict(fifo_depth=7.0), TypeError, r"fifo_depth must be an int, not 7.0"),
    (dict(dsp_multipliers=2), ValueError, r"dsp_multipliers must be 0..1, not 2"),
    (dict(dsp_primitive="xilinx", dsp_multipliers=1), ValueError, r"dsp_primitive must be None or one of ecp5"),
    (dict(dsp_primitive="ecp5"), ValueError, r"needs dsp_multipliers"),
])
def test_parameter_errors(kw, error, match):
    params = {**dict(lanes=1, taps=1, a_fmt=S8, w_fmt=S8, acc_fmt=QFormat(16, 14, True)), **kw}
    with pytest.raises(error, match=match):
        MACArray(**params)


# ------------------------------------------------------------------ Amaranth simulator

@pytest.mark.parametrize("lanes, taps, a_fmt, w_fmt", [
    (1, 1, S4, S4), (2, 5, U8, S8), (4, 5, S8, S8), (1, 25, U8, S8), (2, 3, S16, S16), (2, 2, U16, S4),
    (3, 1, U8, U8),
])
@pytest.mark.parametrize("gap, stall", [(0.0, 0.0), (0.3, 0.3), (PATTERN, PATTERN)], ids=["none", "random", "pattern"])
def test_random_sums(lanes, taps, a_fmt, w_fmt, gap, stall):
    kw, extra = sized_point(lanes, taps, a_fmt, w_fmt, user_width=3)
    rng = np.random.default_rng(SEED + lanes * 100 + taps)
    print(f"seed {SEED + lanes * 100 + taps}")
    sums = random_sums(rng, 30, lanes, taps, a_fmt, w_fmt, extra["max_steps"], extra["bias_lo"], extra["bias_hi"])
    # the corners: longest sums at every product extreme with extreme biases
    for a in (a_fmt.min, a_fmt.max):
        for w in (w_fmt.min, w_fmt.max):
            for b in (extra["bias_lo"], extra["bias_hi"]):
                shape = (extra["max_steps"], lanes, taps)
                sums.append((np.full(shape, a), np.full(shape, w), np.full(lanes, b)))
    mac = MACArray(**kw)
    got, users, last_cycles, out_cycles, _ = simulate(mac, sums, gap=gap, stall=stall, seed=SEED, user=lambda j: j % 8)
    expected = naive_sums(sums)
    for j, (g, e) in enumerate(zip(got, expected)):
        assert g == e, f"sum {j}: got {g}, expected {e}"
    assert users == [j % 8 for j in range(len(sums))]
    if gap == stall == 0.0:
        assert {o - c for c, o in zip(last_cycles, out_cycles)} == {mac.latency}


@pytest.mark.parametrize("lanes, taps, a_fmt, w_fmt, dsp", [
    (2, 5, U8, S8, 0), (2, 5, U8, S4, 3), (1, 3, S16, S16, 1), (2, 2, U16, U8, 0), (1, 1, S4, S4, 0),
])
def test_split_lut_products(lanes, taps, a_fmt, w_fmt, dsp):
    """``dsp_multipliers``: the products beyond the first ``dsp`` are split in two partial products
    (weight halves); bit-exact at the operand corners, same latency."""
    kw, extra = sized_point(lanes, taps, a_fmt, w_fmt)
    rng = np.random.default_rng(SEED + 7)
    sums = random_sums(rng, 30, lanes, taps, a_fmt, w_fmt, extra["max_steps"], extra["bias_lo"], extra["bias_hi"])
    mac = MACArray(**kw, dsp_multipliers=dsp)
    got, _, last_cycles, out_cycles, _ = simulate(mac, sums)
    for j, (g, e) in enumerate(zip(got, naive_sums(sums))):
        assert g == e, f"sum {j}: got {g}, expected {e}"
    # measured: the split products take the cycles of the plain array's latency
    assert {o - c for c, o in zip(last_cycles, out_cycles)} == {MACArray(**kw).latency}


def test_back_to_back_one_step_sums_full_rate():
    """first and last on every step: one step and one result per cycle (II = 1), fixed latency."""
    kw, extra = sized_point(2, 5, U8, S8, max_steps=1)
    rng = np.random.default_rng(SEED)
    sums = random_sums(rng, 40, 2, 5, U8, S8, 1, extra["bias_lo"], extra["bias_hi"])
    mac = MACArray(**kw)
    got, _, last_cycles, out_cycles, _ = simulate(mac, sums)
    assert got == naive_sums(sums)
    assert set(np.diff(last_cycles)) == {mac.ii} and set(np.diff(out_cycles)) == {mac.ii}
    assert {o - c for c, o in zip(last_cycles, out_cycles)} == {mac.latency}


def test_timing_model_formula():
    """accept = offers(avail) (the array never refuses a step while o is ready), out = the
    accept cycle of each last step + latency; ``last`` as steps per sum or per-step flags."""
    mac = MACArray(lanes=1, taps=5, a_fmt=U8, w_fmt=S8, acc_fmt=QFormat(24, 15, True))
    avail = [0, 0, 0, 5, 5, 9, 20]
    t = mac.timing(avail, last=2)
    assert t.accept == [0, 1, 2, 5, 6, 9, 20]
    assert t.out == [1 + mac.latency, 5 + mac.latency, 9 + mac.latency]
    assert mac.timing(avail).out == [a + mac.latency for a in t.accept]
    flags = [0, 0, 1, 1, 0, 0, 1]
    assert mac.timing(avail, flags).out == [2 + mac.latency, 5 + mac.latency, 20 + mac.latency]
    assert mac.timing([], 3) == mac.timing([])
    with pytest.raises(ValueError, match="last has 2 flags for 7 steps"):
        mac.timing(avail, [1, 1])
    with pytest.raises(ValueError, match="last must be >= 1, not 0"):
        mac.timing(avail, 0)


@pytest.mark.parametrize("lanes, taps, a_fmt, w_fmt", [(1, 1, S4, S4), (2, 5, U8, S8), (1, 25, U8, S8)])
@pytest.mark.parametrize("schedule", ["full", "random", "trickle"])
def test_timing_model_amaranth(lanes, taps, a_fmt, w_fmt, schedule):
    """Amaranth simulator, output always ready: accept and result cycles equal MACArray.timing."""
    kw, extra = sized_point(lanes, taps, a_fmt, w_fmt)
    seed = SEED + 7 * taps + lanes
    print(f"seed {seed}")
    rng = np.random.default_rng(seed)
    sums = random_sums(rng, 30, lanes, taps, a_fmt, w_fmt, extra["max_steps"], extra["bias_lo"], extra["bias_hi"])
    n = sum(len(a) for a, _, _ in sums)
    mac = MACArray(**kw)
    avail = arrivals(schedule, n, rng, 3 * mac.latency)
    got, _, _, out_cycles, accept_cycles = simulate(mac, sums, avail=avail)
    assert got == naive_sums(sums)
    flags = [k == len(a) - 1 for a, _, _ in sums for k in range(len(a))]
    model = mac.timing(avail, flags)
    assert accept_cycles == model.accept and out_cycles == model.out


@pytest.mark.parametrize("depth", [None, 20])
def test_fifo_depth_results_outstanding(depth):
    """With ``o`` not ready (for 3 * fifo_depth cycles), the array takes exactly ``fifo_depth``
    one-step sums, then holds ``i.ready`` low until ``o`` is read; all come back in order."""
    mac = MACArray(lanes=1, taps=1, a_fmt=S8, w_fmt=S8, acc_fmt=QFormat(16, 14, True), fifo_depth=depth)
    assert mac.fifo_depth == (mac.latency + 1 if depth is None else depth)
    d = mac.fifo_depth
    steps = [{"a": [[k + 1]], "w": [[1]], "bias": [0], "first": 1, "last": 1} for k in range(2 * d)]
    held = 3 * d                                            # cycles with o.ready low
    run = simulate_stream(mac, steps, len(steps), out_pause=itertools.chain([1] * held, itertools.repeat(0)))
    assert run.in_cycles[:d] == list(range(d)) and run.in_cycles[d] >= held
    assert [int(p.data[0]) for p in run.out] == list(range(1, 2 * d + 1))


def test_accumulator_wraps():
    """The accumulator wraps (documented): compare with golden.arith.saturate in wrap mode."""
    acc_fmt = QFormat(10, 0, True)
    wrap = acc_fmt.with_(overflow="wrap")
    rng = np.random.default_rng(SEED)
    sums = random_sums(rng, 20, 2, 3, S8, S8, 3, -500, 500)
    mac = MACArray(lanes=2, taps=3, a_fmt=S8, w_fmt=S8, acc_fmt=acc_fmt)
    got, _, _, _, _ = simulate(mac, sums, gap=0.2, stall=0.2, seed=1)
    expected = [saturate(np.array(e), wrap).tolist() for e in naive_sums(sums)]
    assert got == expected
    assert any(abs(v) > acc_fmt.max for e in naive_sums(sums) for v in e)      # it did overflow


# ------------------------------------------------------------------ Verilog: lint, determinism

@pytest.mark.parametrize("lanes, taps, a_fmt, w_fmt, user_width", [
    (1, 1, S4, S4, 0), (4, 25, U8, S8, 2), (2, 5, S16, U16, 0)])
def test_lint_clean(tmp_path, lanes, taps, a_fmt, w_fmt, user_width):
    kw, _ = sized_point(lanes, taps, a_fmt, w_fmt, user_width=user_width)
    path = write_verilog(MACArray(**kw), "mac_array", tmp_path)
    assert lint_verilog([path], "mac_array") == []


def test_emission_deterministic():
    kw, _ = sized_point(2, 5, U8, S8)
    assert emit_verilog(MACArray(**kw), "mac_array") == emit_verilog(MACArray(**kw), "mac_array")


# ------------------------------------------------------------------ cocotb + Verilator

SIM_POINTS = [
    pytest.param(1, 1, S4, S4, 0, id="serial-1x1-s4xs4"),
    pytest.param(2, 5, U8, S8, 0, id="2x5-u8xs8"),
    pytest.param(4, 25, U8, S8, 2, id="4x25-u8xs8-user"),
    pytest.param(2, 5, S16, S16, 0, id="2x5-s16xs16"),
]


@pytest.mark.sim
@pytest.mark.parametrize("lanes, taps, a_fmt, w_fmt, user_width", SIM_POINTS)
def test_cocotb(lanes, taps, a_fmt, w_fmt, user_width):
    from sim.runner import simulate_component

    kw, extra = sized_point(lanes, taps, a_fmt, w_fmt, user_width=user_width)
    mac = MACArray(**kw)
    params = dict(lanes=lanes, taps=taps, user_width=user_width, a_fmt=a_fmt.to_dict(), w_fmt=w_fmt.to_dict(),
                  acc_fmt=kw["acc_fmt"].to_dict(), sums=60, seed=SEED, gap_prob=0.3, stall_prob=0.3,
                  latency=mac.latency, ii=mac.ii, **extra)
    results = simulate_component(mac, "mac_array", TB, params=params)
    assert sorted(t.name for t in results.tests) == ["latency_and_ii", "random_sums", "timing_full_rate",
                                                     "timing_random"]


@pytest.mark.sim
def test_cocotb_ecp5_dsp_blocks():
    """``dsp_primitive="ecp5"``: the first products are MULT18X18D instances (input and output
    registers), the rest split LUT products; simulated with the Amaranth model of the block,
    bit-exact, same latency and II (the testbench checks both)."""
    from hw.vendor.ecp5 import MULT18X18DModel
    from sim.runner import simulate_component

    lanes, taps, a_fmt, w_fmt = 2, 5, U8, S8
    kw, extra = sized_point(lanes, taps, a_fmt, w_fmt, user_width=2)
    mac = MACArray(**kw, dsp_multipliers=7, dsp_primitive="ecp5")
    text = emit_verilog(MACArray(**kw, dsp_multipliers=7, dsp_primitive="ecp5"), "mac_array")
    assert text.count("MULT18X18D #(") == 7 and "REG_OUTPUT_CLK" in text
    params = dict(lanes=lanes, taps=taps, user_width=2, a_fmt=a_fmt.to_dict(), w_fmt=w_fmt.to_dict(),
                  acc_fmt=kw["acc_fmt"].to_dict(), sums=60, seed=SEED, gap_prob=0.3, stall_prob=0.3,
                  latency=mac.latency, ii=mac.ii, **extra)
    results = simulate_component(mac, "mac_array", TB, params=params, models={"MULT18X18D": MULT18X18DModel()},
                                 build_key="mac_array_ecp5")
    assert sorted(t.name for t in results.tests) == ["latency_and_ii", "random_sums", "timing_full_rate",
                                                     "timing_random"]
