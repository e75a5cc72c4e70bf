"""Pure parsers of the synthesis tools' output: functions of the text (or JSON) that Yosys and
nextpnr write, with no tool run and no file access.

* Yosys: :func:`parse_yosys_stat` (``stat`` / ``stat -json``), :func:`parse_yosys_memory_mapping`
  (the ``memory_libmap`` decisions in its log), :func:`parse_yosys_cells` (memories and LUT-bound
  multipliers of a netlist fragment), :func:`param_int` (a Yosys JSON parameter);
* nextpnr: :func:`parse_nextpnr_report` (``--report`` JSON), :func:`parse_nextpnr_log`
  (utilisation table, fmax and errors of a log, also of a failed run).

tests/data/synth/ holds captured output of real runs that the tests parse.
"""

from __future__ import annotations

import json
import re

__all__ = ["parse_yosys_stat", "parse_yosys_memory_mapping", "parse_yosys_cells", "param_int",
           "parse_nextpnr_report", "parse_nextpnr_log"]


def parse_yosys_stat(text: str) -> dict:
    """Cell counts per type from Yosys's ``stat`` output.

    Accepts the JSON of ``stat -json`` (the ``design`` totals, which include submodules) or the
    text of a Yosys log: its last ``Printing statistics`` section, in the table format of Yosys
    0.52 and later or the older ``Number of cells:`` format; the ``design hierarchy`` totals
    when present, else the last module's table.

    Returns
    -------
    dict
        ``{"cells": {type: count}, "num_cells": int, "memory_bits": int}``: ``num_cells`` is
        the sum of the per-type counts (library cells included), ``memory_bits`` counts
        memories not yet turned into cells (0 when not reported).
    """
    stripped = text.lstrip()
    if stripped.startswith("{"):
        data = json.loads(stripped)
        design = data.get("design")
        if design is None:
            modules = list(data.get("modules", {}).values())
            design = modules[-1] if modules else {}
        cells = {k: int(v) for k, v in design.get("num_cells_by_type", {}).items()}
        return {"cells": cells, "num_cells": sum(cells.values()),
                "memory_bits": int(design.get("num_memory_bits", 0))}
    start = text.rfind("Printing statistics")
    section = text[start:] if start >= 0 else text
    hier = section.find("=== design hierarchy ===")
    if hier >= 0:
        section = section[hier:]
        heads = list(re.finditer(r"^\s*\+-+", section, re.M))   # new format: 2nd table = totals
        if len(heads) >= 2:
            section = section[heads[-1].end():]
    else:
        tables = list(re.finditer(r"^=== .* ===$", section, re.M))
        if tables:
            section = section[tables[-1].end():]
    headers = {"wires", "wire bits", "public wires", "public wire bits", "ports", "port bits",
               "memories", "memory bits", "processes", "cells", "submodules"}
    cells, memory_bits = {}, 0
    for line in section.splitlines()[1:]:
        if re.match(r"^(End of script|\d+(\.\d+)*\.? [A-Z])", line):
            break
        # New format (Yosys >= 0.52): "      241 cells" / "        6   $mul_16" / "   6   LUT4"
        m = re.match(r"^\s+(\d+|-)\s+([$\\]?[A-Za-z_][\w$\\.]*(?: [a-z]+)*)\s*$", line)
        if m:
            count, name = m.groups()
            if name == "memory bits" and count != "-":
                memory_bits = int(count)
            elif name not in headers and count != "-":
                cells[name] = cells.get(name, 0) + int(count)
            continue
        # Old format: "     Number of memory bits:    12" / "       $mul_16      6"
        m = re.match(r"^\s+Number of memory bits:\s+(\d+)", line)
        if m:
            memory_bits = int(m.group(1))
            continue
        m = re.match(r"^\s{5,}([$\\]?[A-Za-z_][\w$\\.]*)\s+(\d+)\s*$", line)
        if m:
            cells[m.group(1)] = cells.get(m.group(1), 0) + int(m.group(2))
    return {"cells": cells, "num_cells": sum(cells.values()), "memory_bits": memory_bits}


#: What ``memory_libmap`` maps to, by the mapped cell's name: block RAM, LUT RAM or huge RAM.
_MEMORY_KINDS = (("DP16KD", "bram"), ("PDPW16KD", "bram"), ("RAM40_4K", "bram"), ("RAM4K", "bram"),
                 ("SPRAM", "spram"), ("DPR16X4", "lutram"), ("LUTRAM", "lutram"))


def parse_yosys_memory_mapping(text: str, top: str | None = None) -> dict[str, dict]:
    """Decisions of Yosys's ``memory_libmap`` pass, from its log.

    Returns ``{memory name: {"kind": k, "cell": c}}`` with ``kind`` one of ``"bram"``,
    ``"lutram"``, ``"spram"``, ``"ff"`` (flip-flops and LUT logic) and ``cell`` the library cell
    (``"$__DP16KD_"``) or ``None``.  Names lose the ``<top>.`` prefix when *top* is given.
    """
    result = {}
    for m in re.finditer(r"^(?:mapping memory (\S+) via (\S+)|using FF mapping for memory (\S+))\s*$",
                         text, re.M):
        name, cell = (m.group(1), m.group(2)) if m.group(1) else (m.group(3), None)
        if top and name.startswith(top + "."):
            name = name[len(top) + 1:]
        kind = "ff"
        if cell is not None:
            kind = next((k for key, k in _MEMORY_KINDS if key in cell), "lutram")
        result[name] = {"kind": kind, "cell": cell}
    return result


def param_int(value):
    """A Yosys JSON parameter (binary string, or int with -compat-int) as int; None if undefined."""
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value and set(value) <= {"0", "1"}:
        return int(value, 2)
    return None


def _fields(value, width, count):
    """Split a packed parameter of *count* fields of *width* bits (field 0 in the low bits)."""
    if not isinstance(value, str) or set(value) - {"0", "1"} or count <= 0:
        return []
    bits = value.zfill(width * count)
    return [int(bits[len(bits) - (i + 1) * width:len(bits) - i * width], 2) for i in range(count)]


def parse_yosys_cells(text: str) -> dict:
    """Memories and LUT-bound multipliers from the ``cells_mid.json`` netlist fragment.

    Returns
    -------
    dict
        ``memories``: list of ``{"name", "width", "depth", "bits", "read_ports", "write_ports"}``
        (one per ``$mem_v2`` cell, by name); ``soft_multipliers``: the multiplications left for
        LUT logic after DSP mapping (products of ``$macc``/``$macc_v2`` cells and ``$mul``
        cells whose operands are both at least 2 bits wide), each ``{"cell", "a_width",
        "b_width"}``.
    """
    data = json.loads(text) if isinstance(text, str) else text
    memories, soft = [], []
    for module in data.get("modules", {}).values():
        for name, cell in module.get("cells", {}).items():
            kind, p = cell.get("type"), cell.get("parameters", {})
            if kind == "$mem_v2":
                width, size = param_int(p.get("WIDTH")), param_int(p.get("SIZE"))
                memid = p.get("MEMID", name)
                memories.append({"name": memid.lstrip("\\"), "width": width, "depth": size,
                                 "bits": (width or 0) * (size or 0),
                                 "read_ports": param_int(p.get("RD_PORTS")),
                                 "write_ports": param_int(p.get("WR_PORTS"))})
            elif kind == "$mul":
                a, b = param_int(p.get("A_WIDTH")), param_int(p.get("B_WIDTH"))
                if a and b and a >= 2 and b >= 2:
                    soft.append({"cell": name, "a_width": a, "b_width": b})
            elif kind == "$macc_v2":
                n = param_int(p.get("NPRODUCTS")) or 0
                for a, b in zip(_fields(p.get("A_WIDTHS"), 16, n), _fields(p.get("B_WIDTHS"), 16, n)):
                    if a >= 2 and b >= 2:
                        soft.append({"cell": name, "a_width": a, "b_width": b})
            elif kind == "$macc":
                soft.extend(_legacy_macc_products(name, p))
    memories.sort(key=lambda m: m["name"])
    return {"memories": memories, "soft_multipliers": soft}


def _legacy_macc_products(name, p):
    """Products of an old-style ``$macc`` cell (CONFIG bit string; Yosys before 0.48)."""
    config = p.get("CONFIG")
    width = param_int(p.get("CONFIG_WIDTH"))
    if not isinstance(config, str) or not width:
        return []
    bits = config.zfill(width)[::-1]              # LSB first
    num_bits = int(bits[0:4][::-1], 2)
    out, i = [], 4
    while i + 2 + 2 * num_bits <= len(bits):
        a = int(bits[i + 2:i + 2 + num_bits][::-1], 2)
        b = int(bits[i + 2 + num_bits:i + 2 + 2 * num_bits][::-1], 2)
        i += 2 + 2 * num_bits
        if a >= 2 and b >= 2:
            out.append({"cell": name, "a_width": a, "b_width": b})
    return out



def parse_nextpnr_report(report) -> dict:
    """Utilisation and fmax from nextpnr's ``--report`` JSON (dict or text).

    Returns
    -------
    dict
        ``utilization``: ``{bel type: {"used", "total"}}``; ``fmax``: ``{clock: {"achieved",
        "constraint"}}`` in MHz; ``fmax_mhz``: the lowest achieved fmax over the clocks (None
        without clocked logic).
    """
    data = json.loads(report) if isinstance(report, (str, bytes)) else report
    util = {bel: {"used": int(v["used"]), "total": int(v["available"])}
            for bel, v in data.get("utilization", {}).items()}
    fmax = {clk: {"achieved": float(v["achieved"]), "constraint": float(v["constraint"])}
            for clk, v in data.get("fmax", {}).items()}
    return {"utilization": util, "fmax": fmax,
            "fmax_mhz": min((v["achieved"] for v in fmax.values()), default=None)}


_UTIL_RE = re.compile(r"^Info:\s+([A-Za-z0-9_]+):\s+(\d+)/\s*(\d+)\s+\d+%\s*$", re.M)
_FMAX_RE = re.compile(r"^Info: Max frequency for clock\s+'([^']*)':\s+([\d.]+) MHz \((PASS|FAIL) at ([\d.]+) MHz\)",
                      re.M)


def parse_nextpnr_log(text: str) -> dict:
    """Utilisation table, fmax and errors from a nextpnr log (also of a failed run).

    Returns
    -------
    dict
        ``utilization``: the last ``Device utilisation`` table, ``{bel: {"used", "total"}}``;
        ``fmax``: ``{clock: MHz}`` from the last ``Max frequency`` lines (after routing);
        ``fmax_mhz``: their minimum (None if absent); ``errors``: the ``ERROR:`` messages;
        ``finished``: whether nextpnr reached ``Program finished normally``.
    """
    util = {}
    start = text.rfind("Device utilisation:")
    if start >= 0:
        table = text[start:]
        end = re.search(r"^\s*$", table, re.M)     # the table ends at the first blank line
        table = table[:end.start()] if end else table
        util = {m.group(1): {"used": int(m.group(2)), "total": int(m.group(3))}
                for m in _UTIL_RE.finditer(table)}
    fmax = {}
    for m in _FMAX_RE.finditer(text):
        fmax[m.group(1)] = float(m.group(2))
    errors = [m.group(1).strip() for m in re.finditer(r"^ERROR:\s*(.*)$", text, re.M)]
    return {"utilization": util, "fmax": fmax, "fmax_mhz": min(fmax.values(), default=None),
            "errors": errors, "finished": "Program finished normally" in text}
