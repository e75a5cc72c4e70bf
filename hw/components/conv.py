# amaranth: UnusedElaboratable=no
"""Folded convolution engine (stride 1, zero padding, sparse connection table): accumulators only.

``acc[o, y, x] = bias[o] + sum_{i in table[o], ky, kx} w[o, i, ky, kx] * xpad[i, y + ky, x + kx]``
(:func:`golden.reference.conv_accumulate` with ``stride=1``), computed by a
:class:`hw.components.window.WindowGenerator` and ``out_lanes`` single-lane :class:`hw.components.mac.MACArray`\\ s of
``taps`` products each. Requantization and the activation follow in separate blocks downstream.
The schedule, ROM images, window-FIFO depth and the cycle model are the engine's
:class:`hw.plan.conv.ConvPlan`.

(The first line silences Amaranth's unused-elaboratable warning for the window generator and
MAC arrays that :attr:`ConvEngine.window` and :attr:`ConvEngine.macs` build on first use, when
the engine itself is never elaborated.)
"""

from types import SimpleNamespace

from amaranth import Module, Mux, Signal
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory

from hw.components.common import PlannedComponent, delegate, fmt_shape
from hw.components.fifo import WideFIFO
from hw.components.mac import MACArray
from hw.components.window import WindowGenerator
from hw.plan.conv import (LANES_PER_BANK, SELECT_GROUP_TAPS, SPLIT_ROM_WORDS, STEP_STAGES, USER_WIDTH,
                          WINDOW_FIFO_LATENCY, ConvPlan, ConvSchedule, conv_schedule, share_banks)

__all__ = ["ConvEngine", "ConvPlan", "ConvSchedule", "conv_schedule", "share_banks", "WINDOW_FIFO_LATENCY",
           "STEP_STAGES", "LANES_PER_BANK", "SPLIT_ROM_WORDS", "SELECT_GROUP_TAPS"]

#: The MAC lanes' side-band field: the frame's ``last`` (``USER_WIDTH`` bits).
USER_LAYOUT = data.StructLayout({"frame_last": 1})
assert USER_LAYOUT.size == USER_WIDTH


class ConvEngine(PlannedComponent):
    """Convolution (stride 1, zero padding ``pad``, connection table) folded onto MAC lanes.

    Dataflow:

    1. A :class:`~hw.components.window.WindowGenerator` (``lanes = in_lanes``) turns the raster input into
       KxK windows of the padded map, ``G = in_channels / in_lanes`` window beats per output
       position; a window FIFO (:class:`hw.components.fifo.WideFIFO`, ``window_fifo`` windows, sliced LUT
       RAM read asynchronously: no wide output register or enable) lets the generator run ahead of the MACs through the ``K-1`` rows
       at the top of a frame and the ``K-1`` columns at the start of a row that produce no window.
    2. A capture bank keeps groups ``0 .. G-2`` of the next position; when the last group is
       presented and the MAC lanes are free (or finishing), the whole ``C x K x K`` window is
       staged in a register (no clock enable) and, one cycle later, loaded
       into the compute banks (one per group of up to :data:`LANES_PER_BANK` lanes that walk the
       same input channels, :func:`share_banks`) under each bank's registered copy of the load decision
       (so the next position's window is gathered while the current one is computed, and no
       computed enable reaches window bits all over the die).
    3. The schedule (:func:`conv_schedule`): output channels are spread over ``out_lanes`` lanes
       ``P_o``, minimising the largest lane's connection count (C3 on 4 lanes: 15 each); each
       output channel stays in its lane, whose accumulator sums it. Lane ``l`` walks its
       connections ``(o, i)`` (absent table pairs are not scheduled: they cost neither cycles
       nor multipliers), ``slot_cycles = K*K / taps`` cycles each, ``taps`` kernel taps
       (``ky*K + kx`` order) per cycle. A position takes :attr:`cycles_per_position` ``=
       max over lanes of (connections * K*K / taps)`` cycles; shorter lanes get zero-weight
       slots at the end of their last channel.
    4. Per cycle ``s`` (the steps reach the MACs :data:`STEP_STAGES` = 2 cycles behind the step
       counter: the bank load, then the register after the channel multiplexers): a weight ROM (:class:`amaranth.lib.memory.Memory`, ``cycles_per_position``
       words of ``P_o x P_k`` weights in schedule order) and a slot ROM (one word per connection
       slot: per lane the input channel one-hot, output channel, first/last flags, bias), both
       addressed by the step counters themselves (flip-flops; per lane, and for a weight ROM of
       at most :data:`SPLIT_ROM_WORDS` words per group of taps, each part a ROM of its own on its
       own copy), give each lane its weights. A
       compute bank rotates each channel's taps by ``P_k`` per step
       (the lanes go through the tap chunks of their connections in lockstep), so a bank's
       ``P_k`` activations come from a ``C : 1`` AND-OR multiplexer on the one-hot input channel
       (not ``C*K*K/P_k : 1``, and no index arithmetic), registered once per bank, and feed each of
       its lanes. The step goes straight into ``P_o``
       :class:`~hw.components.mac.MACArray`\\ s (whose operand registers are the step register: no wide
       register here, so no wide clock enable) of one lane and ``taps`` products each, stepped
       together: one ``MACArray`` per lane because ``MACArray``'s ``first``/``last`` flags are
       shared by its lanes, while here the lanes' channel boundaries differ (a balanced schedule
       needs them per lane).

       Flow control is per position, not per step: a loaded position steps once per cycle to
       its end, with no path from the MACs (placed next to their DSP blocks all over the die)
       back to the step logic. A position is loaded only while fewer than ``pending_limit =
       floor((mac.latency + STEP_STAGES) / cycles_per_position) + 2`` positions are loaded and not yet taken into
       the output register (a registered flag), and each lane MAC's output FIFO holds
       ``pending_limit`` positions of its results (``MACArray(fifo_depth=...)``), so the MACs never
       refuse a step and their ``i.ready`` is left unconnected. With the output always ready at
       most ``floor((mac.latency + STEP_STAGES) / cycles_per_position) + 1`` positions are pending at a load, so the
       limit costs no cycle there.
    5. Results (the MAC ``user`` field carries the frame's ``last``) are collected into a bank:
       a lane's results come in the order of its output channels, once per position, tracked by
       a one-hot register per lane (no compare on the FIFO's data); a lane's last channel of a
       position ends on the position's last step in every lane, and those final sums, with the
       bank, form the output beat.

    Parameters
    ----------
    in_fmt, w_fmt : QFormat
        Input and weight formats (2..16 bits, signed or unsigned each).
    acc_fmt : QFormat
        Accumulator format (2..46 bits); must hold :func:`golden.arith.accumulator_range` of
        ``weights``, ``bias`` and ``in_fmt``.
    in_channels, out_channels : int
        ``C`` and ``O``.
    width, height : int
        Unpadded input map size ``W``, ``H``.
    kernel : int
        ``K`` (square kernel), ``<= W + 2 pad`` and ``<= H + 2 pad``.
    pad : int
        Zero padding on each side (generated in hardware).
    weights : array of int, shape (O, C, K, K)
        In ``w_fmt``, zero at pairs absent from ``table``.
    bias : array of int, shape (O,)
        In ``acc_fmt`` (at the accumulator's scale).
    table : sequence of sequences of int, or None
        ``table[o]``: the input channels output channel ``o`` reads (each non-empty, no
        repeats); ``None`` means all. LeNet-5's C3: :data:`golden.paper.C3_TABLE` (LeCun et al.
        1998, Table I).
    out_lanes : int
        ``P_o``, parallel output-channel lanes, ``1 .. O``.
    taps : int
        ``P_k``, kernel taps per lane per cycle; divides ``K*K``.
    in_lanes : int
        Channels per input beat; divides ``C``.
    window_fifo : int or None
        Depth, in windows, of the window FIFO between the window generator and the capture /
        compute banks: 0 for none, else ``>= 2`` (a FIFO of 1 entry takes a window every
        other cycle only). ``None`` (default): the smallest depth that gives the best :attr:`ii` any
        depth up to a frame's windows gives (0 where the generator alone keeps up, e.g. an
        input-bound C1), found with the timing model; its storage is :attr:`window_fifo_bits`.
    dsp_multipliers : int or None
        Products (of ``out_lanes * taps``, lane-major) built as DSP products, the others as split
        LUT products (:class:`hw.components.mac.MACArray`); ``None`` (default): left to the synthesis tool.
    dsp_vendor : str or None
        The :mod:`hw.vendor` module whose DSP blocks build the DSP products
        (:data:`hw.components.mac.DSP_PRIMITIVES`); ``dsp_primitive``: its old name, still accepted.

    Members
    -------
    i : ``In(stream.Signature(StructLayout({"data": ArrayLayout(in_shape, in_lanes), "last": 1})))``
        The unpadded input map in raster order, ``C / in_lanes`` beats per position (channel
        groups in order), ``last`` on a frame's last beat (see
        :class:`~hw.components.window.WindowGenerator` for malformed frames).
    o : ``Out(stream.Signature(StructLayout({"data": ArrayLayout(acc_shape, O), "last": 1})))``
        One beat per output position in raster order over the ``(H+2p-K+1) x (W+2p-K+1)``
        positions: ``data[o] = acc[o, y, x]`` for all ``O`` channels (``acc_shape`` =
        ``signed/unsigned(acc_fmt.bits)``); ``last`` on a frame's last position.

    Latency
    -------
    :attr:`latency`, :attr:`ii` (``=`` :attr:`frame_cycles`) and the exact cycle model
    :meth:`timing` are those of the engine's :class:`hw.plan.conv.ConvPlan` (see its docstring):
    ``latency = window.latency + F + 1 + STEP_STAGES + cycles_per_position + mac.latency``
    cycles (``F`` = :data:`WINDOW_FIFO_LATENCY` = 1 with a window FIFO, else 0), from the
    acceptance of the input beat completing the first window of an idle engine to its output
    beat. ``ConvEngine(**params)`` builds the plan; :meth:`from_plan` takes one.

    Raises
    ------
    TypeError
        Parameters of the wrong type.
    ValueError
        Sizes below 1, ``out_lanes`` outside ``1..O``, ``taps`` not dividing ``K*K``, ``in_lanes``
        not dividing ``C`` (the messages list the valid values); operand widths outside 2..16,
        accumulator widths outside 2..46; weights/bias of the wrong shape or outside their formats;
        table rows that are empty, repeat a channel or name a channel outside ``0..C-1``; non-zero
        weights at a pair absent from the table; ``acc_fmt`` narrower than the worst-case sum;
        ``window_fifo`` of 1 or 2.
    """

    plan_class = ConvPlan

    @classmethod
    def from_layer(cls, layer, *, out_lanes: int, taps: int, in_lanes: int, window_fifo=None, **mac_options):
        """The engine of a conv :class:`golden.qnet.Layer` (stride 1): :meth:`hw.plan.conv.ConvPlan.from_layer`."""
        return cls.from_plan(ConvPlan.from_layer(layer, out_lanes=out_lanes, taps=taps, in_lanes=in_lanes,
                                                 window_fifo=window_fifo, **mac_options), src_loc_at=1)

    def _build(self, plan):
        self._window = self._macs = None        # built on first use (:attr:`window`, :attr:`macs`)
        super()._build(plan)

    # -- parameters and derived values: the plan's (:class:`hw.plan.conv.ConvPlan`) ----------
    in_fmt = delegate()
    w_fmt = delegate()
    acc_fmt = delegate()
    in_channels = delegate()
    out_channels = delegate()
    width = delegate()
    height = delegate()
    kernel = delegate()
    pad = delegate()
    out_lanes = delegate()
    taps = delegate()
    in_lanes = delegate()
    table = delegate()
    weights = delegate()
    bias = delegate()
    schedule = delegate()
    window_fifo = delegate()
    dsp_multipliers = delegate()
    dsp_vendor = delegate()
    pending_limit = delegate()
    window_fifo_bits = delegate()
    connections = delegate()
    cycles_per_position = delegate()
    multipliers = delegate()
    out_width = delegate()
    out_height = delegate()
    positions = delegate()
    in_beats = delegate()
    padded_cycles = delegate()
    compute_cycles = delegate()
    ideal_ii = delegate()
    frame_cycles = delegate()
    dsp_primitive = delegate("Old name of :attr:`dsp_vendor`.", to="dsp_vendor")

    @property
    def window(self):
        """The :class:`~hw.components.window.WindowGenerator` (built from ``plan.window`` on first use)."""
        if self._window is None:
            self._window = WindowGenerator.from_plan(self._plan.window)
        return self._window

    @property
    def macs(self):
        """The P_o single-lane :class:`~hw.components.mac.MACArray`\\ s (built from ``plan.macs`` on first use)."""
        if self._macs is None:
            self._macs = tuple(MACArray.from_plan(mac) for mac in self._plan.macs)
        return self._macs

    # -- hardware ---------------------------------------------------------------------------
    def elaborate(self, platform):
        m = Module()
        plan = self._plan
        m.submodules.window = wg = self.window
        wiring.connect(m, wiring.flipped(self.i), wg.i)
        win_valid, win_ready, win_in = self._window_source(m, wg)
        for l, mac in enumerate(self.macs):
            m.submodules[f"mac{l}"] = mac
        ctl = self._control(m, win_valid, win_ready, win_in)
        self._stage(m, ctl, win_in)
        weight_words, slot_words = plan.rom_contents()
        slot_layout = data.StructLayout({
            "first": 1, "last": 1, "bias": fmt_shape(plan.acc_fmt)})
        self._banks(m, ctl, plan.tap_groups)
        self._lanes(m, ctl, plan.rom_groups, weight_words, slot_words, slot_layout)
        self._results(m, ctl.take_finals)
        return m

    def _window_source(self, m, wg):
        """The window source: the generator, or the window FIFO after it (``window_fifo``)."""
        win_valid, win_ready = Signal(), Signal()
        win_in = Signal(wg.o.payload.shape())
        if self._plan.window_fifo:
            m.submodules.window_fifo = fifo = WideFIFO(width=wg.o.payload.shape().size, depth=self._plan.window_fifo)
            m.d.comb += [fifo.w_data.eq(wg.o.payload), fifo.w_en.eq(wg.o.valid), wg.o.ready.eq(fifo.w_rdy),
                         win_valid.eq(fifo.r_rdy), win_in.eq(fifo.r_data), fifo.r_en.eq(win_ready)]
        else:
            m.d.comb += [win_valid.eq(wg.o.valid), win_in.eq(wg.o.payload), wg.o.ready.eq(win_ready)]
        return win_valid, win_ready, win_in

    def _control(self, m, win_valid, win_ready, win_in):
        """Window capture (groups 0..G-2), the load decision, the step counters and the flow
        control per position. Returns the control signals as a namespace."""
        plan = self._plan
        c, g_count = plan.in_channels, plan.window.groups
        slot_cycles, n_slots = plan.schedule.slot_cycles, plan.schedule.slots_per_position
        cpp = plan.cycles_per_position
        # A lane's bank win[c][t][u] = tap t * P_k + u (ky*K + kx order) of channel c; it rotates
        # by one chunk of P_k taps per step, so that chunk j of the current slot is always
        # win[c][0] (all lanes step through the chunks j = 0 .. K*K/P_k - 1 together) and a lane
        # only selects a channel.
        bank_layout = data.ArrayLayout(data.ArrayLayout(data.ArrayLayout(fmt_shape(plan.in_fmt), plan.taps),
                                                        slot_cycles), c)
        cg = Signal(range(max(g_count, 2)))           # channel group expected next from the window generator
        cap = [Signal(win_in.data.shape(), name=f"cap{g}", reset_less=True) for g in range(g_count - 1)]
        groups = [*cap, win_in.data]          # the last group is taken straight from the source

        busy = Signal()                       # a loaded position is being stepped (control domain)
        s = Signal(range(max(cpp, 2)))                # step within the position
        j = Signal(range(max(slot_cycles, 2)))        # tap chunk within the connection slot
        slot = Signal(range(max(n_slots, 2)))
        # Flow control per position, not per step: a position is loaded only while fewer than
        # `pending_limit` positions are loaded and not yet taken into the output register; the
        # MAC FIFOs hold all their results (`fifo_depth`), so the MACs are always ready and the
        # steps of a loaded position go out one per cycle. `fire` is the flip-flop `busy`, with
        # no path from the MACs (spread over the die next to their DSP blocks) back to the step.
        pending = Signal(range(plan.pending_limit + 1))
        room = Signal(init=1)                 # pending < pending_limit, registered
        fire = busy
        finishing = busy & (s == cpp - 1)
        # `free` = ~busy | finishing, as a register computed from the next state: `load` is one
        # LUT level from flip-flops (the window FIFO's output register takes its enable from it).
        free = Signal(init=1)
        load = Signal()
        take_finals = Signal()
        m.d.comb += [
            load.eq((cg == g_count - 1) & win_valid & free & room),
            win_ready.eq((cg != g_count - 1) | load),
        ]
        pending_next = Signal.like(pending)
        m.d.comb += pending_next.eq(pending + load - take_finals)
        m.d.sync += [pending.eq(pending_next), room.eq(pending_next < plan.pending_limit)]
        with m.If(win_valid & win_ready):
            m.d.sync += cg.eq(Mux(cg == g_count - 1, 0, cg + 1))
            for g in range(g_count - 1):
                with m.If(cg == g):
                    m.d.sync += cap[g].eq(win_in.data)
        busy_next = Signal()
        s_next = Signal.like(s)
        m.d.comb += [busy_next.eq(load | (busy & ~finishing)),
                     s_next.eq(Mux(fire, Mux(s == cpp - 1, 0, s + 1), s))]
        m.d.sync += [busy.eq(busy_next), s.eq(s_next), free.eq(~busy_next | (s_next == cpp - 1))]
        last_j = j == slot_cycles - 1
        slot_next = Signal.like(slot)
        m.d.comb += slot_next.eq(Mux(fire & last_j, Mux(slot == n_slots - 1, 0, slot + 1), slot))
        m.d.sync += slot.eq(slot_next)
        with m.If(fire):
            m.d.sync += j.eq(Mux(last_j, 0, j + 1))
        return SimpleNamespace(bank_layout=bank_layout, groups=groups, s=s, j=j, slot=slot, fire=fire, load=load,
                               take_finals=take_finals, s_next=s_next, slot_next=slot_next, last_j=last_j)

    def _stage(self, m, ctl, win_in):
        """The :data:`STEP_STAGES` (a fixed property of this design, two) registers between the
        step counters and the MAC steps: the window of the position being loaded is staged
        (every cycle, no enable) and loaded into the banks a cycle later; the banks' channel
        multiplexers are registered. The channel ROMs are addressed by the step counters (their
        read registers are the first delay); the lanes' ROMs by the counters one cycle later
        (`s_d`, `slot_d`), and the chunk flags and `fire` are registered twice. Adds the staged
        window and the delayed counters to *ctl*."""
        plan = self._plan
        k, pk = plan.kernel, plan.taps
        staged = Signal(ctl.bank_layout, reset_less=True)
        staged_last = Signal()
        for g, group in enumerate(ctl.groups):
            for lane in range(plan.in_lanes):
                for ky in range(k):
                    for kx in range(k):
                        t, u = divmod(ky * k + kx, pk)
                        m.d.sync += staged[g * plan.in_lanes + lane][t][u].eq(group[ky][kx][lane])
        m.d.sync += staged_last.eq(win_in.last)
        chunk_first, chunk_last = Signal(), Signal()
        chunk_first_d, chunk_last_d = Signal(), Signal()
        m.d.sync += [chunk_first_d.eq(ctl.j == 0), chunk_last_d.eq(ctl.last_j),
                     chunk_first.eq(chunk_first_d), chunk_last.eq(chunk_last_d)]
        s_d, slot_d, fire_d = Signal.like(ctl.s), Signal.like(ctl.slot), Signal()
        m.d.sync += [s_d.eq(ctl.s_next), slot_d.eq(ctl.slot_next), fire_d.eq(ctl.fire)]
        ctl.__dict__.update(staged=staged, staged_last=staged_last, chunk_first=chunk_first,
                            chunk_last=chunk_last, s_d=s_d, slot_d=slot_d, fire_d=fire_d)

    def _banks(self, m, ctl, tap_groups):
        """Per bank (lanes that walk the same input channels, at most LANES_PER_BANK of them):
        the window bank under its registered copy of `load`, and the channel multiplexers on
        one-hot selects from small ROMs, whose outputs feed the bank's lanes."""
        plan = self._plan
        c, slot_cycles = plan.in_channels, plan.schedule.slot_cycles
        n_slots = plan.schedule.slots_per_position
        chan_words = plan.chan_words
        users = [data.View(USER_LAYOUT, mac.i.payload.user) for mac in self.macs]
        for b, bank_lanes in enumerate(share_banks(chan_words, LANES_PER_BANK)):
            win = Signal(ctl.bank_layout, name=f"dup_win{b}", reset_less=True)
            win_last = Signal(name=f"dup_win_last{b}")     # the position in `win` is the frame's last
            # The bank's load and shift enables are copied per group of taps (the part of the
            # bank that feeds one group's multiplexers; the shift only moves taps within it): one
            # copy for C3's 1,200 bank bits spread over 4 lanes had 15 ns of routing on the 85F.
            for g, taps_g in enumerate(tap_groups):
                load_b = Signal(name=f"dup_bank_load{b}_{g}")
                m.d.sync += load_b.eq(ctl.load)
                if slot_cycles > 1:                 # (a bank of one chunk per slot never shifts)
                    fire_b = Signal(name=f"dup_bank_fire{b}_{g}")
                    m.d.sync += fire_b.eq(ctl.fire)
                with m.If(load_b):
                    m.d.sync += [win[ch][t][u].eq(ctl.staged[ch][t][u])
                                 for ch in range(c) for t in range(slot_cycles) for u in taps_g]
                    if g == 0:
                        m.d.sync += win_last.eq(ctl.staged_last)
                if slot_cycles > 1:
                    with m.Elif(fire_b):
                        m.d.sync += [win[ch][t][u].eq(win[ch][(t + 1) % slot_cycles][u])
                                     for ch in range(c) for t in range(slot_cycles) for u in taps_g]
            # The input channel one-hot, from a small ROM per group of taps: an AND-OR multiplexer
            # (two LUT levels for C3's six channels), no index arithmetic.
            for g, taps_g in enumerate(tap_groups):
                slot_g = Signal.like(ctl.slot, name=f"dup_bank_slot{b}_{g}")
                m.d.sync += slot_g.eq(ctl.slot_next)
                chan_rom = Memory(shape=c, depth=max(n_slots, 2), init=chan_words[bank_lanes[0]])
                m.submodules[f"chan_rom{b}_{g}"] = chan_rom
                chan_rd = chan_rom.read_port()
                m.d.comb += chan_rd.addr.eq(slot_g)
                for t in taps_g:
                    a_sel = 0
                    for ch in range(c):
                        a_sel = a_sel | Mux(chan_rd.data[ch], win[ch][0][t], 0)
                    a_reg = Signal(fmt_shape(plan.in_fmt), name=f"asel{b}_{t}")
                    m.d.sync += a_reg.eq(a_sel)
                    for l in bank_lanes:
                        m.d.comb += self.macs[l].i.payload.a[0][t].eq(a_reg)
            win_last_d = Signal(name=f"win_last_d{b}")
            m.d.sync += win_last_d.eq(win_last)
            m.d.comb += [users[l].frame_last.eq(win_last_d) for l in bank_lanes]

    def _lanes(self, m, ctl, rom_groups, weight_words, slot_words, slot_layout):
        """Per lane: its own ROMs, addressed by its own copies of the step counters (``dup_*``:
        hw.flow.synth keeps Yosys from merging them back into one), the registered copy of
        `fire`, and the step straight into the lane's MAC (whose operand registers are the step
        register)."""
        plan = self._plan
        cpp, n_slots = plan.cycles_per_position, plan.schedule.slots_per_position
        for l, mac in enumerate(self.macs):
            slot_l = Signal.like(ctl.slot, name=f"dup_slot{l}")
            m.d.sync += slot_l.eq(ctl.slot_d)
            # (at least 2 words: a 1-word memory would have a zero-width address)
            slot_rom = Memory(shape=slot_layout, depth=max(n_slots, 2),
                              init=[{k: v for k, v in w[l].items() if k not in ("chan", "out")} for w in slot_words])
            m.submodules[f"slot_rom{l}"] = slot_rom
            slot_rd = slot_rom.read_port()
            m.d.comb += slot_rd.addr.eq(slot_l)
            # The weight ROM; a shallow one (LUT logic, not block RAM) is split per group of taps,
            # each part on its own copy of the step counter, next to the group's multipliers.
            for g, taps_g in enumerate(rom_groups):
                suffix = f"{l}_{g}" if len(rom_groups) > 1 else f"{l}"
                s_g = Signal.like(ctl.s, name=f"dup_s{suffix}")
                m.d.sync += s_g.eq(ctl.s_d)
                rom = Memory(shape=data.ArrayLayout(fmt_shape(plan.w_fmt), len(taps_g)), depth=max(cpp, 2),
                             init=[[w[l][t] for t in taps_g] for w in weight_words])
                m.submodules[f"weight_rom{suffix}"] = rom
                rd = rom.read_port()
                m.d.comb += rd.addr.eq(s_g)
                m.d.comb += [mac.i.payload.w[0][t].eq(rd.data[i]) for i, t in enumerate(taps_g)]
            fire_l = Signal(name=f"dup_fire{l}")
            m.d.sync += fire_l.eq(ctl.fire_d)
            info = slot_rd.data
            m.d.comb += [
                mac.i.valid.eq(fire_l),
                mac.i.payload.bias[0].eq(info.bias),
                mac.i.payload.first.eq(info.first & ctl.chunk_first),
                mac.i.payload.last.eq(info.last & ctl.chunk_last),
            ]

    def _results(self, m, take_finals):
        """Results: a bank for each lane's channels but its last; the finals form the output beat."""
        sched, acc_shape = self._plan.schedule, fmt_shape(self._plan.acc_fmt)
        out_valid = Signal()
        out = Signal(self.o.payload.shape())
        out_free = ~out_valid | self.o.ready
        results = [data.View(USER_LAYOUT, mac.o.payload.user) for mac in self.macs]
        finals = [Signal(name=f"final{l}") for l in range(self._plan.out_lanes)]
        # Lane l's results come in the order of its output channels, sched.lanes[l], once per
        # position; `head{l}` (one-hot, a register) tells which one is at the FIFO's head, so the
        # enables below come from flip-flops and the FIFO's level, not through its LUT RAM read
        # (on the 85F that read, the AND over C3's lanes and the output register's enable had
        # 13 ns of routing).
        heads = []
        for l, mac in enumerate(self.macs):
            n = len(sched.lanes[l])
            head = Signal(n, init=1, name=f"head{l}")
            with m.If(mac.o.valid & mac.o.ready):
                m.d.sync += head.eq(head.rotate_left(1))
            heads.append(head)
        all_final = Signal()
        m.d.comb += all_final.eq(1)
        for l, mac in enumerate(self.macs):
            all_final_next = Signal()
            m.d.comb += [finals[l].eq(mac.o.valid & heads[l][-1]),
                         all_final_next.eq(all_final & finals[l])]
            all_final = all_final_next
        m.d.comb += take_finals.eq(all_final & out_free)
        bank = {}
        for l, mac in enumerate(self.macs):
            m.d.comb += mac.o.ready.eq(~finals[l] | take_finals)
            for idx, oc in enumerate(sched.lanes[l][:-1]):
                bank[oc] = Signal(acc_shape, name=f"bank{oc}", reset_less=True)
                with m.If(mac.o.valid & heads[l][idx]):
                    m.d.sync += bank[oc].eq(mac.o.payload.data[0])
        with m.If(take_finals):
            m.d.sync += [out_valid.eq(1), out.last.eq(results[0].frame_last)]
            for l, mac in enumerate(self.macs):
                m.d.sync += out.data[sched.lanes[l][-1]].eq(mac.o.payload.data[0])
            m.d.sync += [out.data[oc].eq(value) for oc, value in bank.items()]
        with m.Elif(self.o.ready):
            m.d.sync += out_valid.eq(0)
        m.d.comb += [self.o.valid.eq(out_valid), self.o.payload.eq(out)]
