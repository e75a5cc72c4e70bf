# amaranth: UnusedElaboratable=no
# (the MACArray made in __init__ is elaborated with the engine: it is unused only when the engine is)
"""Folded matrix-vector engine of a dense (fully connected) layer: accumulators only.

``acc[o] = bias[o] + sum_i w[o, i] * x[i]`` (:func:`golden.reference.dense_accumulate`), computed
by a :class:`hw.components.mac.MACArray` with ``out_lanes`` lanes of ``in_lanes`` taps. Requantization and
the activation follow in a separate block downstream. In LeNet-5 this is F6 (120 -> 84) and the
output layer (84 -> 10), LeCun et al. 1998, Sec. II-B; C5 too when it is described as dense.

Implementation result (yowasp nextpnr-ecp5, LFE5U-85F, default speed grade): F6 at ``P_o = 4,
P_i = 6``, 8-bit, 118 MHz, 24 MULT18X18D, weights in 6 DP16KD block RAMs.
"""

from math import lcm, prod

import numpy as np
from amaranth import Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from golden.arith import accumulator_range
from golden.qformat import QFormat
from golden.qnet import WIDTH_RANGE

from hw.components.common import check_divides, check_fmt, check_int, check_int_array, fmt_shape
from hw.components.mac import ACC_BITS_RANGE, MACArray
from hw.plan.timing import Timing

__all__ = ["DenseEngine", "READ_STAGES"]

#: Registers from a memory read's issue to the MAC array's input: the memories' output
#: registers, a hold register (a block RAM output drives nothing but a register), the step
#: register.
READ_STAGES = 3


class DenseEngine(wiring.Component):
    """Matrix-vector product ``acc = W x + b`` of a dense layer, folded onto a MAC array.

    The input vector ``x`` (``in_features`` elements, index order ``0 .. I-1``) arrives as a
    stream of beats of ``beat_lanes`` elements and is written into one half of a double buffer
    (``amaranth.lib.memory.Memory``, ``lcm(beat_lanes, in_lanes)`` elements per word), so the
    next vector arrives while the current one is computed. Each compute cycle reads ``in_lanes``
    consecutive elements ``x[k*P_i .. k*P_i+P_i-1]`` and one word of the weight ROM holding the
    ``P_o x P_i`` weights ``w[g*P_o + l, k*P_i + t]``; the :class:`~hw.components.mac.MACArray`
    (``lanes = P_o``, ``taps = P_i``) sums ``k = 0 .. I/P_i - 1`` starting from the bias (a
    second ROM, one word of ``P_o`` biases per output group ``g``), then outputs group ``g``
    (outputs ``g*P_o .. g*P_o+P_o-1``) as one beat. Groups follow in order ``g = 0 .. O/P_o - 1``.

    Parameters
    ----------
    in_features : int
        ``I``, elements of the input vector.
    out_features : int
        ``O``, outputs.
    in_fmt : QFormat
        Format of the input elements (2..16 bits, signed or unsigned).
    w_fmt : QFormat
        Weight format (2..16 bits).
    acc_fmt : QFormat
        Accumulator / bias / output format (2..46 bits); it must hold
        :func:`golden.arith.accumulator_range` of ``weights``, ``bias`` and ``in_fmt``.
    weights : array of int, shape (O, I)
        Integer weights in ``w_fmt``; column ``i`` multiplies the ``i``-th streamed element.
    bias : array of int, shape (O,)
        Integer biases in ``acc_fmt`` (at the accumulator's scale).
    out_lanes : int
        ``P_o``, outputs computed in parallel; must divide ``O``.
    in_lanes : int
        ``P_i``, inputs consumed per cycle by each output lane; must divide ``I``.
    beat_lanes : int
        ``B``, input elements per beat (default 1); must divide ``I``.
    dsp_multipliers, dsp_primitive
        How the MAC array builds its ``P_o x P_i`` products (:class:`hw.components.mac.MACArray`); the
        default leaves it to the synthesis tool.

    Members
    -------
    i : In(stream.Signature(StructLayout({"data": ArrayLayout(in_shape, B), "last": 1})))
        Input vector, elements ``j*B .. j*B+B-1`` in beat ``j`` (lane ``b`` = element
        ``j*B + b``); ``last`` on beat ``I/B - 1``. ``in_shape`` is ``signed/unsigned(in_fmt.bits)``.
        The engine counts beats: a vector ends after ``I/B`` beats, or earlier at a beat with
        ``last`` set (the missing elements then hold stale values; this only resynchronises
        after a malformed frame).
    o : Out(stream.Signature(StructLayout({"data": ArrayLayout(acc_shape, P_o), "last": 1})))
        Accumulators, ``O/P_o`` beats per vector; lane ``l`` of beat ``g`` is ``acc[g*P_o + l]``;
        ``last`` on the final beat of each vector. ``acc_shape`` is ``signed/unsigned(acc_fmt.bits)``.

    Flow control is per output group: a group starts only while fewer than
    :attr:`pending_limit` groups are started and not yet read from the MAC array, whose output
    FIFO holds that many results; the array never refuses a step, and the read pipeline (block
    RAM outputs, hold and step registers) has no clock enable. With the output always ready the
    limit costs no cycle.

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
    TypeError
        Parameters of the wrong type.
    ValueError
        Sizes below 1; ``out_lanes``, ``in_lanes`` or ``beat_lanes`` not dividing ``O`` / ``I``
        (the message lists the possible values); widths outside 2..16 (operands) or 2..46
        (accumulator); weights or biases outside their formats or of the wrong shape; an
        ``acc_fmt`` too narrow for the worst-case sum.
    """

    def __init__(self, *, in_features: int, out_features: int, in_fmt: QFormat, w_fmt: QFormat,
                 acc_fmt: QFormat, weights, bias, out_lanes: int, in_lanes: int, beat_lanes: int = 1,
                 dsp_multipliers=None, dsp_primitive=None):
        self._in_features = check_int("in_features", in_features)
        self._out_features = check_int("out_features", out_features)
        self._in_fmt = check_fmt("in_fmt", in_fmt, WIDTH_RANGE)
        self._w_fmt = check_fmt("w_fmt", w_fmt, WIDTH_RANGE)
        self._acc_fmt = check_fmt("acc_fmt", acc_fmt, ACC_BITS_RANGE)
        self._out_lanes = check_divides("out_lanes", out_lanes, out_features, "out_features")
        self._in_lanes = check_divides("in_lanes", in_lanes, in_features, "in_features")
        self._beat_lanes = check_divides("beat_lanes", beat_lanes, in_features, "in_features")
        self._weights = check_int_array("weights", weights, (out_features, in_features), w_fmt)
        self._bias = check_int_array("bias", bias, (out_features,), acc_fmt)
        lo, hi = accumulator_range(self._weights, self._bias, in_fmt)
        if not acc_fmt.contains(lo, hi):
            raise ValueError(f"acc_fmt {acc_fmt} ({acc_fmt.bits} bits, [{acc_fmt.min}, {acc_fmt.max}]) is too "
                             f"narrow: the worst-case sums span [{lo}, {hi}] "
                             f"(golden.arith.accumulator_format gives the right width)")
        self._weights.flags.writeable = False
        self._bias.flags.writeable = False
        mac_args = dict(lanes=out_lanes, taps=in_lanes, a_fmt=in_fmt, w_fmt=w_fmt, acc_fmt=acc_fmt,
                        user_width=1)
        mac_latency = MACArray(**mac_args).latency
        # Output groups started (first read issued) and not yet read from the MAC array: with the
        # output always ready at most (READ_STAGES + latency - 1) // chunks + 1 at a group's start
        # (starts are `chunks` cycles apart, a group is read chunks - 1 + READ_STAGES + latency
        # cycles after its start), so this limit costs no cycle then; the MAC FIFO holds that many
        # results, so the array never refuses a step.
        self._pending_limit = (READ_STAGES + mac_latency) // (in_features // in_lanes) + 2
        self._mac = MACArray(**mac_args, fifo_depth=max(mac_latency + 1, self._pending_limit),
                             dsp_multipliers=dsp_multipliers, dsp_primitive=dsp_primitive)
        super().__init__({
            "i": In(stream.Signature(data.StructLayout({
                "data": data.ArrayLayout(fmt_shape(in_fmt), beat_lanes), "last": 1}))),
            "o": Out(stream.Signature(data.StructLayout({
                "data": data.ArrayLayout(fmt_shape(acc_fmt), out_lanes), "last": 1}))),
        })

    @classmethod
    def from_layer(cls, layer, *, out_lanes: int, in_lanes: int, beat_lanes: int = 1, **mac_options):
        """The engine of a dense :class:`golden.qnet.Layer`.

        The input is streamed in the feature-map order of the project (raster order, the
        channels of one position consecutive): for an input shape (C, H, W) with H or W above 1
        the weight columns are permuted from the golden (C, H, W) flattening to (H, W, C).
        """
        if getattr(layer, "kind", None) != "dense":
            raise ValueError(f"DenseEngine.from_layer needs a dense layer, not {layer!r}")
        weights = np.asarray(layer.weights, dtype=np.int64)
        if len(layer.in_shape) == 3:
            c, h, w = layer.in_shape
            weights = weights.reshape(-1, c, h, w).transpose(0, 2, 3, 1).reshape(len(weights), -1)
        return cls(in_features=int(prod(layer.in_shape)), out_features=layer.out_shape[0],
                   in_fmt=layer.in_fmt, w_fmt=layer.w_fmt, acc_fmt=layer.acc_fmt, weights=weights,
                   bias=layer.bias, out_lanes=out_lanes, in_lanes=in_lanes, beat_lanes=beat_lanes,
                   **mac_options)

    # -- parameters and derived values ------------------------------------------------------
    in_features = property(lambda self: self._in_features, doc="``I``.")
    out_features = property(lambda self: self._out_features, doc="``O``.")
    in_fmt = property(lambda self: self._in_fmt, doc="Input format.")
    w_fmt = property(lambda self: self._w_fmt, doc="Weight format.")
    acc_fmt = property(lambda self: self._acc_fmt, doc="Accumulator / output format.")
    out_lanes = property(lambda self: self._out_lanes, doc="``P_o``.")
    in_lanes = property(lambda self: self._in_lanes, doc="``P_i``.")
    beat_lanes = property(lambda self: self._beat_lanes, doc="``B``.")
    weights = property(lambda self: self._weights, doc="Weights (O, I), read-only int64.")
    bias = property(lambda self: self._bias, doc="Biases (O,), read-only int64.")
    mac = property(lambda self: self._mac, doc="The :class:`~hw.components.mac.MACArray` (P_o lanes, P_i taps).")

    @property
    def groups(self):
        """Output groups ``O / P_o`` (output beats per vector)."""
        return self._out_features // self._out_lanes

    @property
    def chunks(self):
        """Input chunks ``I / P_i`` (MAC steps per output group)."""
        return self._in_features // self._in_lanes

    @property
    def in_beats(self):
        """Input beats per vector, ``I / B``."""
        return self._in_features // self._beat_lanes

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
        return self.compute_cycles + READ_STAGES + self._mac.latency

    def timing(self, avail):
        """Exact cycle timing with the output always ready (see the class docstring, "Timing
        model", and :mod:`hw.plan.timing`).

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
        return Timing(accept, self._mac.timing(steps, last=self.chunks).out)

    @property
    def pending_limit(self):
        """Output groups that may be started and not yet read from the MAC array:
        ``(READ_STAGES + mac.latency) // (I/P_i) + 2`` (see the hardware comments)."""
        return self._pending_limit

    @property
    def buffer_word(self):
        """Elements per input-buffer word: ``lcm(B, P_i)``."""
        return lcm(self._beat_lanes, self._in_lanes)

    # -- hardware ---------------------------------------------------------------------------
    def elaborate(self, platform):
        m = Module()
        m.submodules.mac = mac = self._mac
        po, pi, bl = self._out_lanes, self._in_lanes, self._beat_lanes
        groups, chunks = self.groups, self.chunks
        word = self.buffer_word
        words = self._in_features // word          # words per vector (one half of the buffer)
        in_shape, w_shape, acc_shape = fmt_shape(self._in_fmt), fmt_shape(self._w_fmt), fmt_shape(self._acc_fmt)

        # --- ROMs: weight word g*chunks + k = w[g*P_o + l, k*P_i + t] at [l][t]; bias word g.
        w_layout = data.ArrayLayout(data.ArrayLayout(w_shape, pi), po)
        w_init = [[[int(self._weights[g * po + l, k * pi + t]) for t in range(pi)] for l in range(po)]
                  for g in range(groups) for k in range(chunks)]
        # (ROMs get at least 2 words: a 1-word memory would have a zero-width address.)
        m.submodules.w_rom = w_rom = Memory(shape=w_layout, depth=max(groups * chunks, 2), init=w_init)
        b_layout = data.ArrayLayout(acc_shape, po)
        b_init = [[int(self._bias[g * po + l]) for l in range(po)] for g in range(groups)]
        m.submodules.b_rom = b_rom = Memory(shape=b_layout, depth=max(groups, 2), init=b_init)
        w_port, b_port = w_rom.read_port(), b_rom.read_port()

        # --- input double buffer: half h holds words h*words .. h*words + words-1.
        m.submodules.x_buf = x_buf = Memory(shape=data.ArrayLayout(in_shape, word), depth=2 * words, init=[])
        x_wr = x_buf.write_port(granularity=1)
        x_rd = x_buf.read_port()
        full = Signal(2)                            # half h holds a complete, unread vector

        # Writer: beat j goes to word (j*B) // word, elements slot*B .. slot*B+B-1.
        wbuf = Signal()
        wword = Signal(range(max(words, 2)))
        wslot = Signal(range(max(word // bl, 2)))
        wbeat = Signal(range(max(self.in_beats, 2)))
        m.d.comb += [
            self.i.ready.eq(~full.bit_select(wbuf, 1)),
            x_wr.addr.eq(Mux(wbuf, words, 0) + wword),
        ]
        for s in range(word // bl):
            for b in range(bl):
                m.d.comb += [x_wr.data[s * bl + b].eq(self.i.payload.data[b]),
                             x_wr.en[s * bl + b].eq(self.i.valid & self.i.ready & (wslot == s))]
        with m.If(self.i.valid & self.i.ready):
            with m.If(self.i.payload.last | (wbeat == self.in_beats - 1)):
                m.d.sync += [wbeat.eq(0), wslot.eq(0), wword.eq(0), wbuf.eq(~wbuf),
                             full.bit_select(wbuf, 1).eq(1)]
            with m.Else():
                m.d.sync += wbeat.eq(wbeat + 1)
                with m.If(wslot == word // bl - 1):
                    m.d.sync += [wslot.eq(0), wword.eq(wword + 1)]
                with m.Else():
                    m.d.sync += wslot.eq(wslot + 1)

        # Reader / sequencer: issue (memory reads) -> read stage (memory outputs) -> hold -> step register.
        rbuf = Signal()
        k = Signal(range(max(chunks, 2)))           # input chunk
        g = Signal(range(max(groups, 2)))           # output group
        waddr = Signal(range(max(groups * chunks, 2)))
        rword = Signal(range(max(words, 2)))        # buffer word of chunk k
        rsub = Signal(range(max(word // pi, 2)))    # chunk k's slice of that word
        have = full.bit_select(rbuf, 1)

        step_valid = Signal()
        step = Signal(data.StructLayout({"x": data.ArrayLayout(in_shape, pi), "w": w_layout, "bias": b_layout,
                                         "first": 1, "last": 1, "vlast": 1}))
        rd_valid, rd_first, rd_last, rd_vlast = Signal(), Signal(), Signal(), Signal()
        rd_sub = Signal.like(rsub)
        # hold stage: the memory outputs registered as they are (a block RAM's output is slow;
        # nothing but a register may follow it), then the chunk multiplexer into the step register.
        h_valid, h_first, h_last, h_vlast = Signal(), Signal(), Signal(), Signal()
        h_sub = Signal.like(rsub)
        h_x = Signal.like(x_rd.data)
        h_w = Signal.like(w_port.data)
        h_b = Signal.like(b_port.data)
        # Flow control per output group, not per step: a group starts (its first read) only while
        # fewer than `pending_limit` groups are started and not yet read from the MAC array,
        # whose FIFO holds that many results; so the array never refuses a step, its `i.ready`
        # is unused and the read pipeline below has no clock enable (no path from the MAC
        # array's flip-flops back to the block RAMs and the wide step registers).
        pending = Signal(range(self._pending_limit + 1))
        room = Signal(init=1)                       # pending < pending_limit, registered
        issue = Signal()
        m.d.comb += issue.eq(have & (room | (k != 0)))
        pending_next = Signal.like(pending)
        m.d.comb += pending_next.eq(pending + (issue & (k == 0)) - (mac.o.valid & mac.o.ready))
        m.d.sync += [pending.eq(pending_next), room.eq(pending_next < self._pending_limit)]
        m.d.comb += [
            w_port.addr.eq(waddr),
            b_port.addr.eq(g),
            x_rd.addr.eq(Mux(rbuf, words, 0) + rword),
        ]
        m.d.sync += [rd_valid.eq(issue), rd_first.eq(k == 0), rd_last.eq(k == chunks - 1),
                     rd_vlast.eq((k == chunks - 1) & (g == groups - 1)), rd_sub.eq(rsub)]
        with m.If(issue):
            with m.If(k == chunks - 1):
                m.d.sync += [k.eq(0), rword.eq(0), rsub.eq(0)]
                with m.If(g == groups - 1):
                    m.d.sync += [g.eq(0), waddr.eq(0), rbuf.eq(~rbuf), full.bit_select(rbuf, 1).eq(0)]
                with m.Else():
                    m.d.sync += [g.eq(g + 1), waddr.eq(waddr + 1)]
            with m.Else():
                m.d.sync += [k.eq(k + 1), waddr.eq(waddr + 1)]
                with m.If(rsub == word // pi - 1):
                    m.d.sync += [rsub.eq(0), rword.eq(rword + 1)]
                with m.Else():
                    m.d.sync += rsub.eq(rsub + 1)

        m.d.sync += [h_valid.eq(rd_valid), h_first.eq(rd_first), h_last.eq(rd_last),
                     h_vlast.eq(rd_vlast), h_sub.eq(rd_sub), h_x.eq(x_rd.data), h_w.eq(w_port.data),
                     h_b.eq(b_port.data)]
        m.d.sync += [step_valid.eq(h_valid), step.first.eq(h_first), step.last.eq(h_last),
                     step.vlast.eq(h_vlast), step.w.eq(h_w), step.bias.eq(h_b)]
        with m.Switch(h_sub):
            for s in range(word // pi):
                with m.Case(s):
                    m.d.sync += [step.x[t].eq(h_x[s * pi + t]) for t in range(pi)]
        m.d.comb += [mac.i.payload.a[l][t].eq(step.x[t]) for l in range(po) for t in range(pi)]
        m.d.comb += [
            mac.i.valid.eq(step_valid),
            mac.i.payload.w.eq(step.w),
            mac.i.payload.bias.eq(step.bias),
            mac.i.payload.first.eq(step.first),
            mac.i.payload.last.eq(step.last),
            mac.i.payload.user.eq(step.vlast),
            self.o.valid.eq(mac.o.valid),
            self.o.payload.data.eq(mac.o.payload.data),
            self.o.payload.last.eq(mac.o.payload.user[0]),
            mac.o.ready.eq(self.o.ready),
        ]
        return m
