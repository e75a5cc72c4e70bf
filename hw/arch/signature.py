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

__all__ = ["TopSignature", "tap_signature", "output_width", "CLOCK", "RESET", "interface_header",
           "instantiation_template"]

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
    "m_axis_tdata": "logits (RBF distances for an RBF output), class 0 first, then the class index",
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


def _wrap(text: str, indent: str = "  ") -> list:
    import textwrap

    return textwrap.wrap(text, 96, subsequent_indent=indent, break_on_hyphens=False)


def _vector(bits: int) -> str:
    return f"[{bits - 1}:0]" if bits > 1 else ""


def _port_table(signals) -> list:
    width = max(len(s["name"]) for s in signals)
    return [f"  {s['direction']:<6} {_vector(s['bits']):<7} {s['name']:<{width}}  {s['role']}" for s in signals]


def _made_for(manifest: dict, model: dict | None) -> list:
    fold = ", ".join(f"{k}={v[0]}x{v[1]}" for k, v in manifest["fold"].items())
    if model is None:
        source = f"variant {manifest['variant']}"
    else:
        name = model.get("file") or "an in-memory QNet"
        source = f"{name} (variant {manifest['variant']}, sha256 {model['sha256'][:16]}...)"
    target = manifest["target"] or "none (generic Verilog, every product left to the synthesis tool)"
    if manifest.get("dsp_instances"):
        target += f", {manifest['dsp_instances']} DSP blocks instantiated (vendor {manifest['dsp_primitive']})"
    return (_wrap(f"Made for: model {source}; architecture {manifest['arch']}; target {target}; "
                  f"fold (lanes x taps per layer) {fold}."))


def interface_header(manifest: dict, model: dict | None = None) -> list:
    """The Verilog header describing the top level's interface, as comment lines (without the
    ``//``): made from a generation manifest, i.e. from :meth:`TopSignature.describe` (ports,
    widths, clock, reset) and the plan (formats, beats, predicted latency and II, target, fold),
    plus ``model`` (``{"file", "sha256"}``) when known. Deterministic: no paths, no times."""
    top, ports, clock, reset = manifest["top"], manifest["ports"], manifest["clock"], manifest["reset"]
    shape = manifest["layers"][0]["in_shape"]
    classes, logit, pixel = manifest["classes"], manifest["logit_format"], manifest["pixel_format"]
    out_bits = ports["m_axis_tdata_bits"]
    extend, coding = ("sign", "two's complement") if logit["signed"] else ("zero", "unsigned")
    lines = [f"{top}: LeNet-5 inference accelerator.", *_made_for(manifest, model), "",
             f"Ports (direction as seen by {top}):", *_port_table(ports["signals"]), ""]
    lines += _wrap(
        f"Clock and reset: every register is clocked on the {clock['edge']} edge of {clock['port']} "
        f"(one clock domain). {reset['port']} is {'synchronous' if reset['synchronous'] else 'asynchronous'} "
        f"and active {reset['active']}: hold it {reset['active']} across at least one {clock['edge']} edge; "
        f"at any time, also in the middle of an image, it returns every stage to idle and drops the "
        f"images in flight.")
    lines += _wrap(
        f"Input (AXI4-Stream slave s_axis): {ports['in_beats_per_image']} beats per image, one pixel per "
        f"beat in raster order (row by row from the top left of the {' x '.join(map(str, shape[1:]))} "
        f"image{'' if shape[0] == 1 else ', channel by channel'}), each {pixel['q']} ({pixel['bits']}-bit "
        f"{'signed' if pixel['signed'] else 'unsigned'} on s_axis_tdata), s_axis_tlast high on the last "
        f"pixel. A beat transfers on a {clock['edge']} edge with tvalid and tready high; images may follow "
        f"back to back.")
    rbf = manifest.get("outputs", {}).get("values") == "rbf_distances"
    values = (f"{classes} RBF distances y_i = sum_j (x_j - w_ij)^2, unit 0 first" if rbf
              else f"{classes} logits, class 0 first")
    decision = ("argmin of the distances" if rbf else "argmax of the logits")
    lines += _wrap(
        f"Output (AXI4-Stream master m_axis): {ports['out_beats_per_image']} beats per image: the "
        f"{values}, each {logit['q']} ({logit['bits']}-bit "
        f"{coding}, {extend}-extended to "
        f"{out_bits} bits; real value = word * 2**-{logit['frac']}), then the class index ({decision}, "
        f"ties to the lower index, zero-extended) with m_axis_tlast high.")
    lines += _wrap(
        f"Timing (predicted by the plan, consumer always ready): latency "
        f"{manifest['predicted_latency_cycles']} cycles from the first pixel accepted to the class beat; "
        f"initiation interval (II) {manifest['predicted_ii_cycles']} cycles per image with images back "
        f"to back.")
    lines += [f"Instantiation template: {top}_inst.vh (generated next to this file).", ""]
    return lines


def instantiation_template(manifest: dict) -> str:
    """A Verilog instantiation of the top level with every port (from the manifest's
    ``ports.signals``, i.e. :meth:`TopSignature.signals`), each connected to a signal of the same
    name and commented with its direction, width and role: a template for users."""
    top, signals = manifest["top"], manifest["ports"]["signals"]
    width = max(len(s["name"]) for s in signals)
    lines = [f"// Instantiation template of {top} (generated with it; the header of {top}.v describes",
             "// the protocol). Copy it into your design and rename the connected signals as needed.",
             f"{top} u_{top} ("]
    for k, s in enumerate(signals):
        conn = f"    .{s['name']:<{width}} ({s['name']})" + ("," if k < len(signals) - 1 else " ")
        lines.append(f"{conn:<{2 * width + 10}} // {s['direction']:<6} {_vector(s['bits']):<7} {s['role']}")
    lines.append(");")
    return "\n".join(line.rstrip() for line in lines) + "\n"
