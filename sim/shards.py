"""Simulator processes of the accelerator testbenches: inputs, runs, results.

A :class:`Bench` says what is simulated: the Verilog sources, the top module, the cocotb test
module and the Verilator build options. :func:`cocotb_bench` is the per-beat testbench
(:mod:`sim.tb.tb_accel`) on the emitted design; :func:`batch_bench` is the fast path, the batch
harness (:mod:`sim.harness`, :mod:`sim.tb.tb_batch`) around the same emitted file.

A :class:`Run` is one simulator process of a bench: it writes its images and expected words as
``.npy`` files into a work folder, calls :func:`sim.runner.run_cocotb` on one test and reads the
``.npz`` file of results the testbench wrote. :func:`run_parallel` runs several (the shards of
an image set) in threads, reporting progress and whether the Verilator model is still being
built. :func:`shard_task` is the same as a function of data only (sources as text, images and
expected words as arrays; a report and the log's tail back), so that a shard can run on a Dask
worker on another machine.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hw.emit import publish

__all__ = ["TB_MODULE", "BATCH_TB_MODULE", "FAST_BUILD", "BATCH_BUILD", "CLOCKED_MAIN", "SIM_WORK_ROOT", "Bench",
           "cocotb_bench", "batch_bench", "Run", "run_parallel", "shard_task", "work_dir", "build_key", "build_marker",
           "word_format", "timeout_cycles"]

#: The per-beat cocotb testbench module.
TB_MODULE = "sim.tb.tb_accel"
#: The batch testbench module (fast path).
BATCH_TB_MODULE = "sim.tb.tb_batch"
#: ``run_cocotb`` options of the per-beat testbench's build (top-level ports visible only; see
#: :mod:`sim.accel`).
FAST_BUILD = {"public": False}
#: Half the batch harness's clock period in simulator time steps (timescale 1ns/1ps: 5 ns, the
#: 10 ns of :data:`sim.tb.tb_batch.PERIOD_NS`).
BATCH_HALF_PERIOD_STEPS = 5000
#: ``run_cocotb`` options of the batch harness's build (see :mod:`sim.accel` for the measurements
#: behind them): only the harness signals the testbench touches are visible, so the accelerator's
#: logic is evaluated once per clock edge that needs it; Verilator's ``-O3`` and fast X handling;
#: the model's C++ at ``-O3 -march=native`` (the build is for this machine only; with
#: ``batch_bench(pgo=True)`` also profile-guided, see :data:`PGO_TRAINING_IMAGES`).
BATCH_BUILD = {"public": ("clk", "run", "accel_rst", "loaded", "in_stall", "out_stall", "in_seed",
                          "out_seed", "cycle", "in_images", "out_words", "out_images",
                          "images", "res_data", "res_cycle", "first_cycle"),
               "build_args": ("-O3", "--x-assign", "fast", "--x-initial", "fast"),
               "make_vars": ("OPT_FAST=-O3 -march=native",)}
#: What :data:`BATCH_BUILD` adds without waveforms: the clock toggled by the simulator's C++ main
#: (``sim/clocked_main.cpp``, which records no waveforms), not by a cocotb Clock.
CLOCKED_MAIN = {"main": str(Path(__file__).resolve().parent / "clocked_main.cpp"),
                "build_args": ("-CFLAGS", f"-DLENET5_HALF_PERIOD={BATCH_HALF_PERIOD_STEPS}")}
#: Images of the training run of the batch harness's profile-guided build (the first images of
#: the run that builds it, with its stall setting).
PGO_TRAINING_IMAGES = 48
#: Images held by the batch harness's image ring.
RING_IMAGES = 256
#: Pixels per word of the batch harness's image memory.
PIXELS_PER_WORD = 32
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


@dataclass(frozen=True)
class Bench:
    """What a simulator process simulates.

    Members
    -------
    sources : tuple of Path
        The Verilog files, compiled together.
    toplevel : str
        The top module.
    test_module : str
        The cocotb test module.
    build_key : str
        Names the build folder.
    build : dict
        Build options of :func:`sim.runner.run_cocotb` (``public``, ``build_args``, ``make_vars``).
    params : dict
        Testbench parameters every run of this bench gets.
    """

    sources: tuple
    toplevel: str
    test_module: str
    build_key: str
    build: dict
    params: dict = field(default_factory=dict)


def cocotb_bench(gen, build: dict | None = None) -> Bench:
    """The per-beat testbench (:mod:`sim.tb.tb_accel`) on the emitted design of ``gen``."""
    return Bench(tuple(gen.sim_sources or [gen.verilog]), gen.top, TB_MODULE, build_key(gen),
                 dict(FAST_BUILD if build is None else build), word_format(gen.accel))


def batch_bench(gen, waves: bool = False, pgo: bool = False) -> Bench:
    """The batch harness (:class:`sim.harness.BatchHarness`, :data:`RING_IMAGES`,
    :data:`PIXELS_PER_WORD`) around the emitted design of ``gen``; the harness's Verilog is
    written next to the shard files (``<work root>/harness-<hash>.v``). With ``waves`` the
    build keeps cocotb's simulator main (which records waveforms) and the testbench starts a
    cocotb Clock. ``pgo``: a profile-guided build (:func:`sim.runner.run_cocotb`)."""
    from hw.emit import emit_verilog
    from sim.harness import HARNESS_TOP, BatchHarness

    harness = BatchHarness(gen.manifest, ring_images=RING_IMAGES, pixels_per_word=PIXELS_PER_WORD)
    text = emit_verilog(harness, HARNESS_TOP)
    path = SIM_WORK_ROOT / "harness" / f"{hashlib.sha256(text.encode()).hexdigest()[:16]}" / f"{HARNESS_TOP}.v"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        with os.fdopen(fd, "w") as f:
            f.write(text)
        publish(tmp, path)
    build = dict(BATCH_BUILD, pgo=True) if pgo else dict(BATCH_BUILD)
    if not waves:
        build.update(main=CLOCKED_MAIN["main"], build_args=build["build_args"] + CLOCKED_MAIN["build_args"])
    return Bench((path, *(gen.sim_sources or [gen.verilog])), HARNESS_TOP, BATCH_TB_MODULE,
                 f"{build_key(gen)}-batch", build,
                 {**word_format(gen.accel), "harness": harness.parameters(),
                  "clock": "cocotb" if waves else "simulator"})


def build_marker(bench: Bench, waves: bool) -> Path:
    """The file whose existence says the Verilator build of ``bench`` is cached."""
    from sim.runner import build_dir_for

    return build_dir_for([(Path(p).name, Path(p).read_text()) for p in bench.sources], bench.toplevel,
                         build_key=bench.build_key, waves=waves, **bench.build) / ".lenet5-built.json"


def work_dir(gen, *key) -> Path:
    """The work folder of runs of ``gen`` with the settings ``key`` (hashed)."""
    vhash = hashlib.sha256(gen.verilog.read_bytes()).hexdigest()[:12]
    return SIM_WORK_ROOT / f"{gen.top}-{vhash}" / _digest(*key)[:12]


class Run:
    """One simulator process: inputs written, ``run_cocotb`` called, results read.

    Parameters
    ----------
    bench : Bench
        What is simulated (:func:`cocotb_bench`, :func:`batch_bench`).
    work : Path
        Folder of the input and result files (created).
    tag : str
        Names the files and the run folder (``shard0``, ``reset``, ...).
    images : uint8 (N, 28, 28); expected : int64 (N, classes + 1)
    params : dict
        Further testbench parameters (added to the bench's).
    test : str
        The testbench's test to run (``stream_images``, ``reset_recovery``, ``capture_taps`` of
        :mod:`sim.tb.tb_accel`; ``stream_batch`` of :mod:`sim.tb.tb_batch`).
    """

    def __init__(self, bench: Bench, work: Path, tag: str, images, expected, params: dict,
                 test: str, waves: bool = False):
        self.bench, self.work, self.tag, self.test = bench, work, tag, test
        self.waves = waves
        work.mkdir(parents=True, exist_ok=True)
        self.images_path, self.expected_path = work / f"{tag}_images.npy", work / f"{tag}_expected.npy"
        self.results_path, self.progress_path = work / f"{tag}_results.npz", work / f"{tag}_progress"
        _save_npy(self.images_path, images)
        _save_npy(self.expected_path, expected)
        for path in (self.results_path, self.progress_path):
            path.unlink(missing_ok=True)
        self.params = {**bench.params, **params, "images": str(self.images_path), "expected": str(self.expected_path),
                       "results": str(self.results_path), "progress": str(self.progress_path)}
        self.pgo_params = None
        if bench.build.get("pgo"):
            # The training run of a profile-guided build (used only if this run builds it).
            k = min(len(images), PGO_TRAINING_IMAGES)
            paths = {name: work / f"{tag}_pgo_{name}.npy" for name in ("images", "expected")}
            _save_npy(paths["images"], np.asarray(images)[:k])
            _save_npy(paths["expected"], np.asarray(expected)[:k])
            self.pgo_params = {**self.params, "images": str(paths["images"]), "expected": str(paths["expected"]),
                               "results": str(work / f"{tag}_pgo_results.npz"), "progress": None}
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
            b = self.bench
            self.sim = run_cocotb(verilog_sources=list(b.sources), toplevel=b.toplevel,
                                  test_module=b.test_module, build_key=b.build_key,
                                  parameters_for_test=self.params, test_filter=rf"\.{self.test}$",
                                  waves=self.waves, run_tag=self.tag, pgo_parameters=self.pgo_params, **b.build)
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


def shard_payload(bench: Bench, tag: str, images, expected, params: dict, test: str) -> dict:
    """The data of one shard for :func:`shard_task`: the bench's Verilog as text, the images and
    expected words as arrays, the options (no path of this machine is needed on the worker)."""
    build = {k: list(v) if isinstance(v, tuple) else v for k, v in bench.build.items()}
    if build.get("main"):                       # the simulator main's text, not this machine's path
        build["main"] = [Path(build["main"]).name, Path(build["main"]).read_text()]
    return {"sources": [[Path(p).name, Path(p).read_text()] for p in bench.sources],
            "toplevel": bench.toplevel, "test_module": bench.test_module, "build_key": bench.build_key,
            "build": build,
            "params": {**bench.params, **params}, "test": test, "tag": tag,
            "images": np.ascontiguousarray(images), "expected": np.ascontiguousarray(expected)}


def shard_task(payload: dict, workdir: Path) -> dict:
    """Simulate one shard from data only (a :mod:`hw.flow.cluster` task, run on a Dask worker).

    The Verilog texts are written below this machine's :data:`SIM_WORK_ROOT` (content-addressed,
    so that the Verilator build cache of :func:`sim.runner.run_cocotb` is reused by later shards
    of the same design on this worker); the shard's files go into ``workdir``.

    Parameters
    ----------
    payload : dict
        :func:`shard_payload`.
    workdir : Path
        A fresh folder of the task (deleted afterwards).

    Returns
    -------
    dict
        ``results`` (the testbench's results, arrays), ``run_seconds``, ``build_seconds``,
        ``built`` (this task built the model), ``failed`` (the testbench's assertion message:
        mismatches are results, not task failures).

    Raises
    ------
    hw.flow.cluster.TaskError
        The build failed, or the testbench left no complete results (with the log's tail).
    """
    from hw.flow.cluster import TaskError

    texts = payload["sources"]
    main = payload["build"].get("main")
    digest = hashlib.sha256(json.dumps([texts, main]).encode()).hexdigest()[:16]
    folder = SIM_WORK_ROOT / "sources" / digest
    paths = []
    for name, text in texts + ([main] if main else []):
        path = folder / name
        if not path.is_file() or path.read_text() != text:
            folder.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{name}.", dir=folder)
            with os.fdopen(fd, "w") as f:
                f.write(text)
            publish(tmp, path)
        paths.append(path)
    build = {k: tuple(v) if isinstance(v, list) else v for k, v in payload["build"].items() if k != "main"}
    if main:
        build["main"] = str(paths.pop())
    bench = Bench(tuple(paths), payload["toplevel"], payload["test_module"], payload["build_key"], build)
    run = Run(bench, Path(workdir), payload["tag"], payload["images"], payload["expected"], payload["params"],
              payload["test"])
    try:
        run()
        results = run.results()
    except Exception as exc:             # noqa: BLE001  (build errors, crashes: reported with the log)
        log = run.sim.log_file if run.sim and getattr(run.sim, "log_file", None) else None
        tail = "\n".join(Path(log).read_text(errors="replace").splitlines()[-30:]) if log and Path(log).is_file() \
            else str(exc)[-3000:]
        raise TaskError(f"shard {payload['tag']}: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}",
                        tail) from None
    return {"results": results, "run_seconds": run.sim.run_seconds if run.sim else None,
            "build_seconds": run.sim.build_seconds if run.sim else None, "built": bool(run.sim and run.sim.built),
            "failed": None if run.error is None else str(run.error).splitlines()[0]}
