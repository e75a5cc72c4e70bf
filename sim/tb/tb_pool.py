"""cocotb testbench of :class:`hw.components.pool.Pool2x2` on its emitted Verilog.

Parameters (:func:`sim.streams.tb_params`): ``mode``, ``in_fmt`` (``QFormat.to_dict()``),
``channels``, ``width``, ``height``, ``lanes``; for ``avg`` also ``coef``, ``bias``, ``coef_fmt``,
``acc_fmt``; ``latency``, ``ii`` (the component's values), ``frames`` (back to back), ``seed``,
``gap_prob``, ``stall_prob``.

Expected values: :func:`golden.reference.layer_forward` of a max pool layer
(:func:`golden.arith.max_pool2x2`) or :func:`golden.reference.layer_accumulate` of an avg pool
layer (``coef[c] * 2x2 sum + bias[c]``), bit for bit. Inputs are extremes (min/max of the input
format) with probability 0.4, otherwise uniform.
"""


import cocotb
import numpy as np

from golden import reference
from golden.qformat import QFormat
from golden.qnet import Layer
from sim.streams import tb_params
from sim.tb.tb_requant import check_timing, pack_beat, run_stream, unpack_beat


def _setup():
    p = tb_params()
    in_fmt = QFormat.from_dict(p["in_fmt"])
    c, h, w = p["channels"], p["height"], p["width"]
    kw = {}
    if p["mode"] == "avg":
        kw = dict(weights=np.array(p["coef"]), bias=np.array(p["bias"]),
                  w_fmt=QFormat.from_dict(p["coef_fmt"]), acc_fmt=QFormat.from_dict(p["acc_fmt"]))
    out_fmt = kw["acc_fmt"] if kw else in_fmt
    layer = Layer(name="pool", kind="pool", in_shape=(c, h, w), out_shape=(c, h // 2, w // 2),
                  in_fmt=in_fmt, out_fmt=out_fmt, kernel=2, stride=2, pool=p["mode"], **kw)
    return p, layer


def _golden(layer, x):
    if layer.pool == "max":
        return reference.layer_forward(layer, x)
    return reference.layer_accumulate(layer, x)


def _frames(layer, n, rng):
    """(n, C, H, W) input values: extremes with probability 0.4, else uniform."""
    fmt = layer.in_fmt
    shape = (n,) + layer.in_shape
    x = rng.integers(fmt.min, fmt.max + 1, shape)
    extreme = rng.random(shape) < 0.4
    return np.where(extreme, np.where(rng.random(shape) < 0.5, fmt.min, fmt.max), x)


def _beats(t, lanes):
    """Raster beats of a (N, C, H, W) array: (values, last) per beat, channel groups in order."""
    n, c, h, w = t.shape
    g = c // lanes
    beats = []
    for i in range(n):
        for y in range(h):
            for x in range(w):
                for k in range(g):
                    last = y == h - 1 and x == w - 1 and k == g - 1
                    beats.append(([int(v) for v in t[i, k * lanes:(k + 1) * lanes, y, x]], int(last)))
    return beats


async def _run(dut, p, layer, x, *, gap_prob, stall_prob, seed):
    lanes = p["lanes"]
    expected = _beats(_golden(layer, x), lanes)
    words = [pack_beat(v, layer.in_fmt, last) for v, last in _beats(x, lanes)]
    got, in_cycles, out_cycles = await run_stream(dut, words, len(expected), gap_prob=gap_prob,
                                                  stall_prob=stall_prob, seed=seed, log=dut._log)
    c, h, w = layer.in_shape
    groups = c // lanes
    per_frame = len(expected) // len(x)
    for k, word in enumerate(got):
        values, last = unpack_beat(word, lanes, layer.out_fmt)
        want, want_last = expected[k]
        frame, rest = divmod(k, per_frame)
        pos, g = divmod(rest, groups)
        oy, ox = divmod(pos, w // 2)
        where = f"frame {frame} pooled (y {oy}, x {ox}) group {g}"
        assert last == want_last, f"{where}: last {last}, expected {want_last}"
        for lane, (v, e) in enumerate(zip(values, want)):
            assert v == e, f"{where} lane {lane} (channel {g * lanes + lane}): got {v}, golden {e}"
    return in_cycles, out_cycles


@cocotb.test()
async def pool_golden(dut):
    """Several frames back to back through random gaps and stalls; every output bit-exact."""
    p, layer = _setup()
    seed = p["seed"]
    dut._log.info("seed %d: %s pool of %d channels %dx%d (height x width), %s, lanes %d, %d frames",
                  seed, p["mode"], *layer.in_shape, layer.in_fmt, p["lanes"], p["frames"])
    x = _frames(layer, p["frames"], np.random.default_rng(seed))
    await _run(dut, p, layer, x, gap_prob=p["gap_prob"], stall_prob=p["stall_prob"], seed=seed)


@cocotb.test()
async def pool_timing(dut):
    """Without gaps and stalls (two frames): latency from the beat completing each 2x2 block to
    its output, and the input ii, equal the component's properties."""
    p, layer = _setup()
    x = _frames(layer, 2, np.random.default_rng(p["seed"] + 100))
    in_cycles, out_cycles = await _run(dut, p, layer, x, gap_prob=0.0, stall_prob=0.0, seed=p["seed"])
    c, h, w = layer.in_shape
    groups = c // p["lanes"]
    sources = [((n * h + 2 * oy + 1) * w + 2 * ox + 1) * groups + g
               for n in range(len(x)) for oy in range(h // 2) for ox in range(w // 2) for g in range(groups)]
    check_timing(in_cycles, out_cycles, sources, latency=p["latency"], ii=p["ii"], log=dut._log)
