"""Folding: how many multipliers each conv and dense layer gets (its parallelism).

A :class:`Fold` maps layer names to :class:`LayerFold` ``(lanes, taps)``: conv layers compute
``lanes`` output channels in parallel with ``taps`` kernel taps each per cycle; dense layers
``lanes`` outputs with ``taps`` inputs each per cycle. Written ``C1=3x25,C3=8x25,...`` on the
command line or as a JSON file (in file names: :func:`hw.flow.naming.fold_slug`). Plain data: which folds
work is decided by the layer plans (:mod:`hw.plan`).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Fold", "FoldError", "LayerFold", "fold_choices"]


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
            Malformed text or file, or a layer named twice.
        """
        text = str(text).strip()
        if text.endswith(".json") or Path(text).is_file():
            path = Path(text)
            try:
                d = json.loads(path.read_text(), object_pairs_hook=_no_repeats(path))
            except (OSError, json.JSONDecodeError) as exc:
                raise FoldError(f"cannot read fold file {path}: {exc}") from None
            if not isinstance(d, dict):
                raise FoldError(f"fold file {path}: expected an object such as {{\"C1\": [3, 25]}}")
            fold = cls()
            for name, value in d.items():
                if (not isinstance(value, (list, tuple)) or len(value) != 2
                        or not all(isinstance(v, int) for v in value)):
                    raise FoldError(f"fold file {path}: {name}: expected [lanes, taps], got {value!r}")
                fold._add(name, LayerFold(*value), f"fold file {path}: ")
            return fold
        fold = cls()
        for item in filter(None, (s.strip() for s in text.split(","))):
            m = re.fullmatch(r"([A-Za-z0-9]+)\s*=\s*(\d+)\s*[xX]\s*(\d+)", item)
            if not m:
                raise FoldError(f"fold item {item!r}: expected LAYER=LANESxTAPS, e.g. C1=6x25")
            fold._add(m.group(1), LayerFold(int(m.group(2)), int(m.group(3))), "")
        return fold

    def _add(self, name, layer_fold, where):
        """Set one layer's fold; a layer named twice (``C1=3x25,C1=6x25``, or ``"C1"`` and ``"c1"``
        in a file) is refused rather than letting the last value win."""
        key = name.upper()
        if key in self:
            raise FoldError(f"{where}layer {key} is named twice ({key}={self[key]} and {key}={layer_fold}); "
                            "give each layer once")
        self[key] = layer_fold

    def __str__(self):
        return ",".join(f"{k}={v}" for k, v in self.items())

    def to_dict(self):
        """``{"C1": [lanes, taps], ...}`` (the JSON file form)."""
        return {k: [v.lanes, v.taps] for k, v in self.items()}


def _no_repeats(path):
    """json ``object_pairs_hook`` refusing a key written twice (json keeps the last one)."""
    def hook(pairs):
        seen = set()
        for key, _ in pairs:
            if key in seen:
                raise FoldError(f"fold file {path}: layer {key} is named twice; give each layer once")
            seen.add(key)
        return dict(pairs)
    return hook


def _divisors(n):
    return [d for d in range(1, n + 1) if n % d == 0]


def fold_choices(layer):
    """All ``(lanes, taps)`` folds of a conv or dense :class:`golden.qnet.Layer`: conv, any
    lanes up to the output channels x taps dividing ``K*K``; dense, lanes dividing the outputs x
    taps dividing the inputs."""
    if layer.kind == "conv":
        return [(l, t) for l in range(1, layer.out_shape[0] + 1) for t in _divisors(layer.kernel ** 2)]
    i = math.prod(layer.in_shape)
    return [(l, t) for l in _divisors(layer.out_shape[0]) for t in _divisors(i)]
