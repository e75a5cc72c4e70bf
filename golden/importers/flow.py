"""The import flows behind ``lenet5 quantize --checkpoint FILE`` and ``lenet5 evaluate`` for a user's
model file: import, calibrate, quantize, save; and the accuracies of the imported float model, the
user's own framework and the integer reference on the same images."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

from . import ImportModelError, import_and_quantize, load_float_model

__all__ = ["IMPORT_OPTIONS", "evaluate_import", "float_model_for", "quantize_import"]

#: The import options stored in ``meta.import`` and reused by ``lenet5 evaluate``.
IMPORT_OPTIONS = ("activation", "pool", "normalize", "input_side", "conv_padding")


def _tag(w_bits, a_bits, layer_w_bits, layer_a_bits):
    tag = "int8" if (w_bits, a_bits) == (8, 8) else f"w{w_bits}a{a_bits}"
    return tag + ("_mixed" if layer_w_bits or layer_a_bits else "")


def quantize_import(checkpoint, *, out=None, data=None, calib_images=2000, w_bits=8, a_bits=8, logit_bits=16,
                    layer_w_bits=None, layer_a_bits=None, activation=None, pool=None, normalize=None,
                    trust_pickle=False, input_side=None, conv_pads=None):
    """Import a user's model file, calibrate on MNIST training images, quantize, write the description.

    Parameters
    ----------
    checkpoint : path
        TorchScript, state dict, pickled module (``trust_pickle``), ONNX or QONNX file.
    out : path, optional
        Description to write; default ``<file folder>/<file stem>_<tag>.json`` (tag ``int8``, ``w4a8``...;
        ``qonnx`` for a QONNX file, whose widths come from its Quant nodes).
    The other parameters: see :func:`golden.importers.load_float_model` and
    :func:`golden.importers.quantize.quantize_float_net`.

    Returns
    -------
    (QNet, dict)
        The description and a report: ``out``, ``format``, ``layers`` (the imported sequence),
        ``input`` (how the preprocessing was applied), ``notes``.

    Raises
    ------
    ImportModelError
        An unreadable or unsupported file (see :func:`golden.importers.load_float_model`).
    ValueError
        Bad widths, missing MNIST.
    """
    from ..evaluate import sha256
    from ..mnist import load_mnist
    from ..qnet import QNet

    checkpoint = Path(checkpoint)
    images, _ = load_mnist("train", data=data)
    if not 1 <= calib_images <= len(images):
        raise ValueError(f"calib_images must be 1..{len(images)}, got {calib_images}")
    qnet, net, _runner, info = import_and_quantize(
        checkpoint, images[:calib_images], activation=activation, pool=pool, normalize=normalize,
        trust_pickle=trust_pickle, input_side=input_side, conv_pads=conv_pads, w_bits=w_bits, a_bits=a_bits,
        logit_bits=logit_bits, layer_w_bits=layer_w_bits, layer_a_bits=layer_a_bits)
    tag = "qonnx" if info["format"] == "qonnx" else _tag(w_bits, a_bits, layer_w_bits, layer_a_bits)
    out = Path(out) if out else checkpoint.parent / f"{checkpoint.stem}_{tag}.json"
    method = ("QONNX: widths and scales of the Quant nodes; PTQ (power-of-two formats by least squared error) "
              "where the file gives none" if info["format"] == "qonnx" else
              "PTQ: power-of-two formats by least squared error")
    meta = {"checkpoint": os.path.relpath(checkpoint.resolve(), out.resolve().parent),
            "checkpoint_sha256": sha256(checkpoint),
            "calibration": f"first {calib_images} MNIST training images",
            "widths": {"w_bits": w_bits, "a_bits": a_bits, "logit_bits": logit_bits,
                       "layer_w_bits": dict(layer_w_bits or {}), "layer_a_bits": dict(layer_a_bits or {})},
            "method": method, **qnet.meta}
    qnet = QNet(qnet.variant, qnet.input_shape, qnet.input_fmt, qnet.layers, meta)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    qnet.save(tmp)
    os.replace(tmp, out)                    # never a half-written description
    return qnet, {"out": out, "format": info["format"], "layers": net.describe(), "input": meta["input"]["applied"],
                  "notes": info.get("notes", [])}


def float_model_for(qnet, checkpoint, trust_pickle=False):
    """The imported float model (and the user's runner) of an ``imported`` description, read again
    from ``checkpoint`` with the import options stored in ``meta.import``."""
    opts = dict(qnet.meta.get("import") or {})
    if not opts:
        raise ImportModelError("the description has no meta.import (it was not made by importing a model file); "
                               "re-create it with `lenet5 quantize --checkpoint FILE`")
    normalize = opts.get("normalize")
    return load_float_model(checkpoint, activation=opts.get("activation"), pool=opts.get("pool"),
                            normalize=tuple(normalize) if normalize else None, trust_pickle=trust_pickle,
                            input_side=opts.get("input_side"), conv_pads=opts.get("conv_padding"))


def evaluate_import(qnet, net, runner, images, labels, batch=1000):
    """Accuracies of the integer reference, the imported float model and the user's own framework.

    Parameters
    ----------
    qnet : QNet
    net : FloatNet
        The imported float model.
    runner : callable or None
        The user's model in its framework (torch, onnxruntime, QONNX executor) on the
        preprocessed input; None for a state dict (nothing to run).
    images : uint8 array (N, 28, 28)
    labels : array (N,)

    Returns
    -------
    dict
        ``images``, ``int_accuracy``, ``float_accuracy``, ``framework_accuracy`` (None without a
        runner; on the first ``framework_images`` images, all but for the QONNX executor, which runs
        on at most 500; ``float_accuracy_on_framework_images`` is the float import's on those), ``float_framework_agreement`` (fraction of images with the same class),
        ``float_framework_max_abs_diff`` (largest score difference), ``int_float_agreement``,
        ``int_seconds``, ``float_seconds``, ``framework_seconds``, ``int_classes``.
    """
    import torch

    from .. import reference

    labels = np.asarray(labels, np.int64)
    t0 = time.perf_counter()
    ref = reference.run(qnet, images, taps=False)
    out = {"images": len(labels), "int_accuracy": float(np.mean(ref.classes == labels)),
           "int_seconds": time.perf_counter() - t0, "int_classes": ref.classes}
    t0 = time.perf_counter()
    scores = np.concatenate([net.forward(images[i:i + batch]).numpy() for i in range(0, len(images), batch)])
    fl = scores.argmax(1)
    out.update(float_accuracy=float(np.mean(fl == labels)), float_seconds=time.perf_counter() - t0,
               int_float_agreement=float(np.mean(fl == ref.classes)))
    out.update(framework_accuracy=None, float_framework_agreement=None, float_framework_max_abs_diff=None,
               framework_seconds=None)
    if runner is not None:
        n = min(len(images), getattr(runner, "max_images", len(images)))   # the QONNX executor is slow
        t0 = time.perf_counter()
        with torch.no_grad():
            user = np.concatenate([np.asarray(runner(net.input_tensor(images[i:min(i + batch, n)])), np.float64)
                                   for i in range(0, n, batch)])
        out.update(framework_images=n, framework_accuracy=float(np.mean(user.argmax(1) == labels[:n])),
                   float_accuracy_on_framework_images=float(np.mean(fl[:n] == labels[:n])),
                   float_framework_agreement=float(np.mean(user.argmax(1) == fl[:n])),
                   float_framework_max_abs_diff=float(np.max(np.abs(user - scores[:n]))),
                   framework_seconds=time.perf_counter() - t0)
    return out
