"""ULX3S (Radiona): the ECP5 board whose clock pin the board-less ECP5 builds use.

The ULX3S carries an ECP5 LFE5U in the CABGA381 package, the package of the ECP5 targets
(:mod:`hw.targets`), with its 25 MHz oscillator on ball G2 (PCLKT6_0, a primary clock input).

This module holds only the clock pin: the flow's builds are board-less (the design's ports are
not a board's pins) and constrain **only the clock**, which left to the placer once landed on a
general I/O whose route to the global clock network failed ("Failed to route arc 0.0 of net
'clk$TRELLIS_IO_IN' ... to G_CLKI_TDCC0") on the LFE5U-85F; every other port is left to nextpnr
(``--lpf-allow-unconstrained``). A board design with its full pin list is a later addition here.
"""

from __future__ import annotations

__all__ = ["CLOCK_PORT", "CLOCK_SITE", "CLOCK_IO_TYPE", "CLOCK_MHZ", "CONSTRAINT_FORMAT", "clock_constraint",
           "CLOCK_LPF"]

#: The designs' clock input port (Amaranth's default ``sync`` domain).
CLOCK_PORT = "clk"
#: Ball of the 25 MHz oscillator input (PCLKT6_0) on the CABGA381.
CLOCK_SITE = "G2"
#: I/O standard of the clock pin.
CLOCK_IO_TYPE = "LVCMOS33"
#: Oscillator frequency (MHz).
CLOCK_MHZ = 25
#: Constraint file format of the family (nextpnr-ecp5 ``--lpf``).
CONSTRAINT_FORMAT = "lpf"


def clock_constraint(port: str = CLOCK_PORT) -> str:
    """LPF text that puts *port* on the oscillator's pin (and nothing else)."""
    return f'LOCATE COMP "{port}" SITE "{CLOCK_SITE}";\nIOBUF PORT "{port}" IO_TYPE={CLOCK_IO_TYPE};\n'


#: The LPF of the designs' clock port.
CLOCK_LPF = clock_constraint()
