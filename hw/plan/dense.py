"""Plan of a folded dense engine (:class:`hw.components.dense.DenseEngine`): parameters, ROM
images, latency from its :class:`hw.plan.mac.MACPlan`, the exact cycle model, resources estimate.

Plain Python: no Amaranth elaboratable is built here.
"""

from dataclasses import InitVar, dataclass, field
from math import lcm, prod

import numpy as np

from golden.arith import accumulator_range
from golden.limits import ACC_BITS_RANGE, WIDTH_RANGE
from golden.qformat import QFormat
from golden.reference import raster_order

from hw.plan.params import beat_layout, check_divides, check_fmt, check_int, check_int_array, fmt_shape
from hw.plan.mac import MACPlan, vendor_argument
from hw.plan.timing import Timing

__all__ = ["DensePlan", "READ_STAGES"]

#: Registers from a memory read's issue to the MAC array's input: the memories' output
#: registers, a hold register (a block RAM output drives nothing but a register), the step
#: register.
READ_STAGES = 3


@dataclass(frozen=True, kw_only=True, eq=False)
class DensePlan:
    """Matrix-vector product ``acc = W x + b`` folded onto a MAC array of ``out_lanes`` lanes of
    ``taps`` products each (the hardware and its parameters: :class:`hw.components.dense.DenseEngine`).

    Parameters
    ----------
    in_features, out_features : int
        ``I`` and ``O``.
    in_fmt, w_fmt, acc_fmt : QFormat
        Input and weight (2..16 bits) and accumulator (2..46 bits) formats; ``acc_fmt`` must
        hold :func:`golden.arith.accumulator_range` of ``weights``, ``bias`` and ``in_fmt``.
    weights, bias : array of int
        ``(O, I)`` in ``w_fmt`` and ``(O,)`` in ``acc_fmt``; stored as read-only int64 arrays.
    out_lanes, taps, in_lanes : int
        ``P_o`` (divides ``O``), ``P_i`` and ``B`` (divide ``I``; ``B`` default 1).
    dsp_multipliers, dsp_vendor : as :class:`hw.plan.mac.MACPlan`; ``dsp_primitive`` is the
        old name of ``dsp_vendor``.

    Members
    -------
    mac : MACPlan
        The MAC array's plan (``P_o`` lanes, ``P_i`` taps, FIFO of :attr:`pending_limit` results).

    Latency
    -------
    :attr:`compute_cycles` ``C = (O/P_o) * (I/P_i)`` MAC steps per vector.
    :attr:`frame_cycles` ``= ii = max(C, I/B)`` cycles per vector in steady state (input offered
    at full rate, output always ready): compute-bound or input-bound, with no lost cycle between
    vectors (the reader goes on with the other buffer half in the cycle after its last read, the
    writer in the cycle after the last beat).
    :attr:`latency` ``= C + READ_STAGES + mac.latency`` cycles: when the engine is idle, the last input
    beat of a vector accepted in cycle ``c`` gives the vector's last output beat valid in cycle
    ``c + latency``: the memory reads are issued in cycles ``c + 1 .. c + C``, the last one
    reaches the memory output register, the hold register and the step register
    (:data:`READ_STAGES` = 3 cycles), and the MAC array adds its own
    :attr:`~hw.components.mac.MACArray.latency`. For F6 at ``P_o = 4, P_i = 6``: ``420 + 3 + 6 = 429``.
    While the engine is still busy with the previous vector the wait for it comes on
    top (a complete vector waits in the other buffer half).

    Timing model (:meth:`timing`, exact for the emitted Verilog; conventions in
    :mod:`hw.plan.timing`). With the output always ready the MAC array never stalls, so for vectors
    ``n = 0, 1, ...`` of ``I/B`` beats each:

    * input beats are accepted as offered, ``accept[k] = max(avail[k], accept[k-1] + 1)``,
      except that the first beat of vector ``n >= 2`` also waits for its buffer half, which
      vector ``n-2`` frees in the cycle after its last read: ``accept >= S[n-2] + C``. (Later
      beats of a vector are never refused.)
    * The reads of vector ``n`` start in cycle ``S[n] = max(c_n + 1, S[n-1] + C)`` (``c_n``: its
      last beat's accept cycle; ``S[-1] + C = -inf``) and take ``C`` consecutive cycles; read
      ``q = g*(I/P_i) + k`` (group ``g``, chunk ``k``) is accepted by the MAC array in cycle
      ``S[n] + 3 + q``.
    * Output beat ``g`` of vector ``n`` is valid in cycle ``S[n] + 2 + (g+1)*(I/P_i) +
      mac.latency`` (:meth:`hw.components.mac.MACArray.timing` of those steps).

    :attr:`latency` is ``out - accept`` of the last beats of one vector in an idle engine, and
    :attr:`frame_cycles` the steady-state period of ``S`` with ``avail`` all zero.

    Raises
    ------
    TypeError, ValueError
        As :class:`hw.components.dense.DenseEngine`.
    """

    in_features: int
    out_features: int
    in_fmt: QFormat
    w_fmt: QFormat
    acc_fmt: QFormat
    weights: np.ndarray
    bias: np.ndarray
    out_lanes: int
    taps: int
    in_lanes: int = 1
    dsp_multipliers: int | None = None
    dsp_vendor: str | None = None
    dsp_primitive: InitVar[str | None] = None
    mac: MACPlan = field(init=False, repr=False)

    def __post_init__(self, dsp_primitive):
        def put(name, value):
            object.__setattr__(self, name, value)

        put("in_features", check_int("in_features", self.in_features))
        put("out_features", check_int("out_features", self.out_features))
        check_fmt("in_fmt", self.in_fmt, WIDTH_RANGE)
        check_fmt("w_fmt", self.w_fmt, WIDTH_RANGE)
        check_fmt("acc_fmt", self.acc_fmt, ACC_BITS_RANGE)
        put("out_lanes", check_divides("out_lanes", self.out_lanes, self.out_features, "out_features"))
        put("taps", check_divides("taps", self.taps, self.in_features, "in_features"))
        put("in_lanes", check_divides("in_lanes", self.in_lanes, self.in_features, "in_features"))
        put("weights", check_int_array("weights", self.weights, (self.out_features, self.in_features), self.w_fmt))
        put("bias", check_int_array("bias", self.bias, (self.out_features,), self.acc_fmt))
        lo, hi = accumulator_range(self.weights, self.bias, self.in_fmt)
        acc_fmt = self.acc_fmt
        if not acc_fmt.contains(lo, hi):
            raise ValueError(f"acc_fmt {acc_fmt} ({acc_fmt.bits} bits, [{acc_fmt.min}, {acc_fmt.max}]) is too "
                             f"narrow: the worst-case sums span [{lo}, {hi}] "
                             f"(golden.arith.accumulator_format gives the right width)")
        name, key = vendor_argument(self.dsp_vendor, dsp_primitive)
        mac_args = dict(lanes=self.out_lanes, taps=self.taps, a_fmt=self.in_fmt, w_fmt=self.w_fmt,
                        acc_fmt=acc_fmt, user_width=1)
        latency = MACPlan(**mac_args).latency
        put("mac", MACPlan(**mac_args, fifo_depth=max(latency + 1, self._pending_limit(latency)),
                           dsp_multipliers=self.dsp_multipliers, **{key: name}))
        put("dsp_multipliers", self.mac.dsp_multipliers)
        put("dsp_vendor", name)

    def _pending_limit(self, mac_latency):
        # Output groups started (first read issued) and not yet read from the MAC array: with the
        # output always ready at most (READ_STAGES + latency - 1) // chunks + 1 at a group's start
        # (starts are `chunks` cycles apart, a group is read chunks - 1 + READ_STAGES + latency
        # cycles after its start), so this limit costs no cycle then; the MAC FIFO holds that many
        # results, so the array never refuses a step.
        return (READ_STAGES + mac_latency) // self.chunks + 2

    @classmethod
    def from_layer(cls, layer, *, out_lanes: int, taps: int, in_lanes: int = 1, **mac_options):
        """The plan of a dense :class:`golden.qnet.Layer`.

        The input is streamed in the feature-map order of the project (raster order, the
        channels of one position consecutive): for an input shape (C, H, W) with H or W above 1
        the weight columns are permuted from the golden (C, H, W) flattening to the stream order
        (H, W, C) (:func:`golden.reference.raster_order`).
        """
        if getattr(layer, "kind", None) != "dense":
            raise ValueError(f"DenseEngine.from_layer needs a dense layer, not {layer!r}")
        weights = np.asarray(layer.weights, dtype=np.int64)
        if len(layer.in_shape) == 3:
            weights = raster_order(weights.reshape(-1, *layer.in_shape))
        return cls(in_features=int(prod(layer.in_shape)), out_features=layer.out_shape[0],
                   in_fmt=layer.in_fmt, w_fmt=layer.w_fmt, acc_fmt=layer.acc_fmt, weights=weights,
                   bias=layer.bias, out_lanes=out_lanes, taps=taps, in_lanes=in_lanes,
                   **mac_options)

    # -- derived values ---------------------------------------------------------------------
    @property
    def in_layout(self):
        """Payload layout of the input stream: ``in_lanes`` elements of ``in_fmt`` and ``last``."""
        return beat_layout(fmt_shape(self.in_fmt), self.in_lanes)

    @property
    def out_layout(self):
        """Payload layout of the output stream: ``out_lanes`` sums of ``acc_fmt`` and ``last``."""
        return beat_layout(fmt_shape(self.acc_fmt), self.out_lanes)

    @property
    def groups(self):
        """Output groups ``O / P_o`` (output beats per vector)."""
        return self.out_features // self.out_lanes

    @property
    def chunks(self):
        """Input chunks ``I / P_i`` (MAC steps per output group)."""
        return self.in_features // self.taps

    @property
    def in_beats(self):
        """Input beats per vector, ``I / B``."""
        return self.in_features // self.in_lanes

    @property
    def compute_cycles(self):
        """MAC steps (cycles) per vector: ``(O/P_o) * (I/P_i)``."""
        return self.groups * self.chunks

    @property
    def frame_cycles(self):
        """Cycles per vector in steady state (full-rate input, output always ready):
        ``max(compute_cycles, I/B)``."""
        return max(self.compute_cycles, self.in_beats)

    @property
    def ii(self):
        """Cycles between vectors in steady state: :attr:`frame_cycles`."""
        return self.frame_cycles

    @property
    def latency(self):
        """Cycles from the accepted last input beat (idle engine) to the last output beat being valid."""
        return self.compute_cycles + READ_STAGES + self.mac.latency

    @property
    def multipliers(self):
        """Multipliers: ``P_o * P_i``."""
        return self.mac.multipliers

    @property
    def pending_limit(self):
        """Output groups that may be started and not yet read from the MAC array:
        ``(READ_STAGES + mac.latency) // (I/P_i) + 2``."""
        return self._pending_limit(self.mac.latency)

    @property
    def buffer_word(self):
        """Elements per input-buffer word: ``lcm(B, P_i)``."""
        return lcm(self.in_lanes, self.taps)

    def timing(self, avail):
        """Exact cycle timing with the output always ready (class docstring, "Timing model").

        ``avail`` (non-decreasing) holds the earliest offer cycle of each input beat of one or
        more well-formed vectors back to back (``I/B`` beats each, ``last`` on the final one);
        a trailing incomplete vector is accepted but gives no output. Returns a
        :class:`hw.plan.timing.Timing` with one ``accept`` cycle per input beat and one ``out``
        cycle per output beat (``O/P_o`` per complete vector).
        """
        beats, c = self.in_beats, self.compute_cycles
        accept, starts = [], []          # starts[n]: cycle of vector n's first memory read
        t = None
        for k, a in enumerate(avail):
            n, j = divmod(k, beats)
            t = a if t is None else max(a, t + 1)
            if j == 0 and n >= 2:
                t = max(t, starts[n - 2] + c)        # its buffer half, freed by vector n-2
            accept.append(t)
            if j == beats - 1:
                starts.append(t + 1 if n == 0 else max(t + 1, starts[n - 1] + c))
        steps = [s + READ_STAGES + q for s in starts for q in range(c)]
        return Timing(accept, self.mac.timing(steps, last=self.chunks).out)

    def weight_words(self):
        """Weight ROM image: word ``g*chunks + k`` holds ``w[g*P_o + l, k*P_i + t]`` at ``[l][t]``."""
        po, pi = self.out_lanes, self.taps
        return [[[int(self.weights[g * po + l, k * pi + t]) for t in range(pi)] for l in range(po)]
                for g in range(self.groups) for k in range(self.chunks)]

    def bias_words(self):
        """Bias ROM image: word ``g`` holds the ``P_o`` biases of output group ``g``."""
        return [[int(self.bias[g * self.out_lanes + l]) for l in range(self.out_lanes)] for g in range(self.groups)]

    def resources(self) -> dict:
        """ESTIMATE (not a synthesis result): ``multipliers``; ``rom_bits`` the weight and bias
        ROMs; ``ram_bits`` the input double buffer and the MAC FIFO; ``register_bits`` roughly
        the hold and step registers and the MAC registers."""
        mac = self.mac.resources()
        step = self.taps * self.in_fmt.bits + self.multipliers * self.w_fmt.bits + self.out_lanes * self.acc_fmt.bits
        return {"multipliers": self.multipliers,
                "rom_bits": self.weights.size * self.w_fmt.bits + self.bias.size * self.acc_fmt.bits,
                "ram_bits": 2 * self.in_features * self.in_fmt.bits + mac["ram_bits"],
                "register_bits": self.buffer_word * self.in_fmt.bits + 2 * step + mac["register_bits"]}
