"""Bit-exact simulation of the generated LeNet-5 accelerator on MNIST digits (cocotb + Verilator).

:func:`simulate` streams images through the emitted ``lenet5_accel.v`` (the file
:func:`hw.generate.generate` wrote, simulated as it is) on its AXI4-Stream ports and compares every
image's logits and class index with :func:`golden.reference.run`, computed here in the calling
process and handed to the testbench as a ``.npy`` file: the testbench compares words and holds
no arithmetic of its own.

Two drivers
-----------
``fast`` (default): the batch harness (:mod:`sim.harness`, an Amaranth component) instantiates
the emitted module unchanged, holds a ring of images in a memory and streams them into
``s_axis`` with its own seeded gaps (an LFSR, probability ``stall``), drives ``m_axis_tready``
with seeded backpressure, and writes every output word with its cycle stamp into a result
memory. Its testbench (:mod:`sim.tb.tb_batch`) fills and empties those memories through the
simulator's handles, waking once per refill period (64 images at one pixel per cycle), so the
simulator runs without Python in between. ``cocotb``: the per-beat testbench
(:mod:`sim.tb.tb_accel`): a lean driver and sink without stalls, cocotbext-axi's
``AxiStreamSource``/``AxiStreamSink`` with pause generators when ``stall > 0``; kept for the
protocol tests (reset, taps) and as the fast path's cross-check (same words, same cycle stamps
without stalls: tests/test_sim_fast.py).

How the fast path is fast
-------------------------
* **Shards.** The images are split into ``jobs`` contiguous shards, simulated by as many
  simulator processes of the same (cached) build in parallel -- threads driving local processes,
  or tasks on a Dask cluster (:func:`sim.shards.shard_task`) -- and merged in order.
* **Visibility.** Only the harness signals the testbench touches are public (``BATCH_BUILD``):
  Verilator re-evaluates every piece of logic that reads a public read-write signal on each
  evaluation (its input-combinational region), so with the top module's nets public (the
  per-beat build, ``public=False``) that region held about a quarter of the design's logic and
  ran at both clock edges; with the names only, it is a few small muxes.
* **Python once per batch.** Per refill, the testbench writes the new images (25 words of 256
  bits each) and reads the new result words; measured at 0.2 s of Python for 1,500 images.
* **What is left** is the model itself: about 22,000 x86 instructions per cycle for the default
  modern fold (callgrind), in its clocked region, plus about a fifth for cocotb's clock
  (a VPI timer callback per edge).

The options behind ``BATCH_BUILD`` and the measured speeds are in :data:`sim.shards.BATCH_BUILD`
and the README (section "Simulation").

Measurements (from the testbench's cycle numbers)
-------------------------------------------------
``latency_cycles``
    First image in an idle design: from the cycle its first pixel is accepted to the cycle its
    ``tlast`` beat is transferred (the fast and lean drivers; compared with the prediction only
    without stalls).
``image_done_cycles``
    Per image, the cycle of its ``tlast`` beat counted from its shard's first accepted pixel.
``sim_wall_s``, ``sim_cycles``, ``sim_cycles_per_s``
    The simulator processes' wall time (without the Verilator build), the cycles simulated, and
    one process's cycles per second (fast driver).
``ii_cycles`` / ``cycles_per_image``
    Intervals between consecutive images' ``m_axis`` ``tlast`` beats with the images back to back,
    after the first :data:`WARMUP_IMAGES` images: the most common interval, and the mean.

On a mismatch, :func:`sim.diagnose.diagnose` re-runs that image (after the image before it, back
to back) on the same design generated with tap ports, records the output stream of every stage
(``<layer>_engine``, ``_requant``, ``_tanh``, ...; the stages come from the accelerator's plan),
and reports the first stage, channel and position that differ from the golden values, with both
values.

Modules: :mod:`sim.images` (the images), :mod:`sim.shards` (simulator processes, benches, the
Dask task), :mod:`sim.harness` (the batch harness), :mod:`sim.diagnose` (the diagnosis); the
names callers use are importable from here.
"""

from __future__ import annotations

import time

import numpy as np

from golden import reference
from golden.qnet import QNet
from sim.diagnose import DEBUG_BUILD, diagnose
from sim.images import ImageError, ImageSet, load_images
from sim.shards import (FAST_BUILD, SIM_WORK_ROOT, TB_MODULE, Run, batch_bench, build_marker, cocotb_bench, run_parallel,
                        shard_payload, shard_task, timeout_cycles, work_dir)

__all__ = ["TB_MODULE", "FAST_BUILD", "DEBUG_BUILD", "WARMUP_IMAGES", "PER_IMAGE_MAX", "ImageError", "ImageSet",
           "load_images", "load_labels", "expected_words", "simulate", "reset_test", "diagnose",
           "SIM_WORK_ROOT"]

#: Images at the start of each shard left out of the steady-state interval statistics.
WARMUP_IMAGES = 3
#: Images :func:`reset_test` needs.
RESET_TEST_IMAGES = 7
#: Image sets up to this size get a per-image table in the report (``per_image``).
PER_IMAGE_MAX = 20


def load_labels(path, count: int, classes: int = 10) -> np.ndarray:
    """The user's labels for ``count`` images from a ``.npy`` file: a 1-D integer array of length
    ``count`` with values ``0 .. classes - 1``, returned as int64.

    Raises
    ------
    ImageError
        A missing or unreadable file, or an array of the wrong shape, type or values (a
        ``ValueError``; the message names the file, what it holds and what is expected).
    """
    from pathlib import Path

    where = f"labels {path}"
    expected = f"expected a .npy file of {count} integer class labels 0..{classes - 1} (one per image)"
    if not Path(path).is_file():
        raise ImageError(f"{where}: no such file; {expected}")
    try:
        arr = np.load(path, allow_pickle=False)
    except Exception as exc:            # text, pickles, truncated files: numpy's messages vary
        raise ImageError(f"{where}: not a readable .npy array ({type(exc).__name__}); {expected}") from None
    if not isinstance(arr, np.ndarray):
        raise ImageError(f"{where}: holds an archive of several arrays, not one array; {expected}")
    if arr.ndim != 1:
        raise ImageError(f"{where}: shape {arr.shape}, must be one-dimensional ({count},); {expected}")
    if not np.issubdtype(arr.dtype, np.integer):
        raise ImageError(f"{where}: dtype {arr.dtype}, must be an integer type; {expected}")
    if len(arr) != count:
        raise ImageError(f"{where}: {len(arr)} labels for {count} images; {expected}")
    bad = np.flatnonzero((arr < 0) | (arr >= classes))
    if bad.size:
        raise ImageError(f"{where}: label {arr[bad[0]]} at index {bad[0]} is not a class 0..{classes - 1} "
                         f"({bad.size} such); {expected}")
    return arr.astype(np.int64)


def expected_words(qnet: QNet, images) -> tuple[reference.ReferenceResult, np.ndarray]:
    """Golden result (no taps) and the expected output words: (N, classes + 1) int64, the
    logits then the class index, as ``m_axis`` carries them."""
    ref = reference.run(qnet, images, taps=False)
    return ref, np.concatenate([ref.logits, ref.classes[:, None]], axis=1).astype(np.int64)


def _steady_intervals(tlast: np.ndarray) -> np.ndarray:
    intervals = np.diff(np.asarray(tlast, dtype=np.int64))
    return intervals[WARMUP_IMAGES:] if len(intervals) > WARMUP_IMAGES else intervals[-1:]


def _mismatches(results, bounds, expected, outputs) -> list:
    """Every mismatching image of the shards, in image order."""
    mismatch = []
    for k, r in enumerate(results):
        for i, reason in zip(r["mismatch_index"], r["mismatch_reason"]):
            g = int(bounds[k] + i)
            mismatch.append({"image": g, "reason": str(reason), "expected": expected[g].tolist(),
                             "got": outputs[g].tolist() if g < len(outputs) else None})
    return mismatch


def _timing(results, lean: bool, manifest, stall) -> dict:
    """Measured latency and intervals of the shards, and whether they are the predicted ones."""
    steady = np.concatenate([_steady_intervals(r["tlast_cycles"]) for r in results if len(r["tlast_cycles"]) > 1]
                            or [np.zeros(0, np.int64)])
    # Every shard starts with an idle design: one latency measurement each (they must agree).
    latencies = [int(r["tlast_cycles"][0] - r["first_accept"]) for r in results] if lean else []
    latency = latencies[0] if latencies else None
    if steady.size:
        values, counts = np.unique(steady, return_counts=True)
        ii = int(values[np.argmax(counts)])
        cycles_per_image = float(steady.mean())
        ii_range = [int(steady.min()), int(steady.max())]
    else:
        ii = cycles_per_image = ii_range = None
    return {
        "cycles_per_image": cycles_per_image,
        "ii_cycles": ii,
        "ii_range_cycles": ii_range,
        "latency_cycles": latency,
        "latency_cycles_per_shard": latencies or None,
        "predicted_ii_cycles": manifest["predicted_ii_cycles"],
        "predicted_latency_cycles": manifest["predicted_latency_cycles"],
        "timing_matches_prediction": (None if stall or ii is None or latency is None else
                                      ii == manifest["predicted_ii_cycles"]
                                      and ii_range[0] == ii_range[1]
                                      and set(latencies) == {manifest["predicted_latency_cycles"]}),
    }


def _classes(ref, outputs, labels, logit_fmt, rbf=False) -> dict:
    """The classes per image (RTL, golden, labels when known), accuracies, and for small sets
    (:data:`PER_IMAGE_MAX`) a row per image with the RTL's two largest logits (``rbf``: its two
    smallest distances)."""
    rtl = outputs[:, -1]
    report = {
        "rtl_accuracy": None if labels is None else float(np.mean(rtl == labels)),
        "golden_accuracy": None if labels is None else float(np.mean(ref.classes == labels)),
        "rtl_golden_class_agreement": float(np.mean(rtl == ref.classes)),
        "rtl_classes": [int(c) for c in rtl],
        "golden_classes": [int(c) for c in ref.classes],
        "labels": None if labels is None else [int(c) for c in labels],
        "logit_fmt": str(logit_fmt),
        "rbf_output": bool(rbf),
    }
    if len(rtl) <= PER_IMAGE_MAX:
        rows = []
        for i, words in enumerate(outputs):
            logits = words[:-1]
            top2 = np.argsort(logits if rbf else -logits, kind="stable")[:2]
            rows.append({"image": i, "rtl_class": int(rtl[i]), "golden_class": int(ref.classes[i]),
                         "label": None if labels is None else int(labels[i]),
                         "top2": [{"class": int(k), "logit": int(logits[k]),
                                   "value": float(logits[k]) * logit_fmt.scale} for k in top2]})
        report["per_image"] = rows
    return report


def _run_times(infos, shards_s) -> dict:
    """Build and run times of the shards' simulator processes (:func:`_info` of each)."""
    runs = [i for i in infos if i["run_seconds"] is not None]
    run_s = max(i["run_seconds"] for i in runs) if runs else shards_s
    return {"wall_s": run_s, "build_s": max(i["build_seconds"] for i in runs) if runs else None,
            "built": any(i["built"] for i in runs)}


def _sim_speed(results, times) -> dict:
    """Simulated cycles and the simulation's speed: ``sim_wall_s`` (the simulator processes'
    wall time, without the Verilator build), ``sim_cycles`` (clock cycles simulated, all
    shards), ``sim_cycles_per_s`` (of one process: its cycles over its testbench's wall time,
    the mean of the shards) and ``sim_cycles_per_s_total`` (all shards' cycles over
    ``sim_wall_s``). Cycle counts come from the batch harness; the per-beat testbench reports
    none (``None``)."""
    sim_wall = times["wall_s"]
    if not all("cycles" in r for r in results):
        return {"sim_wall_s": sim_wall, "sim_cycles": None, "sim_cycles_per_s": None,
                "sim_cycles_per_s_total": None}
    cycles = [int(r["cycles"]) for r in results]
    per_process = [c / float(r["wall_s"]) for c, r in zip(cycles, results) if float(r["wall_s"]) > 0]
    return {"sim_wall_s": sim_wall, "sim_cycles": sum(cycles),
            "sim_cycles_per_s": float(np.mean(per_process)) if per_process else None,
            "sim_cycles_per_s_total": sum(cycles) / sim_wall if sim_wall else None}


def _info(run) -> dict:
    """Where and how long a local :class:`sim.shards.Run` ran."""
    sim = run.sim
    return {"run_seconds": sim.run_seconds if sim else None, "build_seconds": sim.build_seconds if sim else None,
            "built": bool(sim and sim.built), "run_dir": str(sim.run_dir) if sim else None,
            "waves": str(sim.waves_file) if sim and sim.waves_file else None, "worker": None}


def _shard_list(infos, results, bounds) -> list:
    return [{"images": int(bounds[k + 1] - bounds[k]), "run_dir": info["run_dir"], "worker": info["worker"],
             "testbench_wall_s": float(r["wall_s"]), "testbench_cpu_s": float(r["cpu_s"]),
             "cycles": int(r["cycles"]) if "cycles" in r else None, "waves": info["waves"]}
            for k, (info, r) in enumerate(zip(infos, results))]


#: Simulation drivers: the batch harness (``fast``) and the per-beat cocotb testbench
#: (``cocotb``: its lean driver without stalls, cocotbext-axi with; ``lean``/``axi`` force one).
DRIVERS = ("fast", "cocotb", "lean", "axi")


def _bench_and_test(gen, driver: str, waves: bool = False, pgo: bool = False):
    if driver == "fast":
        return batch_bench(gen, waves, pgo), "stream_batch"
    return cocotb_bench(gen), "stream_images"


def _run_shards(gen, images: ImageSet, expected, *, stall, seed, jobs, driver, waves, progress, status,
                cluster=None, pgo=False):
    """Split the images into ``jobs`` shards and simulate them in parallel (threads driving local
    simulator processes, or tasks on ``cluster``): each shard's :func:`_info`, its results and
    the shard bounds (image indices)."""
    n = len(images)
    bounds = np.linspace(0, n, jobs + 1).round().astype(int)
    bench, test = _bench_and_test(gen, driver, waves, pgo)
    base = {"stall": stall, "timeout_cycles": timeout_cycles(gen.manifest, stall)}
    if driver in ("lean", "axi"):
        base["driver"] = driver
    shards = [(f"shard{k}", slice(bounds[k], bounds[k + 1]), {**base, "seed": seed * 1000 + k}) for k in range(jobs)]
    if cluster is not None:
        if waves:
            raise ValueError("waveforms are recorded by local runs only (no cluster with waves)")
        infos, results = _run_on_cluster(cluster, bench, test, shards, images, expected, progress, status)
    else:
        work = work_dir(gen, images.images, stall, seed, jobs, driver, waves)
        runs = [Run(bench, work, tag, images.images[part], expected[part], params, test, waves)
                for tag, part, params in shards]
        run_parallel(runs, progress, status, build_marker(bench, waves))
        results = [run.results() for run in runs]
        infos = [_info(run) for run in runs]
    if progress is not None:
        progress(n)
    return infos, results, bounds


class ShardError(RuntimeError):
    """A simulation shard failed on the cluster (its build or its run; the message has the log's tail)."""


def _run_on_cluster(cluster, bench, test, shards, images, expected, progress, status):
    """The shards as :func:`sim.shards.shard_task` tasks on a :class:`hw.flow.cluster.TaskCluster`
    (no result cache: a simulation is re-run when asked)."""
    from hw.flow.tools import verilator_version

    if status is not None:
        status("simulating on the cluster (workers build the model first)")
    payloads = {tag: shard_payload(bench, tag, images.images[part], expected[part], params, test)
                for tag, part, params in shards}
    sizes = {tag: part.stop - part.start for tag, part, _ in shards}
    done = [0]

    def arrived(result):
        done[0] += sizes[result.key]
        if progress is not None:
            progress(done[0])

    out = cluster.run(shard_task, payloads, cache_dir=None, versions={"verilator": verilator_version()},
                      progress=False, desc="shards", on_result=arrived)
    failed = {k: r for k, r in out.items() if not r.ok}
    if failed:
        key, r = next(iter(failed.items()))
        raise ShardError(f"{len(failed)} of {len(out)} simulation shards failed; {key}: {r.error}\n{r.log_tail}")
    infos = [{"run_seconds": r.value["run_seconds"], "build_seconds": r.value["build_seconds"],
              "built": r.value["built"], "run_dir": None, "waves": None, "worker": r.worker} for r in out.values()]
    return infos, [r.value["results"] for r in out.values()]


def _diagnose_first(gen, images, first: int, bounds) -> dict:
    """The diagnosis of the first mismatching image (after its predecessor when that was in the
    same shard); an error here must not hide the mismatch report."""
    try:
        return diagnose(gen, images, first,
                        previous=first > bounds[np.searchsorted(bounds, first, "right") - 1])
    except Exception as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}


def simulate(gen, images: ImageSet, *, stall: float = 0.0, seed: int = 0, jobs: int = 2,
             waves: bool = False, progress=None, status=None, diagnose_first: bool = True,
             driver: str = "fast", max_listed: int = 100, cluster=None, pgo: bool = False) -> dict:
    """Simulate ``images`` on the generated accelerator and compare with the golden model.

    Parameters
    ----------
    gen : hw.generate.Generated
        The accelerator, its Verilog file and manifest (:func:`hw.generate.generate`).
    images : ImageSet
    stall : float
        Probability, per cycle, of an input gap and (independently) of the sink withholding
        ``tready``; ``0 <= stall < 1`` (the harness's LFSRs with ``driver="fast"``,
        cocotbext-axi's pause generators with ``driver="cocotb"``).
    seed : int
        Seed of the stall patterns (each shard derives its own).
    jobs : int
        Simulator processes running shards in parallel.
    waves : bool
        Record waveforms (a separate build with tracing; one file per shard).
    progress : callable, optional
        Called with the number of images checked so far, about twice a second.
    status : callable, optional
        Called with a short text when the phase changes ("building Verilator model",
        "simulating", "locating the first mismatch").
    diagnose_first : bool
        On mismatches, locate the first one layer by layer (:func:`diagnose`).
    driver : str
        ``"fast"`` (default): the batch harness (:mod:`sim.harness`), Python once per refill
        of its image ring; ``"cocotb"``: the per-beat testbench (its lean driver without
        stalls, cocotbext-axi with); ``"lean"`` or ``"axi"`` force one of those (``"axi"`` with
        ``stall=0`` measures cocotbext-axi's speed).
    max_listed : int
        Mismatches listed in the report (all are counted).
    pgo : bool
        With ``driver="fast"``: a profile-guided Verilator build (:data:`sim.shards.BATCH_BUILD`;
        about 10 % faster simulation for about 30 s more build: worth it for a design simulated
        again and again, such as a regression).
    cluster : hw.flow.cluster.TaskCluster, optional
        Run the shards as Dask tasks there (:func:`sim.shards.shard_task`: the Verilog, images
        and expected words travel as data; each worker builds the model once); default: local
        simulator processes driven from threads of this process.

    Returns
    -------
    dict
        The report (JSON-serialisable); see ``lenet5 simulate --help``.
    """
    if not 0.0 <= stall < 1.0:
        raise ValueError(f"stall must be a probability in [0, 1), got {stall}")
    if jobs < 1:
        raise ValueError(f"jobs must be at least 1, got {jobs}")
    if driver not in DRIVERS:
        raise ValueError(f"unknown driver {driver!r}; choose one of {', '.join(DRIVERS)}")
    if driver == "cocotb":
        driver = "axi" if stall else "lean"
    t_start = time.perf_counter()
    n = len(images)
    ref, expected = expected_words(gen.qnet, images.images)
    golden_s = time.perf_counter() - t_start
    jobs = min(jobs, n)
    t0 = time.perf_counter()
    infos, results, bounds = _run_shards(gen, images, expected, stall=stall, seed=seed, jobs=jobs, driver=driver,
                                         waves=waves, progress=progress, status=status, cluster=cluster,
                                         pgo=pgo)
    times = _run_times(infos, time.perf_counter() - t0)
    outputs = np.concatenate([r["outputs"] for r in results])
    mismatch = _mismatches(results, bounds, expected, outputs)
    done = ([int(c) for r in results for c in np.asarray(r["tlast_cycles"]) - int(r["first_accept"])]
            if driver in ("fast", "lean") else None)
    lean = driver in ("fast", "lean")           # drivers that record the first pixel's cycle
    report = {
        "images": n,
        "image_source": images.source,
        "mismatches": len(mismatch),
        **_classes(ref, outputs, images.labels, gen.qnet.output_fmt, gen.qnet.rbf_output),
        **_timing(results, lean, gen.manifest, stall),
        **times,
        **_sim_speed(results, times),
        "images_per_wall_s": n / times["wall_s"] if times["wall_s"] else None,
        "golden_s": golden_s,
        "total_s": time.perf_counter() - t_start,
        "fold": gen.manifest["fold"], "stall": stall, "seed": seed, "jobs": jobs,
        "driver": driver,
        "variant": gen.qnet.variant,
        "verilog": str(gen.verilog),
        "shards": _shard_list(infos, results, bounds),
        "image_done_cycles": done,
        "mismatch_list": mismatch[:max_listed],
    }
    if mismatch and diagnose_first:
        if status is not None:
            status("locating the first mismatch")
        report["mismatch_list"][0]["diagnosis"] = _diagnose_first(gen, images, mismatch[0]["image"], bounds)
    return report


def reset_test(gen, images: ImageSet) -> dict:
    """The testbench's ``reset_recovery`` test on the first :data:`RESET_TEST_IMAGES` images:
    synchronous resets in the middle of an image and in the middle of an output frame.

    Returns ``{"passed", "idle_latency_cycles", "latency_after_reset_cycles", "message"}``.
    """
    if len(images) < RESET_TEST_IMAGES:
        raise ValueError(f"the reset test needs {RESET_TEST_IMAGES} images, got {len(images)}")
    imgs = images.images[:RESET_TEST_IMAGES]
    _, expected = expected_words(gen.qnet, imgs)
    run = Run(cocotb_bench(gen), work_dir(gen, imgs, "reset"), "reset", imgs, expected,
              {"timeout_cycles": timeout_cycles(gen.manifest, 0.0)}, "reset_recovery")
    run()
    r = run.results() if run.results_path.is_file() else {}
    return {"passed": run.error is None,
            "idle_latency_cycles": int(r["idle_latency"]) if "idle_latency" in r else None,
            "latency_after_reset_cycles": r["latency_after_reset"].tolist() if "latency_after_reset" in r else None,
            "message": None if run.error is None else str(run.error).split("\n")[0]}
