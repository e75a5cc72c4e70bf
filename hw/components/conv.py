# amaranth: UnusedElaboratable=no
"""Folded convolution engine (stride 1, zero padding, sparse connection table): accumulators only.

``acc[o, y, x] = bias[o] + sum_{i in table[o], ky, kx} w[o, i, ky, kx] * xpad[i, y + ky, x + kx]``
(:func:`golden.reference.conv_accumulate` with ``stride=1``), computed by a
:class:`hw.components.window.WindowGenerator` and ``out_lanes`` single-lane :class:`hw.components.mac.MACArray`\\ s of
``taps`` products each. Requantization and the activation follow in separate blocks downstream.

(The first line silences Amaranth's unused-elaboratable warning for the submodules the engine
creates in ``__init__``, to derive its latency, when the engine itself is never elaborated.)
"""

from dataclasses import dataclass

import numpy as np
from amaranth import Cat, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from golden.arith import accumulator_range
from golden.qformat import QFormat
from golden.qnet import WIDTH_RANGE

from hw.components.mac import ACC_BITS_RANGE, MACArray
from hw.components.fifo import WideFIFO
from hw.components.common import beat_layout, check_divides, check_fmt, check_int, check_int_array, fmt_shape
from hw.plan.timing import Timing
from hw.components.window import WindowGenerator

__all__ = ["ConvEngine", "ConvSchedule", "conv_schedule", "share_banks", "WINDOW_FIFO_LATENCY", "STEP_STAGES",
           "LANES_PER_BANK", "SPLIT_ROM_WORDS"]

#: Cycles from a window written into the window FIFO (:class:`hw.components.fifo.WideFIFO`: sliced LUT RAM
#: with an asynchronous read, so that the wide window has no output register under a computed
#: clock enable, and no pointer or enable fans out to the whole window) to it being readable.
WINDOW_FIFO_LATENCY = 1
#: Registers between the decision to load a position (``load``, in the engine's control logic)
#: and the copies of the window bank (one per :data:`LANES_PER_BANK` lanes): the window is staged
#: in a register without a clock enable and each bank takes it one cycle later under its own
#: registered copy of ``load``. So no combinational load enable fans out across the die to the
#: window bits (on the LFE5U-85F, C3's single bank, 1200 flip-flops under one computed enable, had
#: 13.4 ns of routing on that net alone), and each bank sits next to its lanes' multipliers.
#: The second stage is the register after each bank's channel multiplexers: the multiplexer
#: output feeds the bank's lanes, whose operand registers sit next to their DSP blocks all over
#: the die (on the LFE5U-85F the select register -> multiplexer -> far lane route had 12.2 ns of
#: routing at C3 = 8 x 25); registered, that route has a cycle of its own. The ROMs and control
#: of the lanes are read one cycle later to match.
STEP_STAGES = 2
#: Taps whose channel multiplexers share one copy of the one-hot channel select (each copy is the
#: read register of a small ROM of its own, on its own copy of the slot counter). With one copy
#: per lane, its 200 fan-out LUTs spread over the lane's multipliers and the route to them took
#: 11.4 ns on the LFE5U-85F (int8, C3 at 6 x 25).
SELECT_GROUP_TAPS = 5
#: Weight ROMs of at most this many words (steps per position) are split per group of
#: :data:`SELECT_GROUP_TAPS` taps, each part addressed by its own copy of the step counter. Such
#: a ROM is LUT logic (not block RAM) placed next to its multipliers all over the die; one
#: address register for a lane's 25 taps had up to 18 ns of routing to it on the LFE5U-85F (int8,
#: C3 at 6 x 25, 18 words). Deeper ROMs stay whole so as not to use more block RAMs.
SPLIT_ROM_WORDS = 32
#: Lanes that share one copy of the window bank and of its channel multiplexers (lanes walking
#: the same input channels, :func:`share_banks`). A copy per lane loads the staged window into
#: every lane: on the LFE5U-85F (w4a8, C3 at 8 x 25) 9,600 bank flip-flops, each fed across the
#: die, and the router did not converge; shared by 4 lanes, the window crosses the die twice and
#: each multiplexed activation fans out to 4 lanes (routed at 70.5 MHz; shared by all 8, 72.3 MHz,
#: with the route from the multiplexer to the farthest lane's operand register as the critical
#: path: within seed noise, and 4 keeps that route short).
LANES_PER_BANK = 4


def share_banks(chan_words, lanes_per_bank: int):
    """Group MAC lanes that can share a window bank and its channel multiplexers.

    Parameters
    ----------
    chan_words : sequence of sequence of int
        ``chan_words[l][n]``: lane ``l``'s input channel one-hot in connection slot ``n`` (the
        slot ROM's ``chan`` field; 0 for a padding slot).
    lanes_per_bank : int
        At most this many lanes per bank (>= 1).

    Returns
    -------
    list of list of int
        Lane indices per bank, in increasing order of their first lane: lanes with the same
        one-hot sequence, in lane order, cut into runs of ``lanes_per_bank``. Every lane is in
        exactly one bank.

    Raises
    ------
    ValueError
        ``lanes_per_bank < 1``.
    """
    if lanes_per_bank < 1:
        raise ValueError(f"lanes_per_bank must be at least 1, not {lanes_per_bank}")
    same = {}
    for l, words in enumerate(chan_words):
        same.setdefault(tuple(words), []).append(l)
    banks = [lanes[i:i + lanes_per_bank] for lanes in same.values()
             for i in range(0, len(lanes), lanes_per_bank)]
    return sorted(banks)


@dataclass(frozen=True)
class ConvSchedule:
    """Static schedule of one output position (computed in Python at construction).

    Members
    -------
    lanes : tuple of tuple of int
        ``lanes[l]``: the output channels lane ``l`` computes, in order.
    slots : tuple of tuple of (int, int)
        ``slots[l][n]``: the connection ``(o, i)`` lane ``l`` works on in slot ``n``;
        ``i = -1`` marks a padding slot (zero weights) that extends the lane's last output channel
        up to the longest lane.
    slot_cycles : int
        Cycles per connection, ``K*K / taps``.
    """

    lanes: tuple
    slots: tuple
    slot_cycles: int

    @property
    def connections(self):
        """Real connections per lane (padding slots excluded)."""
        return tuple(sum(i >= 0 for _, i in s) for s in self.slots)

    @property
    def slots_per_position(self):
        """Slots per position: the largest lane's connection count."""
        return len(self.slots[0])

    @property
    def cycles_per_position(self):
        """MAC steps per position: ``slots_per_position * slot_cycles``."""
        return self.slots_per_position * self.slot_cycles


#: Search nodes allowed to :func:`_pack` per candidate makespan before it gives up.
PACK_BUDGET = 50_000


def _pack(sizes, bins, capacity):
    """Items ``sizes`` (sorted by decreasing size) into ``bins`` bins of ``capacity``, or None.

    Depth-first search over items, trying each distinct bin load once (bins with equal loads
    are interchangeable). Returns the bin index of each item, None when impossible, and raises
    ``TimeoutError`` after :data:`PACK_BUDGET` nodes.
    """
    loads = [0] * bins
    where = [0] * len(sizes)
    remaining = [0] * (len(sizes) + 1)
    for n in range(len(sizes) - 1, -1, -1):
        remaining[n] = remaining[n + 1] + sizes[n]
    budget = [PACK_BUDGET]

    def place(n):
        if n == len(sizes):
            return True
        budget[0] -= 1
        if budget[0] < 0:
            raise TimeoutError
        if remaining[n] > sum(capacity - load for load in loads):
            return False
        tried = set()
        for b in range(bins):
            if loads[b] in tried or loads[b] + sizes[n] > capacity:
                continue
            tried.add(loads[b])
            loads[b] += sizes[n]
            where[n] = b
            if place(n + 1):
                return True
            loads[b] -= sizes[n]
        return False

    return list(where) if place(0) else None


def conv_schedule(table, out_lanes: int, slot_cycles: int) -> ConvSchedule:
    """Assign output channels to ``out_lanes`` lanes, balancing their connection counts.

    Minimises the largest lane load (connections per lane), each output channel staying in one
    lane. Greedy longest-first (channels by decreasing connection count, ties: lower channel
    first, each onto the least loaded lane, ties: lower lane) gives an upper bound; then every
    smaller load down from ``max(ceil(connections / out_lanes), largest channel)`` is tried by
    an exact search (:func:`_pack`), keeping the greedy assignment if the search exceeds its
    budget. C3 (60 connections) on 4 lanes: 15 per lane (greedy alone: 16). Each lane computes its
    channels in increasing channel order, each channel's connections in ``table[o]`` order;
    shorter lanes are padded with zero-weight slots on their last channel.
    """
    order = sorted(range(len(table)), key=lambda o: (-len(table[o]), o))
    sizes = [len(table[o]) for o in order]
    load = [0] * out_lanes
    where = []
    for size in sizes:
        lane = min(range(out_lanes), key=lambda l: (load[l], l))
        where.append(lane)
        load[lane] += size
    lower = max(-(-sum(sizes) // out_lanes), sizes[0])
    ascending = sorted(sizes)
    for capacity in range(lower, max(load)):
        fits = 0                            # most channels one lane can hold at this load
        while fits < len(ascending) and sum(ascending[:fits + 1]) <= capacity:
            fits += 1
        if fits * out_lanes < len(sizes):
            continue
        try:
            packed = _pack(sizes, out_lanes, capacity)
        except TimeoutError:
            break
        if packed is not None:
            where = packed
            break
    members = [sorted(o for o, lane in zip(order, where) if lane == l) for l in range(out_lanes)]
    members = sorted((m for m in members if m), key=lambda m: m[0]) + [m for m in members if not m]
    longest = max(sum(len(table[o]) for o in m) for m in members)
    slots = []
    for outs in members:
        lane_slots = [(o, i) for o in outs for i in table[o]]
        lane_slots += [(outs[-1], -1)] * (longest - len(lane_slots))
        slots.append(tuple(lane_slots))
    return ConvSchedule(tuple(tuple(m) for m in members), tuple(slots), slot_cycles)


def _check_table(table, out_channels, in_channels):
    if table is None:
        return tuple(tuple(range(in_channels)) for _ in range(out_channels))
    try:
        rows = [tuple(row) for row in table]
    except TypeError:
        raise TypeError(f"table must be None or a sequence of sequences of input channels, "
                        f"not {table!r}") from None
    if len(rows) != out_channels:
        raise ValueError(f"table has {len(rows)} rows for out_channels={out_channels}")
    for o, row in enumerate(rows):
        if not row:
            raise ValueError(f"table[{o}] is empty: output channel {o} reads no input channel")
        for i in row:
            if isinstance(i, bool) or not isinstance(i, (int, np.integer)) or not 0 <= i < in_channels:
                raise ValueError(f"table[{o}] = {row!r}: entry {i!r} is not an input channel "
                                 f"0..{in_channels - 1}")
        if len(set(row)) != len(row):
            raise ValueError(f"table[{o}] = {row!r} lists an input channel twice")
    return tuple(tuple(int(i) for i in row) for row in rows)


class ConvEngine(wiring.Component):
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
    dsp_primitive : str or None
        The DSP block to instantiate for the DSP products (:data:`hw.components.mac.DSP_PRIMITIVES`).

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
    :attr:`latency` ``= window.latency + F + 1 + STEP_STAGES + cycles_per_position +
    mac.latency`` ``= 4 + F + cycles_per_position + mac.latency`` cycles (``F`` =
    :data:`WINDOW_FIFO_LATENCY` = 1 with a window FIFO, else 0): in an idle engine, from the
    acceptance of the input beat that completes the window of the first position (0, 0) (input
    position ``(K-1-pad, K-1-pad)``, last channel group) to its output beat being valid: 1 cycle
    to the window, the window FIFO, the load decision, the staging register and the register after
    the channel multiplexers (:data:`STEP_STAGES`), ``cycles_per_position`` steps into the MACs, the MAC latency (its
    operand register included), and the output register.

    Timing model (:meth:`timing`, conventions in :mod:`hw.plan.timing`), exact for the emitted
    Verilog with the output always ready: the window generator walks the padded frames from the
    first cycle out of reset (``start``), one padded beat per cycle, an input beat no earlier than
    it is offered (:meth:`hw.components.window.WindowGenerator.walk`), and waits while its window is not
    taken. With a window FIFO of depth ``D``, window ``j`` valid at the generator in cycle
    ``v_j`` is written in cycle ``w_j = max(v_j, r_{j-D} + 1)`` (``r``: the cycle the engine takes
    a window; the FIFO is full until window ``j-D`` is taken) and is readable from ``max(w_j,
    r_{j-1}) + 1``; without a FIFO it is readable from ``v_j`` and ``w_j = r_j``. Groups ``0 .. G-2`` of a position are taken into the
    capture bank when readable; the last group is taken by the load of the compute bank, in cycle
    ``load_n = max(readable, load_{n-1} + cycles_per_position)`` (the previous position's last
    step leaves the bank in cycle ``load_{n-1} + cycles_per_position``). The steps go out one per
    cycle (the lane MACs never refuse one: their
    results, the non-final ones into the bank and the final ones, equal in every lane, into the
    output register, are read as soon as valid), so position ``n``'s output beat is valid in cycle
    ``load_n + cycles_per_position + 1 + STEP_STAGES + mac.latency``.

    :attr:`ii` ``=`` :attr:`frame_cycles`: cycles per frame in steady state (input offered at full
    rate, output always ready), the period of the model's frame ends over back-to-back frames. It
    is at least :attr:`ideal_ii` ``= max(padded_cycles, compute_cycles)`` (``padded_cycles =
    (H+2p) (W+2p) G`` padded beats, ``compute_cycles = positions * cycles_per_position``). Without
    a window FIFO (``window_fifo=0``) it is larger where the window generator, which then runs at
    most one window ahead of the MACs, must walk the rows and columns that produce no window while
    the MACs wait for it: C1 (28x28, pad 2) at ``cycles_per_position`` 1 / 2 / 5: ``ii`` 1024 /
    1780 / 4048 for ideal 1024 / 1568 / 3920; C3 (14x14x6, full table, ``in_lanes = 6``) at 6 /
    12 / 24: 655 / 1249 / 2437 for 600 / 1200 / 2400. The automatic window FIFO reaches the ideal
    at all of these: depths 0 / 67 / 26 windows (C1, 201 bits each) and 10 / 5 / 2 (C3, 1201 bits
    each).

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

    def __init__(self, *, in_fmt: QFormat, w_fmt: QFormat, acc_fmt: QFormat, in_channels: int,
                 out_channels: int, width: int, height: int, kernel: int, pad: int = 0, weights, bias,
                 table=None, out_lanes: int, taps: int, in_lanes: int, window_fifo=None,
                 dsp_multipliers=None, dsp_primitive=None):
        self._in_fmt = check_fmt("in_fmt", in_fmt, WIDTH_RANGE)
        self._w_fmt = check_fmt("w_fmt", w_fmt, WIDTH_RANGE)
        self._acc_fmt = check_fmt("acc_fmt", acc_fmt, ACC_BITS_RANGE)
        c = self._in_channels = check_int("in_channels", in_channels, 1)
        o = self._out_channels = check_int("out_channels", out_channels, 1)
        self._width = check_int("width", width, 1)
        self._height = check_int("height", height, 1)
        k = self._kernel = check_int("kernel", kernel, 1)
        self._pad = check_int("pad", pad, 0)
        self._out_lanes = check_int("out_lanes", out_lanes, 1, o)
        self._taps = check_divides("taps", taps, k * k, "kernel*kernel")
        self._in_lanes = check_divides("in_lanes", in_lanes, c, "in_channels")
        self._table = _check_table(table, o, c)
        self._weights = check_int_array("weights", weights, (o, c, k, k), w_fmt)
        self._bias = check_int_array("bias", bias, (o,), acc_fmt)
        for oc, row in enumerate(self._table):
            for ic in range(c):
                if ic not in row and np.any(self._weights[oc, ic]):
                    raise ValueError(f"weights[{oc}, {ic}] must be zero: input channel {ic} is not in "
                                     f"table[{oc}] = {row}")
        lo, hi = accumulator_range(self._weights, self._bias, in_fmt)
        if not acc_fmt.contains(lo, hi):
            raise ValueError(f"acc_fmt {acc_fmt} ({acc_fmt.bits} bits, [{acc_fmt.min}, {acc_fmt.max}]) is "
                             f"too narrow: the worst-case sums span [{lo}, {hi}] "
                             f"(golden.arith.accumulator_format gives the right width)")
        self._weights.flags.writeable = False
        self._bias.flags.writeable = False
        # Raises on a kernel larger than the padded map.
        self._window = WindowGenerator(fmt=in_fmt, channels=c, width=width, height=height, kernel=k,
                                       pad=pad, lanes=in_lanes)
        self._schedule = conv_schedule(self._table, self._out_lanes, k * k // self._taps)
        self._user_layout = data.StructLayout({"frame_last": 1})
        mac_args = dict(lanes=1, taps=self._taps, a_fmt=in_fmt, w_fmt=w_fmt, acc_fmt=acc_fmt,
                        user_width=self._user_layout.size)
        mac_latency = MACArray(**mac_args).latency
        # Positions loaded and not yet taken: at most floor(delay / cpp) + 1 with the output
        # always ready (loads are cpp cycles apart, a position is taken cpp + delay cycles after
        # its load, delay = STEP_STAGES + MAC latency), so this limit never delays a load then; a
        # lane's MAC FIFO holds the results of that many positions, so the MACs never refuse a step.
        self._pending_limit = (mac_latency + STEP_STAGES) // self._schedule.cycles_per_position + 2
        depth = max(mac_latency + 1, self._pending_limit * max(len(lane) for lane in self._schedule.lanes))
        if dsp_multipliers is not None:
            dsp_multipliers = check_int("dsp_multipliers", dsp_multipliers, 0, self._out_lanes * self._taps)
        self._macs = [MACArray(**mac_args, fifo_depth=depth, dsp_primitive=dsp_primitive,
                               dsp_multipliers=None if dsp_multipliers is None else
                               min(max(dsp_multipliers - l * self._taps, 0), self._taps))
                      for l in range(self._out_lanes)]
        self._frame_cycles = None
        if window_fifo is None:
            self._window_fifo = self._auto_window_fifo()
        else:
            check_int("window_fifo", window_fifo, 0)
            if window_fifo == 1:
                raise ValueError(f"window_fifo must be 0 (no FIFO) or >= 2, not {window_fifo} (a FIFO of "
                                 f"one entry cannot take a window every cycle)")
            self._window_fifo = window_fifo
        super().__init__({
            "i": In(stream.Signature(beat_layout(fmt_shape(in_fmt), self._in_lanes))),
            "o": Out(stream.Signature(beat_layout(fmt_shape(acc_fmt), o))),
        })

    @classmethod
    def from_layer(cls, layer, *, out_lanes: int, taps: int, in_lanes: int, window_fifo=None, **mac_options):
        """The engine of a conv :class:`golden.qnet.Layer` (stride 1)."""
        if getattr(layer, "kind", None) != "conv":
            raise ValueError(f"ConvEngine.from_layer needs a conv layer, not {layer!r}")
        if layer.stride != 1:
            raise ValueError(f"ConvEngine supports stride 1 only, layer {layer.name} has stride {layer.stride}")
        c, h, w = layer.in_shape
        return cls(in_fmt=layer.in_fmt, w_fmt=layer.w_fmt, acc_fmt=layer.acc_fmt, in_channels=c,
                   out_channels=layer.out_shape[0], width=w, height=h, kernel=layer.kernel,
                   pad=layer.pad, weights=layer.weights, bias=layer.bias, table=layer.table,
                   out_lanes=out_lanes, taps=taps, in_lanes=in_lanes, window_fifo=window_fifo,
                   **mac_options)

    # -- parameters and derived values ------------------------------------------------------
    in_fmt = property(lambda self: self._in_fmt, doc="Input format.")
    w_fmt = property(lambda self: self._w_fmt, doc="Weight format.")
    acc_fmt = property(lambda self: self._acc_fmt, doc="Accumulator / output format.")
    in_channels = property(lambda self: self._in_channels, doc="C.")
    out_channels = property(lambda self: self._out_channels, doc="O.")
    width = property(lambda self: self._width, doc="Unpadded input width W.")
    height = property(lambda self: self._height, doc="Unpadded input height H.")
    kernel = property(lambda self: self._kernel, doc="K.")
    pad = property(lambda self: self._pad, doc="Zero padding on each side.")
    out_lanes = property(lambda self: self._out_lanes, doc="P_o, parallel output-channel lanes.")
    taps = property(lambda self: self._taps, doc="P_k, kernel taps per lane per cycle.")
    in_lanes = property(lambda self: self._in_lanes, doc="Channels per input beat.")
    table = property(lambda self: self._table, doc="Connection table (tuple of tuples).")
    weights = property(lambda self: self._weights, doc="Weights (O, C, K, K), read-only int64.")
    bias = property(lambda self: self._bias, doc="Biases (O,), read-only int64.")
    window = property(lambda self: self._window, doc="The :class:`~hw.components.window.WindowGenerator`.")
    schedule = property(lambda self: self._schedule, doc="The :class:`ConvSchedule`.")
    macs = property(lambda self: tuple(self._macs), doc="The P_o single-lane :class:`~hw.components.mac.MACArray`\\ s.")
    window_fifo = property(lambda self: self._window_fifo,
                           doc="Depth (windows) of the window FIFO after the window generator; 0: none.")

    @property
    def pending_limit(self):
        """Positions that may be loaded and not yet in the output register (see the class
        docstring, step 4): ``floor((mac.latency + STEP_STAGES) / cycles_per_position) + 2``."""
        return self._pending_limit

    @property
    def window_fifo_bits(self):
        """Bits of window-FIFO storage: ``window_fifo`` windows of ``K*K*in_lanes`` elements and
        ``last`` (LUT RAM words)."""
        return self._window_fifo * self._window.o.payload.shape().size

    @property
    def connections(self):
        """Connections (o, i) in the table: the work of one position is ``connections * K*K`` MACs."""
        return sum(len(row) for row in self._table)

    @property
    def cycles_per_position(self):
        """MAC steps per output position: max over lanes of ``connections * K*K / taps``."""
        return self._schedule.cycles_per_position

    @property
    def multipliers(self):
        """Multipliers: ``out_lanes * taps``."""
        return self._out_lanes * self._taps

    @property
    def out_width(self):
        """Output positions per row, ``W + 2 pad - K + 1``."""
        return self._window.out_width

    @property
    def out_height(self):
        """Output rows, ``H + 2 pad - K + 1``."""
        return self._window.out_height

    @property
    def positions(self):
        """Output positions (output beats) per frame."""
        return self.out_width * self.out_height

    @property
    def in_beats(self):
        """Input beats per frame, ``H * W * C / in_lanes``."""
        return self._window.in_beats

    @property
    def padded_cycles(self):
        """Padded beats of the window generator per frame, ``(H+2p) (W+2p) C / in_lanes``: the
        cycles per frame of the input side alone."""
        return self._window.frame_cycles

    @property
    def compute_cycles(self):
        """MAC steps per frame, ``positions * cycles_per_position``."""
        return self.positions * self.cycles_per_position

    @property
    def ideal_ii(self):
        """Lower bound of :attr:`ii`: ``max(padded_cycles, compute_cycles)``."""
        return max(self.padded_cycles, self.compute_cycles)

    @property
    def frame_cycles(self):
        """Cycles per frame in steady state, input offered at full rate and output always ready:
        the period of the frames' last output beats in :meth:`timing` of back-to-back frames
        offered at once (see the class docstring)."""
        if self._frame_cycles is None:
            self._frame_cycles = self._steady_period()
        return self._frame_cycles

    @property
    def ii(self):
        """Cycles per frame in steady state: :attr:`frame_cycles`."""
        return self.frame_cycles

    @property
    def latency(self):
        """Cycles from the beat completing the first window to its output (idle engine)."""
        fifo = WINDOW_FIFO_LATENCY if self._window_fifo else 0
        return (self._window.latency + fifo + 1 + STEP_STAGES + self.cycles_per_position
                + self._macs[0].latency)

    def timing(self, avail, *, start=0):
        """Exact cycle timing with the output always ready (see the class docstring, "Timing
        model", and :mod:`hw.plan.timing`).

        Parameters
        ----------
        avail : sequence of int
            Earliest offer cycle of each input beat (non-decreasing): well-formed frames of
            :attr:`in_beats` beats back to back (``last`` on each frame's final beat); a trailing
            incomplete frame is walked up to its first missing beat.
        start : int
            The first cycle out of reset (same numbering as ``avail``): the window generator
            walks the top padding rows from then on, input or not.

        Returns
        -------
        hw.plan.timing.Timing
            ``accept``: one cycle per input beat; ``out``: one cycle per output position.
        """
        return self._timing(avail, start, self._window_fifo)

    def _timing(self, avail, start, depth):
        """:meth:`timing` with a window FIFO of ``depth`` windows (0: none)."""
        g_count, cpp = self._window.groups, self.cycles_per_position
        loads = []
        free = start                   # first cycle in which the compute bank may be loaded
        read = start - 1               # cycle in which the consumer took the previous window
        writes, reads = [], []         # window FIFO: write cycles, read cycles

        def take(valid, group):
            nonlocal free, read
            j = len(writes)
            if depth:
                # WideFIFO (as SyncFIFO): full (no write, even in a cycle with a read) until window j - depth is
                # read; a window is readable the cycle after its write, once the previous one is
                # read.
                write = valid if j < depth else max(valid, reads[j - depth] + 1)
                writes.append(write)
                ready = max(write + 1, read + 1)
            else:
                write = ready = valid
            if group < g_count - 1:
                read = ready           # into the capture bank
            else:
                read = max(ready, free)
                free = read + cpp
                loads.append(read)
            reads.append(read)
            return write if depth else read

        accept, _ = self._window.walk(avail, start, take)
        tail = cpp + 1 + STEP_STAGES + self._macs[0].latency
        return Timing(accept, [load + tail for load in loads])

    def _steady_period(self, depth=None, max_frames=12):
        """Period of the frames' last outputs at full rate, once it repeats (two equal periods)."""
        depth = self._window_fifo if depth is None else depth
        frames = 3
        while True:
            out = self._timing([0] * (frames * self.in_beats), 0, depth).out
            ends = out[self.positions - 1::self.positions]
            periods = [b - a for a, b in zip(ends, ends[1:])]
            if periods[-1] == periods[-2]:
                return periods[-1]
            if frames >= max_frames:
                raise RuntimeError(f"timing model not periodic after {frames} frames: {periods}")
            frames += 1

    def _auto_window_fifo(self):
        """The smallest window-FIFO depth giving the best :attr:`ii` any depth up to a frame's
        windows (plus 2) gives: 0 if no FIFO is needed, else ``>= 2``."""
        top = self._window.out_beats + 2
        best = self._steady_period(top)
        if self._steady_period(0) == best:
            return 0
        lo, hi = 2, top                # the period is non-increasing in the depth from 2 on
        while lo < hi:
            mid = (lo + hi) // 2
            if self._steady_period(mid) == best:
                hi = mid
            else:
                lo = mid + 1
        return hi

    # -- hardware ---------------------------------------------------------------------------
    def _rom_contents(self):
        """(weight ROM words, slot ROM words) in schedule order."""
        k, pk = self._kernel, self._taps
        sched = self._schedule
        slot_cycles = sched.slot_cycles
        weight_words, slot_words = [], []
        for n in range(sched.slots_per_position):
            lanes = []
            for l in range(self._out_lanes):
                oc, ic = sched.slots[l][n]
                prev = sched.slots[l][n - 1][0] if n else None
                nxt = sched.slots[l][n + 1][0] if n + 1 < sched.slots_per_position else None
                lanes.append({"chan": 1 << ic if ic >= 0 else 0, "out": oc, "first": int(prev != oc),
                              "last": int(nxt != oc), "bias": int(self._bias[oc])})
            slot_words.append(lanes)
            for j in range(slot_cycles):
                word = []
                for l in range(self._out_lanes):
                    oc, ic = sched.slots[l][n]
                    taps = (self._weights[oc, ic].reshape(k * k)[j * pk:(j + 1) * pk] if ic >= 0
                            else np.zeros(pk, np.int64))
                    word.append([int(v) for v in taps])
                weight_words.append(word)
        return weight_words, slot_words

    def elaborate(self, platform):
        m = Module()
        k, c, o = self._kernel, self._in_channels, self._out_channels
        po, pk, g_count = self._out_lanes, self._taps, self._window.groups
        sched = self._schedule
        slot_cycles, n_slots, cpp = sched.slot_cycles, sched.slots_per_position, self.cycles_per_position
        a_shape, w_shape, acc_shape = fmt_shape(self._in_fmt), fmt_shape(self._w_fmt), fmt_shape(self._acc_fmt)

        m.submodules.window = wg = self._window
        wiring.connect(m, wiring.flipped(self.i), wg.i)

        # --- window source: the generator, or the window FIFO after it ---
        win_valid, win_ready = Signal(), Signal()
        win_in = Signal(wg.o.payload.shape())
        if self._window_fifo:
            m.submodules.window_fifo = fifo = WideFIFO(width=wg.o.payload.shape().size, depth=self._window_fifo)
            m.d.comb += [fifo.w_data.eq(wg.o.payload), fifo.w_en.eq(wg.o.valid), wg.o.ready.eq(fifo.w_rdy),
                         win_valid.eq(fifo.r_rdy), win_in.eq(fifo.r_data), fifo.r_en.eq(win_ready)]
        else:
            m.d.comb += [win_valid.eq(wg.o.valid), win_in.eq(wg.o.payload), wg.o.ready.eq(win_ready)]
        for l, mac in enumerate(self._macs):
            m.submodules[f"mac{l}"] = mac

        # --- window capture (groups 0..G-2), staging register and the lanes' compute banks ---
        # A lane's bank win[c][t][u] = tap t * P_k + u (ky*K + kx order) of channel c; it rotates
        # by one chunk of P_k taps per step, so that chunk j of the current slot is always
        # win[c][0] (all lanes step through the chunks j = 0 .. K*K/P_k - 1 together) and a lane
        # only selects a channel.
        bank_layout = data.ArrayLayout(data.ArrayLayout(data.ArrayLayout(a_shape, pk), slot_cycles), c)
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
        pending = Signal(range(self._pending_limit + 1))
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
        m.d.sync += [pending.eq(pending_next), room.eq(pending_next < self._pending_limit)]
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

        # The steps reach the MACs STEP_STAGES = 2 cycles behind the step counters: the window of
        # the position being loaded is staged (every cycle, no enable) and loaded into the banks
        # a cycle later; the banks' channel multiplexers are registered. The channel ROMs are
        # addressed by the step counters (their read registers are the first delay); the lanes'
        # ROMs by the counters one cycle later (`s_d`, `slot_d`), and the chunk flags and `fire`
        # are registered twice.
        assert STEP_STAGES == 2
        staged = Signal(bank_layout, reset_less=True)
        staged_last = Signal()
        for g, group in enumerate(groups):
            for lane in range(self._in_lanes):
                for ky in range(k):
                    for kx in range(k):
                        t, u = divmod(ky * k + kx, pk)
                        m.d.sync += staged[g * self._in_lanes + lane][t][u].eq(group[ky][kx][lane])
        m.d.sync += staged_last.eq(win_in.last)
        chunk_first, chunk_last = Signal(), Signal()
        chunk_first_d, chunk_last_d = Signal(), Signal()
        m.d.sync += [chunk_first_d.eq(j == 0), chunk_last_d.eq(last_j),
                     chunk_first.eq(chunk_first_d), chunk_last.eq(chunk_last_d)]
        s_d, slot_d, fire_d = Signal.like(s), Signal.like(slot), Signal()
        m.d.sync += [s_d.eq(s_next), slot_d.eq(slot_next), fire_d.eq(fire)]

        weight_words, slot_words = self._rom_contents()
        slot_layout = data.StructLayout({
            "first": 1, "last": 1, "bias": acc_shape})
        tap_groups = [range(g, min(g + SELECT_GROUP_TAPS, pk)) for g in range(0, pk, SELECT_GROUP_TAPS)]

        # --- per bank (lanes that walk the same input channels, at most LANES_PER_BANK of them):
        # the window bank under its registered copy of `load`, and the channel multiplexers on
        # one-hot selects from small ROMs, whose outputs feed the bank's lanes. Per lane: its own
        # ROMs, addressed by its own copies of the step counters (``dup_*``: hw.flow.synth keeps Yosys
        # from merging them back into one), the registered copy of `fire`, and the step straight
        # into the lane's MAC (whose operand registers are the step register) ---
        chan_words = [[w[l]["chan"] for w in slot_words] for l in range(po)]
        users = [data.View(self._user_layout, mac.i.payload.user) for mac in self._macs]
        for b, bank_lanes in enumerate(share_banks(chan_words, LANES_PER_BANK)):
            win = Signal(bank_layout, name=f"dup_win{b}", reset_less=True)
            win_last = Signal(name=f"dup_win_last{b}")     # the position in `win` is the frame's last
            # The bank's load and shift enables are copied per group of taps (the part of the
            # bank that feeds one group's multiplexers; the shift only moves taps within it): one
            # copy for C3's 1,200 bank bits spread over 4 lanes had 15 ns of routing on the 85F.
            for g, taps_g in enumerate(tap_groups):
                load_b = Signal(name=f"dup_bank_load{b}_{g}")
                m.d.sync += load_b.eq(load)
                if slot_cycles > 1:                 # (a bank of one chunk per slot never shifts)
                    fire_b = Signal(name=f"dup_bank_fire{b}_{g}")
                    m.d.sync += fire_b.eq(fire)
                with m.If(load_b):
                    m.d.sync += [win[ch][t][u].eq(staged[ch][t][u])
                                 for ch in range(c) for t in range(slot_cycles) for u in taps_g]
                    if g == 0:
                        m.d.sync += win_last.eq(staged_last)
                if slot_cycles > 1:
                    with m.Elif(fire_b):
                        m.d.sync += [win[ch][t][u].eq(win[ch][(t + 1) % slot_cycles][u])
                                     for ch in range(c) for t in range(slot_cycles) for u in taps_g]
            # The input channel one-hot, from a small ROM per group of taps: an AND-OR multiplexer
            # (two LUT levels for C3's six channels), no index arithmetic.
            for g, taps_g in enumerate(tap_groups):
                slot_g = Signal.like(slot, name=f"dup_bank_slot{b}_{g}")
                m.d.sync += slot_g.eq(slot_next)
                chan_rom = Memory(shape=c, depth=max(n_slots, 2), init=chan_words[bank_lanes[0]])
                m.submodules[f"chan_rom{b}_{g}"] = chan_rom
                chan_rd = chan_rom.read_port()
                m.d.comb += chan_rd.addr.eq(slot_g)
                for t in taps_g:
                    a_sel = 0
                    for ch in range(c):
                        a_sel = a_sel | Mux(chan_rd.data[ch], win[ch][0][t], 0)
                    a_reg = Signal(a_shape, name=f"asel{b}_{t}")
                    m.d.sync += a_reg.eq(a_sel)
                    for l in bank_lanes:
                        m.d.comb += self._macs[l].i.payload.a[0][t].eq(a_reg)
            win_last_d = Signal(name=f"win_last_d{b}")
            m.d.sync += win_last_d.eq(win_last)
            m.d.comb += [users[l].frame_last.eq(win_last_d) for l in bank_lanes]

        for l, mac in enumerate(self._macs):
            slot_l = Signal.like(slot, name=f"dup_slot{l}")
            m.d.sync += slot_l.eq(slot_d)
            # (at least 2 words: a 1-word memory would have a zero-width address)
            slot_rom = Memory(shape=slot_layout, depth=max(n_slots, 2),
                              init=[{k: v for k, v in w[l].items() if k not in ("chan", "out")} for w in slot_words])
            m.submodules[f"slot_rom{l}"] = slot_rom
            slot_rd = slot_rom.read_port()
            m.d.comb += slot_rd.addr.eq(slot_l)
            # The weight ROM; a shallow one (LUT logic, not block RAM) is split per group of taps,
            # each part on its own copy of the step counter, next to the group's multipliers.
            rom_groups = tap_groups if cpp <= SPLIT_ROM_WORDS else [range(pk)]
            for g, taps_g in enumerate(rom_groups):
                suffix = f"{l}_{g}" if len(rom_groups) > 1 else f"{l}"
                s_g = Signal.like(s, name=f"dup_s{suffix}")
                m.d.sync += s_g.eq(s_d)
                rom = Memory(shape=data.ArrayLayout(w_shape, len(taps_g)), depth=max(cpp, 2),
                             init=[[w[l][t] for t in taps_g] for w in weight_words])
                m.submodules[f"weight_rom{suffix}"] = rom
                rd = rom.read_port()
                m.d.comb += rd.addr.eq(s_g)
                m.d.comb += [mac.i.payload.w[0][t].eq(rd.data[i]) for i, t in enumerate(taps_g)]
            fire_l = Signal(name=f"dup_fire{l}")
            m.d.sync += fire_l.eq(fire_d)
            info = slot_rd.data
            m.d.comb += [
                mac.i.valid.eq(fire_l),
                mac.i.payload.bias[0].eq(info.bias),
                mac.i.payload.first.eq(info.first & chunk_first),
                mac.i.payload.last.eq(info.last & chunk_last),
            ]

        # --- results: bank for each lane's channels but its last; finals form the output beat ---
        out_valid = Signal()
        out = Signal(self.o.payload.shape())
        out_free = ~out_valid | self.o.ready
        results = [data.View(self._user_layout, mac.o.payload.user) for mac in self._macs]
        finals = [Signal(name=f"final{l}") for l in range(po)]
        # Lane l's results come in the order of its output channels, sched.lanes[l], once per
        # position; `head{l}` (one-hot, a register) tells which one is at the FIFO's head, so the
        # enables below come from flip-flops and the FIFO's level, not through its LUT RAM read
        # (on the 85F that read, the AND over C3's lanes and the output register's enable had
        # 13 ns of routing).
        heads = []
        for l, mac in enumerate(self._macs):
            n = len(sched.lanes[l])
            head = Signal(n, init=1, name=f"head{l}")
            with m.If(mac.o.valid & mac.o.ready):
                m.d.sync += head.eq(head.rotate_left(1))
            heads.append(head)
        all_final = Signal()
        m.d.comb += all_final.eq(1)
        for l, mac in enumerate(self._macs):
            all_final_next = Signal()
            m.d.comb += [finals[l].eq(mac.o.valid & heads[l][-1]),
                         all_final_next.eq(all_final & finals[l])]
            all_final = all_final_next
        m.d.comb += take_finals.eq(all_final & out_free)
        bank = {}
        for l, mac in enumerate(self._macs):
            m.d.comb += mac.o.ready.eq(~finals[l] | take_finals)
            for idx, oc in enumerate(sched.lanes[l][:-1]):
                bank[oc] = Signal(acc_shape, name=f"bank{oc}", reset_less=True)
                with m.If(mac.o.valid & heads[l][idx]):
                    m.d.sync += bank[oc].eq(mac.o.payload.data[0])
        with m.If(take_finals):
            m.d.sync += [out_valid.eq(1), out.last.eq(results[0].frame_last)]
            for l, mac in enumerate(self._macs):
                m.d.sync += out.data[sched.lanes[l][-1]].eq(mac.o.payload.data[0])
            m.d.sync += [out.data[oc].eq(value) for oc, value in bank.items()]
        with m.Elif(self.o.ready):
            m.d.sync += out_valid.eq(0)
        m.d.comb += [self.o.valid.eq(out_valid), self.o.payload.eq(out)]
        return m
