"""Reading ONNX and QONNX files (``onnx`` package) into the importer's ops.

ONNX operators: Conv, MaxPool, AveragePool, Gemm, MatMul (+ Add of a constant bias),
BatchNormalization (folded into the layer before it), Relu, Tanh,
Flatten, Reshape (to a vector per image), Pad (zeros, merged into the next Conv), Dropout,
Identity, Softmax / LogSoftmax (last), Constant, and the shape arithmetic of a Reshape (Shape,
Gather, Unsqueeze, Concat, ...), for the default domain at opsets 7 to the ``onnx`` package's.

QONNX (as Brevitas' ``export_qonnx`` writes it): ``Quant`` nodes (domain ``qonnx.custom_op.general``
or ``finn.custom_op.general``), ``y = (clamp(round(x / scale + zp)) - zp) * scale``, with a scalar
scale (per tensor), zero point 0 and a constant bit width. A Quant on a weight gives that layer's
weight format and integers; a Quant on the feature map gives the format of the layer before it
(after its activation); the Quant on the graph input gives the input layer's format. Rounding
``ROUND`` (half to even) is kept as the formats' ``half_even``. The file is read as a graph; no
Python from it runs. The user's framework result comes from onnxruntime (ONNX) or the QONNX
executor (``qonnx.core.onnx_exec``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .graph import INPUT_SIDES, ImportModelError, Op, bn_op

__all__ = ["MIN_OPSET", "QUANT_DOMAINS", "load_onnx_file", "ops_from_onnx"]

#: Oldest default-domain opset the importer reads.
MIN_OPSET = 7
#: Domains of the QONNX Quant node.
QUANT_DOMAINS = ("qonnx.custom_op.general", "finn.custom_op.general", "onnx.brevitas")
#: Images the QONNX executor (node by node, one image at a time: slow) is run on for the comparison.
QONNX_EXECUTOR_IMAGES = 500
#: Shape arithmetic that may feed a Reshape (skipped: it does not touch the feature map's values).
SHAPE_OPS = ("Shape", "Gather", "Unsqueeze", "Squeeze", "Concat", "Cast", "Slice", "Mul", "Div", "Constant",
             "ConstantOfShape")


def _max_opset():
    import onnx.defs

    return onnx.defs.onnx_opset_version()


def _attrs(node):
    from onnx import helper

    out = {}
    for a in node.attribute:
        v = helper.get_attribute_value(a)
        out[a.name] = v.decode() if isinstance(v, bytes) else v
    return out


def _describe(node):
    attrs = ", ".join(f"{k}={v}" for k, v in _attrs(node).items() if k != "value")
    return f"ONNX node {node.name or node.output[0]!r} ({node.op_type}{', ' + attrs if attrs else ''})"


def _square(vals, what, node):
    vals = list(vals)
    if len(set(vals)) != 1:
        raise ImportModelError(f"{_describe(node)}: non-square {what} {vals}; square kernels, strides and "
                               "symmetric padding are supported")
    return int(vals[0])


def ops_from_onnx(model, source="ONNX"):
    """The op sequence of an ONNX/QONNX model.

    Returns
    -------
    (list of Op, dict)
        The ops, and ``{"input_side": int or None, "input_quant": (bits, scale, signed, rounding) or
        None, "qonnx": bool}``.

    Raises
    ------
    ImportModelError
        An unknown opset or domain, an operator or attribute outside the family (the message
        names the node, its type and attributes), a branch or skip, a per-channel or non-zero
        zero-point quantizer.
    """
    from onnx import numpy_helper

    opsets = {o.domain or "": o.version for o in model.opset_import}
    default = opsets.get("", opsets.get("ai.onnx"))
    if default is None or not MIN_OPSET <= default <= _max_opset():
        raise ImportModelError(f"{source}: ONNX opset {default} of the default domain is not one this importer "
                               f"knows ({MIN_OPSET}..{_max_opset()}); re-export with opset_version between them "
                               "(torch.onnx.export(..., opset_version=17))")
    for dom, version in opsets.items():
        if dom not in ("", "ai.onnx") and dom not in QUANT_DOMAINS:
            raise ImportModelError(f"{source}: operator domain {dom!r} (version {version}) is not supported; "
                                   f"the default domain and the QONNX Quant domains {', '.join(QUANT_DOMAINS)} are")
    g = model.graph
    consts = {t.name: numpy_helper.to_array(t).astype(np.float64) if numpy_helper.to_array(t).dtype.kind == "f"
              else numpy_helper.to_array(t) for t in g.initializer}
    qinfo = {}
    inputs = [i for i in g.input if i.name not in consts]
    if len(inputs) != 1:
        raise ImportModelError(f"{source}: the graph has {len(inputs)} inputs ({', '.join(i.name for i in inputs)}); "
                               "one image input is supported")
    dims = [d.dim_value if d.HasField("dim_value") else None for d in inputs[0].type.tensor_type.shape.dim]
    info = {"input_side": None, "input_quant": None, "qonnx": False}
    if len(dims) == 4 and dims[2] == dims[3] and dims[2] in INPUT_SIDES:
        info["input_side"] = dims[2]
    elif len(dims) == 4 and dims[2] is not None and (dims[1] != 1 or dims[2] not in INPUT_SIDES):
        raise ImportModelError(f"{source}: the input {inputs[0].name!r} has shape {dims}; 1x28x28 or 1x32x32 "
                               "images are supported")
    flow, prev, ops = {inputs[0].name}, inputs[0].name, []
    pending_pad = 0
    for node in g.node:
        t = node.op_type
        ins = list(node.input)
        if node.domain in QUANT_DOMAINS or t == "Quant" and node.domain not in ("", "ai.onnx"):
            info["qonnx"] = True
            if t != "Quant":
                raise ImportModelError(f"{_describe(node)} is not supported; of the QONNX operators, Quant is")
            q = _quant(node, consts, source)
            if ins[0] in flow:
                if ins[0] != prev:
                    raise ImportModelError(f"{_describe(node)} reads {ins[0]!r}, not the previous layer's output")
                if not ops:
                    info["input_quant"] = q[:4]
                else:
                    ops.append(Op("quant", node.name or node.output[0], quant={"out": q[:4]}))
                flow.add(node.output[0])
                prev = node.output[0]
            else:
                if ins[0] not in consts:
                    raise ImportModelError(f"{_describe(node)} quantizes {ins[0]!r}, which is neither the feature "
                                           "map nor a constant weight")
                consts[node.output[0]] = q[4]
                qinfo[node.output[0]] = q[:4]
            continue
        if t == "Constant":
            a = _attrs(node)
            if "value" in a:
                arr = numpy_helper.to_array(a["value"])
                consts[node.output[0]] = arr.astype(np.float64) if arr.dtype.kind == "f" else arr
            continue
        data = [i for i in ins if i in flow]
        if not data:
            if t in ("Transpose", "Identity") and ins and ins[0] in consts:     # a constant weight's transpose
                consts[node.output[0]] = consts[ins[0]].T if t == "Transpose" else consts[ins[0]]
                if ins[0] in qinfo:
                    qinfo[node.output[0]] = qinfo[ins[0]]
            continue
        if t == "Shape":
            continue
        if len(data) > 1 or data[0] != prev:
            raise ImportModelError(f"{_describe(node)} combines {', '.join(data)}: a branch or ResNet-style skip "
                                   "connection; only a plain chain of layers is supported")
        name = node.name or node.output[0]
        a = _attrs(node)
        op = None
        if t == "Conv":
            w = _const(ins[1], consts, node)
            if a.get("group", 1) != 1 or a.get("auto_pad", "NOTSET") not in ("NOTSET", "VALID") or \
                    any(d != 1 for d in a.get("dilations", [1, 1])):
                raise ImportModelError(f"{_describe(node)} is not supported; Conv with group 1, dilation 1, explicit "
                                       "zero padding 0..2 and stride 1 is")
            pads = a.get("pads", [0, 0, 0, 0])
            op = Op("conv", name, w, _const(ins[2], consts, node) if len(ins) > 2 and ins[2] else None,
                    stride=_square(a.get("strides", [1, 1]), "strides", node),
                    pad=_square(pads, "pads", node) + pending_pad,
                    quant={"w": qinfo[ins[1]]} if ins[1] in qinfo else {})
            pending_pad = 0
        elif t in ("MaxPool", "AveragePool"):
            k = _square(a.get("kernel_shape", [1, 1]), "kernel_shape", node)
            if a.get("ceil_mode", 0) or any(d != 1 for d in a.get("dilations", [1, 1])) or \
                    a.get("auto_pad", "NOTSET") not in ("NOTSET", "VALID"):
                raise ImportModelError(f"{_describe(node)} is not supported; 2x2 pooling, stride 2, no padding, "
                                       "ceil_mode 0 is")
            op = Op("pool", name, kernel=k, stride=_square(a.get("strides", [1, 1]), "strides", node),
                    pad=_square(a.get("pads", [0, 0, 0, 0]), "pads", node), func="max" if t == "MaxPool" else "avg")
        elif t == "Gemm":
            if a.get("transA", 0):
                raise ImportModelError(f"{_describe(node)}: transA=1 is not supported")
            w = _const(ins[1], consts, node) * a.get("alpha", 1.0)
            w = w if a.get("transB", 0) else w.T
            b = _const(ins[2], consts, node).reshape(-1) * a.get("beta", 1.0) if len(ins) > 2 and ins[2] else None
            op = Op("dense", name, w, b, quant={"w": qinfo[ins[1]]} if ins[1] in qinfo else {})
        elif t == "MatMul":
            w = _const(ins[1], consts, node).T
            op = Op("dense", name, w, None, quant={"w": qinfo[ins[1]]} if ins[1] in qinfo else {})
        elif t == "Add":
            other = next(i for i in ins if i not in flow)
            last = ops[-1] if ops else None
            if last is None or last.kind not in ("dense", "conv") or last.bias is not None:
                raise ImportModelError(f"{_describe(node)}: an Add that is not the bias of a MatMul or Conv")
            bias = _const(other, consts, node)
            last.bias = np.broadcast_to(bias.reshape(-1), (last.weight.shape[0],)).astype(np.float64).copy()
        elif t == "BatchNormalization":
            op = bn_op(name, *(_const(i, consts, node) for i in ins[1:5]), a.get("epsilon", 1e-5))
        elif t in ("Relu", "Tanh"):
            op = Op("act", name, func=t.lower())
        elif t in ("Flatten", "Reshape"):
            if t == "Flatten" and a.get("axis", 1) != 1:
                raise ImportModelError(f"{_describe(node)}: Flatten axis other than 1 is not supported")
            if t == "Reshape" and ins[1] in consts and np.asarray(consts[ins[1]]).size != 2:
                raise ImportModelError(f"{_describe(node)}: Reshape to {list(np.asarray(consts[ins[1]]))}; only a "
                                       "flatten to (N, features) is supported")
            op = Op("flatten", name)
        elif t == "Pad":
            mode = a.get("mode", "constant")
            pads = list(a["pads"]) if "pads" in a else list(np.asarray(_const(ins[1], consts, node)).astype(int))
            value = float(np.asarray(consts[ins[2]]).reshape(-1)[0]) if len(ins) > 2 and ins[2] in consts else 0.0
            if mode != "constant" or value != 0 or len(pads) != 8 or any(pads[i] for i in (0, 1, 4, 5)):
                raise ImportModelError(f"{_describe(node)} (pads {pads}, value {value}) is not supported; zero "
                                       "padding of the two spatial axes is")
            pending_pad += _square(pads[2:4] + pads[6:8], "pads", node)
        elif t in ("Dropout", "Identity"):
            op = Op("identity", name)
        elif t in ("Softmax", "LogSoftmax"):
            op = Op("final", name, func=t)
        else:
            raise ImportModelError(f"{_describe(node)} is not supported; Conv, MaxPool, AveragePool, Gemm, "
                                   "MatMul+Add, BatchNormalization, Relu, Tanh, Flatten, Reshape, Pad, Dropout, Softmax (last) and "
                                   "QONNX Quant are")
        if op is not None:
            ops.append(op)
        for o in node.output[:1]:
            flow.add(o)
            prev = o
    if pending_pad:
        raise ImportModelError(f"{source}: a Pad that no Conv follows")
    return ops, info


def _const(name, consts, node):
    if name not in consts:
        raise ImportModelError(f"{_describe(node)}: input {name!r} is not a constant (weights must be initializers)")
    return np.asarray(consts[name], np.float64)


def _quant(node, consts, source):
    """``(bits, scale, signed, rounding, dequantized constant or None)`` of a QONNX Quant node."""
    a = _attrs(node)
    ins = list(node.input)
    try:
        scale, zp, bits = (np.asarray(consts[i], np.float64) for i in ins[1:4])
    except KeyError:
        raise ImportModelError(f"{_describe(node)}: scale, zero point and bit width must be constants") from None
    if scale.size != 1:
        raise ImportModelError(f"{_describe(node)}: a per-channel scale ({scale.size} values) is not supported; "
                               "use per-tensor quantizers (Brevitas: scaling_per_output_channel=False)")
    if np.any(zp != 0):
        raise ImportModelError(f"{_describe(node)}: zero point {zp.reshape(-1)[:4]} is not supported (symmetric "
                               "quantizers only)")
    if bits.size != 1 or float(bits.reshape(-1)[0]) != int(bits.reshape(-1)[0]):
        raise ImportModelError(f"{_describe(node)}: bit width {bits.reshape(-1)} is not a single integer")
    rounding = {"ROUND": "half_even", "FLOOR": "floor"}.get(a.get("rounding_mode", "ROUND"))
    if rounding is None:
        raise ImportModelError(f"{_describe(node)}: rounding_mode {a.get('rounding_mode')} is not supported "
                               "(ROUND, FLOOR are)")
    b, s, signed, narrow = int(bits.reshape(-1)[0]), float(scale.reshape(-1)[0]), bool(a.get("signed", 1)), \
        bool(a.get("narrow", 0))
    deq = None
    if ins[0] in consts:
        lo = -(1 << (b - 1)) + narrow if signed else 0
        hi = (1 << (b - 1)) - 1 if signed else (1 << b) - 1 - narrow
        q = np.clip(np.round(np.asarray(consts[ins[0]], np.float64) / s), lo, hi)
        deq = q * s
    elif narrow:
        raise ImportModelError(f"{_describe(node)}: a narrow-range activation quantizer is not supported "
                               "(narrow_range=False)")
    return b, s, signed, rounding, deq


def load_onnx_file(path):
    """Read an ONNX or QONNX file.

    Returns
    -------
    dict
        ``ops``, ``input_side``, ``input_quant``, ``format`` (``onnx`` or ``qonnx``) and
        ``runner`` (onnxruntime or the QONNX executor, on the preprocessed float input).

    Raises
    ------
    ImportModelError
        A truncated or malformed file, or what :func:`ops_from_onnx` refuses.
    """
    import onnx

    path = Path(path)
    try:
        model = onnx.load(str(path))
    except Exception as exc:                 # noqa: BLE001  (protobuf decode errors have no common base)
        raise ImportModelError(f"{path}: not a readable ONNX file, or truncated ({type(exc).__name__}: "
                               f"{str(exc).splitlines()[0] if str(exc) else ''})") from None
    if not model.graph.node:
        raise ImportModelError(f"{path}: the ONNX graph has no nodes (truncated or empty file?)")
    ops, info = ops_from_onnx(model, source=str(path))
    fmt = "qonnx" if info["qonnx"] else "onnx"
    runner = _qonnx_runner(model) if info["qonnx"] else _ort_runner(path)
    return {"ops": ops, "input_side": info["input_side"], "input_quant": info["input_quant"], "format": fmt,
            "runner": runner}


def _batched(run_one, batch_fixed):
    def run(x):
        x = np.asarray(x, np.float32)
        if not batch_fixed:
            return run_one(x)
        return np.concatenate([run_one(x[i:i + 1]) for i in range(len(x))])
    return run


def _ort_runner(path):
    try:
        import onnxruntime as ort
    except ImportError:
        return None
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]
    fixed = isinstance(inp.shape[0], int)
    return _batched(lambda x: sess.run(None, {inp.name: x})[0], fixed)


def _qonnx_runner(model):
    try:
        from qonnx.core.modelwrapper import ModelWrapper
        from qonnx.core.onnx_exec import execute_onnx
    except ImportError:
        return None
    wrapped = ModelWrapper(model)
    iname, oname = wrapped.graph.input[0].name, wrapped.graph.output[0].name
    run = _batched(lambda x: execute_onnx(wrapped, {iname: x})[oname], True)
    run.max_images = QONNX_EXECUTOR_IMAGES
    return run
