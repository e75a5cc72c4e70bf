"""Reading users' PyTorch files: TorchScript, pickled ``nn.Module`` s and plain state dicts.

* **TorchScript** (``torch.jit.save`` of ``torch.jit.script`` or ``torch.jit.trace``): the layer
  sequence is read from the module's inlined graph (``aten::conv2d`` / ``_convolution``,
  ``linear`` / ``addmm``, ``max_pool2d``, ``avg_pool2d``, ``relu``, ``tanh``, ``flatten`` /
  ``view`` / ``reshape``, ``dropout``, ``log_softmax`` / ``softmax``), the weights from its
  parameters; nothing of the file is executed to import it.
* **A pickled module** (``torch.save(model)``): unpickling runs whatever code the file holds, so
  it is refused unless the caller passes ``trust_pickle=True``; the module is then traced with
  ``torch.fx`` (symbolic tracing: no data flows through it) and its graph walked.
* **A state dict** (``torch.save(model.state_dict())``, also wrapped as ``{"state_dict": ...}`` or
  ``{"model_state_dict": ...}``), read with ``weights_only=True``: the layers are the
  ``<prefix>.weight`` / ``<prefix>.bias`` pairs in the dict's order (registration order: ``conv1,
  conv2, fc1, fc2, fc3``, or ``nn.Sequential`` indices), 4-D weights conv, 2-D dense; a 2x2 pooling
  is assumed after each conv layer and the conv paddings are solved from the first dense layer's
  input count; the activation and pooling kind cannot be read from weights and must be given.
"""

from __future__ import annotations

import itertools
import zipfile
from pathlib import Path

from .graph import INPUT_SIDES, MAX_PAD, ImportModelError, Op, bn_op

__all__ = [
    "PICKLE_REFUSAL",
    "classify_torch_file",
    "load_torch_file",
    "ops_from_module",
    "ops_from_state_dict",
    "ops_from_torchscript",
]

#: Why a pickled module is refused, and how to convert it.
PICKLE_REFUSAL = (
    "holds a pickled Python object (a whole nn.Module saved with torch.save(model)); unpickling runs any "
    "code the file contains, so it is refused by default. Convert it where the model's class is defined: "
    "torch.save(model.state_dict(), 'lenet.pt') (then pass --activation and --pool), or "
    "torch.jit.save(torch.jit.script(model), 'lenet.ts'); or pass --trust-pickle if you trust the file")


def _np(t):
    return t.detach().cpu().double().numpy().copy()


def classify_torch_file(path):
    """``"torchscript"``, ``"zip"`` (a torch.save archive) or ``"legacy"``; ImportModelError for a
    truncated or non-torch file."""
    path = Path(path)
    if zipfile.is_zipfile(path):
        try:
            with zipfile.ZipFile(path) as zf:
                names = zf.namelist()
                bad = zf.testzip()
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            raise ImportModelError(f"{path}: damaged or truncated torch file ({exc})") from None
        if bad is not None:
            raise ImportModelError(f"{path}: damaged or truncated torch file (entry {bad} fails its CRC)")
        if any("/code/__torch__" in n for n in names):
            return "torchscript"
        return "zip"
    head = path.read_bytes()[:2]
    if head[:1] == b"\x80":                   # legacy (pre-1.6) pickle format
        return "legacy"
    raise ImportModelError(f"{path}: not a PyTorch file (neither a torch.save zip archive nor TorchScript), "
                           "or truncated; re-save it with torch.save(model.state_dict(), path) or torch.jit.save")


# -- state dicts ----------------------------------------------------------------------------

def _unwrap_state(blob, path):
    import torch

    if isinstance(blob, dict):
        for key in ("state_dict", "model_state_dict", "model"):
            if key in blob and isinstance(blob[key], dict):
                blob = blob[key]
                break
    if not isinstance(blob, dict) or not blob or not all(isinstance(v, torch.Tensor) for v in blob.values()):
        kinds = type(blob).__name__ if not isinstance(blob, dict) else \
            ", ".join(sorted({type(v).__name__ for v in blob.values()})) or "nothing"
        raise ImportModelError(f"{path}: not a state dict (a dict of tensors); it holds {kinds}")
    return blob


def ops_from_state_dict(state, *, activation, pool, input_side=None, conv_pads=None, source="state dict",
                        notes=None):
    """The op sequence of a tutorial-style LeNet from its state dict.

    Parameters
    ----------
    state : dict of str -> torch.Tensor
    activation : {"relu", "tanh"}
        After every layer but the last (a state dict does not say).
    pool : {"max", "avg"}
        The 2x2 pooling after each conv layer.
    input_side : int or None
        28 or 32; None tries 28 first, then 32.
    conv_pads : sequence of int or None
        The conv layers' paddings; None solves them from the shapes, preferring the tutorials'
        ``(K-1)/2`` on the first conv and 0 after it.
    notes : list, optional
        Receives a line saying which padding and input size were chosen.

    Returns
    -------
    (list of Op, int)
        The ops and the input side.

    Raises
    ------
    ImportModelError
        Missing ``activation``/``pool``, tensors other than weights and biases (batch norm...),
        weights that are neither 4-D nor 2-D, or no padding that makes the shapes chain.
    """
    notes = [] if notes is None else notes
    missing = [f"--{k} {v}" for k, v, got in (("activation", "relu|tanh", activation), ("pool", "max|avg", pool))
               if got is None]
    if missing:
        raise ImportModelError(f"{source} is a state dict: it holds weights but not which activation and pooling "
                               f"the network uses; pass {' and '.join(missing)}")
    layers = {}
    for key, t in state.items():
        prefix, _, leaf = key.rpartition(".")
        if leaf not in ("weight", "bias"):
            raise ImportModelError(f"{source}: tensor {key!r} {tuple(t.shape)} is not a weight or bias (batch norm, "
                                   "buffers and masks are not supported in a state dict; export TorchScript or ONNX)")
        layers.setdefault(prefix, {})[leaf] = t
    convs, denses, ops = [], [], []
    for prefix, d in layers.items():
        if "weight" not in d:
            raise ImportModelError(f"{source}: layer {prefix!r} has a bias but no weight")
        w = d["weight"]
        if w.dim() == 4:
            if denses:
                raise ImportModelError(f"{source}: conv layer {prefix!r} {tuple(w.shape)} after a dense layer")
            convs.append((prefix, w, d.get("bias")))
        elif w.dim() == 2:
            denses.append((prefix, w, d.get("bias")))
        else:
            raise ImportModelError(f"{source}: layer {prefix!r} has a {w.dim()}-D weight {tuple(w.shape)}; "
                                   "conv (4-D) and linear (2-D) layers are supported")
    if not convs or not denses:
        raise ImportModelError(f"{source}: found {len(convs)} conv and {len(denses)} linear layers; a LeNet-style "
                               "network needs both")
    n_in = denses[0][1].shape[1]
    sides = [input_side] if input_side else list(INPUT_SIDES)
    kernels = [w.shape[-1] for _, w, _ in convs]

    def flat_inputs(side, cand):
        s = side
        for k, p in zip(kernels, cand):
            s = s + 2 * p - k + 1
            if s < 2 or s % 2:
                return None
            s //= 2
        return convs[-1][1].shape[0] * s * s

    if conv_pads is not None:
        if len(conv_pads) != len(convs) or not all(0 <= p <= MAX_PAD for p in conv_pads):
            raise ImportModelError(f"{source}: --conv-padding {','.join(map(str, conv_pads))}: expected "
                                   f"{len(convs)} paddings in 0..{MAX_PAD}, one per conv layer")
        cands = [tuple(conv_pads)]
    else:
        # the tutorials' LeNet first: "same" padding on the first conv only, then no padding
        usual = tuple([(kernels[0] - 1) // 2] + [0] * (len(convs) - 1))
        cands = [usual] + [c for c in itertools.product(range(MAX_PAD + 1), repeat=len(convs)) if c != usual]
    found = [(side, c) for side in sides for c in cands if flat_inputs(side, c) == n_in]
    if not found:
        raise ImportModelError(
            f"{source}: no conv padding in 0..{MAX_PAD} on a {' or '.join(map(str, sides))} input, with a 2x2 "
            f"pooling after each conv layer, gives the {n_in} inputs of the first linear layer "
            f"{denses[0][0]!r}; export the model as TorchScript or ONNX, which record the layer sequence")
    input_side, pads = found[0]
    notes.append(f"state dict: conv padding {','.join(map(str, pads))} on a {input_side}x{input_side} input "
                 "solved from the shapes" + (f" (also possible: {len(found) - 1} other choices; set --conv-padding "
                                              "and --input-size to choose)" if len(found) > 1 else ""))
    for (prefix, w, b), p in zip(convs, pads):
        ops.append(Op("conv", prefix, _np(w), None if b is None else _np(b), stride=1, pad=p))
        ops.append(Op("act", f"{prefix} ({activation}, given)", func=activation))
        ops.append(Op("pool", f"{prefix} ({pool} pool, assumed)", kernel=2, stride=2, func=pool))
    ops.append(Op("flatten", "flatten"))
    for n, (prefix, w, b) in enumerate(denses):
        ops.append(Op("dense", prefix, _np(w), None if b is None else _np(b)))
        if n < len(denses) - 1:
            ops.append(Op("act", f"{prefix} ({activation}, given)", func=activation))
    return ops, input_side


# -- torch.fx: a (trusted) nn.Module ---------------------------------------------------------

def _pair(v, what, name):
    if isinstance(v, (tuple, list)):
        if len(set(v)) != 1:
            raise ImportModelError(f"layer {name!r}: non-square {what} {tuple(v)}; square 2x2 pooling and square "
                                   "conv kernels are supported")
        return int(v[0])
    return int(v)


def _conv_op(name, mod):
    from torch import nn

    attrs = (f"kernel {tuple(mod.kernel_size)}, stride {tuple(mod.stride)}, padding {mod.padding}, "
             f"dilation {tuple(mod.dilation)}, groups {mod.groups}")
    if not isinstance(mod, nn.Conv2d) or mod.groups != 1 or tuple(mod.dilation) != (1, 1) \
            or mod.padding_mode != "zeros" or isinstance(mod.padding, str) and mod.padding != "valid":
        raise ImportModelError(f"layer {name!r}: {type(mod).__name__} ({attrs}) is not supported; Conv2d with "
                               "groups 1, dilation 1, zero padding 0..2 and stride 1 is")
    pad = 0 if isinstance(mod.padding, str) else _pair(mod.padding, "padding", name)
    return Op("conv", name, _np(mod.weight), None if mod.bias is None else _np(mod.bias),
              stride=_pair(mod.stride, "stride", name), pad=pad)


def _pool_op(name, func, kernel, stride=None, padding=0, dilation=1, ceil_mode=False):
    kernel = _pair(kernel, "pool kernel", name)
    stride = kernel if stride is None or stride == [] else _pair(stride, "pool stride", name)
    if _pair(dilation, "pool dilation", name) != 1 or ceil_mode:
        raise ImportModelError(f"layer {name!r}: {func} pooling with dilation {dilation}, ceil_mode {ceil_mode} is "
                               "not supported (2x2, stride 2, no padding)")
    return Op("pool", name, kernel=kernel, stride=stride, pad=_pair(padding, "pool padding", name), func=func)


def _module_op(name, mod):
    from torch import nn

    if isinstance(mod, nn.Conv2d):
        return _conv_op(name, mod)
    if isinstance(mod, nn.Linear):
        return Op("dense", name, _np(mod.weight), None if mod.bias is None else _np(mod.bias))
    if isinstance(mod, nn.MaxPool2d):
        return _pool_op(name, "max", mod.kernel_size, mod.stride, mod.padding, mod.dilation, mod.ceil_mode)
    if isinstance(mod, nn.AvgPool2d):
        return _pool_op(name, "avg", mod.kernel_size, mod.stride, mod.padding, 1, mod.ceil_mode)
    if isinstance(mod, nn.ReLU):
        return Op("act", name, func="relu")
    if isinstance(mod, nn.Tanh):
        return Op("act", name, func="tanh")
    if isinstance(mod, nn.Flatten):
        if mod.start_dim != 1:
            raise ImportModelError(f"layer {name!r}: Flatten(start_dim={mod.start_dim}) is not supported (start_dim 1)")
        return Op("flatten", name)
    if isinstance(mod, (nn.BatchNorm2d, nn.BatchNorm1d)) and mod.track_running_stats and mod.affine:
        return bn_op(name, _np(mod.weight), _np(mod.bias), _np(mod.running_mean), _np(mod.running_var), mod.eps)
    if isinstance(mod, (nn.Dropout, nn.Dropout2d, nn.Identity)):
        return Op("identity", name)
    if isinstance(mod, (nn.Softmax, nn.LogSoftmax)):
        return Op("final", name, func=type(mod).__name__)
    raise ImportModelError(f"layer {name!r}: {type(mod).__name__} ({mod.extra_repr()}) is not supported; "
                           "Conv2d, BatchNorm (affine, running statistics), MaxPool2d, AvgPool2d, Linear, ReLU, Tanh, "
                           "Flatten, Dropout, Softmax/LogSoftmax (last) are")


def _arg(node, i, key, default=None):
    if len(node.args) > i:
        return node.args[i]
    return node.kwargs.get(key, default)


def ops_from_module(model):
    """The op sequence of an ``nn.Module``, from its ``torch.fx`` symbolic trace.

    Raises
    ------
    ImportModelError
        A module or function outside the family (named, with its type and attributes), a node
        that combines two feature maps (a ResNet-style skip), or a forward fx cannot trace.
    """
    import torch
    import torch.nn.functional as F

    try:
        gm = torch.fx.symbolic_trace(model)
    except Exception as exc:                 # noqa: BLE001  (fx raises many kinds on data-dependent Python)
        raise ImportModelError(f"torch.fx cannot trace {type(model).__name__}.forward ({type(exc).__name__}: "
                               f"{exc}); export it with torch.jit.trace or torch.onnx.export instead") from None
    modules = dict(gm.named_modules())
    flow, prev, ops = set(), None, []
    funcs = {F.relu: ("act", "relu"), torch.relu: ("act", "relu"), torch.tanh: ("act", "tanh"),
             F.tanh: ("act", "tanh"), torch.flatten: ("flatten", ""), F.dropout: ("identity", ""),
             F.log_softmax: ("final", "log_softmax"), F.softmax: ("final", "softmax"),
             torch.log_softmax: ("final", "log_softmax"), torch.softmax: ("final", "softmax")}
    for node in gm.graph.nodes:
        if node.op == "placeholder":
            if prev is None:
                flow.add(node)
                prev = node
            continue
        if node.op in ("output", "get_attr"):
            continue
        data = [a for a in node.all_input_nodes if a in flow]
        if not data:
            continue
        target = node.target
        tname = getattr(target, "__name__", str(target))
        if node.op == "call_method" and target in ("size", "dim") or \
                node.op == "call_function" and target is getattr and node.args[1] == "shape":
            continue                          # shape arithmetic, not the feature map
        if len(data) > 1 or data[0] is not prev:
            others = ", ".join(a.name for a in data)
            raise ImportModelError(f"node {node.name!r} ({node.op} {tname}) combines {others}: a branch or "
                                   "ResNet-style skip connection; only a plain chain of layers is supported")
        if node.op == "call_module":
            op = _module_op(node.target, modules[node.target])
        elif node.op == "call_function":
            if target in (F.max_pool2d, F.avg_pool2d):
                op = _pool_op(node.name, "max" if target is F.max_pool2d else "avg", _arg(node, 1, "kernel_size"),
                              _arg(node, 2, "stride"), _arg(node, 3, "padding", 0),
                              _arg(node, 4, "dilation", 1) if target is F.max_pool2d else 1,
                              _arg(node, 5 if target is F.max_pool2d else 4, "ceil_mode", False))
            elif target in funcs:
                kind, func = funcs[target]
                if kind == "flatten" and _arg(node, 1, "start_dim", 0) != 1:
                    raise ImportModelError(f"node {node.name!r}: torch.flatten(start_dim="
                                           f"{_arg(node, 1, 'start_dim', 0)}) flattens the batch; use start_dim=1")
                op = Op(kind, node.name, func=func)
            else:
                raise ImportModelError(f"node {node.name!r}: function {tname} (args {node.args}) is not supported; "
                                       "F.relu, torch.tanh, F.max_pool2d, F.avg_pool2d, torch.flatten, F.dropout, "
                                       "F.log_softmax are")
        else:                                 # call_method
            if target in ("view", "reshape", "flatten"):
                op = Op("flatten", node.name)
            elif target in ("relu", "tanh"):
                op = Op("act", node.name, func=target)
            elif target in ("contiguous",):
                op = Op("identity", node.name)
            else:
                raise ImportModelError(f"node {node.name!r}: tensor method .{target}() is not supported")
        ops.append(op)
        flow.add(node)
        prev = node
    return ops


# -- TorchScript ----------------------------------------------------------------------------

def ops_from_torchscript(module, source="TorchScript"):
    """The op sequence of a loaded TorchScript module, from its inlined graph (not executed).

    Raises
    ------
    ImportModelError
        An aten operation outside the family (named with its inputs), a skip connection, or a
        weight that is not a parameter of the module.
    """
    graph = module.inlined_graph
    params = {**dict(module.named_parameters()), **dict(module.named_buffers())}
    list(graph.nodes())
    inputs = list(graph.inputs())
    self_v, x_v = inputs[0], inputs[1]
    paths = {self_v.debugName(): ""}
    objs = {self_v.debugName(): module}
    consts = {}
    flow, prev, ops = {x_v.debugName()}, x_v.debugName(), []

    alias = {}

    def name(v):
        n = v.debugName()
        while n in alias:
            n = alias[n]
        return n

    def val(v):
        n = name(v)
        if n in consts:
            return consts[n]
        if n in paths and paths[n] in params:
            return params[paths[n]]
        return None

    def tensor(v, what, where):
        t = val(v)
        if t is None:
            raise ImportModelError(f"{source}: {where}: the {what} is not a constant parameter of the module")
        return _np(t)

    def walk(nodes):
        nonlocal prev
        for node in nodes:
            kind = node.kind()
            outs = [o.debugName() for o in node.outputs()]
            ins = list(node.inputs())
            if kind == "prim::GetAttr":
                base = paths.get(name(ins[0]))
                if base is not None:
                    paths[outs[0]] = (base + "." if base else "") + node.s("name")
                    obj = getattr(objs.get(name(ins[0])), node.s("name"), None)
                    if obj is None or isinstance(obj, (bool, int, float)):
                        consts[outs[0]] = obj              # e.g. a module's `training` flag
                    else:
                        objs[outs[0]] = obj
                continue
            if kind == "prim::Constant":
                consts[outs[0]] = node.output().toIValue() if node.hasAttribute("value") else None
                continue
            if kind == "prim::ListConstruct" or kind == "prim::TupleConstruct":
                consts[outs[0]] = [consts.get(name(i)) for i in ins]
                continue
            if kind in ("aten::__is__", "aten::__isnot__") and all(name(i) in consts for i in ins):
                same = consts[name(ins[0])] is None and consts[name(ins[1])] is None
                consts[outs[0]] = same if kind == "aten::__is__" else not same
                continue
            if kind == "prim::If" and name(ins[0]) in consts:
                block = list(node.blocks())[0 if consts[name(ins[0])] else 1]
                walk(block.nodes())
                for o, r in zip(outs, block.returnNode().inputs()):
                    alias[o] = name(r)
                continue
            data = [name(i) for i in ins if name(i) in flow]
            if not data:
                continue
            where = f"node {outs[0]} ({kind})"
            if kind in ("aten::size", "aten::dim", "prim::NumToTensor", "aten::Int", "prim::shape"):
                continue
            if len(data) > 1 or data[0] != prev:
                raise ImportModelError(f"{source}: {where} combines {', '.join(data)}: a branch or ResNet-style "
                                       "skip connection; only a plain chain of layers is supported")
            if kind == "prim::If":
                raise ImportModelError(f"{source}: {where}: data-dependent control flow is not supported")
            ops.append(_aten_op(kind, where, ins, outs, val, tensor, paths, name, source))
            flow.add(outs[0])
            prev = outs[0]

    walk(graph.nodes())
    return ops


def _aten_op(kind, where, ins, outs, val, tensor, paths, name, source):
    """One aten operation of a TorchScript graph as an Op."""
    a = [val(i) for i in ins]
    if kind in ("aten::_convolution", "aten::conv2d"):
        stride, padding, dilation = a[3], a[4], a[5]
        groups = a[8] if kind == "aten::_convolution" else a[6]
        transposed = kind == "aten::_convolution" and a[6]
        attrs = f"stride {stride}, padding {padding}, dilation {dilation}, groups {groups}"
        if transposed or groups != 1 or isinstance(padding, str) or list(dilation) != [1, 1]:
            raise ImportModelError(f"{source}: {where} ({attrs}) is not supported; Conv2d with groups 1, "
                                   "dilation 1, zero padding 0..2 and stride 1 is")
        b = val(ins[2])
        return Op("conv", paths.get(name(ins[1]), outs[0]).rsplit(".", 1)[0], tensor(ins[1], "conv weight", where),
                  None if b is None else _np(b), stride=_pair(stride, "stride", where),
                  pad=_pair(padding, "padding", where))
    if kind == "aten::linear":
        b = val(ins[2])
        return Op("dense", paths.get(name(ins[1]), outs[0]).rsplit(".", 1)[0],
                  tensor(ins[1], "linear weight", where), None if b is None else _np(b))
    if kind in ("aten::max_pool2d", "aten::avg_pool2d"):
        func = "max" if kind == "aten::max_pool2d" else "avg"
        return _pool_op(where, func, a[1], a[2], a[3], a[4] if func == "max" else 1, a[5] if func == "max" else a[4])
    if kind in ("aten::relu", "aten::relu_", "aten::tanh", "aten::tanh_"):
        return Op("act", where, func=kind.split("::")[1].rstrip("_"))
    if kind in ("aten::flatten", "aten::view", "aten::reshape"):
        if kind == "aten::flatten" and a[1] != 1:
            raise ImportModelError(f"{source}: {where}: flatten(start_dim={a[1]}) is not supported (start_dim 1)")
        return Op("flatten", where)
    if kind == "aten::batch_norm":
        vals = [val(i) for i in ins[1:5]]
        if any(v is None for v in vals):
            raise ImportModelError(f"{source}: {where}: batch norm without affine parameters and running statistics")
        return bn_op(where, *(_np(v) for v in vals), a[7])
    if kind in ("aten::dropout", "aten::dropout_", "aten::feature_dropout", "aten::contiguous"):
        return Op("identity", where)
    if kind in ("aten::log_softmax", "aten::softmax"):
        return Op("final", where, func=kind.split("::")[1])
    raise ImportModelError(f"{source}: {where} is not supported; aten::conv2d, linear, max_pool2d, avg_pool2d, relu, "
                           "tanh, flatten/view/reshape, dropout, log_softmax are")


def _runner(module):
    """``(N, 1, S, S) float tensor -> (N, classes) numpy`` running the user's module without gradients."""
    import torch

    def run(x):
        with torch.no_grad():
            return module(x).detach().cpu().numpy()
    return run


# -- the file -------------------------------------------------------------------------------

def load_torch_file(path, *, activation=None, pool=None, trust_pickle=False, input_side=None, conv_pads=None):
    """Read a user's PyTorch file into ops.

    Returns
    -------
    dict
        ``ops`` (list of Op), ``input_side``, ``format`` (``torchscript``, ``module`` or
        ``state_dict``) and ``runner``: a callable ``(N, 1, S, S) float tensor -> scores`` that runs
        the user's own model (TorchScript or trusted module), or None for a state dict.

    Raises
    ------
    ImportModelError
        See :func:`classify_torch_file`, :data:`PICKLE_REFUSAL` and the ``ops_from_*`` functions.
    """
    import pickle

    import torch

    path = Path(path)
    kind = classify_torch_file(path)
    if kind == "torchscript":
        try:
            module = torch.jit.load(str(path), map_location="cpu").eval()
        except Exception as exc:             # noqa: BLE001  (torch.jit.load raises RuntimeError and others)
            raise ImportModelError(f"{path}: TorchScript archive that torch.jit.load cannot read "
                                   f"({type(exc).__name__}: {str(exc).splitlines()[0]})") from None
        ops = ops_from_torchscript(module, source=str(path))
        return {"ops": ops, "input_side": input_side, "format": "torchscript", "runner": _runner(module)}
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        if not trust_pickle:
            raise ImportModelError(f"{path} {PICKLE_REFUSAL}") from None
        try:
            blob = torch.load(path, map_location="cpu", weights_only=False)
        except (AttributeError, ModuleNotFoundError) as exc:
            raise ImportModelError(f"{path}: the pickled module's class cannot be found ({exc}); unpickling needs "
                                   "the model's Python class importable. Save a state dict or TorchScript "
                                   "instead") from None
        if not isinstance(blob, torch.nn.Module):
            raise ImportModelError(f"{path}: the pickle holds a {type(blob).__name__}, not an nn.Module")
        blob.eval()
        return {"ops": ops_from_module(blob), "input_side": input_side, "format": "module", "runner": _runner(blob)}
    except Exception as exc:               # noqa: BLE001  (zip and torch errors: a damaged file)
        raise ImportModelError(f"{path}: cannot read the torch file ({type(exc).__name__}: "
                               f"{str(exc).splitlines()[0] if str(exc) else ''}); is it truncated?") from None
    state = _unwrap_state(blob, path)
    notes = []
    ops, side = ops_from_state_dict(state, activation=activation, pool=pool, input_side=input_side,
                                    conv_pads=conv_pads, source=str(path), notes=notes)
    return {"ops": ops, "input_side": side, "format": "state_dict", "runner": None, "notes": notes}

