"""What the synthesis flow and the long-running loops print (issue 15): no progress bar into a
log, honest messages about the abc9 fallback and missed timing, and what a board-less bitstream
is for. Stand-ins only: no Yosys or nextpnr run."""

import sys

import numpy as np
import pytest

from hw.flow import tools


# -- progress into a log ---------------------------------------------------------------------

def test_status_line_to_a_log_has_no_carriage_returns(capsys):
    """stderr captured (not a terminal): a line when a phase starts and one when it ends."""
    assert not sys.stderr.isatty()
    status = tools.Status(True, "yosys ecp5-25k")
    for i in range(50):
        status.update(f"{i}. Executing PASS")
        status.tick()
    status.close("done")
    err = capsys.readouterr().err
    assert "\r" not in err
    lines = err.splitlines()
    assert lines[0] == "[yosys ecp5-25k] started" and lines[-1].startswith("[yosys ecp5-25k] done after")
    assert len(lines) == 2


def test_training_to_a_log_prints_one_line_per_epoch(capsys):
    torch = pytest.importorskip("torch")
    from golden.model import LeNet5
    from golden.train import fit

    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.integers(0, 256, (64, 28, 28), dtype=np.uint8))
    y = torch.from_numpy(rng.integers(0, 10, 64)).long()
    fit(LeNet5("modern"), x, y, epochs=2, batch_size=32, lr=1e-3, augment=False, seed=0, progress=True,
        desc="QAT")
    err = capsys.readouterr().err
    assert "\r" not in err
    lines = err.splitlines()
    assert len(lines) == 2 and lines[0].startswith("QAT epoch 1/2: loss ") and "train " in lines[0]
