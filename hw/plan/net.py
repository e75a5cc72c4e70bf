"""The plan of a whole accelerator: its stages, their plans, and the predicted cycles.

A :class:`NetPlan` is what an architecture's ``plan`` returns (:mod:`hw.arch`) and what its
``build`` turns into gateware: plain, frozen data, built once from a :class:`golden.qnet.QNet`,
a fold and a target, without constructing any hardware. It answers every question about the
design that does not need the Verilog: the stages in order with each block's plan
(:class:`StagePlan`), the input FIFO depth in front of each stage, the predicted latency and
initiation interval (II) in cycles, the multipliers and memories per layer, and the generation
manifest (:meth:`NetPlan.manifest`).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["StagePlan", "NetPlan"]


@dataclass(frozen=True, eq=False)
class StagePlan:
    """One datapath block of an accelerator and the layer it belongs to.

    Members
    -------
    layer : str
        Layer name (``"C1"``; ``"OUT"`` for the classifier output).
    role : str
        ``engine`` (conv, dense or pooling), ``requant``, ``tanh``, ``output``, or
        ``<role>_slice`` for a register slice after a stage.
    plan : object
        The block's plan (:mod:`hw.plan`): ``latency``, ``ii``, ``timing(avail)``,
        ``resources()``, ``out_layout``.
    fifo_depth : int
        Entries of the FIFO in front of the stage (0: none), sized from the timing model so that
        it never refuses a write.
    """

    layer: str
    role: str
    plan: object
    fifo_depth: int = 0

    @property
    def name(self) -> str:
        """The stage's submodule name in the top level (``c1_engine``, ``c1_engine_slice``, ...)."""
        return f"{self.layer.lower()}_{self.role}"

    @property
    def is_slice(self) -> bool:
        """A register slice the architecture put between two datapath stages."""
        return self.role.endswith("slice")


@dataclass(frozen=True, eq=False)
class NetPlan:
    """The plan of an accelerator for one network, fold and target.

    Members
    -------
    arch : str
        The architecture that made the plan (:data:`hw.arch.ARCHITECTURES`).
    qnet : golden.qnet.QNet
        The network.
    fold : hw.plan.fold.Fold
        The complete fold (every conv and dense layer).
    target : hw.targets.Target or None
        The target planned for (None: generic Verilog).
    dsp_blocks : int or None
        The DSP budget planned for (None: every product left to the tools).
    dsp_products : dict
        Layer name -> products planned into DSP blocks, within ``dsp_blocks`` (empty: None).
    dsp_vendor : str or None
        The :mod:`hw.vendor` module whose DSP block the products in ``dsp_products`` instantiate
        (None: inferred by the tools).
    stages : tuple of StagePlan
        The stages in stream order.
    in_beats, out_beats : int
        Beats per image on the input (pixels) and on the output (logits and class).
    predicted_latency : int
        Cycles from the first pixel accepted to the class beat (``tlast``) of one image.
    predicted_ii : int
        Cycles per image with images back to back (steady state of the timing model).
    model_periods : tuple of int
        The modelled image-to-image periods (the last is ``predicted_ii``).
    """

    arch: str
    qnet: object
    fold: object
    target: object
    dsp_blocks: int | None
    dsp_products: dict
    dsp_vendor: str | None
    stages: tuple
    in_beats: int
    out_beats: int
    predicted_latency: int
    predicted_ii: int
    model_periods: tuple

    @property
    def dsp_instances(self) -> int:
        """DSP blocks the design instantiates itself (0 when the tools infer them)."""
        return sum(self.dsp_products.values()) if self.dsp_vendor else 0

    def stages_of(self, layer: str) -> list:
        """The stages of one layer, in order (engine first)."""
        return [s for s in self.stages if s.layer == layer]

    def layer_report(self) -> list:
        """Per layer: formats, fold, multipliers, memory bits, predicted cycles per image,
        input FIFO depths (JSON-ready)."""
        return [self._layer_row(layer) for layer in self.qnet.layers]

    def _layer_row(self, layer) -> dict:
        stages = self.stages_of(layer.name)
        engine = stages[0].plan
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
            row.update(fold=str(self.fold[layer.name]), multipliers=engine.multipliers)
            row["weight_bits"] = int(layer.weights.size * layer.w_fmt.bits)
        if layer.kind == "rbf":    # not folded: all units in parallel, in_lanes squarers each
            row.update(w_fmt=str(layer.w_fmt), acc_fmt=str(layer.acc_fmt), activation="none",
                       multipliers=engine.multipliers, squarers=engine.multipliers,
                       weight_bits=int(layer.weights.size * layer.w_fmt.bits))
        if layer.kind == "conv":
            row["line_buffer_bits"] = engine.window.line_buffer_bits
            row["connections"] = len(layer.connections)
        return row

    def output_words(self) -> dict:
        """What the ``m_axis`` words of one image carry (JSON-ready): ``values`` (``logits`` or
        ``rbf_distances``), their format, and how the class index (the last word) is chosen."""
        fmt, n = self.qnet.output_fmt, self.qnet.num_classes
        if self.qnet.rbf_output:
            return {"values": "rbf_distances", "count": n, "format": str(fmt),
                    "words": f"{n} squared Euclidean distances y_i = sum_j (x_j - w_ij)^2 of F6's output "
                             f"to the RBF units' bitmaps, unit 0 first ({fmt}, unsigned, zero-extended), "
                             f"then the class index",
                    "class": "argmin of the distances, ties to the lower index"}
        return {"values": "logits", "count": n, "format": str(fmt),
                "words": f"{n} logits, class 0 first ({fmt}, {'sign' if fmt.signed else 'zero'}-extended), "
                         f"then the class index",
                "class": "argmax of the logits, ties to the lower index"}

    def manifest(self, ports: dict) -> dict:
        """The generation manifest (JSON-ready, deterministic); ``ports`` is the top level's
        description (:meth:`hw.arch.signature.TopSignature.describe`): its ``clock`` and
        ``reset`` become top-level keys, the rest (widths, beats, ``signals``) ``ports``.
        ``logit_fmt`` (Q notation) and ``logit_format`` (its fields) are the format of the
        logits on ``m_axis_tdata``, ``pixel_fmt``/``pixel_format`` that of ``s_axis_tdata``."""
        layers = self.layer_report()
        logit, pixel = self.qnet.output_fmt, self.qnet.layers[0].in_fmt
        dsp = {}
        if self.dsp_blocks is not None:
            dsp = {"dsp_products": dict(self.dsp_products), "dsp_primitive": self.dsp_vendor,
                   "dsp_instances": self.dsp_instances}
        return {
            "top": ports["top"], "variant": self.qnet.variant, "arch": self.arch,
            "target": None if self.target is None else self.target.name,
            "ports": {k: v for k, v in ports.items() if k not in ("top", "clock", "reset")},
            "clock": ports["clock"], "reset": ports["reset"],
            "logit_fmt": str(logit), "logit_format": logit.to_dict(),
            "pixel_fmt": str(pixel), "pixel_format": pixel.to_dict(),
            "classes": self.qnet.num_classes,
            "outputs": self.output_words(),
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
