"""Vendor primitives, chosen through the target (:attr:`hw.targets.Target.vendor`), never by name
tests in the generic components.

A generic component (e.g. :class:`hw.components.mac.MACArray`) holds a vendor *name* (a module of
this package, or None) and asks :func:`vendor` for the module, then calls its interface. Every
vendor module ``hw.vendor.<name>`` provides:

``DSP_LATENCY`` : int
    Cycles from the operands given to :func:`dsp_product` to its product (the block's own
    input and output registers).
``dsp_product(m, a, b, *, name) -> Value``
    Add to module ``m`` one DSP block (submodule ``name``) computing ``a * b`` in its own
    registers; returns the signed product, valid ``DSP_LATENCY`` cycles after ``a`` and ``b``.
    Raises ``ValueError`` for an operand too wide for the block.
``simulation_models() -> dict[str, wiring.Component]``
    Verilog module name of each primitive ``dsp_product`` may instantiate -> an Amaranth model
    of it, emitted beside a design for simulation (Verilator).
``strip_instance_parameters(text, modules=None) -> str``
    The emitted Verilog *text* for simulation: the instances of the primitives (default: the
    keys of ``simulation_models()``) without their parameter lists, which the models do not
    declare.

Adding a family is a module with this interface and its name in :data:`VENDORS`.
"""

from importlib import import_module

__all__ = ["VENDORS", "vendor"]

#: Names of the vendor modules of this package (``hw.vendor.<name>``).
VENDORS = ("ecp5",)


def vendor(name: str):
    """The vendor module ``hw.vendor.<name>`` (interface in the module docstring).

    Raises
    ------
    ValueError
        *name* is not one of :data:`VENDORS`.
    """
    if name not in VENDORS:
        raise ValueError(f"unknown vendor {name!r}; known vendors: {', '.join(VENDORS)}")
    return import_module(f"{__name__}.{name}")
