"""`lenet5 simulate` on a real Dask cluster: a scheduler and two workers started here as processes
on 127.0.0.1 (tests/test_cluster.py's DaskProcesses), 200 MNIST images in two shards through
``--scheduler``, one worker killed while its shard's simulator runs. Every image's result arrives
exactly once and is bit-exact (the expected words come from golden.reference in this process).
"""

import json
import os
import threading
import time

import pytest

from lenet5 import MODELS_DIR, REPO_ROOT
from lenet5.cli import main
from tests.test_cluster import DaskProcesses


def _children(pid: int) -> list:
    """Pids of the processes whose parent is ``pid`` (from /proc)."""
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    if int(f.read().rsplit(") ", 1)[1].split()[1]) == pid:
                        out.append(int(entry))
            except (OSError, IndexError, ValueError):
                pass
    return out


@pytest.mark.sim
@pytest.mark.skipif(not os.path.isdir("/proc"), reason="finds the simulator processes through /proc")
def test_simulate_on_a_cluster_survives_a_lost_worker(tmp_path, capsys):
    procs = DaskProcesses(tmp_path)
    try:
        procs.start_workers(2)
        killed = {}

        def killer():
            # The first worker whose simulator (or model build: a child process) runs is killed.
            def running():
                for pid in procs.alive():
                    if _children(pid):
                        return pid
                return None

            pid = DaskProcesses._wait(running, timeout=600)
            time.sleep(0.2)
            killed["pid"] = pid
            orphans = _children(pid)
            procs.kill_worker(pid)
            for child in orphans:                # the simulator the worker started ends too
                try:
                    os.kill(child, 9)
                except ProcessLookupError:
                    pass

        thread = threading.Thread(target=killer, daemon=True)
        thread.start()
        out = tmp_path / "report.json"
        status = main(["simulate", "--model", str(MODELS_DIR / "modern_int8.json"), "--images", "200",
                       "--stall", "0.3", "--jobs", "2", "--scheduler", procs.address, "--quiet",
                       "--out", str(REPO_ROOT / "build" / "test_accel" / "modern-default"), "--json", str(out)])
        thread.join(timeout=30)
        assert status == 0, capsys.readouterr()
        assert killed, "no worker was killed"
        rep = json.loads(out.read_text())
        assert rep["images"] == 200 and rep["mismatches"] == 0 and rep["driver"] == "fast"
        assert len(rep["rtl_classes"]) == 200 and rep["rtl_accuracy"] == rep["golden_accuracy"]
        assert [s["images"] for s in rep["shards"]] == [100, 100]
        workers = [s["worker"] for s in rep["shards"]]
        assert all(w and w.startswith("tcp://127.0.0.1:") for w in workers)
        # both shards finished on the surviving worker (the killed one's was run again there)
        assert len(set(workers)) == 1
        assert procs.alive() == [p for p in procs.workers if p != killed["pid"]]
    finally:
        procs.stop()
