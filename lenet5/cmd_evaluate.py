"""Evaluate a quantized description on the MNIST test images.

Reports the float model's accuracy, the integer reference's accuracy, and the agreement between
the integer reference and the fake-quantized float model (which must be 1.0: they implement the
same integer semantics). The float model is the checkpoint named in the description's
meta.checkpoint unless --checkpoint is given.

For a description imported from a user's model file (`lenet5 quantize --checkpoint FILE`), the
float model is that file read again with the same options, and its accuracy is reported next to
the user's own framework's (torch for TorchScript and modules, onnxruntime or the QONNX executor
for ONNX files) with their agreement.
"""

from lenet5 import DEFAULT_MODEL

HELP = "accuracy of the float, fake-quantized and integer models on MNIST test images"


def add_arguments(parser):
    parser.add_argument("--model", metavar="JSON", default=str(DEFAULT_MODEL), help="quantized description")
    parser.add_argument("--checkpoint", metavar="PT", help="float checkpoint (default: the description's meta.checkpoint)")
    parser.add_argument("--images", type=int, metavar="N", help="first N test images only (default: all 10,000)")
    parser.add_argument("--data", metavar="DIR", help="MNIST folder (default: $LENET5_MNIST, ../shared/mnist, cache)")
    parser.add_argument("--json", metavar="PATH", help="write the results as JSON")
    parser.add_argument("--confusion", metavar="PNG", help="save the integer model's confusion matrix as PNG")
    parser.add_argument("--int-only", action="store_true", help="evaluate the integer reference only (no torch)")
    from lenet5.cmd_quantize import add_import_arguments
    add_import_arguments(parser, evaluate=True)


def run(args):
    import time

    from golden.evaluate import (
        checkpoint_for,
        evaluate,
    )
    from golden.mnist import load_mnist
    from golden.qnet import QNet

    qnet = QNet.load(args.model)
    if qnet.variant == "imported" and not args.int_only:
        return _run_import(args, qnet)
    model = None
    if not args.int_only:
        from golden.model import load_checkpoint
        model, _ = load_checkpoint(checkpoint_for(qnet, args.model, args.checkpoint))
        if model.variant != qnet.variant:
            raise ValueError(f"checkpoint variant {model.variant!r} does not match the description's "
                             f"{qnet.variant!r}")
    images, labels = load_mnist("test", data=args.data)
    if args.images is not None:
        if args.images < 1:
            raise ValueError(f"--images must be positive, got {args.images}")
        images, labels = images[:args.images], labels[:args.images]
    t0 = time.perf_counter()
    res = evaluate(qnet, model, images, labels)
    classes = res.pop("int_classes")
    res.update(model=str(args.model), variant=qnet.variant, wall_s=time.perf_counter() - t0)
    line = f"{qnet.variant}: {res['images']} images, int accuracy {100 * res['int_accuracy']:.2f}%"
    if model is not None:
        line += (f", float {100 * res['float_accuracy']:.2f}%, fake-quant {100 * res['fakequant_accuracy']:.2f}%, "
                 f"agreement {100 * res['agreement']:.2f}%")
    print(line + f" ({res['int_seconds']:.2f} s integer reference)")
    return _write_outputs(args, qnet, res, labels, classes)


def _write_outputs(args, qnet, res, labels, classes) -> int:
    """The confusion-matrix picture (--confusion) and the JSON report (--json), when asked."""
    import json

    if args.confusion:
        from golden.evaluate import confusion_matrix, confusion_title, plot_confusion
        plot_confusion(confusion_matrix(labels, classes), args.confusion,
                       confusion_title(args.model, qnet.variant, res["int_accuracy"], res["images"]))
        print(f"wrote {args.confusion}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=2, sort_keys=True)
            f.write("\n")
    return 0


def _run_import(args, qnet):

    from golden.evaluate import checkpoint_for
    from golden.importers.flow import evaluate_import, float_model_for
    from golden.mnist import load_mnist

    checkpoint = checkpoint_for(qnet, args.model, args.checkpoint)
    net, runner, info = float_model_for(qnet, checkpoint, trust_pickle=args.trust_pickle)
    images, labels = load_mnist("test", data=args.data)
    if args.images is not None:
        if args.images < 1:
            raise ValueError(f"--images must be positive, got {args.images}")
        images, labels = images[:args.images], labels[:args.images]
    res = evaluate_import(qnet, net, runner, images, labels)
    classes = res.pop("int_classes")
    res.update(model=str(args.model), variant=qnet.variant, checkpoint=str(checkpoint), format=info["format"])
    print(f"imported ({info['format']}, {checkpoint}): {res['images']} images, int accuracy "
          f"{100 * res['int_accuracy']:.2f}%, imported float {100 * res['float_accuracy']:.2f}% "
          f"(int/float class agreement {100 * res['int_float_agreement']:.2f}%)")
    if res["framework_accuracy"] is None:
        print("  user's framework: nothing to run (a state dict holds no model)")
    else:
        n = res["framework_images"]
        on = "" if n == res["images"] else f" on the first {n} images (imported float: {100 * res['float_accuracy_on_framework_images']:.2f}%)"
        print(f"  user's framework ({_framework(info['format'])}): {100 * res['framework_accuracy']:.2f}%{on}, "
              f"same class as the imported float model on {100 * res['float_framework_agreement']:.2f}% "
              f"of them, largest score difference {res['float_framework_max_abs_diff']:.2e}")
    return _write_outputs(args, qnet, res, labels, classes)


def _framework(fmt):
    return {"torchscript": "TorchScript, torch.jit", "module": "the pickled nn.Module, torch",
            "onnx": "onnxruntime", "qonnx": "QONNX executor"}.get(fmt, fmt)
