"""Generate the accelerator's Verilog from a quantized description.

Writes DIR/lenet5_accel.v (one module, lenet5_accel, with AXI4-Stream ports s_axis_* for the
28x28 uint8 pixels and m_axis_* for the 10 logits and the class index; a comment at its top
describes the ports, the protocol, clock and reset, the predicted latency and II, and what it
was made for), DIR/lenet5_accel_inst.vh (an instantiation template with every port) and
DIR/manifest.json (clock, reset, ports, logit format, target, fold, per-layer formats and
cycles, predicted II and latency, model file name and SHA-256, tool versions, lint result).
All are deterministic. The Verilog is then linted with
`verilator --lint-only -Wall` (the exit status is 1 when warnings remain).

--fold sets the parallelism per conv/dense layer as LANESxTAPS, e.g. C1=3x25,C3=8x25
(conv: output channels in parallel x kernel taps per cycle, taps dividing 25; dense:
outputs in parallel x inputs per cycle, both dividing the layer's sizes), or names a JSON
file {"C1": [3, 25], ...}. Layers left out get the default fold (fewest multipliers that
keep every layer within the target cycles per image).
"""

from lenet5 import DEFAULT_MODEL, REPO_ROOT, add_arch_argument

HELP = "generate the accelerator's Verilog and manifest from a quantized description"


def add_arguments(parser):
    parser.add_argument("--model", metavar="JSON", default=str(DEFAULT_MODEL), help="quantized description")
    parser.add_argument("--out", metavar="DIR", default=str(REPO_ROOT / "build" / "generated"),
                        help="output folder")
    parser.add_argument("--fold", metavar="SPEC", help="per-layer folding: C1=3x25,C3=8x25,... or a JSON file")
    parser.add_argument("--no-lint", action="store_true", help="skip the Verilator lint")
    add_target_argument(parser)
    add_arch_argument(parser)


def add_target_argument(parser):
    """``--target``: generate what ``lenet5 synth --target`` builds (shared with `lenet5 simulate`)."""
    from lenet5.cmd_synth import TARGET_NAMES

    parser.add_argument("--target", choices=TARGET_NAMES, default=None,
                        help="generate for this FPGA as `lenet5 synth` does (ECP5: MULT18X18D blocks with "
                             "their registers, the other products split LUT multipliers; simulated with a "
                             "model of the block); default: generic Verilog")


def summary_lines(gen):
    """A few lines describing a generated accelerator (also used by `lenet5 demo`)."""
    m = gen.manifest
    fold = ", ".join(f"{k}={v[0]}x{v[1]}" for k, v in m["fold"].items())
    return [f"  variant {m['variant']}, fold {fold}",
            f"  {m['multipliers']} multipliers, {m['weight_bits']} weight bits, "
            f"{m['line_buffer_bits']} line-buffer bits; bottleneck {m['bottleneck']}",
            f"  predicted: {m['predicted_ii_cycles']} cycles per image (II), "
            f"{m['predicted_latency_cycles']} cycles latency"]


def run(args):
    from hw.generate import generate

    gen = generate(args.model, args.out, args.fold, lint=not args.no_lint, target=args.target, arch=args.arch)
    lines = gen.verilog.read_text().count("\n")
    print(f"wrote {gen.verilog} ({lines} lines), {gen.instance_template.name} (instantiation template) "
          f"and {gen.manifest_path.name}")
    for line in summary_lines(gen):
        print(line)
    if gen.lint_warnings is None:
        print("  lint: skipped")
        return 0
    if not gen.lint_warnings:
        print("  lint: clean (verilator --lint-only -Wall)")
        return 0
    print(f"  lint: {len(gen.lint_warnings)} warning(s):")
    for w in gen.lint_warnings[:20]:
        print(f"    {w}")
    return 1
