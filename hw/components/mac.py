"""Pipelined multiply-accumulate array: ``lanes`` accumulators, ``taps`` products per lane per cycle.

The arithmetic core shared by the convolution engine (:mod:`hw.components.conv`) and the dense engine
(:mod:`hw.components.dense`). Each accepted *step* gives every lane ``taps`` activation/weight pairs; a lane
adds the ``taps`` products (a multiplier per product and a pipelined adder tree) to its
accumulator, or to its ``bias`` on a step marked ``first``; on a step marked ``last`` the finished
sums of all lanes leave on the output stream. Integer semantics, for each lane ``l``, of the
steps ``s = s_first .. s_last`` of one sum::

    acc[l] = bias[l] (from step s_first) + sum_s sum_t a[s][l][t] * w[s][l][t]      (mod 2**acc_fmt.bits)

which is :func:`golden.reference.dense_accumulate` on the flattened operands. The accumulator
**wraps** (two's complement, no saturation): the caller proves that ``acc_fmt`` holds every
partial sum with :func:`golden.arith.accumulator_range` (or sizes it with
:func:`golden.arith.accumulator_format`), as :class:`hw.components.dense.DenseEngine` does.
"""

from amaranth import Module, Mux, Signal
from amaranth.lib import data, stream
from amaranth.lib.wiring import In, Out

from hw.components.common import PlannedComponent, delegate, check_fmt, check_int, fmt_shape
from hw.components.fifo import WideFIFO
from hw.plan.mac import (ACC_BITS_RANGE, ADDER_LEVELS_PER_STAGE, DSP_PRIMITIVES, MUL_STAGES, OPERAND_STAGES,
                         MACPlan)
from hw.vendor import vendor

__all__ = ["MACArray", "MACPlan", "ACC_BITS_RANGE", "ADDER_LEVELS_PER_STAGE", "OPERAND_STAGES", "MUL_STAGES",
           "DSP_PRIMITIVES", "fmt_shape", "check_int", "check_fmt"]


class MACArray(PlannedComponent):
    """``lanes`` parallel multiply-accumulators, each adding ``taps`` products per cycle.

    Datapath of lane ``l`` for an accepted step: ``taps`` multipliers ``a[l][t] * w[l][t]``
    (operand signedness from the formats: signed x signed, unsigned x signed, ... all work)
    between two operand registers and two product registers (:data:`MUL_STAGES`); an adder
    tree of ``ceil(log2(taps))`` levels, registered every
    :data:`ADDER_LEVELS_PER_STAGE` levels; the accumulate ``(first ? bias[l] : acc[l]) + tree``.
    Intermediate sums are kept at most ``acc_fmt.bits`` wide: all arithmetic is modulo
    ``2**acc_fmt.bits`` (the accumulator wraps, it never saturates; see the module docstring).
    The finished sums of a ``last`` step go into an output FIFO of :attr:`fifo_depth` entries;
    ``i.ready`` is low only while every FIFO entry is reserved by a sum in flight or waiting to
    be read, so the pipeline itself never stalls, ``i.ready`` does not depend on ``o.ready``
    combinationally, and sums can be back to back (a ``first`` step right after a ``last``
    step) at one step per cycle.

    The operands are registered inside the array, so ``i.payload`` may come from any logic.
    Implementation result (yowasp nextpnr, LFE5U-85F, out of context, with one product
    register): lanes 4, taps 25, u8 x s8, 152 MHz, 100 DSP blocks.

    Parameters
    ----------
    lanes : int
        Parallel accumulators (``>= 1``).
    taps : int
        Products per lane per step (``>= 1``).
    a_fmt : QFormat
        Format of the activations ``a`` (2..16 bits, signed or unsigned).
    w_fmt : QFormat
        Format of the weights ``w`` (2..16 bits, signed or unsigned).
    acc_fmt : QFormat
        Format of the accumulator, the biases and the results (2..46 bits; normally signed, as
        :func:`golden.arith.accumulator_format` gives). Only ``bits`` and ``signed`` matter here.
    user_width : int
        Width of an optional side-band field ``user`` carried from each ``last`` step to its
        result (e.g. frame markers). ``0`` (default): no ``user`` field in either layout.
    dsp_multipliers : int or None
        How the products are built. ``None`` (default): every product is an Amaranth ``a * w``
        between the registers, and the synthesis tool decides where it goes. An int ``n``
        (``0 .. lanes * taps``): the first ``n`` products in lane-major order (lane 0's taps
        first) are *DSP products* (as with ``None``, or instances of ``dsp_vendor``'s block); the
        others are *LUT products*, split for speed: the weight ``w = lo + hi * 2**h`` (``h =
        w_bits // 2``, ``lo`` unsigned) gives two narrow partial products ``a * lo`` and ``a *
        hi``, registered at the first product register and added at the second, so no LUT
        multiplier stands between two registers whole. The latency is the same in every case.
    dsp_vendor : str or None
        ``None`` (default): DSP products are ``a * w`` (the synthesis tool infers the DSP
        blocks). A module of :mod:`hw.vendor` (one of :data:`DSP_PRIMITIVES`, normally the
        target's :attr:`hw.targets.Target.vendor`): each DSP product is that module's
        ``dsp_product``, a block whose own registers are the second operand register and the
        first product register; requires ``dsp_multipliers``. Simulate such a design with the
        module's ``simulation_models()``.
    dsp_primitive : str or None
        Old name of ``dsp_vendor``, still accepted.
    fifo_depth : int or None
        Entries of the output FIFO (results accepted but not yet read); ``None`` (default):
        ``latency + 1``, the fewest that take a result every cycle. A caller that bounds the
        results it has outstanding (issued ``last`` steps not yet read) by ``fifo_depth`` may
        rely on ``i.ready`` staying high and leave it unconnected, as
        :class:`hw.components.conv.ConvEngine` does.

    Members
    -------
    i : In(stream.Signature(step_layout))
        Steps. ``step_layout`` is a ``data.StructLayout``:

        ``a`` : ``ArrayLayout(ArrayLayout(a_shape, taps), lanes)``
            Activations, ``a[lane][tap]``, ``a_shape`` = ``signed/unsigned(a_fmt.bits)``.
        ``w`` : ``ArrayLayout(ArrayLayout(w_shape, taps), lanes)``
            Weights, ``w[lane][tap]``.
        ``bias`` : ``ArrayLayout(acc_shape, lanes)``
            Initial accumulator values; read only on a ``first`` step.
        ``first`` : 1 bit
            Start a new sum: the lane accumulators load ``bias + products``.
        ``last`` : 1 bit
            This step completes the sums: they are emitted on ``o``. ``first`` and ``last``
            may both be set (a one-step sum). A step without ``first`` adds to the previous
            sum, also right after a ``last`` step.
        ``user`` : ``unsigned(user_width)`` (only when ``user_width > 0``)
            Side-band value, passed to the result of a ``last`` step.
    o : Out(stream.Signature(result_layout))
        Results, one beat per ``last`` step, in order. ``result_layout`` is a
        ``data.StructLayout``: ``data`` : ``ArrayLayout(acc_shape, lanes)`` (lane ``l``'s
        sum), and ``user`` : ``unsigned(user_width)`` when ``user_width > 0``.

    Latency
    -------
    :attr:`latency` ``= MUL_STAGES + tree_stages + 1`` cycles, with ``tree_stages =
    ceil((ceil(log2(taps)) + 1) / ADDER_LEVELS_PER_STAGE) - 1``: a ``last`` step accepted in
    cycle ``c`` (``i.valid & i.ready`` at the end of ``c``) gives ``o.valid`` in cycle
    ``c + latency`` (the :data:`MUL_STAGES` = 4 multiplier registers: operands twice, product twice;
    the tree registers, and the accumulate written into the FIFO, readable in the next cycle: the
    FIFO is a :class:`hw.components.fifo.WideFIFO`, first-word fall-through). For taps 1, 5, 25: latency 5, 6, 7.
    :attr:`ii` ``= 1``: one step per cycle while ``o`` is read at full rate.

    Timing model (:meth:`timing`, conventions in :mod:`hw.plan.timing`): with ``o`` always ready the
    array never refuses a step, so step ``k`` is accepted in the cycle it is offered,
    ``accept[k] = max(avail[k], accept[k-1] + 1)``, and the result of the ``j``-th ``last`` step
    ``k_j`` is valid in ``out[j] = accept[k_j] + latency``. (The reservation counter then holds
    the results of the ``last`` steps of the previous ``latency`` cycles, at most ``latency <
    fifo_depth``, so ``i.ready`` stays high; the FIFO passes every entry through in 1 cycle.)
    :attr:`latency` is ``out[j] - accept[k_j]`` and :attr:`ii` the step spacing at full rate.

    The parameters, the latency and the cycle model are those of a :class:`hw.plan.mac.MACPlan`
    (``MACArray(**params)`` builds the plan; :meth:`from_plan` takes one).

    Raises
    ------
    TypeError
        A parameter of the wrong type (not an int / not a QFormat).
    ValueError
        ``lanes`` or ``taps`` below 1, operand widths outside 2..16, accumulator width outside
        2..46, ``user_width`` negative, ``fifo_depth`` below ``latency + 1``,
        ``dsp_multipliers`` outside ``0 .. lanes * taps``, an unknown ``dsp_vendor`` or one
        without ``dsp_multipliers``.
    """

    plan_class = MACPlan

    def _members(self, plan):
        """Stream ``i`` of :attr:`step_layout` in, stream ``o`` of :attr:`result_layout` out."""
        acc_shape = fmt_shape(plan.acc_fmt)
        lanes, taps = plan.lanes, plan.taps
        step = {
            "a": data.ArrayLayout(data.ArrayLayout(fmt_shape(plan.a_fmt), taps), lanes),
            "w": data.ArrayLayout(data.ArrayLayout(fmt_shape(plan.w_fmt), taps), lanes),
            "bias": data.ArrayLayout(acc_shape, lanes),
            "first": 1,
            "last": 1,
        }
        result = {"data": data.ArrayLayout(acc_shape, lanes)}
        if plan.user_width:
            step["user"] = result["user"] = plan.user_width
        self._step_layout = data.StructLayout(step)
        self._result_layout = data.StructLayout(result)
        return {"i": In(stream.Signature(self._step_layout)), "o": Out(stream.Signature(self._result_layout))}

    # -- parameters and derived values (the plan's) -----------------------------------------
    lanes = delegate("Parallel accumulators.")
    taps = delegate("Products per lane per step.")
    a_fmt = delegate("Activation format.")
    w_fmt = delegate("Weight format.")
    acc_fmt = delegate("Accumulator / bias / result format.")
    user_width = delegate("Width of the side-band ``user`` field.")
    dsp_multipliers = delegate("DSP products (the others are split LUT products); None: not decided here.")
    dsp_vendor = delegate("Vendor module of the DSP blocks, or None.")
    dsp_primitive = delegate("Old name of :attr:`dsp_vendor`.", to="dsp_vendor")
    step_layout = property(lambda self: self._step_layout, doc="Payload layout of ``i``.")
    result_layout = property(lambda self: self._result_layout, doc="Payload layout of ``o``.")
    adder_levels = delegate("Adder levels per lane.")
    tree_stages = delegate("Registers inside the adder tree.")
    fifo_depth = delegate("Output FIFO entries.")
    latency = delegate("Cycles from an accepted ``last`` step to ``o.valid``.")

    # -- hardware ---------------------------------------------------------------------------
    def _fit(self, value):
        """``value`` cut to at most ``acc_fmt.bits`` (congruent modulo ``2**acc_fmt.bits``)."""
        shape = value.shape()
        if shape.width <= self._plan.acc_fmt.bits:
            return value
        cut = value[:self._plan.acc_fmt.bits]
        return cut.as_signed() if shape.signed else cut

    def _register(self, m, values, name):
        regs = []
        for k, value in enumerate(values):
            reg = Signal(value.shape(), name=f"{name}_{k}")
            m.d.sync += reg.eq(value)
            regs.append(reg)
        return regs

    def _product(self, m, l, t, a, w):
        """``a * w`` (``a``, ``w``: the first operand registers) after the other
        ``MUL_STAGES - 1`` registers, cut to the accumulator (see ``dsp_multipliers``)."""
        plan = self._plan
        dsp = plan.is_dsp_product(l, t)
        if dsp and plan.dsp_vendor is not None:
            # The block's input registers are operand stage 2, its output register product stage 1.
            p = vendor(plan.dsp_vendor).dsp_product(m, a, w, name=f"dsp_{l}_{t}")[:a.shape().width + w.shape().width]
            product = p.as_signed() if a.shape().signed or w.shape().signed else p
            (reg,) = self._register(m, [self._fit(product)], f"prod3_{l}_{t}")
            return reg
        (a1,) = self._register(m, [a], f"a1_{l}_{t}")
        (w1,) = self._register(m, [w], f"w1_{l}_{t}")
        if dsp:
            (p2,) = self._register(m, [self._fit(a1 * w1)], f"prod2_{l}_{t}")
        else:
            h = self._plan.w_fmt.bits // 2
            lo = w1[:h]                                   # unsigned low part
            hi = w1[h:].as_signed() if self._plan.w_fmt.signed else w1[h:]
            (p_lo,) = self._register(m, [a1 * lo], f"plo_{l}_{t}")
            (p_hi,) = self._register(m, [a1 * hi], f"phi_{l}_{t}")
            p2 = p_lo + (p_hi << h)
        (reg,) = self._register(m, [self._fit(p2)], f"prod3_{l}_{t}")
        return reg

    def _delay(self, m, valid, ctrl, bias, suffix):
        """``valid``, the control fields and the biases, one cycle later."""
        nvalid = Signal(name=f"valid_{suffix}")
        nctrl = {f: Signal(v.shape(), name=f"{f}_{suffix}") for f, v in ctrl.items()}
        nbias = Signal(bias.shape(), name=f"bias_{suffix}")
        m.d.sync += [nvalid.eq(valid), nbias.eq(bias)]
        m.d.sync += [nctrl[f].eq(v) for f, v in ctrl.items()]
        return nvalid, nctrl, nbias

    def _accumulate(self, m, terms, valid, ctrl, bias, feeds, fifo):
        """The accumulators: ``(first ? bias : acc) + tree`` per lane, a finished sum straight
        into the output FIFO, which is read by ``o``."""
        lanes, acc_shape = self._plan.lanes, fmt_shape(self._plan.acc_fmt)
        # A finished sum goes straight into the FIFO (the accumulator is free for the
        # next sum in the following cycle).
        acc = Signal(data.ArrayLayout(acc_shape, lanes))
        total = Signal(data.ArrayLayout(acc_shape, lanes))
        # With several lanes, each accumulator takes its enable and its bias select from copies
        # of the last stage's `valid` and `first` of its own (``dup_*``, kept apart by hw.flow.synth),
        # next to it: one register fanning out to every lane's accumulator across the die had
        # 7.8 ns of routing on the LFE5U-85F (C5 at 30 lanes).
        lane_valid, lane_first = [valid], [ctrl["first"]]
        if lanes > 1:
            lane_valid = [Signal(name=f"dup_valid{l}") for l in range(lanes)]
            lane_first = [Signal(name=f"dup_first{l}") for l in range(lanes)]
            m.d.sync += [v.eq(feeds[0]) for v in lane_valid] + [f.eq(feeds[1]) for f in lane_first]
        for l in range(lanes):
            m.d.comb += total[l].eq(Mux(lane_first[l], bias[l], acc[l]) + terms[l][0])
            with m.If(lane_valid[l]):
                m.d.sync += acc[l].eq(total[l])
        result = Signal(self._result_layout)
        m.d.comb += result.data.eq(total)
        if self._plan.user_width:
            m.d.comb += result.user.eq(ctrl["user"])
        m.d.comb += [
            fifo.w_data.eq(result),
            fifo.w_en.eq(valid & ctrl["last"]),
            self.o.valid.eq(fifo.r_rdy),
            self.o.payload.eq(fifo.r_data),
            fifo.r_en.eq(self.o.ready),
        ]

    def elaborate(self, platform):
        m = Module()
        lanes, taps = self._plan.lanes, self._plan.taps
        acc_shape = fmt_shape(self._plan.acc_fmt)
        p = self.i.payload

        # Output FIFO and reservation: a `last` step is accepted only when a FIFO entry is free
        # for its result, counting results in flight; so the pipeline below never stalls.
        # The FIFO is a WideFIFO (sliced LUT RAM, asynchronous read, per-slice pointer copies): a
        # SyncFIFOBuffered's output register is one enable over the whole word, and on the
        # LFE5U-85F that enable reached C5's 600 bits with 13.7 ns of routing.
        m.submodules.fifo = fifo = WideFIFO(width=self._result_layout.size, depth=self.fifo_depth)
        # `i.ready` is a register holding `reserved < fifo_depth` (computed from the next value
        # of `reserved`), so that it reaches the producer's logic straight from a flip-flop.
        reserved = Signal(range(self.fifo_depth + 1))
        reserved_next = Signal(range(self.fifo_depth + 1))
        ready = Signal(init=1)
        m.d.comb += self.i.ready.eq(ready)
        accept = self.i.valid & self.i.ready
        take = Signal()
        m.d.comb += take.eq(accept & p.last)
        read = self.o.valid & self.o.ready
        m.d.comb += reserved_next.eq(reserved)
        with m.If(take & ~read):
            m.d.comb += reserved_next.eq(reserved + 1)
        with m.Elif(read & ~take):
            m.d.comb += reserved_next.eq(reserved - 1)
        m.d.sync += [reserved.eq(reserved_next), ready.eq(reserved_next < self.fifo_depth)]

        # The multipliers: operands registered, product registered MUL_STAGES - 1 times, with the
        # step's control fields alongside.
        ctrl_fields = ["first", "last"] + (["user"] if self._plan.user_width else [])
        valid = Signal(name="valid_p")
        ctrl = {f: Signal(self._step_layout.members[f], name=f"{f}_p") for f in ctrl_fields}
        bias = Signal(data.ArrayLayout(acc_shape, lanes), name="bias_p")
        m.d.sync += [valid.eq(accept), bias.eq(p.bias)]
        m.d.sync += [ctrl[f].eq(p[f]) for f in ctrl_fields]
        a_r = [self._register(m, [p.a[l][t] for t in range(taps)], f"a0_{l}") for l in range(lanes)]
        w_r = [self._register(m, [p.w[l][t] for t in range(taps)], f"w0_{l}") for l in range(lanes)]
        terms = [[self._product(m, l, t, a_r[l][t], w_r[l][t]) for t in range(taps)] for l in range(lanes)]
        feeds = (accept, p.first)           # what the latest `valid` and `first` registers take
        for k in range(1, MUL_STAGES):
            feeds = (valid, ctrl["first"])
            valid, ctrl, bias = self._delay(m, valid, ctrl, bias, f"m{k}")

        # Adder tree: ADDER_LEVELS_PER_STAGE levels per stage, the accumulate being the last level.
        levels_left = self.adder_levels - 1
        for stage in range(self.tree_stages + 1):
            levels = min(levels_left, ADDER_LEVELS_PER_STAGE - (1 if stage == self.tree_stages else 0))
            levels_left -= levels
            for _ in range(levels):
                terms = [[self._fit(ts[k] + ts[k + 1]) if k + 1 < len(ts) else ts[k]
                          for k in range(0, len(ts), 2)] for ts in terms]
            if stage < self.tree_stages:
                terms = [self._register(m, ts, f"sum{stage}_{l}") for l, ts in enumerate(terms)]
                feeds = (valid, ctrl["first"])
                valid, ctrl, bias = self._delay(m, valid, ctrl, bias, f"s{stage}")
        assert levels_left == 0 and all(len(ts) == 1 for ts in terms)

        self._accumulate(m, terms, valid, ctrl, bias, feeds, fifo)
        return m
