# amaranth: UnusedElaboratable=no
# (the MACArray that `DenseEngine.mac` builds on first use is unused only when the engine is)
"""Folded matrix-vector engine of a dense (fully connected) layer: accumulators only.

``acc[o] = bias[o] + sum_i w[o, i] * x[i]`` (:func:`golden.reference.dense_accumulate`), computed
by a :class:`hw.components.mac.MACArray` with ``out_lanes`` lanes of ``taps`` products each. Requantization and
the activation follow in a separate block downstream. In LeNet-5 this is F6 (120 -> 84) and the
output layer (84 -> 10), LeCun et al. 1998, Sec. II-B; C5 too when it is described as dense.

Implementation result (yowasp nextpnr, Lattice LFE5U-85F, default speed grade): F6 at ``P_o = 4,
P_i = 6``, 8-bit, 118 MHz, 24 DSP blocks, weights in 6 block RAMs.
"""

from amaranth import Module, Mux, Signal
from amaranth.lib import data
from amaranth.lib.memory import Memory

from hw.components.common import PlannedComponent, delegate, fmt_shape
from hw.components.mac import MACArray
from hw.plan.dense import READ_STAGES, DensePlan

__all__ = ["DenseEngine", "DensePlan", "READ_STAGES"]


class DenseEngine(PlannedComponent):
    """Matrix-vector product ``acc = W x + b`` of a dense layer, folded onto a MAC array.

    The input vector ``x`` (``in_features`` elements, index order ``0 .. I-1``) arrives as a
    stream of beats of ``in_lanes`` elements and is written into one half of a double buffer
    (``amaranth.lib.memory.Memory``, ``lcm(in_lanes, taps)`` elements per word), so the
    next vector arrives while the current one is computed. Each compute cycle reads ``taps``
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
    taps : int
        ``P_i``, inputs consumed per cycle by each output lane; must divide ``I``.
    in_lanes : int
        ``B``, input elements per beat (default 1); must divide ``I``.
    dsp_multipliers, dsp_vendor
        How the MAC array builds its ``P_o x P_i`` products (:class:`hw.components.mac.MACArray`); the
        default leaves it to the synthesis tool. ``dsp_primitive``: old name of ``dsp_vendor``.

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
    :attr:`latency` ``= compute_cycles + READ_STAGES + mac.latency`` (F6 at ``P_o = 4, P_i = 6``:
    ``420 + 3 + 6 = 429``), :attr:`ii` ``= frame_cycles = max(compute_cycles, I/B)`` and the exact
    cycle model :meth:`timing` are those of the engine's :class:`hw.plan.dense.DensePlan` (see
    its docstring). ``DenseEngine(**params)`` builds the plan; :meth:`from_plan` takes one.

    Raises
    ------
    TypeError
        Parameters of the wrong type.
    ValueError
        Sizes below 1; ``out_lanes``, ``taps`` or ``in_lanes`` not dividing ``O`` / ``I``
        (the message lists the possible values); widths outside 2..16 (operands) or 2..46
        (accumulator); weights or biases outside their formats or of the wrong shape; an
        ``acc_fmt`` too narrow for the worst-case sum.
    """

    plan_class = DensePlan

    @classmethod
    def from_layer(cls, layer, *, out_lanes: int, taps: int, in_lanes: int = 1, **mac_options):
        """The engine of a dense :class:`golden.qnet.Layer`: :meth:`hw.plan.dense.DensePlan.from_layer`."""
        return cls.from_plan(DensePlan.from_layer(layer, out_lanes=out_lanes, taps=taps,
                                                  in_lanes=in_lanes, **mac_options), src_loc_at=1)

    def _build(self, plan):
        self._mac = None                        # built on first use (:attr:`mac`)
        super()._build(plan)

    # -- parameters and derived values: the plan's (:class:`hw.plan.dense.DensePlan`) --------
    in_features = delegate()
    out_features = delegate()
    in_fmt = delegate()
    w_fmt = delegate()
    acc_fmt = delegate()
    out_lanes = delegate()
    taps = delegate()
    in_lanes = delegate()
    weights = delegate()
    bias = delegate()
    dsp_multipliers = delegate()
    dsp_vendor = delegate()
    groups = delegate()
    chunks = delegate()
    in_beats = delegate()
    compute_cycles = delegate()
    frame_cycles = delegate()
    multipliers = delegate()
    pending_limit = delegate()
    buffer_word = delegate()
    dsp_primitive = delegate("Old name of :attr:`dsp_vendor`.", to="dsp_vendor")

    @property
    def mac(self):
        """The :class:`~hw.components.mac.MACArray` (P_o lanes, P_i taps), built from ``plan.mac`` on first use."""
        if self._mac is None:
            self._mac = MACArray.from_plan(self._plan.mac)
        return self._mac

    # -- hardware ---------------------------------------------------------------------------
    def elaborate(self, platform):
        m = Module()
        plan = self._plan
        m.submodules.mac = self.mac
        po, pi = plan.out_lanes, plan.taps
        words = plan.in_features // plan.buffer_word      # words per vector (one half of the buffer)
        in_shape, w_shape, acc_shape = fmt_shape(plan.in_fmt), fmt_shape(plan.w_fmt), fmt_shape(plan.acc_fmt)

        # --- ROMs: weight word g*chunks + k = w[g*P_o + l, k*P_i + t] at [l][t]; bias word g.
        w_layout = data.ArrayLayout(data.ArrayLayout(w_shape, pi), po)
        # (ROMs get at least 2 words: a 1-word memory would have a zero-width address.)
        m.submodules.w_rom = w_rom = Memory(shape=w_layout, depth=max(plan.compute_cycles, 2),
                                            init=plan.weight_words())
        b_layout = data.ArrayLayout(acc_shape, po)
        m.submodules.b_rom = b_rom = Memory(shape=b_layout, depth=max(plan.groups, 2), init=plan.bias_words())
        w_port, b_port = w_rom.read_port(), b_rom.read_port()

        # --- input double buffer: half h holds words h*words .. h*words + words-1.
        m.submodules.x_buf = x_buf = Memory(shape=data.ArrayLayout(in_shape, plan.buffer_word), depth=2 * words,
                                            init=[])
        x_wr = x_buf.write_port(granularity=1)
        x_rd = x_buf.read_port()
        full = Signal(2)                            # half h holds a complete, unread vector
        self._writer(m, x_wr, full, words)
        self._reader(m, x_rd, w_port, b_port, full, words, w_layout, b_layout)
        return m

    def _writer(self, m, x_wr, full, words):
        """Beat ``j`` goes to buffer word ``(j*B) // word``, elements ``slot*B .. slot*B+B-1``."""
        plan = self._plan
        word, bl = plan.buffer_word, plan.in_lanes
        wbuf = Signal()
        wword = Signal(range(max(words, 2)))
        wslot = Signal(range(max(word // bl, 2)))
        wbeat = Signal(range(max(plan.in_beats, 2)))
        m.d.comb += [
            self.i.ready.eq(~full.bit_select(wbuf, 1)),
            x_wr.addr.eq(Mux(wbuf, words, 0) + wword),
        ]
        for s in range(word // bl):
            for b in range(bl):
                m.d.comb += [x_wr.data[s * bl + b].eq(self.i.payload.data[b]),
                             x_wr.en[s * bl + b].eq(self.i.valid & self.i.ready & (wslot == s))]
        with m.If(self.i.valid & self.i.ready):
            with m.If(self.i.payload.last | (wbeat == plan.in_beats - 1)):
                m.d.sync += [wbeat.eq(0), wslot.eq(0), wword.eq(0), wbuf.eq(~wbuf),
                             full.bit_select(wbuf, 1).eq(1)]
            with m.Else():
                m.d.sync += wbeat.eq(wbeat + 1)
                with m.If(wslot == word // bl - 1):
                    m.d.sync += [wslot.eq(0), wword.eq(wword + 1)]
                with m.Else():
                    m.d.sync += wslot.eq(wslot + 1)

    def _reader(self, m, x_rd, w_port, b_port, full, words, w_layout, b_layout):
        """Reader / sequencer: issue (memory reads) -> read stage (memory outputs) -> hold -> step
        register (:data:`READ_STAGES`) -> the MAC array."""
        plan, mac = self._plan, self.mac
        pi, groups, chunks, word = plan.taps, plan.groups, plan.chunks, plan.buffer_word
        rbuf = Signal()
        k = Signal(range(max(chunks, 2)))           # input chunk
        g = Signal(range(max(groups, 2)))           # output group
        waddr = Signal(range(max(groups * chunks, 2)))
        rword = Signal(range(max(words, 2)))        # buffer word of chunk k
        rsub = Signal(range(max(word // pi, 2)))    # chunk k's slice of that word
        have = full.bit_select(rbuf, 1)

        step_valid = Signal()
        step = Signal(data.StructLayout({"x": data.ArrayLayout(fmt_shape(plan.in_fmt), pi), "w": w_layout,
                                         "bias": b_layout, "first": 1, "last": 1, "vlast": 1}))
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
        pending = Signal(range(plan.pending_limit + 1))
        room = Signal(init=1)                       # pending < pending_limit, registered
        issue = Signal()
        m.d.comb += issue.eq(have & (room | (k != 0)))
        pending_next = Signal.like(pending)
        m.d.comb += pending_next.eq(pending + (issue & (k == 0)) - (mac.o.valid & mac.o.ready))
        m.d.sync += [pending.eq(pending_next), room.eq(pending_next < plan.pending_limit)]
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
        self._to_mac(m, step_valid, step)

    def _to_mac(self, m, step_valid, step):
        """The step register into the MAC array; its results are the output."""
        mac = self.mac
        m.d.comb += [mac.i.payload.a[l][t].eq(step.x[t]) for l in range(self._plan.out_lanes)
                     for t in range(self._plan.taps)]
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
