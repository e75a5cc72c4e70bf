"""The gateware of the ``dataflow`` architecture: the top-level component built from a plan.

:class:`LeNet5Accelerator` instantiates each stage of a :class:`hw.plan.net.NetPlan` (made by
:func:`hw.arch.dataflow.planning.plan`) as the component its plan describes, puts the planned FIFOs in
front of the stages that need one, and connects them with streams between the AXI4-Stream ports
of :class:`hw.arch.signature.TopSignature`.
"""

from __future__ import annotations

from dataclasses import dataclass

from amaranth import Module
from amaranth.lib import wiring
from amaranth.lib.fifo import SyncFIFOBuffered

from hw.arch.signature import TopSignature, output_width
from hw.components.activation import TanhLUT
from hw.components.conv import ConvEngine
from hw.components.dense import DenseEngine
from hw.components.output import ClassifierOutput
from hw.components.pool import Pool2x2
from hw.components.rbf import SquaredDistanceEngine
from hw.components.requant import Requantizer
from hw.components.slice import RegisterSlice
from hw.plan.net import NetPlan

from . import planning as dataflow_plan

__all__ = ["LeNet5Accelerator", "Stage", "COMPONENTS", "build"]

#: Plan class -> the component built from it (``Component.from_plan``).
COMPONENTS = {c.plan_class: c for c in (ConvEngine, DenseEngine, Pool2x2, SquaredDistanceEngine, Requantizer,
                                        TanhLUT, ClassifierOutput, RegisterSlice)}


@dataclass
class Stage:
    """One datapath block of the pipeline: its plan (:class:`hw.plan.net.StagePlan`) and the
    component built from it."""

    plan: object
    component: object

    layer = property(lambda self: self.plan.layer, doc="Layer name.")
    role = property(lambda self: self.plan.role, doc="engine, requant, tanh, output or <role>_slice.")
    name = property(lambda self: self.plan.name, doc="Submodule name in the top level.")
    is_slice = property(lambda self: self.plan.is_slice, doc="A register slice.")
    fifo_depth = property(lambda self: self.plan.fifo_depth, doc="Input FIFO entries (0: none).")


def _component(block_plan):
    return COMPONENTS[type(block_plan)].from_plan(block_plan)


class LeNet5Accelerator(wiring.Component):
    """LeNet-5 inference on AXI4-Stream, generated from a quantized description (``dataflow``).

    Parameters
    ----------
    qnet : golden.qnet.QNet or hw.plan.net.NetPlan
        The quantized network (the shipped variants modern, classic and classic-rbf work), or a plan made
        by :func:`hw.arch.dataflow.planning.plan` (then the other planning parameters must be left out).
    fold : Fold or str, optional
        Per-layer folding; layers left out get :func:`hw.arch.dataflow.planning.default_fold`'s choice.
    target_ii : int
        Cycles per image the default fold aims at.
    dsp_blocks : int or None
        Multipliers to build as DSP products (the first ones in layer order); the others become
        split LUT products. ``None`` (default): every product is left to the synthesis tool.
    dsp_primitive : str or None
        With ``dsp_blocks``: the :mod:`hw.vendor` module whose DSP block is instantiated
        (``"ecp5"``: ``MULT18X18D`` with its input and output registers); ``None``: plain ``*``.
    taps : bool
        Debug build: every datapath stage's output stream (all but the slices and the output
        stage) also on ports ``tap_<stage>__valid/ready/payload`` (:attr:`Stage.name`).

    Members
    -------
    The AXI4-Stream ports of :class:`hw.arch.signature.TopSignature`: ``s_axis_*`` one pixel per
    beat in raster order, ``tlast`` on the last; ``m_axis_*`` the logits then the class index,
    ``tlast`` on the class. Images may follow one another back to back. A synchronous reset
    (``rst``) at any time, also in the middle of an image, returns every stage to idle. For an
    RBF output layer (``classic-rbf``) the ``m_axis`` words are the RBF distances (unsigned),
    then the class index (argmin, ties to the lower index).

    Raises
    ------
    FoldError
        An impossible fold (the message names the layer and the valid values).
    """

    def __init__(self, qnet, fold=None, target_ii=dataflow_plan.DEFAULT_TARGET_II, dsp_blocks=None,
                 dsp_primitive=None, taps=False):
        if isinstance(qnet, NetPlan):
            if fold is not None or dsp_blocks is not None or dsp_primitive is not None:
                raise ValueError("pass either a NetPlan or a network with its planning options, not both")
            self.plan = qnet
        else:
            self.plan = dataflow_plan.plan(qnet, fold=fold, target_ii=target_ii, dsp_blocks=dsp_blocks,
                                           dsp_vendor=dsp_primitive)
        plan = self.plan
        self.qnet, self.fold = plan.qnet, plan.fold
        self.dsp_blocks, self.dsp_primitive = plan.dsp_blocks, plan.dsp_vendor
        self.in_beats, self.out_beats = plan.in_beats, plan.out_beats
        self.predicted_latency, self.predicted_ii = plan.predicted_latency, plan.predicted_ii
        self.model_periods = list(plan.model_periods)
        self._stages = None
        self._tapped = [s.name for s in plan.stages[:-1] if not s.is_slice] if taps else []
        super().__init__(TopSignature(
            pixel_bits=plan.qnet.layers[0].in_fmt.bits, out_bits=output_width(plan.qnet.output_fmt.bits),
            in_beats=plan.in_beats, out_beats=plan.out_beats,
            taps=[(s.name, s.plan.out_layout) for s in plan.stages if s.name in self._tapped]))

    @property
    def stages(self):
        """The stages (:class:`Stage`: plan and component), in stream order. The components are
        built on first use (by :meth:`elaborate` at the latest), in the order the Verilog's names
        were first numbered in: the datapath stages, then the register slices between them."""
        if self._stages is None:
            stages = self.plan.stages
            built = {id(s): _component(s.plan) for s in stages if not s.is_slice}
            built.update({id(s): _component(s.plan) for s in stages if s.is_slice})
            self._stages = [Stage(s, built[id(s)]) for s in stages]
        return self._stages

    @property
    def tap_stages(self):
        """The stages whose output streams are ports (``taps=True``), else ``[]``."""
        return [s for s in self.stages if s.name in self._tapped] if self._tapped else []

    def layer_report(self):
        """Per layer: formats, fold, multipliers, memory bits, predicted cycles per image."""
        return self.plan.layer_report()

    def manifest(self):
        """The generation manifest (JSON-serialisable, deterministic)."""
        from hw.arch import TOP
        return self.plan.manifest(self.signature.describe(TOP))

    def elaborate(self, platform):
        m = Module()
        prev = None
        for stage in self.stages:
            comp = stage.component
            m.submodules[stage.name] = comp
            if prev is None:
                m.d.comb += [comp.i.valid.eq(self.s_axis_tvalid), self.s_axis_tready.eq(comp.i.ready),
                             comp.i.payload.data[0].eq(self.s_axis_tdata),
                             comp.i.payload.last.eq(self.s_axis_tlast)]
            elif stage.fifo_depth:
                fifo = SyncFIFOBuffered(width=len(prev.o.payload.as_value()), depth=stage.fifo_depth)
                m.submodules[f"{stage.name}_fifo"] = fifo
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


def build(net_plan: NetPlan, *, taps: bool = False) -> LeNet5Accelerator:
    """The top-level component of a ``dataflow`` plan."""
    return LeNet5Accelerator(net_plan, taps=taps)
