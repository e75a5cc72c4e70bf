# amaranth: UnusedElaboratable=no
# (candidate engines are built while searching folds and predicting timing; only one is elaborated)
"""The LeNet-5 accelerator: every layer generated from one quantized description.

A layer-pipelined dataflow: each layer of the :class:`golden.qnet.QNet` becomes its own datapath
(an instance of a parameterised component), and streams connect them:

``s_axis`` -> C1 :class:`~hw.components.conv.ConvEngine` (2-pixel zero border generated in hardware) ->
:class:`~hw.components.requant.Requantizer` (ReLU folded in) [-> :class:`~hw.components.activation.TanhLUT`] ->
S2 :class:`~hw.components.pool.Pool2x2` [avg: -> Requantizer -> TanhLUT] -> C3 ConvEngine (connection
table) -> ... -> C5, F6, OUT :class:`~hw.components.dense.DenseEngine` -> Requantizer ->
:class:`~hw.components.output.ClassifierOutput` -> ``m_axis``.

Timing is predicted, not guessed: every stage has an exact cycle model (``timing``, see
:mod:`hw.plan.timing`); the generator chains them, inserts a FIFO in front of a stage only where that
stage would refuse beats its producer offers, sizes each FIFO from the modelled occupancy (so it
never fills and the producer is never blocked), and so predicts the latency and the initiation
interval (II) in cycles that the simulation measures.
"""

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

from amaranth import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out

from golden.qnet import QNet

from hw.components.activation import TanhLUT
from hw.components.conv import ConvEngine
from hw.components.dense import DenseEngine
from hw.components.mac import DSP_PRIMITIVES
from hw.components.output import ClassifierOutput
from hw.components.pool import Pool2x2
from hw.components.requant import Requantizer
from hw.components.slice import RegisterSlice
from hw.plan.timing import Timing

__all__ = ["Fold", "FoldError", "LayerFold", "LeNet5Accelerator", "default_fold", "dsp_allocation", "FIFO_LATENCY",
           "PIXEL_BITS", "DEFAULT_TARGET_II"]

#: Cycles from a write into a ``SyncFIFOBuffered`` to the beat being readable.
FIFO_LATENCY = 2
#: Bits of one input pixel on ``s_axis_tdata``.
PIXEL_BITS = 8
#: Cycles per image the default fold aims at (II); LeNet-5's C1 alone needs at least 1024
#: (the 32x32 padded image at one pixel per cycle).
DEFAULT_TARGET_II = 2048
#: Frames the timing model runs to reach its periodic steady state.
MODEL_FRAMES = 4


class FoldError(ValueError):
    """A fold that cannot work; the message names the layer and says what would."""


@dataclass(frozen=True)
class LayerFold:
    """Folding of one layer.

    Members
    -------
    lanes : int
        Parallel output channels (conv) or outputs (dense), ``P_o``.
    taps : int
        Conv: kernel taps per lane per cycle ``P_k`` (divides K*K). Dense: inputs per lane per
        cycle ``P_i`` (divides the input length).
    """

    lanes: int
    taps: int

    def __str__(self):
        return f"{self.lanes}x{self.taps}"


class Fold(dict):
    """Layer name -> :class:`LayerFold` for the conv and dense layers of a network.

    Written ``C1=3x25,C3=8x25,C5=6x4,F6=2x3,OUT=1x1`` (``lanes x taps``), or as a JSON file
    ``{"C1": [3, 25], ...}``.
    """

    @classmethod
    def parse(cls, text):
        """Parse ``NAME=LxT`` items separated by commas, or a path to a JSON file.

        Raises
        ------
        FoldError
            Malformed text or file.
        """
        text = str(text).strip()
        if text.endswith(".json") or Path(text).is_file():
            path = Path(text)
            try:
                d = json.loads(path.read_text())
            except (OSError, json.JSONDecodeError) as exc:
                raise FoldError(f"cannot read fold file {path}: {exc}") from None
            if not isinstance(d, dict):
                raise FoldError(f"fold file {path}: expected an object such as {{\"C1\": [3, 25]}}")
            fold = cls()
            for name, value in d.items():
                if (not isinstance(value, (list, tuple)) or len(value) != 2
                        or not all(isinstance(v, int) for v in value)):
                    raise FoldError(f"fold file {path}: {name}: expected [lanes, taps], got {value!r}")
                fold[name.upper()] = LayerFold(*value)
            return fold
        fold = cls()
        for item in filter(None, (s.strip() for s in text.split(","))):
            m = re.fullmatch(r"([A-Za-z0-9]+)\s*=\s*(\d+)\s*[xX]\s*(\d+)", item)
            if not m:
                raise FoldError(f"fold item {item!r}: expected LAYER=LANESxTAPS, e.g. C1=6x25")
            fold[m.group(1).upper()] = LayerFold(int(m.group(2)), int(m.group(3)))
        return fold

    def __str__(self):
        return ",".join(f"{k}={v}" for k, v in self.items())

    def to_dict(self):
        return {k: [v.lanes, v.taps] for k, v in self.items()}


def _divisors(n):
    return [d for d in range(1, n + 1) if n % d == 0]


def _fold_choices(layer):
    """All (lanes, taps) folds of a conv or dense layer."""
    if layer.kind == "conv":
        return [(l, t) for l in range(1, layer.out_shape[0] + 1) for t in _divisors(layer.kernel ** 2)]
    i = math.prod(layer.in_shape)
    return [(l, t) for l in _divisors(layer.out_shape[0]) for t in _divisors(i)]


# -- stages ---------------------------------------------------------------------------------

@dataclass
class Stage:
    """One datapath block of the pipeline and the layer it belongs to."""

    layer: str
    role: str          # engine, requant, tanh, pool, output
    component: object
    fifo_depth: int = 0

    @property
    def name(self):
        """The stage's submodule name in the top level (``c1_engine``, ``c1_engine_slice``, ...)."""
        return f"{self.layer.lower()}_{self.role}"

    @property
    def is_slice(self):
        """A :class:`~hw.components.slice.RegisterSlice` the generator put between two datapath stages."""
        return self.role.endswith("slice")

    @property
    def out_lanes(self):
        return len(self.component.o.payload.data) if hasattr(self.component.o.payload, "data") else 1


def _engine(layer, fold, in_lanes, **mac_options):
    """The MAC/pool engine of a layer, raising :class:`FoldError` for an impossible fold."""
    try:
        if layer.kind == "conv":
            return ConvEngine.from_layer(layer, out_lanes=fold.lanes, taps=fold.taps, in_lanes=in_lanes,
                                         **mac_options)
        if layer.kind == "dense":
            return DenseEngine.from_layer(layer, out_lanes=fold.lanes, in_lanes=fold.taps, beat_lanes=in_lanes,
                                          **mac_options)
    except (TypeError, ValueError) as exc:
        raise FoldError(f"fold {layer.name}={fold}: {exc}") from None
    c, h, w = layer.in_shape
    if layer.pool == "max":
        return Pool2x2(mode="max", in_fmt=layer.in_fmt, channels=c, width=w, height=h, lanes=in_lanes)
    return Pool2x2(mode="avg", in_fmt=layer.in_fmt, channels=c, width=w, height=h, lanes=in_lanes,
                   coef=layer.weights, coef_fmt=layer.w_fmt, bias=layer.bias, acc_fmt=layer.acc_fmt)


def dsp_allocation(qnet: QNet, fold: Fold, dsp_blocks: int) -> dict:
    """DSP products per layer when ``dsp_blocks`` blocks are to be used: in layer order (C1's
    products first, then C3's, ...) while blocks remain; the other products are built from LUTs
    (:class:`hw.components.mac.MACArray`'s ``dsp_multipliers``). Returns ``{layer name: count}``."""
    left, plan = dsp_blocks, {}
    for layer in qnet.layers:
        if layer.name in fold:
            plan[layer.name] = min(left, fold[layer.name].lanes * fold[layer.name].taps)
            left -= plan[layer.name]
    return plan


def build_stages(qnet: QNet, fold: Fold, dsp_blocks=None, dsp_primitive=None):
    """The pipeline's stages, in order, for a network and a (complete) fold; with ``dsp_blocks``,
    the MAC arrays' products are split between DSP blocks and LUTs by :func:`dsp_allocation`."""
    stages = []
    lanes = 1                                    # pixels per beat into C1
    plan = dsp_allocation(qnet, fold, dsp_blocks) if dsp_blocks is not None else {}
    for layer in qnet.layers:
        options = {}
        if layer.name in plan:
            options = dict(dsp_multipliers=plan[layer.name], dsp_primitive=dsp_primitive)
        engine = _engine(layer, fold.get(layer.name), lanes, **options)
        stages.append(Stage(layer.name, "engine", engine))
        lanes = len(engine.o.payload.data)
        if layer.has_mac:
            stages.append(Stage(layer.name, "requant", Requantizer(
                acc_fmt=layer.acc_fmt, out_fmt=layer.act_fmt, multiplier=layer.requant.multiplier,
                shift=layer.requant.shift, lanes=lanes, relu=layer.activation.kind == "relu")))
            if layer.activation.kind == "tanh":
                stages.append(Stage(layer.name, "tanh", TanhLUT(
                    in_fmt=layer.act_fmt, out_fmt=layer.out_fmt, lut=layer.activation.lut, lanes=lanes)))
    logit_fmt = qnet.output_fmt
    stages.append(Stage("OUT", "output", ClassifierOutput(
        logit_fmt=logit_fmt, classes=qnet.num_classes, lanes=lanes,
        out_width=8 * math.ceil(logit_fmt.bits / 8))))
    # A register slice after every stage but the last: no combinational valid/ready path runs
    # through more than one stage, which keeps the backpressure logic off the critical path.
    sliced = []
    for stage in stages[:-1]:
        sliced += [stage, Stage(stage.layer, f"{stage.role}_slice",
                                RegisterSlice(stage.component.o.payload.shape()))]
    return sliced + stages[-1:]


def _fifo_timing(writes, reader, depth_margin=2):
    """FIFO of SyncFIFOBuffered between a producer writing at ``writes`` and ``reader``'s model.

    Returns (reader Timing, depth) with the depth that keeps the FIFO from ever refusing a write.
    """
    t = reader([w + FIFO_LATENCY for w in writes])
    occupancy, peak, j = 0, 0, 0
    events = sorted([(w, 1) for w in writes] + [(a, -1) for a in t.accept], key=lambda e: (e[0], -e[1]))
    for _, delta in events:
        occupancy += delta
        peak = max(peak, occupancy)
    return t, max(4, peak + depth_margin)


def predict(stages, in_beats, frames=MODEL_FRAMES):
    """Chain the stage models over ``frames`` back-to-back images offered at one beat per cycle.

    The scenario is the one ``lenet5 simulate`` measures: the first pixel is offered in cycle 0,
    the first cycle after reset (C1's window generator starts walking the top padding rows then),
    images follow back to back at one pixel per cycle, and ``m_axis`` is always ready.
    Sets ``fifo_depth`` on the stages that need an input FIFO. Returns ``(accept, out)``: the
    cycles of the accepted input beats and of the output beats (``classes + 1`` per image).
    """
    avail = list(range(in_beats * frames))
    first_accept = None
    for n, stage in enumerate(stages):
        model = stage.component.timing
        t = model(avail)
        if n and t.accept != _offers(avail):
            t, depth = _fifo_timing(avail, model)
            stage.fifo_depth = depth
        else:
            stage.fifo_depth = 0
        if first_accept is None:
            first_accept = t.accept
        avail = t.out
    return first_accept, avail


def _offers(avail):
    from hw.plan.timing import offers
    return offers(avail)


def default_fold(qnet: QNet, target_ii=DEFAULT_TARGET_II):
    """The fold with the fewest multipliers per layer whose cycles per image stay within ``target_ii``.

    For each conv and dense layer independently, among all folds whose engine needs at most
    ``target_ii`` cycles per image (its ``ii``; C1 can never go below its input-bound 1024),
    take the one with the fewest multipliers (ties: fewer cycles). Where none meets the target,
    the fastest fold is taken.
    """
    fold = Fold()
    lanes = 1
    for layer in qnet.layers:
        if layer.kind in ("conv", "dense"):
            # Candidates by increasing multiplier count (then more lanes, fewer taps per lane):
            # the first that meets the target is the cheapest.
            choices = sorted(_fold_choices(layer), key=lambda lt: (lt[0] * lt[1], -lt[0]))
            fastest = None
            for l, t in choices:
                try:
                    engine = _engine(layer, LayerFold(l, t), lanes)
                except FoldError:
                    continue
                if engine.ii <= target_ii:
                    fastest = (engine.ii, LayerFold(l, t), engine)
                    break
                if fastest is None or engine.ii < fastest[0]:
                    fastest = (engine.ii, LayerFold(l, t), engine)
            fold[layer.name], engine = fastest[1], fastest[2]
        else:
            engine = _engine(layer, None, lanes)
        lanes = len(engine.o.payload.data)
    return fold


def complete_fold(qnet: QNet, fold=None, target_ii=DEFAULT_TARGET_II):
    """``fold`` with the default filled in for layers it leaves out; validates layer names."""
    names = [l.name for l in qnet.layers if l.kind in ("conv", "dense")]
    fold = Fold(fold or {})
    for name in fold:
        if name not in names:
            raise FoldError(f"fold names layer {name!r}, but the foldable layers are {', '.join(names)}")
    if len(fold) < len(names):
        default = default_fold(qnet, target_ii)
        for name in names:
            fold.setdefault(name, default[name])
    return Fold({name: fold[name] for name in names})


# -- the top level ---------------------------------------------------------------------------

class LeNet5Accelerator(wiring.Component):
    """LeNet-5 inference on AXI4-Stream, generated from a quantized description.

    Parameters
    ----------
    qnet : golden.qnet.QNet
        The quantized network (both shipped variants, modern and classic, work).
    fold : Fold or str, optional
        Per-layer folding; layers left out get :func:`default_fold`'s choice.
    target_ii : int
        Cycles per image the default fold aims at.
    dsp_blocks : int or None
        Multipliers to build as DSP products (the first ones in layer order,
        :func:`dsp_allocation`); the others become split LUT products (two registered partial
        products each, :class:`hw.components.mac.MACArray`). ``None`` (default): every product is left to
        the synthesis tool.
    taps : bool
        Debug build: also output every datapath stage's output stream (all but the slices and
        the output stage) as ports ``tap_<stage>__valid``, ``tap_<stage>__ready`` and
        ``tap_<stage>__payload`` (:attr:`Stage.name`), for locating a mismatch stage by stage.
        The default (False) design has only the AXI4-Stream ports.
    dsp_primitive : str or None
        With ``dsp_blocks``: instantiate this DSP block for the DSP products
        (:data:`hw.components.mac.DSP_PRIMITIVES`, e.g. ``"ecp5"``: ``MULT18X18D`` with its input and
        output registers); ``None``: plain ``*``, inferred by the synthesis tool. The cycle
        behaviour (latency, II) is the same in every case.

    Members
    -------
    s_axis_tdata : In(8)
        One pixel (uint8) of the raw 28x28 digit per beat, row-major; the 2-pixel zero border of
        LeNet-5's 32x32 input is generated in hardware.
    s_axis_tvalid, s_axis_tlast : In(1)
        ``tlast`` on the image's 784th pixel.
    s_axis_tready : Out(1)
    m_axis_tdata : Out(8 * ceil(logit bits / 8))
        11 beats per image: the 10 logits (two's complement, in the description's output
        format), then the class index (``argmax``, ties to the lower index).
    m_axis_tvalid, m_axis_tlast : Out(1)
        ``tlast`` on the class-index beat.
    m_axis_tready : In(1)

    Images may follow one another back to back. A synchronous reset (``rst``) at any time,
    also in the middle of an image, returns every stage to its idle state.

    Raises
    ------
    FoldError
        An impossible fold (the message names the layer and the valid values).
    """

    def __init__(self, qnet: QNet, fold=None, target_ii=DEFAULT_TARGET_II, dsp_blocks=None, dsp_primitive=None,
                 taps=False):
        if not isinstance(qnet, QNet):
            raise TypeError(f"qnet must be a golden.qnet.QNet, not {qnet!r}")
        if isinstance(fold, str):
            fold = Fold.parse(fold)
        if dsp_blocks is not None and (isinstance(dsp_blocks, bool) or not isinstance(dsp_blocks, int)
                                       or dsp_blocks < 0):
            raise ValueError(f"dsp_blocks must be None or a non-negative int, not {dsp_blocks!r}")
        if dsp_primitive is not None and dsp_blocks is None:
            raise ValueError(f"dsp_primitive={dsp_primitive!r} needs dsp_blocks (how many DSP blocks to use)")
        self.qnet = qnet
        self.fold = complete_fold(qnet, fold, target_ii)
        if dsp_primitive is not None and dsp_primitive not in DSP_PRIMITIVES:
            raise ValueError(f"dsp_primitive must be None or one of {', '.join(DSP_PRIMITIVES)}, "
                             f"not {dsp_primitive!r}")
        self.dsp_blocks, self.dsp_primitive = dsp_blocks, dsp_primitive
        self.stages = build_stages(qnet, self.fold, dsp_blocks, dsp_primitive)
        c, h, w = qnet.input_shape
        self.in_beats = c * h * w
        accept, out = predict(self.stages, self.in_beats)
        self._accept, self._out = accept, out
        n_out = qnet.num_classes + 1
        self.out_beats = n_out
        self.predicted_latency = out[n_out - 1] - accept[0]
        ends = [out[(f + 1) * n_out - 1] for f in range(MODEL_FRAMES)]
        periods = [b - a for a, b in zip(ends, ends[1:])]
        self.predicted_ii = periods[-1]
        self.model_periods = periods
        out_width = 8 * math.ceil(qnet.output_fmt.bits / 8)
        members = {
            "s_axis_tdata": In(PIXEL_BITS), "s_axis_tvalid": In(1), "s_axis_tready": Out(1),
            "s_axis_tlast": In(1),
            "m_axis_tdata": Out(out_width), "m_axis_tvalid": Out(1), "m_axis_tready": In(1),
            "m_axis_tlast": Out(1),
        }
        self.tap_stages = [s for s in self.stages[:-1] if not s.is_slice] if taps else []
        for stage in self.tap_stages:
            members[f"tap_{stage.name}"] = Out(wiring.Signature({
                "valid": Out(1), "ready": Out(1), "payload": Out(stage.component.o.payload.shape())}))
        super().__init__(members)

    def layer_report(self):
        """Per layer: formats, fold, multipliers, memory bits, predicted cycles per image."""
        rows = []
        for layer in self.qnet.layers:
            stages = [s for s in self.stages if s.layer == layer.name]
            engine = stages[0].component
            row = {"name": layer.name, "kind": layer.kind if layer.kind != "pool" else f"{layer.pool}pool",
                   "in_shape": list(layer.in_shape), "out_shape": list(layer.out_shape),
                   "in_fmt": str(layer.in_fmt), "out_fmt": str(layer.out_fmt),
                   "macs_per_image": layer.macs(), "ii_cycles": engine.frame_cycles,
                   "fifo_depths": {s.role: s.fifo_depth for s in stages if s.fifo_depth}}
            if layer.has_mac:
                row.update(w_fmt=str(layer.w_fmt), acc_fmt=str(layer.acc_fmt), act_fmt=str(layer.act_fmt),
                           requant={"multiplier": layer.requant.multiplier, "shift": layer.requant.shift,
                                    "rounding": layer.act_fmt.rounding},
                           activation=layer.activation.kind)
            if layer.name in self.fold:
                f = self.fold[layer.name]
                row.update(fold=str(f), multipliers=engine.multipliers if hasattr(engine, "multipliers")
                           else f.lanes * f.taps)
                row["weight_bits"] = int(layer.weights.size * layer.w_fmt.bits)
            if layer.kind == "conv":
                row["line_buffer_bits"] = engine.window.line_buffer_bits
                row["connections"] = len(layer.connections)
            rows.append(row)
        return rows

    def manifest(self):
        """The generation manifest (JSON-serialisable, deterministic)."""
        layers = self.layer_report()
        dsp = {}
        if self.dsp_blocks is not None:
            products = dsp_allocation(self.qnet, self.fold, self.dsp_blocks)
            dsp = {"dsp_products": products, "dsp_primitive": self.dsp_primitive,
                   "dsp_instances": sum(products.values()) if self.dsp_primitive else 0}
        return {
            "top": "lenet5_accel", "variant": self.qnet.variant,
            "ports": {"s_axis_tdata_bits": PIXEL_BITS, "m_axis_tdata_bits": len(self.m_axis_tdata),
                      "in_beats_per_image": self.in_beats, "out_beats_per_image": self.out_beats},
            "fold": self.fold.to_dict(),
            "multipliers": sum(r.get("multipliers", 0) for r in layers),
            **dsp,
            "weight_bits": sum(r.get("weight_bits", 0) for r in layers),
            "line_buffer_bits": sum(r.get("line_buffer_bits", 0) for r in layers),
            "predicted_ii_cycles": self.predicted_ii,
            "predicted_latency_cycles": self.predicted_latency,
            "bottleneck": max(layers, key=lambda r: r["ii_cycles"])["name"],
            "layers": layers,
        }

    def elaborate(self, platform):
        m = Module()
        prev = None
        for n, stage in enumerate(self.stages):
            comp = stage.component
            m.submodules[f"{stage.layer.lower()}_{stage.role}"] = comp
            if prev is None:
                m.d.comb += [comp.i.valid.eq(self.s_axis_tvalid), self.s_axis_tready.eq(comp.i.ready),
                             comp.i.payload.data[0].eq(self.s_axis_tdata),
                             comp.i.payload.last.eq(self.s_axis_tlast)]
            elif stage.fifo_depth:
                fifo = SyncFIFOBuffered(width=len(prev.o.payload.as_value()), depth=stage.fifo_depth)
                m.submodules[f"{stage.layer.lower()}_{stage.role}_fifo"] = fifo
                m.d.comb += [fifo.w_en.eq(prev.o.valid), fifo.w_data.eq(prev.o.payload.as_value()),
                             prev.o.ready.eq(fifo.w_rdy),
                             comp.i.valid.eq(fifo.r_rdy), comp.i.payload.eq(fifo.r_data),
                             fifo.r_en.eq(comp.i.ready)]
            else:
                wiring.connect(m, prev.o, comp.i)
            prev = comp
        for stage in self.tap_stages:
            tap, o = getattr(self, f"tap_{stage.name}"), stage.component.o
            m.d.comb += [tap.valid.eq(o.valid), tap.ready.eq(o.ready), tap.payload.eq(o.payload)]
        m.d.comb += [self.m_axis_tvalid.eq(prev.o.valid), prev.o.ready.eq(self.m_axis_tready),
                     self.m_axis_tdata.eq(prev.o.payload.data), self.m_axis_tlast.eq(prev.o.payload.last)]
        return m
