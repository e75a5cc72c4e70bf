"""Simulator processes of the accelerator testbench (:mod:`sim.tb.tb_accel`): inputs, runs, results.

A :class:`Run` is one simulator process of a generated design (:class:`hw.generate.Generated`):
it writes its images and expected words as ``.npy`` files into a work folder, calls
:func:`sim.runner.run_cocotb` on one test of the testbench and reads the ``.npz`` file of
results the testbench wrote. :func:`run_parallel` runs several (the shards of an image set) in
threads, reporting progress and whether the Verilator model is still being built.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import os
import tempfile
from pathlib import Path

import numpy as np

from hw.emit import publish

__all__ = ["TB_MODULE", "FAST_BUILD", "SIM_WORK_ROOT", "Run", "run_parallel", "work_dir", "build_key",
           "build_marker", "word_format", "timeout_cycles"]

#: The cocotb testbench module.
TB_MODULE = "sim.tb.tb_accel"
#: ``run_cocotb`` options of the fast build (top-level ports visible only; see :mod:`sim.accel`).
FAST_BUILD = {"public": False}
#: Work files (shard inputs, results, the diagnosis's tapped design) go below this folder.
SIM_WORK_ROOT = Path(__file__).resolve().parent.parent / "build" / "simulate"


def _save_npy(path: Path, arr) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".npy", dir=path.parent)
    os.close(fd)
    np.save(tmp, arr)
    publish(tmp, path)      # the umask's permissions, not mkstemp's owner-only ones


def _digest(*parts) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part.tobytes() if isinstance(part, np.ndarray) else json.dumps(part, sort_keys=True,
                                                                               default=str).encode())
    return h.hexdigest()


def word_format(accel) -> dict:
    """Testbench parameters of the ``m_axis`` words: their width and the logits' format."""
    fmt = accel.qnet.output_fmt
    return {"out_bits": len(accel.m_axis_tdata), "logit_bits": fmt.bits, "logit_signed": bool(fmt.signed)}


def timeout_cycles(manifest, stall) -> int:
    """Cycles without any output beat after which a run is declared hung."""
    base = manifest["predicted_latency_cycles"] + manifest["predicted_ii_cycles"]
    return int(20 * base / max(0.05, 1.0 - stall)) + 10_000


def build_key(gen) -> str:
    """Name of the design's build folder (``build/sim/<key>-<hash>``); debug builds with tap
    ports get their own."""
    taps = "-taps" if getattr(gen.accel, "tap_stages", None) else ""
    return f"{gen.top}-{gen.qnet.variant}{taps}"


def build_marker(gen, build: dict, waves: bool) -> Path:
    """The file whose existence says the Verilator build of ``gen`` is cached."""
    from sim.runner import build_dir_for

    sources = gen.sim_sources or [gen.verilog]
    return build_dir_for([(p.name, p.read_text()) for p in sources], gen.top, build_key=build_key(gen),
                         waves=waves, **build) / ".lenet5-built.json"


def work_dir(gen, *key) -> Path:
    """The work folder of runs of ``gen`` with the settings ``key`` (hashed)."""
    vhash = hashlib.sha256(gen.verilog.read_bytes()).hexdigest()[:12]
    return SIM_WORK_ROOT / f"{gen.top}-{vhash}" / _digest(*key)[:12]


class Run:
    """One simulator process: inputs written, ``run_cocotb`` called, results read.

    Parameters
    ----------
    gen : hw.generate.Generated
        The design (its ``sim_sources``, ``top``).
    work : Path
        Folder of the input and result files (created).
    tag : str
        Names the files and the run folder (``shard0``, ``reset``, ...).
    images : uint8 (N, 28, 28); expected : int64 (N, classes + 1)
    params : dict
        Further testbench parameters (:mod:`sim.tb.tb_accel`).
    build : dict
        Build options of :func:`sim.runner.run_cocotb` (:data:`FAST_BUILD`).
    test : str
        The testbench's test to run (``stream_images``, ``reset_recovery``, ``capture_taps``).
    """

    def __init__(self, gen, work: Path, tag: str, images, expected, params: dict, build: dict,
                 test: str, waves: bool = False):
        self.gen, self.work, self.tag, self.test = gen, work, tag, test
        self.build, self.waves = build, waves
        work.mkdir(parents=True, exist_ok=True)
        self.images_path, self.expected_path = work / f"{tag}_images.npy", work / f"{tag}_expected.npy"
        self.results_path, self.progress_path = work / f"{tag}_results.npz", work / f"{tag}_progress"
        _save_npy(self.images_path, images)
        _save_npy(self.expected_path, expected)
        for path in (self.results_path, self.progress_path):
            path.unlink(missing_ok=True)
        self.params = {**params, "images": str(self.images_path), "expected": str(self.expected_path),
                       "results": str(self.results_path), "progress": str(self.progress_path)}
        self.sim = None
        self.error = None

    def progress(self) -> int:
        """Images checked so far (from the testbench's progress file)."""
        try:
            return int(self.progress_path.read_text().strip() or 0)
        except (OSError, ValueError):
            return 0

    def __call__(self):
        from sim.runner import run_cocotb

        try:
            self.sim = run_cocotb(verilog_sources=self.gen.sim_sources or [self.gen.verilog],
                                  toplevel=self.gen.top,
                                  test_module=TB_MODULE, build_key=build_key(self.gen),
                                  parameters_for_test=self.params, test_filter=rf"\.{self.test}$",
                                  waves=self.waves, run_tag=self.tag, **self.build)
        except AssertionError as exc:       # a failing test: the results file tells why
            self.error = exc
        return self

    def results(self) -> dict:
        """The testbench's results; re-raises the run's error when it left none."""
        if not self.results_path.is_file():
            raise self.error or RuntimeError(f"{self.tag}: no results in {self.results_path}")
        with np.load(self.results_path) as r:
            out = {k: r[k] for k in r.files}
        if not out.get("complete", False):
            raise self.error or RuntimeError(f"{self.tag}: incomplete results")
        return out


def run_parallel(runs, progress=None, status=None, marker: Path | None = None, poll_s=0.5):
    """Run the :class:`Run`\\ s in threads (each drives its own simulator process), reporting
    progress (images checked) and status changes (building, simulating)."""
    building = marker is not None and not marker.is_file()
    if status is not None:
        status("building Verilator model" if building else "simulating")
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(runs)) as pool:
        futures = [pool.submit(run) for run in runs]
        while True:
            done, _ = concurrent.futures.wait(futures, timeout=poll_s)
            if building and marker.is_file():
                building = False
                if status is not None:
                    status("simulating")
            if progress is not None:
                progress(sum(run.progress() for run in runs))
            if len(done) == len(futures):
                break
        for f in futures:
            f.result()                      # re-raise build errors and the like
