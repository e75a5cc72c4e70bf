"""One synthesis point (design x target x seed x options) as a task of :mod:`hw.flow.cluster`.

* :func:`synth_payload` turns a design into data, on the client: its Verilog text (as
  :func:`hw.flow.synth.synthesize` would write it, with the interface header of its manifest),
  the top name, the target and the options, the manifest and the resource estimate.
* :func:`synth_task` runs on a worker: :func:`hw.flow.synth.synthesize` in the task's own
  temporary folder (relative paths only: the YoWASP tools see that folder and nothing else),
  and returns the report and the build's text files (logs, scripts, reports) as data.
* :func:`write_build` puts them back into a build folder on the client: the same files
  ``synthesize`` leaves there locally (except the netlist, the placed design and the bitstream,
  which stay on the worker), ``synth_report.json`` with ``build_dir`` set to that folder.
* :func:`synth_versions` are the tool versions that go into the task's cache key.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

__all__ = ["MAX_FILE_BYTES", "synth_payload", "synth_task", "synth_versions", "write_build"]

#: A returned file larger than this keeps only its last this many bytes (logs of big builds).
MAX_FILE_BYTES = 16 * 2 ** 20
#: Suffixes of the build files that stay on the worker (large, and not needed to read a result).
_LEFT_ON_WORKER = (".config", ".asc", ".bit", ".bin")


def synth_payload(design, *, top: str, target: str, seed: int = 1, freq_mhz: float = 100,
                  use_system_tools: bool = False, max_dsps=None, manifest: Mapping | None = None,
                  estimate: Mapping | None = None) -> dict:
    """The payload of one synthesis task: every input as data.

    Parameters
    ----------
    design : amaranth.lib.wiring.Component or str
        A component (emitted here with :func:`hw.emit.emit_verilog`; its ``manifest()`` and,
        for a whole accelerator, its plan's resource estimate are taken when not given) or
        Verilog text.
    top, target, seed, freq_mhz, use_system_tools, max_dsps, manifest, estimate
        As :func:`hw.flow.synth.synthesize`.

    Returns
    -------
    dict
        ``{"verilog", "top", "target", "seed", "freq_mhz", "use_system_tools", "max_dsps",
        "manifest", "estimate"}`` (JSON-ready).

    Raises
    ------
    ValueError
        Unknown target, a top name that is not an identifier, a bad *max_dsps* (checked here,
        on the client, before any task runs).
    """
    from hw.flow.synth import _check_top, _dsp_limit, _plan_estimate
    from hw.targets import target as get_target

    tgt = get_target(target)
    _check_top(top)
    _dsp_limit(target, max_dsps)
    if isinstance(design, str):
        verilog = design
    else:
        from hw.emit import emit_verilog
        if manifest is None and callable(getattr(design, "manifest", None)):
            manifest = design.manifest()
        comment = ()
        if manifest is not None:
            from hw.arch.signature import interface_header
            comment = interface_header(manifest)
        verilog = emit_verilog(design, top, comment)
        if estimate is None:
            estimate = _plan_estimate(design, tgt, max_dsps)
    return {"verilog": verilog, "top": top, "target": tgt.name, "seed": int(seed), "freq_mhz": float(freq_mhz),
            "use_system_tools": bool(use_system_tools), "max_dsps": max_dsps,
            "manifest": _plain(manifest), "estimate": _plain(estimate)}


def _plain(obj):
    """*obj* as JSON data (tuples become lists), so that equal designs hash equally."""
    return None if obj is None else json.loads(json.dumps(obj, sort_keys=True))


def synth_versions(target: str, use_system_tools: bool = False) -> dict:
    """The Yosys and nextpnr versions for *target* (part of a synthesis task's cache key)."""
    from hw.flow.tools import tool_versions
    from hw.targets import target as get_target

    return dict(tool_versions(get_target(target).family, use_system_tools=use_system_tools))


def synth_task(payload: Mapping, workdir: Path) -> dict:
    """Synthesise, place and route ``payload["verilog"]`` in *workdir* (on a worker).

    Returns
    -------
    dict
        ``{"report": the synthesize report, "files": {name: text}}``: the build folder's text
        files except the Verilog (the client has it) and those of :data:`_LEFT_ON_WORKER`;
        a file over :data:`MAX_FILE_BYTES` keeps its end.

    Raises
    ------
    hw.flow.cluster.TaskError
        Yosys or nextpnr could not run or failed (:class:`hw.flow.synth.SynthError`); the
        message is the tool's error, the log tail the end of its log. A design that does not fit
        is a result (``fits: False``), not an error.
    """
    from hw.flow.cluster import TaskError
    from hw.flow.synth import SynthError, ToolNotFoundError, synthesize
    from hw.flow.tools import tail

    build = workdir / "build"
    try:
        report = synthesize(payload["verilog"], top=payload["top"], target=payload["target"], build_dir=build,
                            seed=payload["seed"], freq_mhz=payload["freq_mhz"],
                            use_system_tools=payload["use_system_tools"], progress=False,
                            manifest=payload["manifest"], max_dsps=payload["max_dsps"],
                            estimate=payload["estimate"])
    except (SynthError, ToolNotFoundError) as exc:
        logs = sorted(build.glob("*.log"), key=lambda p: p.stat().st_mtime) if build.is_dir() else []
        raise TaskError(f"{type(exc).__name__}: {exc}".replace(str(build), "<build>"),
                        tail(logs[-1], 30) if logs else str(exc)) from None
    verilog = f"{payload['top']}.v"
    netlist = f"{payload['top']}.json"
    files = {}
    for path in sorted(build.iterdir()):
        if (not path.is_file() or path.name in (verilog, netlist)
                or path.name.endswith(_LEFT_ON_WORKER)):
            continue
        data = path.read_bytes()
        if len(data) > MAX_FILE_BYTES:
            data = b"[... start cut: the file had %d bytes ...]\n" % len(data) + data[-MAX_FILE_BYTES:]
        files[path.name] = data.decode(errors="replace")
    return {"report": report, "files": files}


def write_build(value: Mapping, verilog: str, build_dir) -> dict:
    """Write a finished task's files and *verilog* into *build_dir* (created); return its report
    with ``build_dir`` set to that folder (also written as ``synth_report.json``).

    The file names come from the worker: only plain names are accepted.

    Raises
    ------
    ValueError
        A file name with a path separator or ``..`` (a malformed result).
    """
    out = Path(build_dir)
    out.mkdir(parents=True, exist_ok=True)
    report = dict(value["report"])
    report["build_dir"] = str(out)
    top = report["top"]
    files = dict(value["files"])
    files[f"{top}.v"] = verilog
    files["synth_report.json"] = json.dumps(report, indent=2, sort_keys=True) + "\n"
    for name, text in files.items():
        if "/" in name or "\\" in name or name in ("", ".", ".."):
            raise ValueError(f"a synthesis result names the file {name!r}; only plain file names are allowed")
        path = out / name
        if not (path.is_file() and path.read_text(errors="replace") == text):
            path.write_text(text)
    return report
