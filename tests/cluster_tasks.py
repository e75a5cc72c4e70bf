"""Task functions for tests/test_cluster.py, importable on the Dask workers the tests start.

Each run of a task leaves a marker file ``<trace_dir>/<name>.<worker pid>.<ns>`` before it works,
so a test can see which worker runs what, kill that worker in the middle of the task, and count
how often each task ran (the test machine's folder is shared with its own workers: the tasks
themselves do not rely on that, only the test's bookkeeping does).
"""

import os
import time
from pathlib import Path


def _mark(payload):
    trace = Path(payload["trace_dir"])
    (trace / f"{payload['name']}.{os.getpid()}.{time.monotonic_ns()}").touch()


def traced_synth(payload, workdir):
    """:func:`hw.flow.synth_task.synth_task` of ``payload["synth"]``, after the marker."""
    from hw.flow.synth_task import synth_task

    _mark(payload)
    return synth_task(payload["synth"], workdir)


def traced_square(payload, workdir):
    """``{"square": x * x, "workdir_was_empty": ...}`` of ``payload["x"]``, after the marker;
    waits ``payload["sleep"]`` seconds first (default 0)."""
    _mark(payload)
    empty = not any(workdir.iterdir())
    time.sleep(payload.get("sleep", 0))
    return {"square": payload["x"] * payload["x"], "workdir_was_empty": empty}


def runs(trace_dir, name):
    """Worker pids of the runs of task *name* so far, in the order they started."""
    marks = [p.name.split(".") for p in Path(trace_dir).iterdir() if p.name.split(".")[0] == name]
    return [int(pid) for _, pid, _ in sorted(marks, key=lambda m: int(m[2]))]
