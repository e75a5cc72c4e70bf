"""Sliding-window generator: a raster feature-map stream in, KxK windows (stride 1) out.

The front end of a convolution engine. The map is zero-padded in hardware, so a raw 28x28 image
can feed LeNet-5's C1, a 5x5 convolution of the 32x32 padded map (LeCun et al. 1998, Sec. II-B).
"""

from amaranth import Const, Module, Mux, Signal
from amaranth.lib import data, stream
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hw.components.common import PlannedComponent, delegate, beat_layout
from hw.plan.window import WindowPlan, elem_shape_of

__all__ = ["WindowGenerator", "WindowPlan", "window_layout", "elem_shape_of"]


def window_layout(elem_shape, kernel: int, lanes: int) -> data.StructLayout:
    """Window beat: ``data[ky][kx][lane]`` (``kernel`` x ``kernel`` x ``lanes`` elements of
    *elem_shape*) and the frame's ``last`` flag."""
    return data.StructLayout({
        "data": data.ArrayLayout(data.ArrayLayout(data.ArrayLayout(elem_shape, lanes), kernel), kernel),
        "last": 1,
    })


def _within(counter, lo, hi):
    """``lo <= counter < hi`` for a counter of ``range(n)``, without comparisons that are
    constant (they would trip Verilator's lint)."""
    terms = []
    if lo > 0:
        terms.append(counter >= lo)
    if hi < 1 << len(counter):
        terms.append(counter < hi)
    if not terms:
        return Const(1)
    return terms[0] if len(terms) == 1 else terms[0] & terms[1]


class WindowGenerator(PlannedComponent):
    """KxK windows, stride 1, of a zero-padded feature map streamed in raster order.

    The input map has ``channels`` channels of ``height`` x ``width`` (the *unpadded* sizes). The
    generator works on the padded map of ``Hp x Wp = (height + 2 pad) x (width + 2 pad)``
    positions; the ``pad`` rows and columns of zeros around it are generated in hardware (they are
    not streamed in). It emits one window per output position and channel group, for the
    ``(Hp - K + 1) x (Wp - K + 1)`` output positions, in raster order (y, then x) with the
    ``channels / lanes`` channel groups of a position consecutively, in channel order. The window
    of output position (y, x) and group ``g`` is

    ``o.payload.data[ky][kx][l] = xpad[g * lanes + l, y + ky, x + kx]``  (``ky, kx`` in ``0..K-1``)

    i.e. exactly ``numpy.lib.stride_tricks.sliding_window_view`` of the padded map.
    ``o.payload.last`` is high on the last window of each frame. Frames follow back to back.

    Structure: a frame counter walks the padded map one *padded beat* (one position, one channel
    group) per cycle; a beat inside the map takes the next input beat (waiting for ``i.valid``), a
    padding beat is a vector of zeros that needs no input. ``K - 1`` line buffers (rows ``y-1 ..
    y-K+1``) sit side by side in one :class:`amaranth.lib.memory.Memory` of ``Wp * G`` words of
    ``(K - 1) * lanes`` elements (address = ``x * G + g``), read one cycle ahead with a read port
    transparent to the write port, and written back (shifted by one row) as the beat is
    processed. The column ``xpad[y-K+1 .. y, x]`` of the beat enters a shift register of
    ``(K - 1) * G + 1`` columns of ``K x lanes`` registers: the window of group ``g`` is columns
    ``0, G, .., (K-1) G`` of it, wired straight to ``o.payload``. The shift register can only move
    when the output is empty or being accepted, so ``i.ready`` depends combinationally on
    ``o.ready`` (no skid buffer); ``o.valid`` is a register. The generator waits (takes no beat,
    padding included) while its window is not taken.

    Resources at LeNet-5 sizes (K = 5, 8 bits, ``lanes = 1``), Yosys: C1 (28x28 padded to 32x32,
    one channel) has a 32-word x 32-bit line-buffer memory (ECP5: 16 ``TRELLIS_DPR16X4`` LUT RAMs;
    iCE40: 2 ``SB_RAM40_4K``) and a 25-element window register; C3's input (14x14x6) an 84-word
    x 32-bit memory (ECP5: 1 ``DP16KD``; iCE40: 2 ``SB_RAM40_4K``) and 21 x 5 elements of shift
    register.

    Parameters
    ----------
    elem_shape : Amaranth shape, optional
        Shape of one element (e.g. ``unsigned(8)``); give this or ``fmt``.
    fmt : QFormat, optional
        Format of the elements (shape ``signed``/``unsigned(fmt.bits)``); give this or ``elem_shape``.
    channels : int
        Channels ``C`` of the map, ``>= 1``.
    width, height : int
        Unpadded map size ``W``, ``H``, ``>= 1``.
    kernel : int
        Window side ``K``, ``>= 1``, with ``K <= W + 2 pad`` and ``K <= H + 2 pad``.
    pad : int
        Rows/columns of zeros on each side, ``>= 0``.
    lanes : int
        Channels per input and output beat; divides ``channels``.

    Members
    -------
    i : ``In(stream.Signature(StructLayout({"data": ArrayLayout(elem_shape, lanes), "last": 1})))``
        The unpadded map, raster order, ``G = channels / lanes`` beats per position (channel
        groups in order); ``last`` on the frame's last beat. The generator counts the beats of a
        frame. After an early ``last`` (a short frame) it reads zeros instead of input for the
        rest of the frame, so every frame still yields all its windows; a missing ``last`` lets
        the count run on into the next frame (which then ends early). This only resynchronises
        after a malformed frame.
    o : ``Out(stream.Signature(StructLayout({"data": ArrayLayout(ArrayLayout(ArrayLayout(elem_shape, lanes), K), K), "last": 1})))``
        One window per beat, ``data[ky][kx][lane]`` (see above); ``last`` on the frame's last window.

    Latency
    -------
    :attr:`ii` ``= 1``: one padded beat per cycle, i.e. an input beat accepted every cycle while
    the frame counter is inside the map; each padding beat (``G`` per padded position) costs one
    cycle without input, so a frame takes :attr:`frame_cycles` ``= Hp * Wp * G`` cycles when the
    input never waits and the output never stalls.

    :attr:`latency` ``= 1``: from the cycle in which the beat completing a window (its bottom
    right position, same group) is processed (the input beat accepted, or the padding beat
    generated) to the cycle in which that window is first valid at ``o``.

    :attr:`tail_latency` ``= 1 + pad * G * (Wp + 1)``: from the acceptance of a frame's last input
    beat to its last window being valid (the bottom and right padding beats still to generate).

    Timing model (:meth:`timing`, conventions in :mod:`hw.plan.timing`): the frame counter starts on
    the first cycle out of reset (``start``, cycle 0 by default) and processes padded beat ``b``
    in cycle ``t_b = max(t_{b-1} + 1, taken)`` (``taken``: the cycle in which the last window was
    taken, the output being ready; a window is valid from the cycle after the beat completing
    it), and for a beat inside the map no earlier than the input beat's offer, in which cycle
    that beat is accepted. With the output always ready every window is taken when it becomes
    valid, so ``t_b = max(t_{b-1} + 1, offer)``: padding beats (top rows, left and right
    columns, bottom rows, also those of the *next* frame's top rows right after a frame) cost
    one cycle each whether or not input is waiting.

    Raises
    ------
    TypeError
        Non-integer sizes, neither or both of ``elem_shape``/``fmt``, a bad shape or format.
    ValueError
        Sizes ``< 1`` (``pad < 0``), ``lanes`` not dividing ``channels``, a kernel larger than
        the padded map.
    """

    plan_class = WindowPlan

    def _members(self, plan):
        """Stream ``i`` of feature-map beats in, stream ``o`` of windows out."""
        return {"i": In(stream.Signature(beat_layout(plan.elem_shape, plan.lanes))),
                "o": Out(stream.Signature(window_layout(plan.elem_shape, plan.kernel, plan.lanes)))}

    # -- parameters and derived values (the plan's) -----------------------------------------
    elem_shape = delegate("Shape of one element.")
    channels = delegate("Channels C of the map.")
    width = delegate("Unpadded map width W.")
    height = delegate("Unpadded map height H.")
    kernel = delegate("Window side K.")
    pad = delegate("Zero padding on each side.")
    lanes = delegate("Channels per beat.")
    groups = delegate("Channel groups G = channels / lanes (beats per position).")
    padded_width = delegate("Wp = width + 2 pad.")
    padded_height = delegate("Hp = height + 2 pad.")
    out_width = delegate("Output positions per row, Wp - K + 1.")
    out_height = delegate("Output rows, Hp - K + 1.")
    in_beats = delegate("Input beats per frame, H * W * G.")
    out_beats = delegate("Windows (output beats) per frame, out_height * out_width * G.")
    frame_cycles = delegate("Cycles per frame in steady state (padded beats), Hp * Wp * G.")
    tail_latency = delegate("Cycles from a frame's last input beat to its last window: 1 + pad * G * (Wp + 1).")
    line_buffer_bits = delegate("Bits of line-buffer memory: (K - 1) rows of Wp * G beats of lanes elements.")
    window_registers = delegate("Elements held in the window shift register: ((K - 1) G + 1) K lanes.")
    latency = delegate("Cycles from processing the beat that completes a window to that window being valid: 1.")

    def walk(self, avail, start, take):
        """The frame counter's walk: :meth:`hw.plan.window.WindowPlan.walk`."""
        return self._plan.walk(avail, start, take)

    def _column_chain(self, m, col, fire, completes, take, out_valid, out_last):
        """The column shift register, whose every G-th column is the window at ``o``."""
        k, g_count = self._plan.kernel, self._plan.groups
        # Column shift register; window of the newest beat's group = every G-th column. Its clock
        # enable is `fire`, computed once per column row (chain[j][ky]) from its own copy of
        # `out_valid` (``dup_*``: hw.flow.synth keeps Yosys from merging the copies back), so that no
        # single LUT drives the enables of the whole window (C3: over a thousand flip-flops,
        # 9.7 ns of routing on the LFE5U-85F).
        chain = [Signal(col.shape(), name=f"col{j}", reset_less=True) for j in range((k - 1) * g_count + 1)]
        for j in range(len(chain)):
            for ky in range(k):
                ov_copy = Signal(name=f"dup_out_valid{j}_{ky}")
                fire_copy = Signal(name=f"fire{j}_{ky}")
                with m.If(fire):
                    m.d.sync += ov_copy.eq(completes)
                with m.Elif(self.o.ready):
                    m.d.sync += ov_copy.eq(0)
                m.d.comb += fire_copy.eq((~ov_copy | self.o.ready) & (~take | self.i.valid))
                with m.If(fire_copy):
                    m.d.sync += chain[j][ky].eq(col[ky] if j == 0 else chain[j - 1][ky])
        for ky in range(k):
            for kx in range(k):
                m.d.comb += self.o.payload.data[ky][kx].eq(chain[(k - 1 - kx) * g_count][ky])
        m.d.comb += [self.o.valid.eq(out_valid), self.o.payload.last.eq(out_last)]

    def elaborate(self, platform):
        m = Module()
        plan = self._plan
        k, p, g_count = plan.kernel, plan.pad, plan.groups
        row_beats = self.padded_width * g_count           # padded beats (line-buffer words) per row
        hp = self.padded_height
        vec = data.ArrayLayout(plan.elem_shape, plan.lanes)
        column = data.ArrayLayout(vec, k)                 # column[ky], top (oldest row) first

        # Frame counter over the padded map: row y, beat a = x * G + g within the row. The flags
        # of the beat at the counter are registers, computed from the counter's next value when
        # it advances, so that `fire` (the clock enable of the whole column chain) is one level
        # of logic from flip-flops.
        y = Signal(range(max(hp, 2)))                          # (never zero-width)
        a = Signal(range(max(row_beats, 2)))
        w_lo, w_hi = p * g_count, (p + plan.width) * g_count

        def flags(yv, av):
            return {
                # beat inside the unpadded map
                "inside": _within(yv, p, p + plan.height) & _within(av, w_lo, w_hi),
                # beat completes a window
                "completes": _within(yv, k - 1, hp) & _within(av, (k - 1) * g_count, row_beats),
                "frame_end": (yv == hp - 1) & (av == row_beats - 1),
                "last_input": (yv == p + plan.height - 1) & (av == w_hi - 1),
                "row_end": av == row_beats - 1,
            }

        def flags_at_origin():             # flags(0, 0), as Python bools (the reset values)
            return {"inside": p == 0, "completes": k == 1, "frame_end": hp == 1 and row_beats == 1,
                    "last_input": p + plan.height == 1 and w_hi == 1, "row_end": row_beats == 1}

        f = {name: Signal(name=name, init=int(v)) for name, v in flags_at_origin().items()}
        inside, completes, frame_end, last_input = f["inside"], f["completes"], f["frame_end"], f["last_input"]
        flush = Signal()                  # after an early `last`: the rest of the frame reads zeros
        take = Signal()                   # this beat takes an input beat
        m.d.comb += take.eq(inside & ~flush)

        out_valid, out_last = Signal(), Signal()
        out_free = ~out_valid | self.o.ready
        fire = Signal()
        m.d.comb += [
            fire.eq(out_free & (~take | self.i.valid)),
            self.i.ready.eq(out_free & take),
        ]
        pixel = Signal(vec)
        with m.If(take):
            m.d.comb += pixel.eq(self.i.payload.data)      # else zeros (padding)

        a_next, y_next = Signal.like(a), Signal.like(y)
        m.d.comb += [a_next.eq(Mux(f["row_end"], 0, a + 1)),
                     y_next.eq(Mux(f["row_end"], Mux(y == hp - 1, 0, y + 1), y))]
        with m.If(fire):
            m.d.sync += [a.eq(a_next), y.eq(y_next), out_valid.eq(completes), out_last.eq(frame_end)]
            m.d.sync += [f[name].eq(value) for name, value in flags(y_next, a_next).items()]
            with m.If(frame_end):
                m.d.sync += flush.eq(0)
            with m.Elif(take & self.i.payload.last & ~last_input):
                m.d.sync += flush.eq(1)
        with m.Elif(self.o.ready):
            m.d.sync += out_valid.eq(0)

        # The new column: K - 1 rows from the line buffers, then this beat's pixel vector.
        col = Signal(column)
        m.d.comb += col[k - 1].eq(pixel)
        if k > 1:
            lines = data.ArrayLayout(vec, k - 1)          # word[j] = row y-1-j (newest first)
            m.submodules.line_buffers = mem = Memory(shape=lines, depth=row_beats, init=[])
            wr = mem.write_port()
            rd = mem.read_port(transparent_for=(wr,))
            # Read one cycle ahead: the read data always belongs to the beat at the counter.
            m.d.comb += rd.addr.eq(Mux(fire, a_next, a))
            m.d.comb += [col[k - 2 - j].eq(rd.data[j]) for j in range(k - 1)]
            m.d.comb += [wr.addr.eq(a), wr.en.eq(fire), wr.data[0].eq(pixel)]
            m.d.comb += [wr.data[j].eq(rd.data[j - 1]) for j in range(1, k - 1)]

        self._column_chain(m, col, fire, completes, take, out_valid, out_last)
        return m
