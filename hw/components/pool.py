"""2x2, stride-2 pooling of a raster feature-map stream (max pooling, or LeNet-5's trainable
average pooling ``coef[c] * (2x2 sum) + bias[c]``)."""

from amaranth import Array, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, memory

from hw.components.common import PlannedComponent, delegate, fmt_shape
from hw.plan.pool import OPERAND_BITS, POOL_MODES, PoolPlan

__all__ = ["Pool2x2", "POOL_MODES", "OPERAND_BITS"]


class Pool2x2(PlannedComponent):
    """2x2 stride-2 pooling of a feature-map stream, ``lanes`` channels per beat.

    Input order: raster over the ``height x width`` map (row-major), at each position the
    ``channels // lanes`` channel groups in order (beat ``g`` holds channels ``g*lanes ..
    g*lanes+lanes-1``). Output order: the same over the pooled ``height/2 x width/2`` map.
    Frames follow each other back to back; ``o.last`` marks the last beat of each pooled frame.
    Position counters track the frame; an accepted ``i.last`` resets them (frames re-align on it).

    Datapath, per lane:

    * horizontal pair: a delay line of ``G = channels // lanes`` beats gives, at an odd column,
      the beat of the same channel group at the even column to its left; ``h = max(a, b)``
      (``max``) or ``h = a + b`` (``avg``);
    * even rows write ``h`` into the line buffer, an :class:`amaranth.lib.memory.Memory` of
      ``width/2 * G`` words of ``lanes`` partial results (address ``(x // 2) * G + g``); odd rows
      read the word at the same address (synchronous read, issued as the beat is accepted) and
      combine: ``max(h_above, h)`` or ``s = h_above + h``;
    * ``avg`` only: ``acc = coef[c] * s + bias[c]`` in ``acc_fmt`` (one more register).

    All registers share one clock enable ``advance = ~o.valid | o.ready`` (also the line buffer's
    read enable, so read data hold during a stall); ``i.ready = advance`` depends combinationally
    on ``o.ready`` (no skid buffer). Three of four input beats produce no output (bubbles).

    Parameters
    ----------
    mode : str
        ``"max"`` (output = :func:`golden.arith.max_pool2x2`, format unchanged) or ``"avg"``
        (output = the accumulator of :func:`golden.reference.layer_accumulate` for an ``avg``
        pool layer, ``coef[c] * sum + bias[c]``; requantization and activation follow in
        :class:`hw.components.requant.Requantizer` / :class:`hw.components.activation.TanhLUT`).
    in_fmt : QFormat
        Input format, 2..16 bits, signed or unsigned.
    channels : int
        Feature maps, ``>= 1``.
    width, height : int
        Input map size, even, ``>= 2``.
    lanes : int
        Channels per beat; must divide ``channels``.
    coef : sequence of int, optional (``avg`` only, required)
        One coefficient per channel, inside ``coef_fmt``.
    coef_fmt : QFormat, optional (``avg`` only, required)
        Coefficient format, signed, 2..16 bits.
    bias : sequence of int, optional (``avg`` only; default zeros)
        One bias per channel at the accumulator's scale.
    acc_fmt : QFormat, optional (``avg`` only)
        Accumulator (output) format, signed; it must hold :func:`golden.arith.accumulator_range`
        of ``coef`` repeated 4 times and ``bias``. Default: :func:`golden.arith.accumulator_format`.

    Members
    -------
    i : ``In(stream.Signature(StructLayout({"data": ArrayLayout(in shape, lanes), "last": 1})))``
        Input feature map in ``in_fmt``.
    o : ``Out(stream.Signature(StructLayout({"data": ArrayLayout(out shape, lanes), "last": 1})))``
        Pooled map: ``in_fmt`` integers (``max``) or ``signed(acc_fmt.bits)`` accumulators (``avg``).

    Latency
    -------
    :attr:`latency` ``= 2`` (``max``) or ``3`` (``avg``) cycles from the cycle the input beat that
    completes a 2x2 block (odd row, odd column, group ``g``) is accepted to the cycle the output
    beat of that block and group is first valid, without backpressure: line-buffer read / input
    register, 2x2 result, and for ``avg`` the coefficient multiply-add. :attr:`ii` ``= 1``
    (one input beat per cycle; one output beat per 4 input beats on average).

    Raises
    ------
    TypeError
        Parameters of the wrong type (the message quotes the value).
    ValueError
        Unknown ``mode``; widths out of range; ``lanes`` not dividing ``channels``; odd or too
        small ``width``/``height``; ``coef``/``bias``/``coef_fmt``/``acc_fmt`` given for ``max``
        or missing/wrong-sized for ``avg``; a coefficient outside ``coef_fmt``; an ``acc_fmt``
        too narrow for the worst case (the message gives the range and the bits needed).

    Source: LeCun et al. 1998, Sec. II-B (subsampling layers S2/S4: the sum of 2x2 inputs times a
    trainable coefficient plus a trainable bias, then a sigmoidal function); semantics
    :func:`golden.arith.max_pool2x2`, :func:`golden.reference.layer_accumulate`.
    """

    plan_class = PoolPlan

    def __init__(self, *, mode, in_fmt, channels, width, height, lanes, coef=None, coef_fmt=None,
                 bias=None, acc_fmt=None):
        self._build(PoolPlan(mode=mode, in_fmt=in_fmt, channels=channels, width=width, height=height,
                             lanes=lanes, coef=coef, coef_fmt=coef_fmt, bias=bias, acc_fmt=acc_fmt))

    @classmethod
    def from_layer(cls, layer, *, lanes):
        """The pooling of a :class:`golden.qnet.Layer` with ``kind == "pool"`` (for ``avg``, its
        accumulator; the layer's requantization and activation are separate blocks)."""
        return cls.from_plan(PoolPlan.from_layer(layer, lanes=lanes), src_loc_at=1)

    mode = delegate("``max`` or ``avg``.")
    in_fmt = delegate("Input format (QFormat).")
    channels = delegate("Feature maps.")
    width = delegate("Input map width.")
    height = delegate("Input map height.")
    lanes = delegate("Channels per beat.")
    coef = delegate("avg: per-channel coefficients (tuple), else None.")
    coef_fmt = delegate("avg: coefficient format, else None.")
    bias = delegate("avg: per-channel biases (tuple), else None.")
    acc_fmt = delegate("avg: accumulator (output) format, else None.")
    out_fmt = delegate("Output format: ``in_fmt`` (max) or ``acc_fmt`` (avg).")
    groups = delegate("Beats per position: ``channels // lanes``.")
    line_depth = delegate("Words of the line buffer in use.")
    in_beats = delegate("Input beats per frame.")
    out_beats = delegate("Output beats per frame.")
    frame_cycles = delegate("Cycles per frame at full rate.")

    def elaborate(self, platform):
        m = Module()
        lanes, groups, avg = self._plan.lanes, self.groups, self._plan.avg
        in_shape = fmt_shape(self._plan.in_fmt)
        # Partial results: the input format (max) or the sum of two inputs (avg).
        bits = self._plan.in_fmt.bits + avg
        part_shape = signed(bits) if self._plan.in_fmt.signed else unsigned(bits)

        advance = Signal()
        accept = Signal()
        m.d.comb += [advance.eq(~self.o.valid | self.o.ready), self.i.ready.eq(advance),
                     accept.eq(self.i.valid & advance)]

        g, x_odd, y_odd, addr, frame_end = self._position(m, accept)
        horiz = self._horizontal_pair(m, accept, in_shape, part_shape)

        # Line buffer: even rows write the pairs, odd rows read them back.
        m.submodules.line = line = memory.Memory(shape=data.ArrayLayout(part_shape, lanes),
                                                 depth=max(self.line_depth, 2), init=[])
        wr = line.write_port()
        rd = line.read_port(domain="sync")
        m.d.comb += [wr.addr.eq(addr), wr.data.eq(horiz), wr.en.eq(accept & x_odd & ~y_odd),
                     rd.addr.eq(addr), rd.en.eq(advance)]

        # Stage 1: the completing beat's pair (the line-buffer word is read alongside).
        v1, last1 = Signal(), Signal()
        h1 = Signal.like(horiz)
        g1 = Signal.like(g)
        with m.If(advance):
            m.d.sync += [v1.eq(accept & x_odd & y_odd), last1.eq(frame_end), h1.eq(horiz), g1.eq(g)]

        # Stage 2: the 2x2 result (max, or the sum for avg).
        result_shape = (signed(bits + 1) if self._plan.in_fmt.signed else unsigned(bits + 1)) if avg else in_shape
        v2, last2 = Signal(), Signal()
        r2 = Signal(data.ArrayLayout(result_shape, lanes))
        g2 = Signal.like(g)
        with m.If(advance):
            m.d.sync += [v2.eq(v1), last2.eq(last1), g2.eq(g1)]
            for lane in range(lanes):
                a, b = rd.data[lane], h1[lane]
                m.d.sync += r2[lane].eq(a + b if avg else Mux(a > b, a, b))

        if not avg:
            m.d.comb += [self.o.valid.eq(v2), self.o.payload.data.eq(r2), self.o.payload.last.eq(last2)]
            return m

        # Stage 3 (avg): coef[c] * sum + bias[c], c = g * lanes + lane.
        v3, last3 = Signal(), Signal()
        acc = Signal(self.o.payload.data.shape())
        with m.If(advance):
            m.d.sync += [v3.eq(v2), last3.eq(last2)]
            for lane in range(lanes):
                chans = range(lane, self._plan.channels, lanes)
                coef = Array(self._plan.coef[c] for c in chans)[g2] if groups > 1 else self._plan.coef[lane]
                bias = Array(self._plan.bias[c] for c in chans)[g2] if groups > 1 else self._plan.bias[lane]
                m.d.sync += acc[lane].eq(r2[lane] * coef + bias)
        m.d.comb += [self.o.valid.eq(v3), self.o.payload.data.eq(acc), self.o.payload.last.eq(last3)]
        return m

    def _position(self, m, accept):
        """Frame position of the beat at the input: group ``g`` of column ``x``, row ``y``, and
        the line-buffer address (counters of at least one bit each, so that no zero-width
        vector reaches the Verilog)."""
        groups = self.groups
        g = Signal(range(max(groups, 2)))
        x = Signal(range(self._plan.width))
        y = Signal(range(self._plan.height))
        addr = Signal(range(max(self.line_depth, 2)))
        x_odd, y_odd = x[0], y[0]
        group_end = g == groups - 1
        row_end = group_end & (x == self._plan.width - 1)
        frame_end = row_end & (y == self._plan.height - 1)
        with m.If(accept):
            m.d.sync += g.eq(Mux(group_end, 0, g + 1))
            with m.If(group_end):
                m.d.sync += x.eq(Mux(x == self._plan.width - 1, 0, x + 1))
            with m.If(row_end):
                m.d.sync += y.eq(Mux(y == self._plan.height - 1, 0, y + 1))
            with m.If(x_odd):
                m.d.sync += addr.eq(Mux(row_end, 0, addr + 1))
            with m.If(self.i.payload.last):     # re-align on the frame marker
                m.d.sync += [g.eq(0), x.eq(0), y.eq(0), addr.eq(0)]
        return g, x_odd, y_odd, addr, frame_end

    def _horizontal_pair(self, m, accept, in_shape, part_shape):
        """Horizontal pairs: the beat ``groups`` beats ago is the same group one column to the
        left; returns their max (or sum, avg) per lane."""
        lanes, groups, avg = self._plan.lanes, self.groups, self._plan.avg
        beat_shape = data.ArrayLayout(in_shape, lanes)
        delay = [Signal(beat_shape, name=f"delay{k}") for k in range(groups)]
        with m.If(accept):
            m.d.sync += delay[0].eq(self.i.payload.data)
            m.d.sync += [delay[k].eq(delay[k - 1]) for k in range(1, groups)]
        left = delay[-1]
        horiz = Signal(data.ArrayLayout(part_shape, lanes))
        for lane in range(lanes):
            a, b = left[lane], self.i.payload.data[lane]
            m.d.comb += horiz[lane].eq(a + b if avg else Mux(a > b, a, b))
        return horiz
