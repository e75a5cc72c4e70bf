"""Names the flow gives to builds.

:func:`fold_slug` is THE definition of a fold's file-name form (build folders of ``lenet5 synth``
and ``lenet5 sweep``) of a :class:`hw.plan.fold.Fold`.
This module imports nothing heavy (the command line uses it before any gateware is loaded).
"""

from __future__ import annotations

import re

__all__ = ["fold_slug"]


def fold_slug(fold) -> str:
    """THE file-name-safe form of a fold (``C1=3x25,C3=6x25`` -> ``C1-3x25_C3-6x25``).

    ``=`` becomes ``-``, ``,`` becomes ``_``, and any other character that is not a letter, a
    digit, ``x``, ``_`` or ``-`` is dropped. *fold* is a :class:`hw.arch.dataflow.Fold` or its
    string form.
    """
    return re.sub(r"[^A-Za-z0-9x_-]", "", str(fold).replace("=", "-").replace(",", "_"))
