"""Lattice ECP5 DSP block: the ``MULT18X18D`` primitive with its own registers, and a simulation model.

nextpnr-ecp5 times a ``MULT18X18D`` without registers as one combinational path from the fabric
through the block and back (on the LFE5U-85F, -6, a product register next to each block was
still reached in a median 10.8 ns from the operand registers, C1's 75 blocks); Yosys maps ``$mul``
to such unregistered blocks and does not pack fabric registers into them. :func:`mult18x18d`
instantiates the block with its **input registers** (A and B, ``CLK0``) and its **output
register** (``CLK0``) enabled, so that every route into or out of the block is a register to
register path of its own and the multiplier's delay is inside the block:

``P(t + 2) = A(t) * B(t)`` (36-bit two's complement, ``SIGNEDA = SIGNEDB = 1``), latency 2 cycles.

The hardware description stays in Amaranth: the primitive is an ``Instance`` of the vendor cell
(Yosys reads it from its ECP5 cell library), and :class:`MULT18X18DModel` is the same
configuration described in Amaranth, emitted as a module named ``MULT18X18D`` for simulation
(Verilator) so that designs that use the primitive are simulated bit for bit with the integer
reference like every other design. The model implements only the configuration
:func:`mult18x18d` uses (the parameters :data:`MULT18X18D_PARAMS`); ignore its other ports.

Source: Lattice, *ECP5 and ECP5-5G sysDSP Usage Guide* (FPGA-TN-02205), ``MULT18X18D``.
"""

import re
from collections.abc import Sequence

from amaranth import ClockDomain, ClockSignal, Instance, Module, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["MULT18X18D_PARAMS", "DSP_WIDTH", "DSP_LATENCY", "mult18x18d", "MULT18X18DModel", "DSP_PORTS",
           "dsp_product", "simulation_models", "strip_instance_parameters"]

#: Operand width of the block (bits, two's complement with ``SIGNEDA``/``SIGNEDB`` set).
DSP_WIDTH = 18
#: Cycles from A/B to P: the input register and the output register.
DSP_LATENCY = 2

#: The block's configuration: input registers A and B and the output register on ``CLK0``/``CE0``
#: (``RST0`` tied low), no pipeline register, no cascade, global set/reset disabled.
MULT18X18D_PARAMS = {
    "REG_INPUTA_CLK": "CLK0", "REG_INPUTA_CE": "CE0", "REG_INPUTA_RST": "RST0",
    "REG_INPUTB_CLK": "CLK0", "REG_INPUTB_CE": "CE0", "REG_INPUTB_RST": "RST0",
    "REG_INPUTC_CLK": "NONE",
    "REG_PIPELINE_CLK": "NONE",
    "REG_OUTPUT_CLK": "CLK0", "REG_OUTPUT_CE": "CE0", "REG_OUTPUT_RST": "RST0",
    "CLK0_DIV": "ENABLED", "CLK1_DIV": "ENABLED", "CLK2_DIV": "ENABLED", "CLK3_DIV": "ENABLED",
    "HIGHSPEED_CLK": "NONE", "GSR": "DISABLED", "CAS_MATCH_REG": "FALSE",
    "SOURCEB_MODE": "B_SHIFT", "MULT_BYPASS": "DISABLED", "RESETMODE": "SYNC",
}

#: Input ports of the block that :func:`mult18x18d` ties to constants: ``name -> value``. The
#: others (``SRIA*``/``SRIB*`` shift inputs, ``CLK1..3``, ``CE1..3``, ``RST1..3``) stay
#: unconnected, as in Yosys's own mapping: nextpnr gives unconnected ports their tie-offs, while
#: a constant on the shift inputs is a net it cannot route (``Failed to route arc ... of net
#: '$PACKER_GND_NET' ... JSRIB9_MULT18``, on the LFE5U-85F).
_TIED = {**{f"C{k}": 0 for k in range(DSP_WIDTH)},
         "SOURCEA": 0, "SOURCEB": 0, "SIGNEDA": 1, "SIGNEDB": 1, "CE0": 1, "RST0": 0}

#: Every port the instances connect, ``name -> (direction, width)`` (the model's signature).
DSP_PORTS = {**{f"A{k}": ("i", 1) for k in range(DSP_WIDTH)}, **{f"B{k}": ("i", 1) for k in range(DSP_WIDTH)},
             **{name: ("i", 1) for name in _TIED}, "CLK0": ("i", 1),
             **{f"P{k}": ("o", 1) for k in range(2 * DSP_WIDTH)}}


def mult18x18d(m: Module, a, b, *, name: str):
    """Instantiate a registered ``MULT18X18D`` computing ``a * b``; returns its 36-bit product.

    Parameters
    ----------
    m : Module
        The module to add the instance to (clocked by its ``sync`` domain's clock).
    a, b : Value
        Operands of at most 17 bits if unsigned, 18 if signed (they are extended to 18 bits by
        their own signedness; the block multiplies signed 18 x 18).
    name : str
        Submodule name of the instance.

    Returns
    -------
    Signal(signed(36))
        ``P``, equal to ``a * b`` of :data:`DSP_LATENCY` = 2 cycles earlier.

    Raises
    ------
    ValueError
        An operand too wide for the block.
    """
    ports = {}
    for port, value in (("A", a), ("B", b)):
        shape = value.shape()
        if shape.width + (0 if shape.signed else 1) > DSP_WIDTH:
            raise ValueError(f"{port} operand of {shape} does not fit a {DSP_WIDTH}-bit signed DSP input")
        wide = Signal(signed(DSP_WIDTH), name=f"{name}_{port.lower()}")
        m.d.comb += wide.eq(value)
        ports.update({f"i_{port}{k}": wide[k] for k in range(DSP_WIDTH)})
    product = Signal(signed(2 * DSP_WIDTH), name=f"{name}_p")
    ports.update({f"o_P{k}": product[k] for k in range(2 * DSP_WIDTH)})
    ports.update({f"i_{port}": value for port, value in _TIED.items()})
    m.submodules[name] = Instance("MULT18X18D", i_CLK0=ClockSignal("sync"), **ports,
                                  **{f"p_{key}": value for key, value in MULT18X18D_PARAMS.items()})
    return product


def dsp_product(m: Module, a, b, *, name: str):
    """The :mod:`hw.vendor` interface: a registered ``MULT18X18D`` computing ``a * b``
    (:func:`mult18x18d`), valid :data:`DSP_LATENCY` cycles later."""
    return mult18x18d(m, a, b, name=name)


def simulation_models() -> dict:
    """The :mod:`hw.vendor` interface: ``{"MULT18X18D": MULT18X18DModel()}``."""
    return {"MULT18X18D": MULT18X18DModel()}


class MULT18X18DModel(wiring.Component):
    """Simulation model of ``MULT18X18D`` in the configuration of :func:`mult18x18d`.

    Emit it with the name ``MULT18X18D`` (:func:`hw.emit.emit_verilog`) next to a design that
    instantiates the block. Ports: ``A0..A17``, ``B0..B17`` (operand bits), ``CLK0`` (the clock),
    ``P0..P35`` (product bits), and the tied inputs (``C*``, ``SOURCEA``, ``SOURCEB``,
    ``SIGNEDA``, ``SIGNEDB``, ``CE0``, ``RST0``), which the model ignores. ``P = sext(A) * sext(B)`` of two rising edges of ``CLK0`` earlier: the input register
    and the output register (no reset; the simulator starts them at zero).
    """

    def __init__(self):
        super().__init__({name: (In(width) if d == "i" else Out(width)) for name, (d, width) in DSP_PORTS.items()})

    def elaborate(self, platform):
        m = Module()
        m.domains.dsp = ClockDomain("dsp", reset_less=True, local=True)
        m.d.comb += ClockSignal("dsp").eq(self.CLK0)
        a, b = Signal(signed(DSP_WIDTH)), Signal(signed(DSP_WIDTH))
        p = Signal(signed(2 * DSP_WIDTH))
        m.d.dsp += [a[k].eq(getattr(self, f"A{k}")) for k in range(DSP_WIDTH)]
        m.d.dsp += [b[k].eq(getattr(self, f"B{k}")) for k in range(DSP_WIDTH)]
        m.d.dsp += p.eq(a * b)
        m.d.comb += [getattr(self, f"P{k}").eq(p[k]) for k in range(2 * DSP_WIDTH)]
        return m


def strip_instance_parameters(text: str, modules: Sequence[str] = ("MULT18X18D",)) -> str:
    """*text* (Verilog emitted by Amaranth) without the parameter lists of the instances of
    *modules* (default: the primitives of :func:`simulation_models`).

    A simulation model described in Amaranth (e.g. :class:`hw.vendor.ecp5.MULT18X18DModel`) implements
    one configuration of a vendor primitive and cannot declare the primitive's parameters, which
    Verilator then rejects. The model stands for the configuration the generator always uses, so
    the simulated design is the synthesised one with those parameter lists dropped.

    Raises
    ------
    ValueError
        An instance of one of *modules* whose parameter list is not in Amaranth's form.
    """
    for module in modules:
        pattern = re.compile(rf"^(\s*){re.escape(module)} #\(\n(?:\s*\.\w+\([^()]*\),?\n)*\s*\) ", re.M)
        text, count = pattern.subn(rf"\1{module} ", text)
        if count != text.count(f"  {module} ") - text.count(f"module {module} "):
            raise ValueError(f"an instance of {module} has a parameter list this function does not parse")
    return text
