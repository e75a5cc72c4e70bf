"""Quantize a float LeNet-5 checkpoint into the fixed-point description (one JSON file).

Post-training quantization with calibration on training images: every weight and activation
tensor gets a power-of-two fixed-point format chosen to minimise the quantization error,
accumulator widths are bounded from the actual weights, tanh becomes a lookup table. With
--qat-epochs N the float model is then fine-tuned through the fake-quantized forward pass
(quantization-aware training) and saved next to the output as <out stem>.pt.

--checkpoint also takes a user's own LeNet-style model (see the README, "Bring your own model"):
a TorchScript file, a state dict (with --activation and --pool), a pickled nn.Module (only with
--trust-pickle: unpickling runs the file's code), an ONNX or a QONNX file (widths and scales from
its Quant nodes). --normalize MEAN,STD gives the input pipeline's Normalize after ToTensor.

The shipped int8 models are regenerated with
  lenet5 quantize --checkpoint models/modern.pt --out models/modern_int8.json
  lenet5 quantize --checkpoint models/classic.pt --out models/classic_int8.json
"""

import argparse
import re

from lenet5 import MODELS_DIR

HELP = "quantize a float checkpoint to a fixed-point description (PTQ, optional QAT)"


def _bits(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a width in bits, got {text!r}") from None
    if not 2 <= value <= 16:
        raise argparse.ArgumentTypeError(f"widths must be 2..16 bits, got {value}")
    return value


def _layer_bits(text):
    m = re.fullmatch(r"([A-Za-z0-9]+)=(\d+)", text)
    if not m:
        raise argparse.ArgumentTypeError(f"expected LAYER=BITS such as C3=4, got {text!r}")
    return m.group(1).upper(), _bits(m.group(2))


def add_arguments(parser):
    parser.add_argument("--checkpoint", metavar="FILE", default=str(MODELS_DIR / "modern.pt"),
                        help="float checkpoint written by `lenet5 train`, or a user's model: TorchScript, "
                             "state dict, pickled nn.Module (with --trust-pickle), ONNX or QONNX")
    parser.add_argument("--out", metavar="JSON", required=False,
                        help="description to write (default: <the checkpoint's folder>/<variant>_<tag>.json, "
                             "tag int8 for 8-bit weights and activations, else w<W>a<A>, with _mixed when "
                             "per-layer widths are given and _qat after QAT; e.g. models/modern_w4a8.json)")
    parser.add_argument("--w-bits", type=_bits, default=8, metavar="B", help="weight width of every layer (bits)")
    parser.add_argument("--a-bits", type=_bits, default=8, metavar="B", help="activation width of every layer (bits)")
    parser.add_argument("--layer-w-bits", type=_layer_bits, action="append", default=[], metavar="L=B",
                        help="per-layer weight width, e.g. C3=4 (repeatable; layers C1 S2 C3 S4 C5 F6 OUT)")
    parser.add_argument("--layer-a-bits", type=_layer_bits, action="append", default=[], metavar="L=B",
                        help="per-layer activation width, e.g. C1=6 (repeatable)")
    parser.add_argument("--logit-bits", type=int, default=16, metavar="B", help="width of the output logits (bits)")
    parser.add_argument("--calib-images", type=int, default=2000, metavar="N",
                        help="training images used to calibrate the activation formats")
    parser.add_argument("--qat-epochs", type=int, default=0, metavar="N",
                        help="quantization-aware fine-tuning epochs after PTQ (0: PTQ only)")
    parser.add_argument("--qat-lr", type=float, default=2e-4, metavar="LR", help="QAT learning rate (Adam, cosine)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the QAT shuffling")
    parser.add_argument("--data", metavar="DIR", help="MNIST folder (default: $LENET5_MNIST, ../shared/mnist, cache)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    add_import_arguments(parser)


def _normalize(text):
    from golden.importers import ImportModelError, parse_normalize

    try:
        return parse_normalize(text)
    except ImportModelError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _pads(text):
    try:
        return tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected paddings such as 2,0, got {text!r}") from None


def add_import_arguments(parser, evaluate=False):
    """The options of a user's model file (shared with `lenet5 evaluate`)."""
    g = parser.add_argument_group("a user's model file (not a `lenet5 train` checkpoint)")
    g.add_argument("--trust-pickle", action="store_true",
                   help="allow a whole pickled nn.Module (torch.save(model)); unpickling runs the file's code")
    if evaluate:
        return
    g.add_argument("--activation", choices=("relu", "tanh"),
                   help="state dict: the activation after each layer but the last (a state dict cannot say)")
    g.add_argument("--pool", choices=("max", "avg"), help="state dict: the 2x2 pooling after each conv layer")
    g.add_argument("--normalize", type=_normalize, metavar="MEAN,STD",
                   help="the input pipeline's Normalize after ToTensor, e.g. 0.1307,0.3081 "
                        "(default: none, the input is ToTensor's p/255)")
    g.add_argument("--input-size", type=int, choices=(28, 32),
                   help="input side the model expects; 32: the digit with a 2-pixel black border "
                        "(default: what the layer shapes allow, 28 first)")
    g.add_argument("--conv-padding", type=_pads, metavar="P1,P2,...",
                   help="state dict: the conv layers' paddings (default: solved from the shapes)")


def run(args):
    from pathlib import Path

    from golden.importers import is_project_checkpoint
    from golden.quantize import QuantConfig, quantize_with_options

    if Path(args.checkpoint).is_file() and not is_project_checkpoint(args.checkpoint):
        return _run_import(args)

    config = QuantConfig(w_bits=args.w_bits, a_bits=args.a_bits, layer_w_bits=dict(args.layer_w_bits),
                         layer_a_bits=dict(args.layer_a_bits), logit_bits=args.logit_bits,
                         calib_images=args.calib_images)
    qnet, report = quantize_with_options(Path(args.checkpoint), config, out=args.out, data=args.data,
                                         qat_epochs=args.qat_epochs, qat_lr=args.qat_lr, seed=args.seed,
                                         progress=not args.quiet)
    print(f"wrote {report['out']} ({qnet.variant}, weights {args.w_bits} bits, activations {args.a_bits} bits"
          + (f", QAT {args.qat_epochs} epochs -> {report['checkpoint']}" if args.qat_epochs else "") + ")")
    for line in format_table(qnet):
        print(line)
    return 0


def _run_import(args):
    from golden.importers.flow import quantize_import

    if args.qat_epochs:
        raise ValueError("--qat-epochs needs a `lenet5 train` checkpoint; for a user's model, train "
                         "quantization-aware in its framework (e.g. Brevitas) and import the QONNX export")
    qnet, report = quantize_import(
        args.checkpoint, out=args.out, data=args.data, calib_images=args.calib_images, w_bits=args.w_bits,
        a_bits=args.a_bits, logit_bits=args.logit_bits, layer_w_bits=dict(args.layer_w_bits),
        layer_a_bits=dict(args.layer_a_bits), activation=args.activation, pool=args.pool,
        normalize=args.normalize, trust_pickle=args.trust_pickle, input_side=args.input_size,
        conv_pads=args.conv_padding)
    print(f"imported {args.checkpoint} ({report['format']}):")
    for line in report["layers"]:
        print(f"  {line}")
    for note in report["notes"]:
        print(f"  note: {note}")
    print(f"  input: {report['input']}")
    widths = ("widths and scales from the QONNX Quant nodes" if report["format"] == "qonnx" else
              f"weights {args.w_bits} bits, activations {args.a_bits} bits")
    print(f"wrote {report['out']} (imported, {widths})")
    for line in format_table(qnet):
        print(line)
    return 0


def format_table(qnet):
    """The per-layer formats, then one line per format whose ``sQm.n`` alone misleads (fewer
    integer bits than the sign needs, e.g. ``sQ-1.5``) with its HLS type and real range."""
    lines, fmts = [], []
    for layer in qnet.layers:
        if layer.has_mac:
            fmts += [layer.in_fmt, layer.w_fmt, layer.acc_fmt, layer.act_fmt, layer.out_fmt]
            lines.append(f"  {layer.name:4s} in {layer.in_fmt!s:8s} w {layer.w_fmt!s:9s} acc {layer.acc_fmt!s:9s} "
                         f"act {layer.act_fmt!s:9s} out {layer.out_fmt!s:8s} shift {layer.requant.shift:2d} "
                         f"{layer.activation.kind}")
        elif layer.is_rbf:
            fmts += [layer.in_fmt, layer.acc_fmt]
            lines.append(f"  {layer.name:4s} in {layer.in_fmt!s:8s} w {layer.w_fmt!s:9s} acc {layer.acc_fmt!s:9s} "
                         f"rbf: {layer.out_shape[0]} squared distances to the bitmaps, class = argmin")
        else:
            fmts.append(layer.in_fmt)
            lines.append(f"  {layer.name:4s} in {layer.in_fmt!s:8s} {layer.pool} pool 2x2")
    unusual = {str(f): f for f in fmts if f.unusual}
    if unusual:
        lines.append("  sQm.n: m integer bits counting the sign, n fractional; m < 1 puts the sign bit below "
                     "the binary point:")
        lines += [f"    {f.describe()}" for f in unusual.values()]
    return lines
