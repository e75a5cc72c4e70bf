"""Accelerator architectures: how the layers of a quantized network become one piece of hardware.

Every architecture keeps the same top level (:data:`TOP`, AXI4-Stream pixels in, logits and the
class out; :class:`hw.arch.dataflow.LeNet5Accelerator` documents the ports) so that the
simulation, the synthesis flow and the boards work with any of them. :data:`ARCHITECTURES` names
them. Every architecture module offers the same two functions:

* ``plan(qnet, target, *, fold, target_ii, dsp_blocks, dsp_vendor) -> NetPlan``: pure Python, no
  hardware (:class:`hw.plan.net.NetPlan`: stages and their plans, fold, predicted II and latency);
* ``build(net_plan, *, taps=False) -> wiring.Component``: the gateware, with :class:`TopSignature`.

:func:`plan`, :func:`build` and :func:`accelerator` (both) here dispatch on the architecture's
name and turn a target name and DSP budget into the planning options: the one place where an
accelerator is constructed for a network, a fold, a target and its DSP budget.

* ``dataflow`` (:mod:`hw.arch.dataflow`): layer-pipelined, every layer its own datapath, streams
  between them; the default.
"""

from __future__ import annotations

__all__ = ["TOP", "ARCHITECTURES", "DEFAULT_ARCH", "UnknownArchitectureError", "plan", "build", "accelerator"]

#: Name of the generated top-level module (and of its Verilog file, ``<TOP>.v``).
TOP = "lenet5_accel"
#: Architecture name -> the module that implements it.
ARCHITECTURES = {"dataflow": "hw.arch.dataflow"}
#: The architecture used when none is named.
DEFAULT_ARCH = "dataflow"


class UnknownArchitectureError(ValueError):
    """An architecture name that is not in :data:`ARCHITECTURES` (the message lists them)."""


def _module(arch: str):
    if arch not in ARCHITECTURES:
        raise UnknownArchitectureError(f"unknown architecture {arch!r}; valid: {', '.join(ARCHITECTURES)}")
    from importlib import import_module
    return import_module(ARCHITECTURES[arch])


def plan(qnet, fold=None, *, arch: str = DEFAULT_ARCH, target=None, max_dsps="auto", target_ii=None):
    """The :class:`hw.plan.net.NetPlan` of ``arch`` for a network, a fold and a target.

    Parameters
    ----------
    qnet : golden.qnet.QNet
        The quantized network.
    fold : None, str or hw.plan.fold.Fold
        Per-layer folding; layers left out get the architecture's default: with a ``target`` (and
        no ``target_ii``), the fastest fold whose resource estimate fits the target with margin
        (``target_fold``, :mod:`hw.plan.estimate`; the fold with the fewest estimated LUTs when
        none fits), else the generic default (``default_fold``).
    arch : str
        One of :data:`ARCHITECTURES`.
    target : None, str or hw.targets.Target
        Plan for this target's closure policy and DSP budget (an ECP5: ``max_dsps`` products in
        the DSP blocks of its vendor module, with their own registers, the others split LUT
        products); None:
        generic Verilog, every product left to the tools.
    max_dsps : int, "auto" or None
        DSP blocks to plan products into (``"auto"``: the target's count); only with a target.
    target_ii : int, optional
        Cycles per image the default fold aims at (given: the generic default at this target,
        even with a ``target``).

    Raises
    ------
    UnknownArchitectureError, hw.targets.UnknownTargetError
        Unknown names (the message lists the valid ones).
    hw.plan.fold.FoldError
        An impossible fold (the message names the layer and the valid values).
    """
    module = _module(arch)
    kwargs = {}
    if target_ii is not None:
        kwargs["target_ii"] = target_ii
    tgt = None
    if target is not None:
        from hw.targets import target as get_target

        tgt = get_target(target)
        blocks = tgt.dsp_budget(max_dsps)
        if blocks is not None:
            kwargs.update(dsp_blocks=blocks, dsp_vendor=tgt.vendor)
        # The architecture's target-aware default (dataflow: planning.target_fold).
        choose = getattr(module, "target_fold", None)
        if target_ii is None and choose is not None and not _complete(qnet, fold):
            return choose(qnet, tgt, fold, max_dsps=max_dsps, **kwargs).plan
    return module.plan(qnet, tgt, fold=fold, **kwargs)


def _complete(qnet, fold) -> bool:
    """Whether ``fold`` names every conv and dense layer of ``qnet``."""
    if fold is None:
        return False
    from hw.plan.fold import Fold

    fold = Fold.parse(fold) if isinstance(fold, str) else fold
    return all(layer.name in fold for layer in getattr(qnet, "layers", ()) if layer.kind in ("conv", "dense"))


def build(net_plan, *, taps: bool = False):
    """The top-level component of a plan, built by the architecture that made it.

    ``taps``: a debug build with every stage's output stream as ports as well.
    """
    return _module(net_plan.arch).build(net_plan, taps=taps)


def accelerator(qnet, fold=None, *, arch: str = DEFAULT_ARCH, target=None, max_dsps="auto",
                target_ii=None, taps: bool = False):
    """``build(plan(...))``: the accelerator component for a network, a fold and a target (see
    :func:`plan` for the parameters and errors, :func:`build` for ``taps``)."""
    return build(plan(qnet, fold, arch=arch, target=target, max_dsps=max_dsps, target_ii=target_ii), taps=taps)
