"""Tasks on a Dask ``distributed`` cluster: synthesis points and simulation shards as data in, data out.

A *task* is an importable (hence picklable) function ``fn(payload, workdir) -> result`` and a
*payload*, a dict that carries **all** of the task's inputs as data (Verilog text or the
quantized description's JSON, images as NumPy arrays, options). The function runs on a Dask
worker in a fresh temporary folder *workdir* (deleted afterwards; the YoWASP tools only see files
below their working directory, so a task writes its inputs there and runs the tools with
relative paths) and returns its report, and the logs it wants to keep, as data. No task may
assume a shared file system: the workers may be other machines.

:class:`TaskCluster` runs batches of tasks on an embedded :class:`distributed.LocalCluster`
(``jobs`` worker processes with one thread each, listening on 127.0.0.1 only) or on an existing
scheduler (``scheduler="tcp://HOST:8786"``, workers started there with
``dask worker tcp://HOST:8786``); :func:`run_tasks` is the one-batch shorthand. For a batch
cluster (Slurm, PBS, LSF), start the scheduler and its workers with ``dask-jobqueue``
(``pip install lenet5-fpga[cluster]``; ``SLURMCluster(...).scale(n)``, see the README) and pass
its ``scheduler_address``.

What a batch guarantees
-----------------------
* **One result per key, exactly once**: the returned dict has every key of the batch, each with
  one :class:`TaskResult`; a task whose worker is lost is rescheduled by Dask on another worker.
* **Cache**: a successful result is stored on the client under ``cache_dir`` by the SHA-256 of
  the function's qualified name, the payload (:func:`content_digest`) and the *versions* given
  (tool versions: Yosys, nextpnr, Verilator ...); a re-run returns it (``cached=True``) without
  submitting the task, and starts no cluster at all when every task is cached. Failures are
  never cached.
* **Failures**: a task that raises is retried once (Dask ``retries=1``); if it fails again its
  :class:`TaskResult` has ``ok=False``, ``error`` (exception type and message) and ``log_tail``
  (the exception's own ``log_tail`` when it is a :class:`TaskError`, else the end of the
  traceback and of the newest ``*.log`` in *workdir*); the other tasks' results are unaffected.
* **Progress**: a tqdm bar over finished tasks on stderr, and the Dask dashboard's address
  printed once per cluster (``log``).

Use for simulation shards (one shard = one image range)::

    from hw.flow.cluster import TaskCluster

    payloads = {(lo, hi): {"verilog": text, "images": images[lo:hi], "expected": words[lo:hi],
                           "stall": 0.3, "seed": 1}
                for lo, hi in shards}
    with TaskCluster(jobs=2, scheduler=None) as cluster:     # or scheduler="tcp://host:8786"
        results = cluster.run(sim.shards.run_shard, payloads, cache_dir=None,
                              versions={"verilator": verilator_version()}, desc="shards")
    failed = {k: r for k, r in results.items() if not r.ok}   # r.error, r.log_tail
    words = {k: r.value for k, r in results.items() if r.ok}

where ``run_shard(payload, workdir)`` builds (or takes from a per-worker cache under the system's
temporary folder) the Verilator model of ``payload["verilog"]`` and returns the shard's results.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import pickle
import struct
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["DEFAULT_CACHE_DIR", "LOG_TAIL_LINES", "ClusterError", "TaskCluster", "TaskError", "TaskResult", "content_digest",
           "run_tasks"]

#: Where :func:`run_tasks` keeps results when the caller gives no *cache_dir* (relative to the
#: current directory; ``lenet5`` commands pass their own).
DEFAULT_CACHE_DIR = Path("build") / "cache" / "tasks"
#: Lines of log kept in a failed task's :attr:`TaskResult.log_tail`.
LOG_TAIL_LINES = 30


class ClusterError(ConnectionError):
    """The Dask scheduler cannot be reached (the message names the address and how to start one)."""


class TaskError(RuntimeError):
    """A task failed; ``log_tail`` holds the end of its log (raise it from a task function to
    choose what the client sees). Picklable: it crosses the wire from worker to client."""

    def __init__(self, message: str, log_tail: str = ""):
        super().__init__(message, log_tail)

    @property
    def message(self) -> str:
        return self.args[0]

    @property
    def log_tail(self) -> str:
        return self.args[1]

    def __str__(self):
        return self.message


@dataclass(frozen=True)
class TaskResult:
    """The outcome of one task.

    Members
    -------
    key : hashable
        The task's key in the batch.
    ok : bool
        The function returned (possibly after the one retry).
    value : any
        What the function returned (None when it failed).
    error : str or None
        ``"ExceptionType: message"`` of the last failure (None when ok).
    log_tail : str
        The last :data:`LOG_TAIL_LINES` lines of the failed task's log ("" when ok).
    cached : bool
        Served from the client's cache, not run.
    worker : str or None
        Address of the worker that ran it (None when cached or failed).
    seconds : float or None
        Wall seconds of the function on the worker (None when failed).
    digest : str
        The task's content hash (:func:`content_digest`; its cache file name).
    """

    key: Hashable
    ok: bool
    value: Any = None
    error: str | None = None
    log_tail: str = ""
    cached: bool = False
    worker: str | None = None
    seconds: float | None = None
    digest: str = ""


# -- content hash ---------------------------------------------------------------------------------

def _encode(obj, out: list) -> None:
    """Append a canonical, type-tagged byte encoding of *obj* to *out*."""
    if obj is None or isinstance(obj, bool):
        out.append(b"N" if obj is None else (b"T" if obj else b"F"))
    elif isinstance(obj, int):
        text = str(obj).encode()
        out += [b"i", struct.pack("<Q", len(text)), text]
    elif isinstance(obj, float):
        out += [b"f", struct.pack("<d", obj)]
    elif isinstance(obj, str):
        data = obj.encode("utf-8", "surrogatepass")
        out += [b"s", struct.pack("<Q", len(data)), data]
    elif isinstance(obj, (bytes, bytearray, memoryview)):
        data = bytes(obj)
        out += [b"b", struct.pack("<Q", len(data)), data]
    elif isinstance(obj, Mapping):
        items = sorted(((_digest_of(k), k, v) for k, v in obj.items()), key=lambda t: t[0])
        out += [b"d", struct.pack("<Q", len(items))]
        for _, k, v in items:
            _encode(k, out)
            _encode(v, out)
    elif isinstance(obj, (list, tuple)):
        out += [b"l" if isinstance(obj, list) else b"t", struct.pack("<Q", len(obj))]
        for item in obj:
            _encode(item, out)
    elif type(obj).__module__ == "numpy" and hasattr(obj, "dtype"):
        import numpy as np
        arr = np.ascontiguousarray(obj)
        out += [b"a", arr.dtype.str.encode(), struct.pack("<Q", arr.ndim),
                struct.pack(f"<{arr.ndim}Q", *arr.shape), arr.tobytes()]
    else:
        raise TypeError(f"a task payload holds data only (None, bool, int, float, str, bytes, dict, list, "
                        f"tuple, NumPy arrays), not {type(obj).__name__}: {obj!r:.80}")


def _digest_of(obj) -> bytes:
    parts: list = []
    _encode(obj, parts)
    return hashlib.sha256(b"".join(parts)).digest()


def _function_name(fn: Callable) -> str:
    module, name = getattr(fn, "__module__", None), getattr(fn, "__qualname__", None)
    if not module or not name or "<" in name or module == "__main__":
        raise TypeError(f"a task function must be a module-level function importable on the workers, "
                        f"not {fn!r}")
    return f"{module}.{name}"


def content_digest(fn: Callable, payload: Mapping, versions: Mapping | None = None) -> str:
    """SHA-256 (hex) of the task: *fn*'s qualified name, the *payload* and the *versions*.

    Equal for equal data, whatever the dict order, the process or the machine; a NumPy array
    counts by dtype, shape and bytes.

    Raises
    ------
    TypeError
        *fn* is not a module-level function, or the payload holds something other than data.
    """
    return hashlib.sha256(_digest_of({"fn": _function_name(fn), "payload": payload,
                                      "versions": dict(versions or {})})).hexdigest()


# -- worker side ----------------------------------------------------------------------------------

def _newest_log_tail(workdir: Path, lines: int) -> str:
    logs = sorted(workdir.rglob("*.log"), key=lambda p: (p.stat().st_mtime, str(p)))
    if not logs:
        return ""
    text = logs[-1].read_text(errors="replace").splitlines()[-lines:]
    return f"--- {logs[-1].name} ---\n" + "\n".join(text)


def _execute(fn: Callable, payload: Mapping) -> dict:
    """Run ``fn(payload, workdir)`` in a fresh temporary folder (on a worker).

    Returns ``{"value", "seconds"}``; raises :class:`TaskError` with the log tail on failure."""
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="lenet5-task-") as tmp:
        workdir = Path(tmp)
        try:
            value = fn(payload, workdir)
        except TaskError:
            raise
        except Exception as exc:  # noqa: BLE001  (any failure is reported to the client as data)
            tb = traceback.format_exc().rstrip().splitlines()[-LOG_TAIL_LINES:]
            logs = _newest_log_tail(workdir, LOG_TAIL_LINES)
            raise TaskError(f"{type(exc).__name__}: {exc}",
                            "\n".join(tb) + (f"\n{logs}" if logs else "")) from None
    return {"value": value, "seconds": round(time.monotonic() - start, 3), "worker": _worker_address()}


def _worker_address() -> str | None:
    with contextlib.suppress(Exception):
        from distributed import get_worker
        return get_worker().address
    return None


# -- client side ----------------------------------------------------------------------------------

class _Cache:
    """Results on the client's disk, one pickle per digest (written atomically)."""

    def __init__(self, folder):
        self.folder = Path(folder) if folder is not None else None

    def path(self, digest):
        return self.folder / digest[:2] / f"{digest}.pkl"

    def get(self, digest):
        if self.folder is None:
            return None
        try:
            with open(self.path(digest), "rb") as f:
                return pickle.load(f)
        except (OSError, EOFError, pickle.UnpicklingError):
            return None

    def put(self, digest, entry):
        if self.folder is None:
            return
        path = self.path(digest)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".pkl")
        try:
            with os.fdopen(fd, "wb") as f:
                pickle.dump(entry, f, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise


class TaskCluster:
    """A Dask client on an embedded local cluster or an existing scheduler, for batches of tasks.

    The cluster starts on the first batch that has something to run (a batch served wholly
    from the cache starts nothing) and stops when the context exits (an existing scheduler and
    its workers are left running).

    Parameters
    ----------
    jobs : int
        Worker processes of the embedded :class:`distributed.LocalCluster` (one thread each,
        on 127.0.0.1, dashboard on a free port, no memory limit, worker log messages silenced:
        failures come back as :class:`TaskResult`). Ignored with *scheduler*.
    scheduler : str, optional
        Address of a running scheduler, e.g. ``"tcp://127.0.0.1:8786"``; its workers run the
        tasks (they must have this project and its tools installed).
    log : callable
        Receives the one-line messages (the dashboard address; default :func:`print`).

    Raises
    ------
    ValueError
        *jobs* below 1, or a *scheduler* address that is not ``tcp://HOST:PORT`` (or
        ``tls://``, ``inproc://``).
    ClusterError
        (on first use) The scheduler cannot be reached (the message names the address and how
        to start one).
    """

    #: Seconds to wait for the scheduler to answer.
    CONNECT_TIMEOUT_S = 20

    def __init__(self, *, jobs: int = 2, scheduler: str | None = None, log: Callable[[str], None] = print):
        if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
            raise ValueError(f"jobs must be an int of at least 1, not {jobs!r}")
        if scheduler is not None and not (isinstance(scheduler, str)
                                          and scheduler.split("://", 1)[0] in ("tcp", "tls", "inproc")
                                          and "://" in scheduler):
            raise ValueError(f"scheduler must be an address like tcp://HOST:8786, not {scheduler!r}")
        self.jobs, self.scheduler, self.log = jobs, scheduler, log
        self._cluster = None
        self._client = None

    # context manager
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        """Close the client and stop the embedded cluster (if any)."""
        client, cluster = self._client, self._cluster
        self._client = self._cluster = None
        if client is not None:
            with contextlib.suppress(Exception):
                client.close()
        if cluster is not None:
            with contextlib.suppress(Exception):
                cluster.close()

    @property
    def started(self) -> bool:
        """Has a batch started the cluster (or connected to the scheduler)?"""
        return self._client is not None

    @property
    def client(self):
        """The :class:`distributed.Client` (started on first use)."""
        if self._client is None:
            self._start()
        return self._client

    def _start(self):
        import dask
        from distributed import Client, LocalCluster

        if self.scheduler is None:
            # The workers' statistical profiler (a stack sample every 10 ms) and a faster system
            # monitor would take CPU from the simulator and tool processes the tasks wait on.
            with dask.config.set({"distributed.worker.daemon": False, "distributed.worker.profile.enabled": False,
                                  "distributed.admin.system-monitor.interval": "2s", "distributed.scheduler.work-stealing": False}):
                self._cluster = LocalCluster(n_workers=self.jobs, threads_per_worker=1, processes=True,
                                             host="127.0.0.1", dashboard_address="127.0.0.1:0",
                                             memory_limit=0, silence_logs=logging.CRITICAL)
            self._client = Client(self._cluster)
            where = f"local cluster of {self.jobs} worker{'s' if self.jobs > 1 else ''}"
        else:
            try:
                self._client = Client(self.scheduler, timeout=f"{self.CONNECT_TIMEOUT_S}s")
            except (OSError, TimeoutError) as exc:
                raise ClusterError(f"cannot reach the Dask scheduler at {self.scheduler} ({exc}); start one with "
                              f"`dask scheduler` and workers with `dask worker {self.scheduler}`") from None
            workers = len(self._client.scheduler_info().get("workers", {}))
            where = f"scheduler {self.scheduler} ({workers} worker{'s' if workers != 1 else ''} now)"
        link = self._client.dashboard_link if self._dashboard_up() else None
        self.log(f"dask: {where}; dashboard: {link or 'none (the scheduler runs without one)'}")

    def _dashboard_up(self) -> bool:
        with contextlib.suppress(Exception):
            return "dashboard" in self._client.scheduler_info().get("services", {})
        return False

    def run(self, fn: Callable, payloads: Mapping[Hashable, Mapping] | Iterable[tuple[Hashable, Mapping]], *,
            cache_dir=DEFAULT_CACHE_DIR, versions: Mapping | None = None, progress: bool = True,
            desc: str = "tasks", on_result: Callable[[TaskResult], None] | None = None,
            total: int | None = None) -> dict[Hashable, TaskResult]:
        """Run ``fn(payload, workdir)`` for every payload; return ``{key: TaskResult}``.

        Parameters
        ----------
        fn : callable
            A module-level function ``fn(payload: dict, workdir: pathlib.Path) -> result``,
            importable on the workers; *result* must be picklable (plain data is best).
        payloads : mapping or iterable of (key, payload)
            The tasks; keys are hashable and unique. An iterable is consumed lazily: each task is
            submitted as soon as its payload is made (the client can build the next payload while
            the workers run the first).
        cache_dir : path-like or None
            Client-side result cache (None: no cache).
        versions : mapping, optional
            Versions of the tools the results depend on (e.g.
            :func:`hw.flow.tools.tool_versions`); part of the content hash.
        progress : bool
            A tqdm bar over finished tasks on stderr.
        desc : str
            The bar's label.
        on_result : callable, optional
            Called with each :class:`TaskResult` as it arrives (cached ones first), e.g. to
            write a build's logs or print a summary line (what it prints appears above the
            progress bar).
        total : int, optional
            The number of tasks, for the progress bar when *payloads* is an iterable.

        Returns
        -------
        dict
            Every key exactly once, in the order of *payloads*.

        Raises
        ------
        ValueError
            A key appears twice.
        TypeError
            *fn* is not importable, or a payload holds something other than data.
        ClusterError
            The scheduler cannot be reached.
        """
        from tqdm import tqdm

        name = _function_name(fn)
        cache = _Cache(cache_dir)
        items = payloads.items() if isinstance(payloads, Mapping) else payloads
        if isinstance(payloads, Mapping):
            total = len(payloads)
        order: list = []
        seen: set = set()
        results: dict = {}
        futures: dict = {}                    # future -> (key, digest)
        bar = tqdm(total=total, desc=desc, unit="task", disable=not progress, file=sys.stderr,
                   dynamic_ncols=True)

        def arrive(result):
            if result.key in results:           # pragma: no cover  (Dask delivers each future once)
                raise RuntimeError(f"task {result.key!r} delivered twice")
            results[result.key] = result
            if on_result is not None:
                with bar.external_write_mode():
                    on_result(result)
            bar.update(1)

        try:
            from distributed import as_completed
            pending = None
            for key, payload in items:
                if key in seen:
                    raise ValueError(f"task key {key!r} appears twice")
                seen.add(key)
                order.append(key)
                if total is None or len(order) > total:
                    bar.total = len(order)
                    bar.refresh()
                digest = content_digest(fn, payload, versions)
                entry = cache.get(digest)
                if entry is not None:
                    arrive(TaskResult(key, True, entry["value"], cached=True, seconds=entry.get("seconds"),
                                      digest=digest))
                    continue
                if self._client is None:
                    with bar.external_write_mode():
                        self._start()
                future = self.client.submit(_execute, fn, payload, retries=1, pure=False,
                                            key=f"{name.rsplit('.', 1)[-1]}-{digest[:16]}-{len(order)}")
                futures[future] = (key, digest)
                if pending is None:
                    pending = as_completed([future], with_results=False)
                else:
                    pending.add(future)
                for done in _ready(pending):
                    self._collect(done, futures, cache, arrive)
            if pending is not None:
                for done in pending:
                    self._collect(done, futures, cache, arrive)
        finally:
            bar.close()
            for future in futures:
                future.release()
        return {key: results[key] for key in order}

    @staticmethod
    def _collect(future, futures, cache, arrive):
        key, digest = futures.pop(future)
        if future.status == "finished":
            out = future.result()
            future.release()                    # the worker may drop its copy now
            cache.put(digest, {"value": out["value"], "seconds": out["seconds"]})
            arrive(TaskResult(key, True, out["value"], worker=out["worker"], seconds=out["seconds"], digest=digest))
            return
        try:
            exc = future.exception()
        except Exception as cancelled:  # noqa: BLE001  (cancelled: the scheduler lost it, e.g. restarted)
            exc = cancelled
        future.release()
        if isinstance(exc, TaskError):
            arrive(TaskResult(key, False, error=exc.message, log_tail=exc.log_tail, digest=digest))
        else:                                   # e.g. KilledWorker: lost workers more often than allowed
            arrive(TaskResult(key, False, error=f"{type(exc).__name__}: {exc}",
                              log_tail="".join(traceback.format_exception_only(type(exc), exc)).rstrip(),
                              digest=digest))


def _ready(pending) -> list:
    """The futures of *pending* that have finished already (without waiting)."""
    return pending.next_batch(block=False) if pending.has_ready() else []


def run_tasks(fn: Callable, payloads, *, jobs: int = 2, scheduler: str | None = None,
              cache_dir=DEFAULT_CACHE_DIR, versions: Mapping | None = None, progress: bool = True,
              desc: str = "tasks", on_result: Callable[[TaskResult], None] | None = None,
              total: int | None = None, log: Callable[[str], None] = print) -> dict[Hashable, TaskResult]:
    """One batch on a :class:`TaskCluster` (started for it and stopped after it).

    Parameters and result as :meth:`TaskCluster.run` (*jobs*, *scheduler*, *log* as
    :class:`TaskCluster`).
    """
    with TaskCluster(jobs=jobs, scheduler=scheduler, log=log) as cluster:
        return cluster.run(fn, payloads, cache_dir=cache_dir, versions=versions, progress=progress,
                           desc=desc, on_result=on_result, total=total)
