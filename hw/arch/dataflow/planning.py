"""Planning the layer-pipelined ``dataflow`` architecture: stages, fold search, DSP allocation,
FIFO sizing and the predicted cycles, all on plans (:mod:`hw.plan`); no hardware is built.

Each layer of the :class:`golden.qnet.QNet` becomes its own datapath: its engine (a conv or dense
MAC engine, a pooling block, or for an ``rbf`` output layer the squared-distance engine
:class:`hw.plan.rbf.RBFPlan`, all units in parallel, not folded), then for layers with
multipliers a requantizer and, for tanh, a lookup table; the classifier output closes the
pipeline (argmax of logits, or argmin of RBF distances). A register slice follows every stage but
the last, so that no combinational valid/ready path runs through more than one stage.

Timing is predicted, not guessed: every block's plan has an exact cycle model (``timing``, see
:mod:`hw.plan.timing`); :func:`predict` chains them, puts a FIFO in front of a stage only where
that stage would refuse beats its producer offers, sizes each FIFO from the modelled occupancy
(so it never fills and the producer is never blocked), and so predicts the latency and the
initiation interval (II) in cycles that the simulation measures.
"""

from __future__ import annotations

import math
from typing import NamedTuple

from golden.qnet import QNet

from hw.plan import ConvPlan, DensePlan, OutputPlan, PoolPlan, RBFPlan, RequantPlan, SlicePlan, TanhPlan
from hw.plan.fold import Fold, FoldError, LayerFold, fold_choices
from hw.plan.net import NetPlan, StagePlan
from hw.plan.timing import offers

__all__ = ["plan", "default_fold", "preset_folds", "target_fold", "TargetFold", "TARGET_FOLD_POINTS", "complete_fold", "dsp_allocation", "engine_plan", "stage_plans",
           "predict", "FIFO_LATENCY", "DEFAULT_TARGET_II", "MODEL_FRAMES"]

#: Cycles from a write into a ``SyncFIFOBuffered`` (the stages' input FIFOs) to the beat being readable.
FIFO_LATENCY = 2
#: Cycles per image the default fold aims at (II); LeNet-5's C1 alone needs at least 1024
#: (the 32x32 padded image at one pixel per cycle).
DEFAULT_TARGET_II = 2048
#: Frames the timing model runs to reach its periodic steady state.
MODEL_FRAMES = 4


def _out_lanes(block_plan) -> int:
    """Elements per beat of a block's output stream."""
    return block_plan.out_layout.members["data"].length


def engine_plan(layer, fold, in_lanes, **mac_options):
    """The plan of a layer's MAC or pooling engine; :class:`FoldError` for an impossible fold."""
    try:
        if layer.kind == "conv":
            return ConvPlan.from_layer(layer, out_lanes=fold.lanes, taps=fold.taps, in_lanes=in_lanes,
                                       **mac_options)
        if layer.kind == "dense":
            return DensePlan.from_layer(layer, out_lanes=fold.lanes, taps=fold.taps, in_lanes=in_lanes,
                                        **mac_options)
    except (TypeError, ValueError) as exc:
        raise FoldError(f"fold {layer.name}={fold}: {exc}") from None
    if layer.kind == "rbf":
        return RBFPlan.from_layer(layer, in_lanes=in_lanes)
    return PoolPlan.from_layer(layer, lanes=in_lanes)


def dsp_allocation(qnet: QNet, fold: Fold, dsp_blocks: int) -> dict:
    """DSP products per layer when ``dsp_blocks`` blocks are to be used: in layer order (C1's
    products first, then C3's, ...) while blocks remain; the other products are built from LUTs
    (split LUT products, :class:`hw.plan.MACPlan`'s ``dsp_multipliers``). Returns
    ``{layer name: count}``."""
    left, alloc = dsp_blocks, {}
    for layer in qnet.layers:
        if layer.name in fold:
            alloc[layer.name] = min(left, fold[layer.name].lanes * fold[layer.name].taps)
            left -= alloc[layer.name]
    return alloc


def stage_plans(qnet: QNet, fold: Fold, dsp_products=None, dsp_vendor=None) -> list:
    """The pipeline's stages, in order, for a network and a complete fold (FIFO depths 0); with
    ``dsp_products`` (:func:`dsp_allocation`) the MAC arrays' products are split between DSP
    blocks (of ``dsp_vendor``, or inferred) and LUTs."""
    stages = []
    lanes = 1                                    # pixels per beat into C1
    for layer in qnet.layers:
        options = {}
        if dsp_products and layer.name in dsp_products:
            options = dict(dsp_multipliers=dsp_products[layer.name], dsp_vendor=dsp_vendor)
        engine = engine_plan(layer, fold.get(layer.name), lanes, **options)
        stages.append(StagePlan(layer.name, "engine", engine))
        lanes = _out_lanes(engine)
        if layer.has_mac:
            stages.append(StagePlan(layer.name, "requant", RequantPlan.from_layer(layer, lanes=lanes)))
            if layer.activation.kind == "tanh":
                stages.append(StagePlan(layer.name, "tanh", TanhPlan.from_layer(layer, lanes=lanes)))
    logit_fmt = qnet.output_fmt
    stages.append(StagePlan("OUT", "output", OutputPlan(
        logit_fmt=logit_fmt, classes=qnet.num_classes, lanes=lanes,
        out_width=8 * math.ceil(logit_fmt.bits / 8), select="min" if qnet.rbf_output else "max")))
    sliced = []
    for stage in stages[:-1]:
        sliced += [stage, StagePlan(stage.layer, f"{stage.role}_slice", SlicePlan(layout=stage.plan.out_layout))]
    return sliced + stages[-1:]


def _fifo_timing(writes, reader, depth_margin=2):
    """A ``SyncFIFOBuffered`` between a producer writing at ``writes`` and ``reader``'s model:
    the reader's Timing and the depth that keeps the FIFO from ever refusing a write."""
    t = reader([w + FIFO_LATENCY for w in writes])
    occupancy, peak = 0, 0
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
    Returns ``(stages, accept, out)``: the stages with their input FIFO depths set, the cycles
    of the accepted input beats and of the output beats (``classes + 1`` per image).
    """
    avail = list(range(in_beats * frames))
    first_accept, sized = None, []
    for n, stage in enumerate(stages):
        model = stage.plan.timing
        t = model(avail)
        depth = 0
        if n and t.accept != offers(avail):
            t, depth = _fifo_timing(avail, model)
        sized.append(StagePlan(stage.layer, stage.role, stage.plan, depth))
        if first_accept is None:
            first_accept = t.accept
        avail = t.out
    return sized, first_accept, avail


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
            fold[layer.name], engine = _cheapest_fold(layer, lanes, target_ii)
        else:
            engine = engine_plan(layer, None, lanes)
        lanes = _out_lanes(engine)
    return fold


def _cheapest_fold(layer, lanes, target_ii):
    """(LayerFold, engine plan) of the cheapest fold of ``layer`` within ``target_ii``, else the fastest."""
    # Candidates by increasing multiplier count (then more lanes, fewer taps per lane):
    # the first that meets the target is the cheapest.
    choices = sorted(fold_choices(layer), key=lambda lt: (lt[0] * lt[1], -lt[0]))
    fastest = None
    for l, t in choices:
        try:
            engine = engine_plan(layer, LayerFold(l, t), lanes)
        except FoldError:
            continue
        if engine.ii <= target_ii:
            return LayerFold(l, t), engine
        if fastest is None or engine.ii < fastest[0]:
            fastest = (engine.ii, LayerFold(l, t), engine)
    return fastest[1], fastest[2]


def preset_folds(qnet, points: int = 7) -> list:
    """Folds from line rate to fully serial (at most *points*, duplicates removed).

    The end points are the line-rate fold and the fully serial fold (one lane and one tap in
    every layer). Line rate is the fewest multipliers that keep up with the input: the
    accelerator cannot go below the cycles per image its input bounds (C1 consumes one pixel
    per cycle), so :func:`default_fold` is asked for one cycle per input pixel,
    the predicted cycles per image of that fold become the target, and ``default_fold`` at that
    target (no layer faster than it needs to be) is the line-rate fold. In between:
    ``default_fold`` at targets spaced geometrically between the two end points' predicted
    cycles per image. Returned fastest first, as :class:`Fold`.
    """
    if isinstance(points, bool) or not isinstance(points, int) or points < 2:
        raise ValueError(f"points must be an int of at least 2, not {points!r}")
    names = [layer.name for layer in qnet.layers if layer.kind in ("conv", "dense")]
    serial = Fold({name: LayerFold(1, 1) for name in names})
    probe = default_fold(qnet, math.prod(qnet.input_shape))
    ii_fast = plan(qnet, fold=probe).predicted_ii
    fastest = default_fold(qnet, ii_fast)
    ii_serial = plan(qnet, fold=serial).predicted_ii
    folds, seen = [], set()
    for k in range(points):
        if k == 0:
            fold = fastest
        elif k == points - 1:
            fold = serial
        else:
            fold = default_fold(qnet, round(ii_fast * (ii_serial / ii_fast) ** (k / (points - 1))))
        if str(fold) not in seen:
            seen.add(str(fold))
            folds.append(fold)
    return folds


#: Candidate folds :func:`target_fold` tries (:func:`preset_folds`'s points).
TARGET_FOLD_POINTS = 12


class TargetFold(NamedTuple):
    """What :func:`target_fold` chose: the plan, its resource estimate
    (:func:`hw.plan.estimate.estimate`) and whether that estimate fits the target with margin."""

    plan: NetPlan
    estimate: dict
    fits: bool


def target_fold(qnet: QNet, target, fold=None, *, dsp_blocks=None, dsp_vendor=None, max_dsps="auto",
                points=TARGET_FOLD_POINTS) -> TargetFold:
    """The fastest fold whose estimated resources fit ``target`` with margin.

    Candidates: :func:`preset_folds` (``default_fold`` at cycle-per-image targets
    spaced geometrically from line rate to fully serial), each with the layers ``fold`` names
    kept as given. Each is planned for the target's DSP budget (``dsp_blocks``, ``dsp_vendor``,
    as :func:`plan`) and estimated (:func:`hw.plan.estimate.estimate`, ``max_dsps`` the budget of
    the products the tools infer); the one with the lowest predicted II among those that fit
    (:data:`hw.plan.estimate.FIT_MARGINS`) wins (ties: fewer estimated LUTs). When none fits,
    the candidate with the fewest estimated LUTs is returned with ``fits=False``.
    """
    from hw.plan.estimate import estimate, fits

    given = Fold.parse(fold) if isinstance(fold, str) else Fold(fold or {})
    best, smallest, seen = None, None, set()
    for candidate in preset_folds(qnet, points):
        merged = Fold({**candidate, **given})
        if str(merged) in seen:
            continue
        seen.add(str(merged))
        net = plan(qnet, target, fold=merged, dsp_blocks=dsp_blocks, dsp_vendor=dsp_vendor)
        est = estimate(net, target, max_dsps)
        choice = TargetFold(net, est, fits(est, target))
        if choice.fits and (best is None or (net.predicted_ii, est["luts"])
                            < (best.plan.predicted_ii, best.estimate["luts"])):
            best = choice
        if smallest is None or est["luts"] < smallest.estimate["luts"]:
            smallest = choice
    return best or smallest


def complete_fold(qnet: QNet, fold=None, target_ii=DEFAULT_TARGET_II):
    """``fold`` with the default filled in for layers it leaves out; validates layer names."""
    names = [l.name for l in qnet.layers if l.kind in ("conv", "dense")]
    fold = Fold.parse(fold) if isinstance(fold, str) else Fold(fold or {})
    for name in fold:
        if name not in names:
            raise FoldError(f"fold names layer {name!r}, but the foldable layers are {', '.join(names)}")
    if len(fold) < len(names):
        default = default_fold(qnet, target_ii)
        for name in names:
            fold.setdefault(name, default[name])
    return Fold({name: fold[name] for name in names})


def plan(qnet: QNet, target=None, *, fold=None, target_ii=DEFAULT_TARGET_II, dsp_blocks=None,
         dsp_vendor=None) -> NetPlan:
    """The dataflow plan of ``qnet`` for a fold and a target.

    Parameters
    ----------
    qnet : golden.qnet.QNet
        The quantized network.
    target : hw.targets.Target or None
        Recorded in the plan (the DSP budget is given as ``dsp_blocks``/``dsp_vendor``, see
        :func:`hw.arch.accelerator`).
    fold : None, str or Fold
        Per-layer folding; layers left out get :func:`default_fold`'s choice.
    target_ii : int
        Cycles per image the default fold aims at.
    dsp_blocks : int or None
        Multipliers to build as DSP products (the first ones in layer order, :func:`dsp_allocation`);
        the others become split LUT products. None: every product left to the tools.
    dsp_vendor : str or None
        With ``dsp_blocks``: the :mod:`hw.vendor` module whose DSP block is instantiated; None:
        plain ``*``, inferred. The cycle behaviour is the same in every case.

    Raises
    ------
    TypeError
        ``qnet`` is not a QNet.
    ValueError
        A bad ``dsp_blocks``, or ``dsp_vendor`` without ``dsp_blocks``.
    FoldError
        An impossible fold (the message names the layer and the valid values).
    """
    if not isinstance(qnet, QNet):
        raise TypeError(f"qnet must be a golden.qnet.QNet, not {qnet!r}")
    if dsp_blocks is not None and (isinstance(dsp_blocks, bool) or not isinstance(dsp_blocks, int)
                                   or dsp_blocks < 0):
        raise ValueError(f"dsp_blocks must be None or a non-negative int, not {dsp_blocks!r}")
    if dsp_vendor is not None and dsp_blocks is None:
        raise ValueError(f"dsp_vendor={dsp_vendor!r} needs dsp_blocks (how many DSP blocks to use)")
    fold = complete_fold(qnet, fold, target_ii)
    products = dsp_allocation(qnet, fold, dsp_blocks) if dsp_blocks is not None else {}
    stages = stage_plans(qnet, fold, products, dsp_vendor)
    c, h, w = qnet.input_shape
    in_beats, out_beats = c * h * w, qnet.num_classes + 1
    stages, accept, out = predict(stages, in_beats)
    ends = [out[(f + 1) * out_beats - 1] for f in range(MODEL_FRAMES)]
    periods = tuple(b - a for a, b in zip(ends, ends[1:]))
    return NetPlan(arch="dataflow", qnet=qnet, fold=fold, target=target, dsp_blocks=dsp_blocks, dsp_products=products,
                   dsp_vendor=dsp_vendor, stages=tuple(stages), in_beats=in_beats, out_beats=out_beats,
                   predicted_latency=out[out_beats - 1] - accept[0], predicted_ii=periods[-1],
                   model_periods=periods)
