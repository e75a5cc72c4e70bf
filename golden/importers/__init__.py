"""Importing users' LeNet-style models: PyTorch (TorchScript, state dict, pickled module), ONNX, QONNX.

:func:`load_float_model` reads a file into a :class:`~golden.importers.graph.FloatNet` (the
network as plain arrays, checked against the supported family) and, where the file holds a
runnable model, a runner of the user's own framework; :func:`import_and_quantize` makes the
quantized description (:class:`golden.qnet.QNet`, variant ``imported``). The project's own
checkpoints (``lenet5 train``) keep their own path (:mod:`golden.quantize`).

Security: state dicts load with ``torch.load(weights_only=True)``; a pickled ``nn.Module`` is
refused unless ``trust_pickle`` (unpickling runs the file's code); TorchScript, ONNX and QONNX
files are read as graphs and never run Python from the file.
"""

from .graph import SUPPORTED, FloatNet, ImportModelError, Preprocess, build

__all__ = [
    "IMPORT_FORMATS",
    "SUPPORTED",
    "FloatNet",
    "ImportModelError",
    "Preprocess",
    "import_and_quantize",
    "is_project_checkpoint",
    "load_float_model",
    "parse_normalize",
]

#: What ``--checkpoint`` accepts besides the project's own checkpoints.
IMPORT_FORMATS = ("torchscript", "state_dict", "module", "onnx", "qonnx")


def parse_normalize(text):
    """``"MEAN,STD"`` -> ``(mean, std)``; ImportModelError naming the text otherwise."""
    try:
        mean, std = (float(v) for v in str(text).split(","))
    except ValueError:
        raise ImportModelError(f"--normalize {text!r}: expected MEAN,STD such as 0.1307,0.3081") from None
    if not std > 0:
        raise ImportModelError(f"--normalize {text!r}: STD must be positive")
    return mean, std


def is_project_checkpoint(path):
    """True for a checkpoint written by ``lenet5 train`` (format ``lenet5-checkpoint``)."""
    import zipfile

    import torch

    from ..model import CHECKPOINT_FORMAT

    try:
        with zipfile.ZipFile(path) as zf:
            if any("/code/__torch__" in n for n in zf.namelist()):
                return False                                  # TorchScript
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:                  # noqa: BLE001  (any failure: not this project's checkpoint)
        return False
    return isinstance(blob, dict) and blob.get("format") == CHECKPOINT_FORMAT


def _is_onnx(path):
    with open(path, "rb") as f:
        head = f.read(4)
    return head[:1] == b"\x08" and not head.startswith(b"PK")    # protobuf field 1 (ir_version), varint


def load_float_model(path, *, activation=None, pool=None, normalize=None, trust_pickle=False, input_side=None,
                     conv_pads=None, to_tensor=255.0):
    """Read a user's model file.

    Parameters
    ----------
    path : str or Path
        TorchScript, a state dict, a pickled ``nn.Module`` (with ``trust_pickle``), ONNX or QONNX.
    activation, pool : str or None
        For a state dict: ``relu``/``tanh`` and ``max``/``avg``.
    normalize : (float, float) or None
        ``Normalize(mean, std)`` of the user's input pipeline (after ``ToTensor``).
    trust_pickle : bool
        Allow unpickling a whole module (runs the file's code).
    input_side : int or None
        28 or 32; None: whichever the layer shapes allow, 28 first.
    conv_pads : sequence of int or None
        For a state dict: the conv paddings (default: solved from the shapes).
    to_tensor : float
        The pixel divisor of the input pipeline (255: ``ToTensor``).

    Returns
    -------
    (FloatNet, runner, info)
        ``runner(x)`` runs the user's own model on the preprocessed ``(N, 1, S, S)`` float input
        (torch for TorchScript and modules, onnxruntime or the QONNX executor for ONNX files), or
        None (a state dict has no model to run); ``info`` holds ``format`` and, for QONNX, the
        input quantizer.

    Raises
    ------
    ImportModelError
        A missing, truncated or unsupported file, or a network outside the supported family;
        the message names the layer or node.
    """
    from pathlib import Path

    path = Path(path)
    if not path.is_file():
        raise ImportModelError(f"model file {path} not found")
    if path.stat().st_size == 0:
        raise ImportModelError(f"{path} is empty (truncated download or interrupted save?)")
    mean, std = normalize if normalize is not None else (0.0, 1.0)
    pre = Preprocess(scale=float(to_tensor), mean=float(mean), std=float(std))
    if _is_onnx(path):
        from .from_onnx import load_onnx_file

        got = load_onnx_file(path)
    else:
        from .from_torch import load_torch_file

        got = load_torch_file(path, activation=activation, pool=pool, trust_pickle=trust_pickle,
                              input_side=input_side, conv_pads=conv_pads)
    sides = [got.get("input_side") or input_side] if (got.get("input_side") or input_side) else [28, 32]
    error = None
    for side in sides:
        try:
            stages = build([_copy(op) for op in got["ops"]], side, source=str(path))
            break
        except ImportModelError as exc:
            error = error or exc
    else:
        raise error
    info = {"format": got["format"], "file": str(path), "notes": got.get("notes", [])}
    if got.get("input_quant"):
        info["input_quant"] = got["input_quant"]
    final = next((op.func for op in got["ops"] if op.kind == "final"), None)
    net = FloatNet(stages, pre, side, source=info, final=final, input_quant=got.get("input_quant"))
    return net, got.get("runner"), info


def _copy(op):
    import copy

    return copy.copy(op)


def import_and_quantize(path, calib_images, *, activation=None, pool=None, normalize=None, trust_pickle=False,
                        input_side=None, conv_pads=None, w_bits=8, a_bits=8, logit_bits=16, layer_w_bits=None, layer_a_bits=None,
                        meta=None):
    """:func:`load_float_model`, then :func:`golden.importers.quantize.quantize_float_net`.

    Returns
    -------
    (QNet, FloatNet, runner, info)
    """
    from .quantize import quantize_float_net

    net, runner, info = load_float_model(path, activation=activation, pool=pool, normalize=normalize,
                                         trust_pickle=trust_pickle, input_side=input_side, conv_pads=conv_pads)
    q_in = info.get("input_quant")
    widths = {"w_bits": w_bits, "a_bits": a_bits, "logit_bits": logit_bits}
    meta = dict(meta or {})
    meta["import"] = {"format": info["format"], "activation": activation, "pool": pool,
                      "normalize": list(normalize) if normalize else None, "input_side": net.input_side,
                      "conv_padding": list(conv_pads) if conv_pads else None, "notes": info["notes"],
                      "layers": net.describe()}
    qnet = quantize_float_net(net, calib_images, layer_w_bits=layer_w_bits, layer_a_bits=layer_a_bits,
                              input_quant=q_in, meta=meta, **widths)
    return qnet, net, runner, info
