"""Bit-exact simulation of the generated LeNet-5 accelerator on MNIST digits (cocotb + Verilator).

:func:`simulate` streams images through the emitted ``lenet5_accel.v`` (the file
:func:`hw.generate.generate` wrote, simulated as it is) on its AXI4-Stream ports and compares every
image's logits and class index with :func:`golden.reference.run`, computed here in the calling
process and handed to the testbench (:mod:`sim.tb.tb_accel`) as a ``.npy`` file: the testbench
compares words and holds no arithmetic of its own.

How it is made fast enough for the 10,000 test images
-----------------------------------------------------
* **Shards.** The images are split into ``jobs`` contiguous shards, simulated by as many
  simulator processes of the same (cached) build in parallel, each in its own run folder; the
  results are merged in order.
* **Build.** :data:`FAST_BUILD`: instead of cocotb's ``--public-flat-rw``, only the top module's
  ports and nets are visible through VPI (``run_cocotb(public=False)``), so Verilator optimises
  the stages' internals as for any C++ model: on the default-fold modern design (255
  multipliers, 1 MB of Verilog) a clock cycle costs 6.5 times less, and the build takes about
  30 s instead of 80 s. C++ ``-O2`` with Verilator's ``-O3 --x-assign fast --x-initial fast``
  on top saved only about 7 % of the run time (300 images: 4.1-4.2 s CPU against 4.4-4.6 s)
  for a longer compile, so the fast build keeps the runner's default ``-O1``.
* **Drivers.** Without stalls the testbench's own lean driver and sink run (falling-edge
  sampling, immediate writes, direct reads of the simulator objects; about 1,600 Python
  wake-ups per image of 2,016 cycles): 15.8 ms of CPU per image, of which roughly 5 ms is
  Python. cocotbext-axi's ``AxiStreamSource``/``AxiStreamSink`` (coroutines woken on every
  rising edge) took 26.6 ms per image at full rate and about 60 ms with their pause
  generators at ``stall = 0.3``: 130 s or more per shard for the test set on two cores. They
  are used for the runs with ``stall > 0`` (random input gaps and output backpressure), where
  a short run suffices.
* **Measured** (10,000 MNIST test images, two shards, both variants, 0 mismatches): 76-81 s
  of CPU per shard, i.e. about 85 s of wall time on two free cores; on the shared development
  machine (load average 6-8 on its two cores) the runs took 270 s (modern) and 282 s
  (classic).

Measurements (from the testbench's cycle numbers)
-------------------------------------------------
``latency_cycles``
    First image in an idle design: from the cycle its first pixel is accepted to the cycle its
    ``tlast`` beat is transferred (sink always ready; lean driver only).
``ii_cycles`` / ``cycles_per_image``
    Intervals between consecutive images' ``m_axis`` ``tlast`` beats with the images back to back,
    after the first :data:`WARMUP_IMAGES` images: the most common interval, and the mean.

On a mismatch, :func:`sim.diagnose.diagnose` re-runs that image (after the image before it, back
to back) on the same design generated with tap ports, records the output stream of every stage
(``<layer>_engine``, ``_requant``, ``_tanh``, ...; the stages come from the accelerator's plan),
and reports the first stage, channel and position that differ from the golden values, with both
values.

Modules: :mod:`sim.images` (the images), :mod:`sim.shards` (simulator processes),
:mod:`sim.diagnose` (the diagnosis); the names callers use are importable from here.
"""

from __future__ import annotations

import time

import numpy as np

from golden import reference
from golden.qnet import QNet
from sim.diagnose import DEBUG_BUILD, diagnose
from sim.images import ImageError, ImageSet, load_images
from sim.shards import (FAST_BUILD, SIM_WORK_ROOT, TB_MODULE, Run, build_marker, run_parallel, timeout_cycles,
                        word_format, work_dir)

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


def _run_times(runs, shards_s) -> dict:
    """Build and run times of the shards' simulator processes."""
    sims = [run.sim for run in runs if run.sim]
    run_s = max(s.run_seconds for s in sims) if sims else shards_s
    return {"wall_s": run_s, "build_s": max(s.build_seconds for s in sims) if sims else None,
            "built": any(s.built for s in sims)}


def _shard_list(runs, results, bounds) -> list:
    return [{"images": int(bounds[k + 1] - bounds[k]), "run_dir": str(run.sim.run_dir) if run.sim else None,
             "testbench_wall_s": float(r["wall_s"]), "testbench_cpu_s": float(r["cpu_s"]),
             "waves": str(run.sim.waves_file) if run.sim and run.sim.waves_file else None}
            for k, (run, r) in enumerate(zip(runs, results))]


def _run_shards(gen, images: ImageSet, expected, *, stall, seed, jobs, driver, waves, progress, status):
    """Split the images into ``jobs`` shards and simulate them in parallel: the runs, their
    results and the shard bounds (image indices)."""
    n = len(images)
    bounds = np.linspace(0, n, jobs + 1).round().astype(int)
    base = {**word_format(gen.accel), "stall": stall, "driver": driver,
            "timeout_cycles": timeout_cycles(gen.manifest, stall)}
    work = work_dir(gen, images.images, stall, seed, jobs, driver, waves)
    runs = [Run(gen, work, f"shard{k}", images.images[bounds[k]:bounds[k + 1]], expected[bounds[k]:bounds[k + 1]],
                {**base, "seed": seed * 1000 + k}, FAST_BUILD, "stream_images", waves)
            for k in range(jobs)]
    run_parallel(runs, progress, status, build_marker(gen, FAST_BUILD, waves))
    results = [run.results() for run in runs]
    if progress is not None:
        progress(n)
    return runs, results, bounds


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
             driver: str | None = None, max_listed: int = 100) -> dict:
    """Simulate ``images`` on the generated accelerator and compare with the golden model.

    Parameters
    ----------
    gen : hw.generate.Generated
        The accelerator, its Verilog file and manifest (:func:`hw.generate.generate`).
    images : ImageSet
    stall : float
        Probability, per cycle, of an input gap and (independently) of the sink withholding
        ``tready``; ``0 <= stall < 1``. Above 0 the cocotbext-axi drivers are used.
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
    driver : str, optional
        ``"lean"`` or ``"axi"`` to override the choice (``"axi"`` with ``stall=0`` measures
        cocotbext-axi's speed).
    max_listed : int
        Mismatches listed in the report (all are counted).

    Returns
    -------
    dict
        The report (JSON-serialisable); see ``lenet5 simulate --help``.
    """
    if not 0.0 <= stall < 1.0:
        raise ValueError(f"stall must be a probability in [0, 1), got {stall}")
    if jobs < 1:
        raise ValueError(f"jobs must be at least 1, got {jobs}")
    t_start = time.perf_counter()
    n = len(images)
    ref, expected = expected_words(gen.qnet, images.images)
    golden_s = time.perf_counter() - t_start
    jobs = min(jobs, n)
    t0 = time.perf_counter()
    runs, results, bounds = _run_shards(gen, images, expected, stall=stall, seed=seed, jobs=jobs, driver=driver,
                                        waves=waves, progress=progress, status=status)
    times = _run_times(runs, time.perf_counter() - t0)
    outputs = np.concatenate([r["outputs"] for r in results])
    mismatch = _mismatches(results, bounds, expected, outputs)
    lean = (driver or ("axi" if stall else "lean")) == "lean"
    report = {
        "images": n,
        "image_source": images.source,
        "mismatches": len(mismatch),
        **_classes(ref, outputs, images.labels, gen.qnet.output_fmt, gen.qnet.rbf_output),
        **_timing(results, lean, gen.manifest, stall),
        **times,
        "images_per_wall_s": n / times["wall_s"] if times["wall_s"] else None,
        "golden_s": golden_s,
        "total_s": time.perf_counter() - t_start,
        "fold": gen.manifest["fold"], "stall": stall, "seed": seed, "jobs": jobs,
        "driver": "lean" if lean else "axi",
        "variant": gen.qnet.variant,
        "verilog": str(gen.verilog),
        "shards": _shard_list(runs, results, bounds),
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
    run = Run(gen, work_dir(gen, imgs, "reset"), "reset", imgs, expected,
              {**word_format(gen.accel), "timeout_cycles": timeout_cycles(gen.manifest, 0.0)},
              FAST_BUILD, "reset_recovery")
    run()
    r = run.results() if run.results_path.is_file() else {}
    return {"passed": run.error is None,
            "idle_latency_cycles": int(r["idle_latency"]) if "idle_latency" in r else None,
            "latency_after_reset_cycles": r["latency_after_reset"].tolist() if "latency_after_reset" in r else None,
            "message": None if run.error is None else str(run.error).split("\n")[0]}
