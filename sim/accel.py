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

On a mismatch, :func:`diagnose` re-runs that image (after the image before it, back to back),
records the output stream of every stage (``<layer>_engine``, ``_requant``, ``_tanh``, ...;
``valid & ready`` and the payload of the top-level nets that connect the stage instances, found
by :func:`stream_taps` from the Verilog's structure), and reports the first stage, channel and
position that differ from the golden values, with both values.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import os
import re
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from golden import arith, reference
from golden.qnet import QNet

__all__ = ["TB_MODULE", "FAST_BUILD", "DEBUG_BUILD", "WARMUP_IMAGES", "ImageError", "ImageSet",
           "load_images", "expected_words", "simulate", "reset_test", "diagnose", "stream_taps",
           "SIM_WORK_ROOT"]

#: The cocotb testbench module.
TB_MODULE = "sim.tb.tb_accel"
#: ``run_cocotb`` options of the fast build (top-level ports visible only; see the module docstring).
FAST_BUILD = {"public": False}
#: ``run_cocotb`` options of the diagnosis runs: the same build. The streams between stages are
#: nets of the top module (Amaranth connects the stage instances there), which the fast build
#: keeps visible through VPI along with the ports.
DEBUG_BUILD = FAST_BUILD
#: Images at the start of each shard left out of the steady-state interval statistics.
WARMUP_IMAGES = 3
#: Images :func:`reset_test` needs.
RESET_TEST_IMAGES = 7
#: Work files (shard inputs, results) go below this folder.
SIM_WORK_ROOT = Path(__file__).resolve().parent.parent / "build" / "simulate"


class ImageError(ValueError):
    """Unusable user images: the message names the file, the problem and the expected form."""


@dataclass
class ImageSet:
    """Images to simulate.

    Members
    -------
    images : numpy uint8 array (N, 28, 28)
    labels : numpy int64 array (N,) or None
        Known labels (MNIST), else None (no accuracy then).
    source : str
        Where they came from, for reports.
    """

    images: np.ndarray
    labels: np.ndarray | None
    source: str

    def __len__(self):
        return len(self.images)

    def subset(self, indices):
        idx = np.asarray(indices, dtype=np.int64)
        return ImageSet(self.images[idx], None if self.labels is None else self.labels[idx],
                        f"{self.source} [{', '.join(str(i) for i in idx[:8])}{'...' if len(idx) > 8 else ''}]")


# --------------------------------------------------------------------------- images

def _check_array(arr, where) -> np.ndarray:
    """uint8 (N, 28, 28) from an array of shape (N, 28, 28) or (28, 28)."""
    arr = np.asarray(arr)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3 or arr.shape[1:] != (28, 28):
        raise ImageError(f"{where}: images must have shape (N, 28, 28) or (28, 28) (raw MNIST digits), "
                         f"got {tuple(np.asarray(arr).shape)}")
    if arr.dtype != np.uint8:
        hint = ("; convert with np.round(x * 255).astype(np.uint8) if they are floats in [0, 1]"
                if arr.dtype.kind == "f" else
                "; convert with x.astype(np.uint8) if the values are 0..255" if arr.dtype.kind in "iu" else "")
        raise ImageError(f"{where}: images must be uint8 (pixels 0..255), got dtype {arr.dtype}{hint}")
    if not len(arr):
        raise ImageError(f"{where}: no images")
    return np.ascontiguousarray(arr)


def _read_png(path: Path) -> np.ndarray:
    """One 8-bit grayscale PNG as uint8 (H, W), with PIL when installed (matplotlib needs it for
    PNG files anyway), else ``matplotlib.image.imread``."""
    try:
        from PIL import Image
    except ImportError:
        Image = None
    if Image is not None:
        try:
            with Image.open(path) as img:
                mode = img.mode
                if mode in ("RGB", "RGBA", "LA"):
                    arr = np.asarray(img)
                    gray = arr[..., 0]
                    color = arr[..., :3] if mode != "LA" else arr[..., :1]
                    if (mode != "LA" and np.any(color != gray[..., None])) or (
                            mode in ("RGBA", "LA") and np.any(arr[..., -1] != 255)):
                        raise ImageError(f"{path}: a {mode} image with colour or transparency; "
                                         "expected an 8-bit grayscale PNG")
                    return np.ascontiguousarray(gray)
                if mode != "L":
                    raise ImageError(f"{path}: PNG mode {mode!r}; expected 8-bit grayscale ('L')")
                return np.asarray(img).copy()
        except ImageError:
            raise
        except Exception as exc:            # PIL raises many types for broken files
            raise ImageError(f"{path}: not a readable PNG ({exc})") from None
    import matplotlib.image as mpimg
    try:
        arr = mpimg.imread(path)
    except Exception as exc:
        raise ImageError(f"{path}: not a readable PNG ({exc})") from None
    if arr.ndim == 3:
        if arr.shape[2] == 4 and np.any(arr[..., 3] != 1):
            raise ImageError(f"{path}: transparent image; expected an 8-bit grayscale PNG")
        if np.any(arr[..., :3] != arr[..., :1]):
            raise ImageError(f"{path}: colour image; expected an 8-bit grayscale PNG")
        arr = arr[..., 0]
    if arr.dtype.kind == "f":               # matplotlib scales 8-bit PNGs to [0, 1]
        scaled = arr * 255
        if np.any(np.abs(scaled - np.round(scaled)) > 1e-3):
            raise ImageError(f"{path}: not an 8-bit image (16-bit PNGs are not supported)")
        arr = np.round(scaled)
    return arr.astype(np.uint8)


def _read_png_folder(folder: Path) -> np.ndarray:
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() == ".png")
    if not files:
        raise ImageError(f"{folder}: no .png files in this folder (expected 28x28 grayscale PNGs)")
    images = []
    for path in files:
        arr = _read_png(path)
        if arr.shape != (28, 28):
            raise ImageError(f"{path}: {arr.shape[1]}x{arr.shape[0]} pixels; expected 28x28 "
                             "(a raw MNIST-style digit, white on black)")
        images.append(arr)
    return np.stack(images)


def load_images(spec=100, *, data=None) -> ImageSet:
    """Images to simulate.

    Parameters
    ----------
    spec : int, "all", or path
        ``N``: the first ``N`` MNIST test images (with labels); ``"all"``: all 10,000; a path:
        a ``.npy`` file holding uint8 ``(N, 28, 28)`` or ``(28, 28)``, or a folder of 28x28
        8-bit grayscale PNG files (read in file-name order; PIL when installed, else
        matplotlib). User images have no labels.
    data : str, optional
        MNIST folder (see :func:`golden.mnist.load_mnist`).

    Raises
    ------
    ImageError
        Unreadable file, wrong shape or dtype, or a count below 1 (``ValueError``).
    golden.mnist.MnistError
        MNIST files missing.
    """
    from golden.mnist import load_mnist

    if isinstance(spec, str) and spec.strip().lower() == "all":
        images, labels = load_mnist("test", data=data)
        return ImageSet(np.ascontiguousarray(images), labels.astype(np.int64), "MNIST test images")
    if isinstance(spec, (int, np.integer)) or (isinstance(spec, str) and spec.strip().isdigit()):
        n = int(spec)
        if n < 1:
            raise ImageError(f"the number of images must be at least 1, got {n}")
        images, labels = load_mnist("test", data=data)
        if n > len(images):
            raise ImageError(f"{n} images requested, the MNIST test set has {len(images)}")
        return ImageSet(np.ascontiguousarray(images[:n]), labels[:n].astype(np.int64),
                        f"first {n} MNIST test images")
    path = Path(spec)
    if path.is_dir():
        return ImageSet(_read_png_folder(path), None, f"{path} (PNG files)")
    if not path.exists():
        raise ImageError(f"{path}: no such file or folder (expected N, 'all', a .npy file or a "
                         "folder of PNG files)")
    if path.suffix.lower() == ".png":
        arr = _read_png(path)
        return ImageSet(_check_array(arr, path), None, str(path))
    try:
        arr = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise ImageError(f"{path}: not a .npy array file ({exc})") from None
    if not isinstance(arr, np.ndarray):
        raise ImageError(f"{path}: holds several arrays (.npz); save one uint8 (N, 28, 28) array with np.save")
    return ImageSet(_check_array(arr, path), None, str(path))


def expected_words(qnet: QNet, images) -> tuple[reference.ReferenceResult, np.ndarray]:
    """Golden result (no taps) and the expected output words: (N, classes + 1) int64, the
    logits then the class index, as ``m_axis`` carries them."""
    ref = reference.run(qnet, images, taps=False)
    return ref, np.concatenate([ref.logits, ref.classes[:, None]], axis=1).astype(np.int64)


# --------------------------------------------------------------------------- running shards

def _save_npy(path: Path, arr) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".npy", dir=path.parent)
    os.close(fd)
    np.save(tmp, arr)
    os.replace(tmp, path)


def _digest(*parts) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part.tobytes() if isinstance(part, np.ndarray) else json.dumps(part, sort_keys=True,
                                                                               default=str).encode())
    return h.hexdigest()


def _word_format(accel) -> dict:
    fmt = accel.qnet.output_fmt
    return {"out_bits": len(accel.m_axis_tdata), "logit_bits": fmt.bits, "logit_signed": bool(fmt.signed)}


def _timeout_cycles(manifest, stall) -> int:
    """Cycles without any output beat after which a run is declared hung."""
    base = manifest["predicted_latency_cycles"] + manifest["predicted_ii_cycles"]
    return int(20 * base / max(0.05, 1.0 - stall)) + 10_000


class _Run:
    """One simulator process: inputs written, ``run_cocotb`` called, results read."""

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
        try:
            return int(self.progress_path.read_text().strip() or 0)
        except (OSError, ValueError):
            return 0

    def __call__(self):
        from sim.runner import run_cocotb

        try:
            self.sim = run_cocotb(verilog_sources=self.gen.sim_sources or [self.gen.verilog],
                                  toplevel=self.gen.top,
                                  test_module=TB_MODULE, build_key=_build_key(self.gen),
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


def _build_marker(gen, build: dict, waves: bool) -> Path:
    """The file whose existence says the Verilator build of ``gen`` is cached."""
    from sim.runner import build_dir_for

    sources = gen.sim_sources or [gen.verilog]
    return build_dir_for([(p.name, p.read_text()) for p in sources], gen.top, build_key=_build_key(gen),
                         waves=waves, **build) / ".lenet5-built.json"


def _build_key(gen) -> str:
    return f"{gen.top}-{gen.qnet.variant}"


def _run_parallel(runs, progress=None, status=None, marker: Path | None = None, poll_s=0.5):
    """Run the ``_Run``\\ s in threads (each drives its own simulator process), reporting
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


def _work_dir(gen, *key) -> Path:
    vhash = hashlib.sha256(gen.verilog.read_bytes()).hexdigest()[:12]
    return SIM_WORK_ROOT / f"{gen.top}-{vhash}" / _digest(*key)[:12]


def _steady_intervals(tlast: np.ndarray) -> np.ndarray:
    intervals = np.diff(np.asarray(tlast, dtype=np.int64))
    return intervals[WARMUP_IMAGES:] if len(intervals) > WARMUP_IMAGES else intervals[-1:]


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
    manifest = gen.manifest
    n = len(images)
    t0 = time.perf_counter()
    ref, expected = expected_words(gen.qnet, images.images)
    golden_s = time.perf_counter() - t0

    jobs = min(jobs, n)
    bounds = np.linspace(0, n, jobs + 1).round().astype(int)
    base = {**_word_format(gen.accel), "stall": stall, "driver": driver,
            "timeout_cycles": _timeout_cycles(manifest, stall)}
    work = _work_dir(gen, images.images, stall, seed, jobs, driver, waves)
    runs = []
    for k in range(jobs):
        lo, hi = bounds[k], bounds[k + 1]
        runs.append(_Run(gen, work, f"shard{k}", images.images[lo:hi], expected[lo:hi],
                         {**base, "seed": seed * 1000 + k}, FAST_BUILD, "stream_images", waves))
    t0 = time.perf_counter()
    _run_parallel(runs, progress, status, _build_marker(gen, FAST_BUILD, waves))
    shards_s = time.perf_counter() - t0
    results = [run.results() for run in runs]
    if progress is not None:
        progress(n)

    outputs = np.concatenate([r["outputs"] for r in results])
    mismatch = []
    for k, r in enumerate(results):
        for i, reason in zip(r["mismatch_index"], r["mismatch_reason"]):
            g = int(bounds[k] + i)
            mismatch.append({"image": g, "reason": str(reason), "expected": expected[g].tolist(),
                             "got": outputs[g].tolist() if g < len(outputs) else None})
    steady = np.concatenate([_steady_intervals(r["tlast_cycles"]) for r in results if len(r["tlast_cycles"]) > 1]
                            or [np.zeros(0, np.int64)])
    lean = (driver or ("axi" if stall else "lean")) == "lean"
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
    build_s = max(run.sim.build_seconds for run in runs if run.sim) if any(run.sim for run in runs) else None
    built = any(run.sim.built for run in runs if run.sim)
    run_s = max(run.sim.run_seconds for run in runs if run.sim) if any(run.sim for run in runs) else shards_s
    rtl_classes = outputs[:, -1]
    report = {
        "images": n,
        "image_source": images.source,
        "mismatches": len(mismatch),
        "rtl_accuracy": None if images.labels is None else float(np.mean(rtl_classes == images.labels)),
        "golden_accuracy": None if images.labels is None else float(np.mean(ref.classes == images.labels)),
        "rtl_golden_class_agreement": float(np.mean(rtl_classes == ref.classes)),
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
        "wall_s": run_s,
        "images_per_wall_s": n / run_s if run_s else None,
        "build_s": build_s,
        "built": built,
        "golden_s": golden_s,
        "total_s": time.perf_counter() - t_start,
        "fold": manifest["fold"],
        "stall": stall,
        "seed": seed,
        "jobs": jobs,
        "driver": "lean" if lean else "axi",
        "variant": gen.qnet.variant,
        "verilog": str(gen.verilog),
        "shards": [{"images": int(bounds[k + 1] - bounds[k]), "run_dir": str(run.sim.run_dir) if run.sim else None,
                    "testbench_wall_s": float(r["wall_s"]), "testbench_cpu_s": float(r["cpu_s"]),
                    "waves": str(run.sim.waves_file) if run.sim and run.sim.waves_file else None}
                   for k, (run, r) in enumerate(zip(runs, results))],
        "mismatch_list": mismatch[:max_listed],
    }
    if mismatch and diagnose_first:
        if status is not None:
            status("locating the first mismatch")
        first = mismatch[0]["image"]
        try:
            report["mismatch_list"][0]["diagnosis"] = diagnose(gen, images, first,
                                                               previous=first > bounds[np.searchsorted(bounds, first, "right") - 1])
        except Exception as exc:            # the diagnosis must not hide the mismatch report
            report["mismatch_list"][0]["diagnosis"] = {"error": f"{type(exc).__name__}: {exc}"}
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
    run = _Run(gen, _work_dir(gen, imgs, "reset"), "reset", imgs, expected,
               {**_word_format(gen.accel), "timeout_cycles": _timeout_cycles(gen.manifest, 0.0)},
               FAST_BUILD, "reset_recovery")
    run()
    r = run.results() if run.results_path.is_file() else {}
    return {"passed": run.error is None,
            "idle_latency_cycles": int(r["idle_latency"]) if "idle_latency" in r else None,
            "latency_after_reset_cycles": r["latency_after_reset"].tolist() if "latency_after_reset" in r else None,
            "message": None if run.error is None else str(run.error).split("\n")[0]}


# --------------------------------------------------------------------------- diagnosis

_ID = r"(?:\\\S+|[A-Za-z_][\w$]*)"


def _clean(name: str) -> str:
    """A Verilog identifier spelled as Verilator's VPI names it: plain, or escaped as ``\\name ``
    (backslash, name, one space)."""
    name = name.strip()
    return f"{name} " if name.startswith("\\") else name


def _module(text: str, name: str) -> str:
    m = re.search(rf"^module {re.escape(name)}\s*\(.*?^endmodule", text, re.M | re.S)
    if m is None:
        raise ValueError(f"module {name!r} not found in the Verilog")
    return m.group(0)


def _ports(module_text: str) -> dict:
    """Port name -> (direction, width) of a module."""
    ports = {}
    for d, hi, lo, name in re.findall(rf"^\s*(input|output)\s+(?:\[(\d+):(\d+)\]\s+)?({_ID})\s*;",
                                      module_text, re.M):
        ports[_clean(name)] = (d, int(hi) - int(lo) + 1 if hi else 1)
    return ports


def _instances(module_text: str, prefix: str) -> dict:
    """Instance name -> {port: net} of the submodules of a module (simple nets only)."""
    result = {}
    pattern = rf"^\s*{re.escape(prefix)}(\S+)\s+({_ID})\s*\((.*?)\);"
    for _, inst, body in re.findall(pattern, module_text, re.M | re.S):
        conns = {}
        for port, net in re.findall(rf"\.({_ID})\s*\(\s*({_ID})\s*\)", body):
            conns[_clean(port)] = _clean(net)
        result[_clean(inst)] = conns
    return result


def stream_taps(verilog_text: str, stages, top: str = "lenet5_accel") -> list:
    """Top-level nets of each stage's output stream, found from the emitted Verilog's structure.

    Amaranth renames a submodule's ports after the signals that drive them (``out_valid``,
    ``o__payload$58``), so the names are not predictable; the structure is: a stage's output
    payload is its only multi-bit output port, and its successor (the next stage or a FIFO)
    is the instance sharing that net; ``valid`` is the 1-bit output and ``ready`` the 1-bit
    input the two instances share.

    Returns a list of ``{"name", "stage", "valid", "ready", "payload"}`` for the stages that have
    a successor inside the accelerator (all but the output stage, seen on ``m_axis``).
    """
    top_text = _module(verilog_text, top)
    instances = _instances(top_text, f"\\{top}.")
    alias = {}
    for a, b in re.findall(rf"^\s*assign\s+({_ID})\s*=\s*({_ID})\s*;", top_text, re.M):
        alias[_clean(a)] = _clean(b)

    def canon(net):
        seen = set()
        while net in alias and net not in seen:
            seen.add(net)
            net = alias[net]
        return net

    taps = []
    for index, stage in enumerate(stages):
        if stage.is_slice:
            continue                         # a register slice repeats its predecessor's stream
        inst = f"{stage.layer.lower()}_{stage.role}"
        if inst not in instances:
            raise ValueError(f"stage instance {inst!r} not found in module {top}")
        ports = _ports(_module(verilog_text, f"\\{top}.{inst}"))
        conns = {p: canon(net) for p, net in instances[inst].items()}
        width = stage.component.o.payload.shape().size
        payload = [p for p, (d, w) in ports.items() if d == "output" and w == width and p in conns]
        if len(payload) != 1:
            raise ValueError(f"{inst}: cannot tell its output payload port ({payload})")
        net = conns[payload[0]]
        others = [name for name, c in instances.items() if name != inst
                  and net in {canon(v) for v in c.values()}]
        if not others:
            continue                         # drives the top level's ports (m_axis)
        succ = {canon(v) for v in instances[others[0]].values()}
        valid = [p for p, (d, w) in ports.items() if d == "output" and w == 1 and conns.get(p) in succ]
        ready = [p for p, (d, w) in ports.items() if d == "input" and w == 1 and conns.get(p) in succ
                 and p not in ("clk", "rst")]
        if len(valid) != 1 or len(ready) != 1:
            raise ValueError(f"{inst}: cannot tell its output valid/ready ports ({valid}, {ready})")
        taps.append({"name": inst, "stage": index, "valid": conns[valid[0]], "ready": conns[ready[0]],
                     "payload": net})
    return taps


def _stage_expected(qnet: QNet, stage, taps: dict) -> np.ndarray:
    """Golden values of a stage's output for a batch: (N, C, H, W) maps or (N, O) vectors."""
    layer = qnet.layer(stage.layer)
    names = ["input"] + [l.name for l in qnet.layers]
    x = taps[names[names.index(layer.name) - 1]]
    if stage.role == "engine":
        if layer.kind == "pool" and layer.pool == "max":
            return reference.layer_forward(layer, x)
        return reference.layer_accumulate(layer, x)
    if stage.role == "requant":
        a = arith.requantize(reference.layer_accumulate(layer, x), layer.requant.multiplier,
                             layer.requant.shift, layer.act_fmt)
        return arith.relu(a) if layer.activation.kind == "relu" else a
    if stage.role == "tanh":
        return taps[layer.name]
    raise ValueError(f"no golden value for stage role {stage.role!r}")


def _stream_order(values: np.ndarray) -> np.ndarray:
    """One frame in stream order: maps in raster order with the channels of a position together."""
    return values.transpose(1, 2, 0).reshape(-1) if values.ndim == 3 else values.reshape(-1)


def diagnose(gen, images: ImageSet, index: int, *, previous: bool = True) -> dict:
    """Locate a mismatch of image ``index`` stage by stage.

    Re-runs image ``index`` (after image ``index - 1``, back to back, when ``previous``) with
    :data:`DEBUG_BUILD`, records every stage's output stream and compares it
    with the golden values of that stage (:func:`golden.reference.layer_accumulate`,
    :func:`golden.arith.requantize`, the layer outputs of :func:`golden.reference.run`).

    Returns a dict: ``first_difference`` (``layer``, ``stage``, ``channel``, ``position`` as
    ``[y, x]`` or None for vectors, ``expected``, ``got``, ``beat``, ``lane``) or None,
    ``reproduced`` (the final output differs again), ``stages_checked``, ``images_run``.
    """
    from amaranth.lib import data as adata

    indices = [index - 1, index] if previous and index > 0 else [index]
    subset = images.images[indices]
    ref = reference.run(gen.qnet, subset, taps=True)
    expected = np.concatenate([ref.logits, ref.classes[:, None]], axis=1).astype(np.int64)
    taps = stream_taps(gen.verilog.read_text(), gen.accel.stages, gen.top)
    run = _Run(gen, _work_dir(gen, subset, "diagnose"), "diagnose", subset, expected,
               {**_word_format(gen.accel), "timeout_cycles": _timeout_cycles(gen.manifest, 0.0),
                "taps": taps}, DEBUG_BUILD, "capture_taps")
    run()
    r = run.results()
    frame = len(indices) - 1
    reproduced = bool(np.any(r["outputs"][frame] != expected[frame])) if len(r["outputs"]) > frame else True
    first = None
    checked = []
    for k, tap in enumerate(taps):
        stage = gen.accel.stages[tap["stage"]]
        layout = stage.component.o.payload.shape()
        lanes = layout.members["data"].length
        want = _stage_expected(gen.qnet, stage, ref.taps)[frame]
        want_flat = _stream_order(want)
        beats = [adata.Const(layout, int(h, 16)) for h in r[f"tap_{k}"]]
        per_frame = len(want_flat) // lanes
        mine = beats[frame * per_frame:(frame + 1) * per_frame]
        got_flat = np.array([int(b.data[i]) for b in mine for i in range(lanes)], dtype=np.int64)
        checked.append(tap["name"])
        n = min(len(got_flat), len(want_flat))
        diff = np.nonzero(got_flat[:n] != want_flat[:n])[0]
        if diff.size or len(got_flat) != len(want_flat):
            e = int(diff[0]) if diff.size else n
            if want.ndim == 3:
                c_, h_, w_ = want.shape
                channel, position = e % c_, [e // (c_ * w_), (e // c_) % w_]
            else:
                channel, position = e, None
            first = {"layer": stage.layer, "stage": tap["name"], "channel": int(channel), "position": position,
                     "expected": int(want_flat[e]) if e < len(want_flat) else None,
                     "got": int(got_flat[e]) if e < len(got_flat) else None,
                     "beat": e // lanes, "lane": e % lanes,
                     "beats_seen": len(mine), "beats_expected": per_frame}
            break
    return {"image": index, "images_run": [int(i) for i in indices], "reproduced": reproduced,
            "first_difference": first, "stages_checked": checked,
            "note": None if first else ("every stage output matches the golden values; the difference is in "
                                        "the output stage" if reproduced else
                                        "not reproduced when re-run after the previous image alone")}
