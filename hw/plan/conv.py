"""Plan of a folded convolution engine (:class:`hw.components.conv.ConvEngine`): parameters,
schedule, ROM images, window-FIFO depth, latency and the exact cycle model, resources estimate.

Plain Python: no Amaranth elaboratable is built here. The engine's structure (window generator,
window FIFO, capture / staging / compute banks, per-lane MACs, result bank) is described in
:class:`hw.components.conv.ConvEngine`; the sub-plans :attr:`ConvPlan.window` and
:attr:`ConvPlan.macs` give the latencies the model uses.
"""

from dataclasses import InitVar, dataclass, field, replace
from functools import cached_property

import numpy as np

from golden.arith import accumulator_range
from golden.limits import ACC_BITS_RANGE, WIDTH_RANGE
from golden.qformat import QFormat

from hw.plan.params import beat_layout, check_divides, check_fmt, check_int, check_int_array, fmt_shape
from hw.plan.mac import MACPlan, vendor_argument
from hw.plan.schedule import ConvSchedule, conv_schedule, share_banks
from hw.plan.timing import Timing
from hw.plan.window import WindowPlan

__all__ = ["ConvPlan", "ConvSchedule", "conv_schedule", "share_banks", "WINDOW_FIFO_LATENCY", "STEP_STAGES",
           "SELECT_GROUP_TAPS", "SPLIT_ROM_WORDS", "LANES_PER_BANK", "USER_WIDTH"]

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
#: of the lanes are read one cycle later to match. A fixed property of the design (the engine
#: has exactly these two registers), not a parameter: the latency and the cycle model use it.
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


#: Width of the MAC lanes' side-band ``user`` field: the frame's ``last`` (``frame_last``).
USER_WIDTH = 1


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


@dataclass(frozen=True, kw_only=True, eq=False)
class ConvPlan:
    """Convolution (stride 1, zero padding ``pad``, connection table) folded onto ``out_lanes``
    single-lane MACs of ``taps`` products (parameters as :class:`hw.components.conv.ConvEngine`).

    Parameters
    ----------
    in_fmt, w_fmt, acc_fmt : QFormat
        Input, weight (2..16 bits) and accumulator (2..46 bits) formats; ``acc_fmt`` must hold
        :func:`golden.arith.accumulator_range` of ``weights``, ``bias`` and ``in_fmt``.
    in_channels, out_channels, width, height, kernel, pad : int
        ``C``, ``O``, unpadded ``W``, ``H``, ``K`` and the zero padding on each side.
    weights, bias : array of int
        ``(O, C, K, K)`` in ``w_fmt`` (zero at pairs absent from ``table``), ``(O,)`` in
        ``acc_fmt``; stored as read-only int64 arrays.
    table : sequence of sequences of int, or None
        Input channels of each output channel (``None``: all); stored as a tuple of tuples.
    out_lanes, taps, in_lanes : int
        ``P_o`` (``1..O``), ``P_k`` (divides ``K*K``), channels per input beat (divides ``C``).
    window_fifo : int or None
        Window FIFO depth: 0 or ``>= 2``; ``None``: the smallest depth that gives the best
        :attr:`ii` (:meth:`auto_window_fifo`), resolved at construction (give ``None`` again
        to ``dataclasses.replace`` to derive it for other parameters).
    dsp_multipliers, dsp_vendor : as :class:`hw.plan.mac.MACPlan` (``dsp_multipliers`` over all
        ``out_lanes * taps`` products, lane-major); ``dsp_primitive`` is the old name of ``dsp_vendor``.

    Members
    -------
    window : WindowPlan
        The window generator's plan (``lanes = in_lanes``).
    macs : tuple of MACPlan
        One single-lane plan per output lane (they differ only in ``dsp_multipliers``);
        :attr:`mac` is lane 0's.
    schedule : ConvSchedule
        The balanced schedule (:func:`hw.plan.schedule.conv_schedule`).

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
    it is offered (:meth:`hw.plan.window.WindowPlan.walk`), and waits while its window is not
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
    TypeError, ValueError
        As :class:`hw.components.conv.ConvEngine`.
    """

    in_fmt: QFormat
    w_fmt: QFormat
    acc_fmt: QFormat
    in_channels: int
    out_channels: int
    width: int
    height: int
    kernel: int
    pad: int = 0
    weights: np.ndarray
    bias: np.ndarray
    table: tuple | None = None
    out_lanes: int
    taps: int
    in_lanes: int
    window_fifo: int | None = None
    dsp_multipliers: int | None = None
    dsp_vendor: str | None = None
    dsp_primitive: InitVar[str | None] = None
    window: WindowPlan = field(init=False, repr=False)
    schedule: ConvSchedule = field(init=False, repr=False)
    macs: tuple = field(init=False, repr=False)

    def __post_init__(self, dsp_primitive):
        def put(name, value):
            object.__setattr__(self, name, value)

        check_fmt("in_fmt", self.in_fmt, WIDTH_RANGE)
        check_fmt("w_fmt", self.w_fmt, WIDTH_RANGE)
        check_fmt("acc_fmt", self.acc_fmt, ACC_BITS_RANGE)
        for name in ("in_channels", "out_channels", "width", "height", "kernel"):
            put(name, check_int(name, getattr(self, name), 1))
        put("pad", check_int("pad", self.pad, 0))
        c, o, k = self.in_channels, self.out_channels, self.kernel
        put("out_lanes", check_int("out_lanes", self.out_lanes, 1, o))
        put("taps", check_divides("taps", self.taps, k * k, "kernel*kernel"))
        put("in_lanes", check_divides("in_lanes", self.in_lanes, c, "in_channels"))
        put("table", _check_table(self.table, o, c))
        put("weights", check_int_array("weights", self.weights, (o, c, k, k), self.w_fmt))
        put("bias", check_int_array("bias", self.bias, (o,), self.acc_fmt))
        self._check_sums()
        # Raises on a kernel larger than the padded map.
        put("window", WindowPlan(fmt=self.in_fmt, channels=c, width=self.width, height=self.height, kernel=k,
                                 pad=self.pad, lanes=self.in_lanes))
        put("schedule", conv_schedule(self.table, self.out_lanes, k * k // self.taps))
        if self.dsp_multipliers is not None:
            put("dsp_multipliers", check_int("dsp_multipliers", self.dsp_multipliers, 0, self.out_lanes * self.taps))
        name, key = vendor_argument(self.dsp_vendor, dsp_primitive)
        lane = MACPlan(lanes=1, taps=self.taps, a_fmt=self.in_fmt, w_fmt=self.w_fmt, acc_fmt=self.acc_fmt,
                       user_width=USER_WIDTH)
        depth = max(lane.latency + 1, self.pending_limit_of(lane) * max(len(ls) for ls in self.schedule.lanes))
        put("macs", tuple(replace(lane, fifo_depth=depth, **{key: name},
                                  dsp_multipliers=self._lane_dsp(l)) for l in range(self.out_lanes)))
        put("dsp_vendor", name)
        if self.window_fifo is None:
            put("window_fifo", self.auto_window_fifo())
        else:
            check_int("window_fifo", self.window_fifo, 0)
            if self.window_fifo == 1:
                raise ValueError(f"window_fifo must be 0 (no FIFO) or >= 2, not {self.window_fifo} (a FIFO of "
                                 f"one entry cannot take a window every cycle)")
            put("window_fifo", int(self.window_fifo))

    def _check_sums(self):
        for oc, row in enumerate(self.table):
            for ic in range(self.in_channels):
                if ic not in row and np.any(self.weights[oc, ic]):
                    raise ValueError(f"weights[{oc}, {ic}] must be zero: input channel {ic} is not in "
                                     f"table[{oc}] = {row}")
        lo, hi = accumulator_range(self.weights, self.bias, self.in_fmt)
        acc_fmt = self.acc_fmt
        if not acc_fmt.contains(lo, hi):
            raise ValueError(f"acc_fmt {acc_fmt} ({acc_fmt.bits} bits, [{acc_fmt.min}, {acc_fmt.max}]) is "
                             f"too narrow: the worst-case sums span [{lo}, {hi}] "
                             f"(golden.arith.accumulator_format gives the right width)")

    def _lane_dsp(self, lane):
        """DSP products of lane ``lane``: the lane's share of the lane-major ``dsp_multipliers``."""
        if self.dsp_multipliers is None:
            return None
        return min(max(self.dsp_multipliers - lane * self.taps, 0), self.taps)

    def pending_limit_of(self, mac):
        """:attr:`pending_limit` for a lane MAC of plan *mac*."""
        # Positions loaded and not yet taken: at most floor(delay / cpp) + 1 with the output
        # always ready (loads are cpp cycles apart, a position is taken cpp + delay cycles after
        # its load, delay = STEP_STAGES + MAC latency), so this limit never delays a load then; a
        # lane's MAC FIFO holds the results of that many positions, so the MACs never refuse a step.
        return (mac.latency + STEP_STAGES) // self.schedule.cycles_per_position + 2

    @classmethod
    def from_layer(cls, layer, *, out_lanes: int, taps: int, in_lanes: int, window_fifo=None, **mac_options):
        """The plan of a conv :class:`golden.qnet.Layer` (stride 1)."""
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

    # -- derived values ---------------------------------------------------------------------
    @property
    def in_layout(self):
        """Payload layout of the input stream: ``in_lanes`` channels of ``in_fmt`` and ``last``."""
        return beat_layout(fmt_shape(self.in_fmt), self.in_lanes)

    @property
    def out_layout(self):
        """Payload layout of the output stream: the ``O`` accumulators of a position and ``last``."""
        return beat_layout(fmt_shape(self.acc_fmt), self.out_channels)

    @property
    def mac(self):
        """Lane 0's :class:`hw.plan.mac.MACPlan` (every lane has its latency)."""
        return self.macs[0]

    @property
    def pending_limit(self):
        """Positions that may be loaded and not yet in the output register:
        ``floor((mac.latency + STEP_STAGES) / cycles_per_position) + 2``."""
        return self.pending_limit_of(self.mac)

    @property
    def step_stages(self):
        """Registers from the load decision to the MAC steps: :data:`STEP_STAGES` (fixed)."""
        return STEP_STAGES

    @property
    def window_fifo_bits(self):
        """Bits of window-FIFO storage: ``window_fifo`` windows of ``K*K*in_lanes`` elements and ``last``."""
        return self.window_fifo * self.window.window_bits

    @property
    def connections(self):
        """Connections (o, i) in the table: the work of one position is ``connections * K*K`` MACs."""
        return sum(len(row) for row in self.table)

    @property
    def cycles_per_position(self):
        """MAC steps per output position: max over lanes of ``connections * K*K / taps``."""
        return self.schedule.cycles_per_position

    @property
    def multipliers(self):
        """Multipliers: ``out_lanes * taps``."""
        return self.out_lanes * self.taps

    out_width = property(lambda self: self.window.out_width, doc="Output positions per row, ``W + 2 pad - K + 1``.")
    out_height = property(lambda self: self.window.out_height, doc="Output rows, ``H + 2 pad - K + 1``.")
    in_beats = property(lambda self: self.window.in_beats, doc="Input beats per frame, ``H * W * C / in_lanes``.")
    padded_cycles = property(lambda self: self.window.frame_cycles,
                             doc="Padded beats of the window generator per frame, ``(H+2p) (W+2p) C / in_lanes``.")

    @property
    def positions(self):
        """Output positions (output beats) per frame."""
        return self.out_width * self.out_height

    @property
    def compute_cycles(self):
        """MAC steps per frame, ``positions * cycles_per_position``."""
        return self.positions * self.cycles_per_position

    @property
    def ideal_ii(self):
        """Lower bound of :attr:`ii`: ``max(padded_cycles, compute_cycles)``."""
        return max(self.padded_cycles, self.compute_cycles)

    @cached_property
    def frame_cycles(self):
        """Cycles per frame in steady state, input offered at full rate and output always ready:
        the period of the frames' last output beats in :meth:`timing` of back-to-back frames."""
        return self.steady_period()

    @property
    def ii(self):
        """Cycles per frame in steady state: :attr:`frame_cycles`."""
        return self.frame_cycles

    @property
    def latency(self):
        """Cycles from the beat completing the first window to its output (idle engine)."""
        fifo = WINDOW_FIFO_LATENCY if self.window_fifo else 0
        return self.window.latency + fifo + 1 + STEP_STAGES + self.cycles_per_position + self.mac.latency

    def timing(self, avail, *, start=0):
        """Exact cycle timing with the output always ready (class docstring, "Timing model").

        ``avail``: earliest offer cycle of each input beat (non-decreasing), well-formed frames
        of :attr:`in_beats` beats back to back (a trailing incomplete frame is walked up to its
        first missing beat); ``start``: the first cycle out of reset. Returns a
        :class:`hw.plan.timing.Timing`: one ``accept`` cycle per input beat, one ``out`` cycle
        per output position.
        """
        return self._timing(avail, start, self.window_fifo)

    def _timing(self, avail, start, depth):
        """:meth:`timing` with a window FIFO of ``depth`` windows (0: none)."""
        g_count, cpp = self.window.groups, self.cycles_per_position
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

        accept, _ = self.window.walk(avail, start, take)
        tail = cpp + 1 + STEP_STAGES + self.mac.latency
        return Timing(accept, [load + tail for load in loads])

    def steady_period(self, depth=None, max_frames=12):
        """Period of the frames' last outputs at full rate, once it repeats (two equal periods)."""
        depth = self.window_fifo if depth is None else depth
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

    def auto_window_fifo(self):
        """The smallest window-FIFO depth giving the best :attr:`ii` any depth up to a frame's
        windows (plus 2) gives: 0 if no FIFO is needed, else ``>= 2``."""
        top = self.window.out_beats + 2
        best = self.steady_period(top)
        if self.steady_period(0) == best:
            return 0
        lo, hi = 2, top                # the period is non-increasing in the depth from 2 on
        while lo < hi:
            mid = (lo + hi) // 2
            if self.steady_period(mid) == best:
                hi = mid
            else:
                lo = mid + 1
        return hi

    def rom_contents(self):
        """(weight ROM words, slot ROM words) in schedule order."""
        return self._rom_images

    @cached_property
    def _rom_images(self):
        k, pk = self.kernel, self.taps
        sched = self.schedule
        slot_cycles = sched.slot_cycles
        weight_words, slot_words = [], []
        for n in range(sched.slots_per_position):
            lanes = []
            for l in range(self.out_lanes):
                oc, ic = sched.slots[l][n]
                prev = sched.slots[l][n - 1][0] if n else None
                nxt = sched.slots[l][n + 1][0] if n + 1 < sched.slots_per_position else None
                lanes.append({"chan": 1 << ic if ic >= 0 else 0, "out": oc, "first": int(prev != oc),
                              "last": int(nxt != oc), "bias": int(self.bias[oc])})
            slot_words.append(lanes)
            for j in range(slot_cycles):
                word = []
                for l in range(self.out_lanes):
                    oc, ic = sched.slots[l][n]
                    taps = (self.weights[oc, ic].reshape(k * k)[j * pk:(j + 1) * pk] if ic >= 0
                            else np.zeros(pk, np.int64))
                    word.append([int(v) for v in taps])
                weight_words.append(word)
        return weight_words, slot_words

    @property
    def chan_words(self):
        """``chan_words[l][n]``: lane ``l``'s input channel one-hot in slot ``n`` (0: padding)."""
        return [[w[l]["chan"] for w in self.rom_contents()[1]] for l in range(self.out_lanes)]

    @property
    def banks(self):
        """Lanes per window bank (:func:`hw.plan.schedule.share_banks`, :data:`LANES_PER_BANK`)."""
        return share_banks(self.chan_words, LANES_PER_BANK)

    @property
    def tap_groups(self):
        """Taps per channel-select group (:data:`SELECT_GROUP_TAPS` each)."""
        return [range(g, min(g + SELECT_GROUP_TAPS, self.taps)) for g in range(0, self.taps, SELECT_GROUP_TAPS)]

    @property
    def rom_groups(self):
        """Taps per weight-ROM part: :attr:`tap_groups` for ROMs of at most
        :data:`SPLIT_ROM_WORDS` words, else one part."""
        return self.tap_groups if self.cycles_per_position <= SPLIT_ROM_WORDS else [range(self.taps)]

    def resources(self) -> dict:
        """ESTIMATE (not a synthesis result): ``multipliers``; ``rom_bits`` the weight, slot and
        channel ROMs; ``ram_bits`` line buffers, window FIFO and the MACs' result FIFOs;
        ``register_bits`` roughly the capture, staging and compute banks, the output register
        and the MAC registers."""
        n_slots, c = self.schedule.slots_per_position, self.in_channels
        rom = (self.cycles_per_position * self.multipliers * self.w_fmt.bits
               + self.out_lanes * n_slots * (2 + self.acc_fmt.bits)
               + len(self.banks) * len(self.tap_groups) * n_slots * c)
        macs = [mac.resources() for mac in self.macs]
        bank = c * self.kernel * self.kernel * self.in_fmt.bits
        window = self.window.resources()
        registers = (bank * (1 + len(self.banks)) + (self.window.groups - 1) * (self.window.window_bits - 1)
                     + self.out_channels * self.acc_fmt.bits + window["register_bits"]
                     + sum(r["register_bits"] for r in macs))
        return {"multipliers": self.multipliers, "rom_bits": rom,
                "ram_bits": window["ram_bits"] + self.window_fifo_bits + sum(r["ram_bits"] for r in macs),
                "register_bits": registers}
