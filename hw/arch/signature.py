"""The top-level interface every architecture keeps: AXI4-Stream pixels in, logits and class out.

:class:`TopSignature` is an :class:`amaranth.lib.wiring.Signature` that validates its parameters
and compares equal by them (as amaranth-soc's bus signatures do), so that an architecture, the
simulation and the boards can check they speak the same interface, and the manifest's port
description is generated from it (:meth:`TopSignature.describe`), not assembled by hand.

Members (the Verilog port names, from the component's point of view):

``s_axis_tdata`` In(pixel_bits)
    One pixel of the raw digit per beat (the first layer's input format, e.g. uint8), in raster
    order (row-major); images may follow back to back.
``s_axis_tvalid``, ``s_axis_tlast`` In(1); ``s_axis_tready`` Out(1)
    ``tlast`` on the image's last pixel.
``m_axis_tdata`` Out(out_bits)
    ``classes + 1`` beats per image: the logits (two's complement, sign-extended to whole bytes,
    in the network's output format), then the class index (``argmax``, ties to the lower index).
``m_axis_tvalid``, ``m_axis_tlast`` Out(1); ``m_axis_tready`` In(1)
    ``tlast`` on the class-index beat.

Amaranth adds ``clk`` and ``rst`` (synchronous, active high) for the ``sync`` domain
(:data:`CLOCK`, :data:`RESET`).

A debug build adds, per tapped stage, ``tap_<stage>`` Out(valid, ready, payload): the stage's
output stream as seen by its consumer (:func:`tap_signature`).
"""

from __future__ import annotations

import math

from amaranth.hdl import Shape
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["TopSignature", "tap_signature", "output_width", "CLOCK", "RESET"]

#: The clock Amaranth adds for the ``sync`` domain (every architecture is one synchronous design).
CLOCK = {"port": "clk", "domain": "sync", "edge": "rising"}
#: Its reset: synchronous (sampled on the clock's rising edge), active high.
RESET = {"port": "rst", "active": "high", "synchronous": True}

#: What each port of :class:`TopSignature` carries (the manifest's and the Verilog header's words).
_ROLES = {
    "s_axis_tdata": "pixel, one per beat in raster order",
    "s_axis_tvalid": "pixel beat valid",
    "s_axis_tready": "accelerator accepts a pixel",
    "s_axis_tlast": "last pixel of the image",
    "m_axis_tdata": "logits (class 0 first) then the class index",
    "m_axis_tvalid": "output beat valid",
    "m_axis_tready": "consumer accepts an output beat",
    "m_axis_tlast": "class-index beat (last of the image)",
}


def output_width(logit_bits: int) -> int:
    """Bits of ``m_axis_tdata`` for logits of ``logit_bits``: whole bytes, ``8 * ceil(bits / 8)``."""
    return 8 * math.ceil(logit_bits / 8)


def tap_signature(layout) -> wiring.Signature:
    """A monitor of one stream: ``valid``, ``ready`` and ``payload`` (of ``layout``), all outputs."""
    return wiring.Signature({"valid": Out(1), "ready": Out(1), "payload": Out(layout)})


class TopSignature(wiring.Signature):
    """The accelerator's top-level signature.

    Parameters
    ----------
    pixel_bits : int
        Width of ``s_axis_tdata`` (the first layer's input format), 1..32.
    out_bits : int
        Width of ``m_axis_tdata``, a multiple of 8 (:func:`output_width`).
    in_beats, out_beats : int
        Beats per image on ``s_axis`` (pixels) and on ``m_axis`` (logits and class).
    taps : tuple of (str, layout)
        Debug taps: ``tap_<name>`` monitor ports per stage (default none).

    Raises
    ------
    ValueError
        Widths or beat counts out of range (the message quotes the value).
    """

    def __init__(self, *, pixel_bits: int, out_bits: int, in_beats: int, out_beats: int, taps=()):
        for name, value, lo in (("pixel_bits", pixel_bits, 1), ("out_bits", out_bits, 8),
                                ("in_beats", in_beats, 1), ("out_beats", out_beats, 2)):
            if isinstance(value, bool) or not isinstance(value, int) or value < lo:
                raise ValueError(f"{name} must be an int >= {lo}, not {value!r}")
        if pixel_bits > 32 or out_bits % 8:
            raise ValueError(f"pixel_bits must be 1..32 and out_bits a multiple of 8, not {pixel_bits}, {out_bits}")
        self._params = (pixel_bits, out_bits, in_beats, out_beats, tuple(name for name, _ in taps))
        self.pixel_bits, self.out_bits, self.in_beats, self.out_beats = pixel_bits, out_bits, in_beats, out_beats
        members = {
            "s_axis_tdata": In(pixel_bits), "s_axis_tvalid": In(1), "s_axis_tready": Out(1),
            "s_axis_tlast": In(1),
            "m_axis_tdata": Out(out_bits), "m_axis_tvalid": Out(1), "m_axis_tready": In(1),
            "m_axis_tlast": Out(1),
        }
        for name, layout in taps:
            members[f"tap_{name}"] = Out(tap_signature(layout))
        super().__init__(members)

    def __eq__(self, other):
        return type(other) is type(self) and other._params == self._params

    def __hash__(self):
        return hash(self._params)

    def __repr__(self):
        return (f"TopSignature(pixel_bits={self.pixel_bits}, out_bits={self.out_bits}, "
                f"in_beats={self.in_beats}, out_beats={self.out_beats})")

    def signals(self) -> list:
        """Every Verilog port of a component with this signature, from its members (the clock
        and reset first): ``{"name", "direction", "bits", "role"}``, direction as the
        component sees it (``input``/``output``)."""
        rows = [{"name": CLOCK["port"], "direction": "input", "bits": 1,
                 "role": f"clock (rising edge, domain {CLOCK['domain']})"},
                {"name": RESET["port"], "direction": "input", "bits": 1,
                 "role": f"reset, {'synchronous' if RESET['synchronous'] else 'asynchronous'}, "
                         f"active {RESET['active']}"}]
        for path, member in self.members.flatten():
            if not member.is_port:
                continue
            name = "__".join(path)
            role = _ROLES.get(name) or f"debug tap of stage {path[0][4:]}: {path[-1]}"
            rows.append({"name": name, "direction": "input" if member.flow == In else "output",
                         "bits": Shape.cast(member.shape).width, "role": role})
        return rows

    def describe(self, top: str) -> dict:
        """The manifest's interface description: top name, data widths, beats per image, the
        clock and reset (:data:`CLOCK`, :data:`RESET`) and every port (:meth:`signals`)."""
        return {"top": top, "s_axis_tdata_bits": self.pixel_bits, "m_axis_tdata_bits": self.out_bits,
                "in_beats_per_image": self.in_beats, "out_beats_per_image": self.out_beats,
                "clock": dict(CLOCK), "reset": dict(RESET), "signals": self.signals()}
