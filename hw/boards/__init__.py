"""Boards: the pins of the FPGA boards the flow builds for.

Today the flow's builds are board-less (:mod:`hw.flow`): the design's ports are not tied to a
board's pins, and a board file supplies only the clock pin, so that the clock reaches the global
clock network (:mod:`hw.boards.ulx3s` for the ECP5 targets). A target names its board in
:attr:`hw.targets.Target.board`; :func:`clock_constraint` is what the flow asks.

A board module defines ``CLOCK_PORT``, ``CONSTRAINT_FORMAT`` (``"lpf"`` or ``"pcf"``) and
``clock_constraint(port) -> str``.
"""

from __future__ import annotations

from importlib import import_module

__all__ = ["BOARDS", "board_module", "clock_constraint"]

#: Board name -> module.
BOARDS = {"ulx3s": "hw.boards.ulx3s"}


def board_module(name: str):
    """The module of board *name*.

    Raises
    ------
    ValueError
        An unknown board (the message lists the valid ones).
    """
    if name not in BOARDS:
        raise ValueError(f"unknown board {name!r}; valid boards: {', '.join(BOARDS)}")
    return import_module(BOARDS[name])


def clock_constraint(target, ports) -> tuple[str, str] | None:
    """``(format, text)`` of the clock-pin constraint of a board-less build for *target*
    (a :class:`hw.targets.Target`) whose top level has *ports*; None when the target names no
    board or the design has no clock port. The format is ``"lpf"`` (nextpnr-ecp5 ``--lpf``) or
    ``"pcf"`` (nextpnr-ice40 ``--pcf``)."""
    if target.board is None:
        return None
    board = board_module(target.board)
    if board.CLOCK_PORT not in ports:
        return None
    return board.CONSTRAINT_FORMAT, board.clock_constraint(board.CLOCK_PORT)
