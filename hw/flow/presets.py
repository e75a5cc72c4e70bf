"""Named sweeps (``lenet5 sweep --preset NAME``): which descriptions, targets and folds.

Each preset crosses its models (quantized descriptions shipped in ``models/``: int8 and
w4a8), its targets and the planner's folds from line rate to fully serial
(:func:`hw.arch.dataflow.planning.preset_folds` with ``points`` folds, fastest first), of which
it keeps the ``keep`` most serial ones (None: all). ``folds`` is the old behaviour: the one
``--model`` and ``--target`` given, ``--points`` folds.

A preset's folds are those of its first model (the folds of every shipped description are the
same: the fold search depends on the layer shapes, not the weights), so each model is built at
the same folds and the picture compares bit widths at equal folds.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

__all__ = ["SWEEP_PRESETS", "SweepPreset", "preset_points"]


@dataclass(frozen=True)
class SweepPreset:
    """A named sweep.

    Members
    -------
    help : str
        One line for ``--help``.
    models : tuple of str
        Descriptions, as paths relative to the repository (empty: the ``--model`` given).
    targets : tuple of str
        Targets (empty: the ``--target`` given).
    points : int
        Folds asked of :func:`~hw.arch.dataflow.planning.preset_folds` (empty: ``--points``).
    keep : int or None
        Keep only the ``keep`` most serial of those folds (None: all).
    """

    help: str
    models: tuple[str, ...] = ()
    targets: tuple[str, ...] = ()
    points: int | None = None
    keep: int | None = None


_BITS = ("models/modern_int8.json", "models/modern_w4a8_qat.json")

#: The presets, by name.
SWEEP_PRESETS = {
    "folds": SweepPreset("--points folds (default 7) from line rate to fully serial of --model on --target",
                         points=7),
    "bits-serial-25k": SweepPreset("int8 and w4a8 on ecp5-25k, the 3 most serial of 7 folds (6 builds, "
                                   "minutes each)", _BITS, ("ecp5-25k",), 7, 3),
    "bits-25k": SweepPreset("int8 and w4a8 on ecp5-25k, 7 folds from line rate to fully serial (14 builds)",
                            _BITS, ("ecp5-25k",), 7),
    "bits-targets": SweepPreset("int8 and w4a8 on ecp5-25k, ecp5-85k and ice40-up5k, 7 folds each "
                                "(42 builds; the 85F line-rate builds take hours: for a cluster)",
                                _BITS, ("ecp5-25k", "ecp5-85k", "ice40-up5k"), 7),
}


def preset_points(name: str, *, model=None, target=None, points=None, root="."):
    """The models, targets and folds of the preset *name*: ``(models, targets, folds)``.

    Parameters
    ----------
    name : str
        A key of :data:`SWEEP_PRESETS`.
    model, target : str, optional
        The ``--model`` / ``--target`` given: replace the preset's models / targets (required
        when the preset has none).
    points : int, optional
        ``--points``: replaces the preset's number of folds.
    root : path-like
        The repository root (the preset's model paths are relative to it).

    Returns
    -------
    tuple
        (list of model paths, list of target names, list of :class:`hw.plan.fold.Fold`).

    Raises
    ------
    ValueError
        Unknown preset (the message lists them), a preset without models or targets and none
        given, fewer than 2 points.
    """
    from pathlib import Path

    if name not in SWEEP_PRESETS:
        raise ValueError(f"unknown sweep preset {name!r}; valid: {', '.join(SWEEP_PRESETS)}")
    preset = SWEEP_PRESETS[name]
    models = [str(model)] if model is not None else [str(Path(root) / m) for m in preset.models]
    targets = [target] if target is not None else list(preset.targets)
    if not models:
        raise ValueError(f"preset {name!r} sweeps the --model given; give one (e.g. --model models/modern_int8.json)")
    if not targets:
        raise ValueError(f"preset {name!r} sweeps the --target given; give one (e.g. --target ecp5-25k)")
    n = points if points is not None else preset.points
    if n is None or n < 2:
        raise ValueError(f"--points must be at least 2, got {n}")
    folds = _preset_folds(str(models[0]), n)
    if preset.keep is not None:
        folds = folds[-preset.keep:]
    return models, targets, list(folds)


@functools.lru_cache(maxsize=16)
def _preset_folds(model: str, points: int) -> tuple:
    """:func:`~hw.arch.dataflow.planning.preset_folds` of the description at *model* (the fold
    search takes seconds; a process asks for the same folds more than once)."""
    from golden.qnet import QNet
    from hw.arch.dataflow.planning import preset_folds

    return tuple(preset_folds(QNet.load(model), points))
