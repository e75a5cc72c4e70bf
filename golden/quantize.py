"""Post-training quantization and quantization-aware training of the float LeNet-5.

Turns a float :class:`golden.model.LeNet5` into a :class:`golden.qnet.QNet` description:

* every tensor gets a power-of-two fixed-point format (:class:`~golden.qformat.QFormat`) whose
  fractional bits minimise the mean squared quantization error (weights: over the weights;
  activations: over calibration activations from training images);
* biases are quantized at the accumulator's scale (``in.frac + w.frac`` fractional bits);
* accumulator widths come from :func:`golden.arith.accumulator_range` (worst case, no overflow);
* requantization is a rounding right shift by ``acc.frac - act.frac`` (multiplier 1);
* ReLU layers output unsigned formats (the requantizer's saturation at 0 is the ReLU); tanh is a
  lookup table of the paper's scaled tanh ``1.7159 tanh(2a/3)`` (LeCun et al. 1998, App. A) whose
  output format is ``sQ2.n``, or ``sQ1.n`` when every table value fits it (:func:`tanh_out_fmt`);
* the logits keep ``logit_bits`` (16 by default) so that argmax ties are rare;
* ``classic-rbf``: the paper's input scaling ``x = 1.28 u - 0.1`` is folded into C1 exactly
  (weights ``1.28 w``, biases ``b - 0.1 sum(w)``, :meth:`golden.model.LeNet5.c1_folded`: exact
  because the border is padded in the pixel domain), so the description reads the uQ0.8 pixel as
  for the other variants; the RBF output becomes an ``rbf`` layer whose parameters are the
  bitmaps in F6's output format (+-1 is ``+-2**frac``) and whose distances are kept exactly in
  an unsigned accumulator sized for the worst case (:func:`golden.arith.distance_format`).

The fake-quantized forward pass (:func:`fake_quant_forward`) follows the integer semantics
exactly: in float64 (``exact=True``) it equals the integer reference bit for bit; in float32 with
straight-through gradients it is the forward pass of quantization-aware training.
"""

import math
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from . import arith
from .paper import TANH_A, TANH_S
from .qformat import QFormat
from .qnet import Activation, Layer, QNet, Requant, WIDTH_RANGE

__all__ = ["QuantConfig", "calibrate", "quantize_model", "fake_quant_forward", "to_ints",
           "tanh_lut", "choose_frac", "qat_finetune", "LAYER_NAMES"]

#: Layer names of the description and the matching attributes of :class:`golden.model.LeNet5`.
LAYER_NAMES = ("C1", "S2", "C3", "S4", "C5", "F6", "OUT")
#: Format of the network input: the uint8 pixel ``p`` is the value ``p / 256``.
INPUT_FMT = QFormat(8, 8, False)
#: Widest integer range (bits, sign included) of a tanh LUT input: beyond |a| = 8 the scaled tanh
#: is within 2e-5 of its limit.
TANH_MAX_INT_BITS = 4
#: Candidate fractional bits searched for each format.
FRAC_CANDIDATES = range(-8, 30)


@dataclass
class QuantConfig:
    """Widths of a quantization run.

    Parameters
    ----------
    w_bits, a_bits : int
        Default weight and activation widths (bits), 2..16.
    layer_w_bits, layer_a_bits : dict of str -> int
        Per-layer overrides keyed by layer name (``C1`` ... ``OUT``).
    logit_bits : int
        Width of the output layer's logits (bits, signed), 2..32.
    calib_images : int
        Number of training images used for activation calibration.
    """

    w_bits: int = 8
    a_bits: int = 8
    layer_w_bits: dict = field(default_factory=dict)
    layer_a_bits: dict = field(default_factory=dict)
    logit_bits: int = 16
    calib_images: int = 2000

    def __post_init__(self):
        lo, hi = WIDTH_RANGE
        for name, bits in [("w_bits", self.w_bits), ("a_bits", self.a_bits),
                           *[(f"w_bits[{k}]", v) for k, v in self.layer_w_bits.items()],
                           *[(f"a_bits[{k}]", v) for k, v in self.layer_a_bits.items()]]:
            if not isinstance(bits, int) or not lo <= bits <= hi:
                raise ValueError(f"{name} = {bits!r}: widths must be integers from {lo} to {hi} bits")
        for k in [*self.layer_w_bits, *self.layer_a_bits]:
            if k not in LAYER_NAMES:
                raise ValueError(f"unknown layer {k!r} in a per-layer width; layers are {LAYER_NAMES}")
        if not 2 <= self.logit_bits <= 32:
            raise ValueError(f"logit_bits = {self.logit_bits}: must be 2..32")

    def wb(self, name):
        return self.layer_w_bits.get(name, self.w_bits)

    def ab(self, name):
        return self.layer_a_bits.get(name, self.a_bits)


# -- formats --------------------------------------------------------------------------------

def to_ints(values, fmt: QFormat):
    """Quantize real values to integers of ``fmt`` (its rounding and overflow modes), exactly.

    ``values`` (numpy or torch) are scaled by ``2**fmt.frac`` in float64 (exact) and rounded with
    the integer rule of :func:`golden.arith.round_shift` (``half_up``: ``floor(v + 1/2)``).
    Returns a numpy int64 array.
    """
    v = np.asarray(values.detach().double().cpu() if torch.is_tensor(values) else values, np.float64)
    v = np.ldexp(v, fmt.frac)
    if fmt.rounding == "half_up":
        q = np.floor(v + 0.5)
    elif fmt.rounding == "half_even":
        q = np.round(v)
    else:
        q = np.floor(v)
    return arith.saturate(q.astype(np.int64), fmt)


def choose_frac(values, bits, signed, lo=None, hi=None):
    """Fractional bits of a ``bits``-wide format minimising the squared quantization error.

    Parameters
    ----------
    values : array of float
        Samples (weights, or calibration activations).
    bits : int
    signed : bool
    lo, hi : int, optional
        Bounds on the fractional bits searched.
    """
    v = np.asarray(values, np.float64).reshape(-1)
    if v.size > 200_000:
        v = np.random.default_rng(0).choice(v, 200_000, replace=False)
    best, best_err = None, math.inf
    for frac in FRAC_CANDIDATES:
        if (lo is not None and frac < lo) or (hi is not None and frac > hi):
            continue
        fmt = QFormat(bits, frac, signed)
        err = float(np.mean((np.ldexp(to_ints(v, fmt).astype(np.float64), -frac) - v) ** 2))
        if err < best_err - 1e-15:
            best, best_err = frac, err
    return best


def tanh_lut(act_fmt: QFormat, out_fmt: QFormat):
    """Scaled tanh ``1.7159 tanh(2a/3)`` (LeCun et al. 1998, App. A) tabulated over ``act_fmt``.

    Returns a tuple of ``2**act_fmt.bits`` ints in ``out_fmt``; entry ``i`` is for the input
    ``(act_fmt.min + i) * 2**-act_fmt.frac``.
    """
    a = np.ldexp(np.arange(act_fmt.min, act_fmt.max + 1, dtype=np.float64), -act_fmt.frac)
    return tuple(int(v) for v in to_ints(TANH_A * np.tanh(TANH_S * a), out_fmt))


def tanh_out_fmt(act_fmt: QFormat, bits: int):
    """Output format of a tanh LUT: the finer of ``sQ1.(bits-1)`` and ``sQ2.(bits-2)`` that holds
    every table value exactly (no saturation).

    ``sQ2.n`` covers the scaled tanh's whole range (+-1.7159); when the LUT input range
    ``act_fmt`` keeps every output inside ``sQ1.(bits-1)`` (inputs within about +-1, as in
    classic-rbf's S4), that format halves the output step. Returns a signed :class:`QFormat`.
    """
    ends = np.ldexp(np.array([act_fmt.min, act_fmt.max], dtype=np.float64), -act_fmt.frac)
    values = TANH_A * np.tanh(TANH_S * ends)
    for frac in (bits - 1, bits - 2):
        fmt = QFormat(bits, frac, True)
        q = np.floor(np.ldexp(values, frac) + 0.5)
        if fmt.min <= q.min() and q.max() <= fmt.max:
            return fmt
    return QFormat(bits, bits - 2, True)


# -- calibration ----------------------------------------------------------------------------

def _module(model, name):
    return getattr(model, name.lower())


def _float_weights(model, name):
    mod = _module(model, name)
    if name == "C1":
        return model.c1_folded()    # the input scaling folded in (classic-rbf), else C1's own
    if name in ("S2", "S4"):
        return mod.coef, mod.bias
    if name == "OUT" and _is_rbf(model):
        return mod.centers, None
    w = mod.weight
    if getattr(mod, "mask", None) is not None:
        w = w * mod.mask
    return w, mod.bias


@torch.no_grad()
def calibrate(model, images):
    """Float pre-activation values of every layer with a MAC, on calibration images.

    Parameters
    ----------
    model : golden.model.LeNet5
    images : uint8 array (N, 28, 28)

    Returns
    -------
    dict of layer name -> float64 numpy array of pre-activation samples
    """
    x = torch.tensor(np.asarray(images), dtype=torch.float32)[:, None] / 256.0
    stats = {}
    h = x
    act = _activation(model.variant)
    for name in LAYER_NAMES:
        if name in ("S2", "S4") and model.variant == "modern":
            h = F.max_pool2d(h, 2)
            continue
        w, b = _float_weights(model, name)
        if name == "OUT" and _is_rbf(model):
            stats[name] = model.out(torch.flatten(h, 1)).double().numpy()
            break
        if name in ("S2", "S4"):
            pre = F.avg_pool2d(h, 2) * 4 * w[None, :, None, None] + b[None, :, None, None]
        elif name in ("C1", "C3"):
            pre = F.conv2d(h, w, b, padding=2 if name == "C1" else 0)
        else:
            pre = F.linear(torch.flatten(h, 1), w, b)
        stats[name] = pre.double().numpy()
        h = pre if name == "OUT" else act(pre)
    return stats


def _is_rbf(model):
    return model.layers()[-1][2] == "rbf"


def _rbf_layer(model, in_fmt, in_shape):
    """The ``rbf`` output layer: the bitmaps in the F6 output format, the exact distance accumulator."""
    centers = to_ints(model.out.centers, in_fmt)
    if not np.array_equal(np.ldexp(centers.astype(np.float64), -in_fmt.frac), model.out.centers.double().numpy()):
        raise ValueError(f"the RBF bitmaps' +-1 are not exact in F6's output format {in_fmt}; F6 needs at "
                         f"least 2 integer bits (e.g. sQ2.{in_fmt.bits - 2})")
    acc_fmt = arith.distance_format(centers, in_fmt)
    return Layer(name="OUT", kind="rbf", in_shape=in_shape, out_shape=(centers.shape[0],), in_fmt=in_fmt,
                 out_fmt=acc_fmt, weights=centers, w_fmt=in_fmt, acc_fmt=acc_fmt)


def _activation(variant):
    if variant == "modern":
        return F.relu
    return lambda a: TANH_A * torch.tanh(TANH_S * a)


# -- post-training quantization -------------------------------------------------------------

def quantize_model(model, calib, config: QuantConfig = None, formats=None, meta=None):
    """Build the quantized description of a float model.

    Parameters
    ----------
    model : golden.model.LeNet5
        Float model (``modern`` or ``classic``).
    calib : dict
        Output of :func:`calibrate`.
    config : QuantConfig
    formats : dict, optional
        ``{layer: (w_fmt, act_fmt, out_fmt)}`` to reuse (quantization-aware training keeps the
        formats it trained with); weights, biases, accumulators and LUTs are recomputed.
    meta : dict, optional
        Provenance stored in the description.

    Returns
    -------
    QNet
    """
    config = config or QuantConfig()
    variant = model.variant
    layers = []
    in_fmt, in_shape = INPUT_FMT, (1, 28, 28)
    for name in LAYER_NAMES:
        if name in ("S2", "S4") and variant == "modern":
            c, h, w = in_shape
            layers.append(Layer(name=name, kind="pool", pool="max", kernel=2, stride=2, in_shape=in_shape,
                                out_shape=(c, h // 2, w // 2), in_fmt=in_fmt, out_fmt=in_fmt))
            in_shape = layers[-1].out_shape
            continue
        if name == "OUT" and _is_rbf(model):
            if "OUT" in config.layer_w_bits or "OUT" in config.layer_a_bits:
                raise ValueError("OUT of classic-rbf is the RBF layer: its parameters are the fixed bitmaps in "
                                 "F6's output format and its distances are exact, so per-layer widths do not "
                                 "apply to it; set F6's width instead (e.g. --layer-a-bits F6=6)")
            layers.append(_rbf_layer(model, in_fmt, in_shape))
            break
        wf, bf = _float_weights(model, name)
        wf = wf.detach().double().numpy()
        bf = bf.detach().double().numpy()
        wb, ab = config.wb(name), config.ab(name)
        if formats and name in formats:
            w_fmt, act_fmt, out_fmt = formats[name]
        else:
            w_fmt = QFormat(wb, choose_frac(wf, wb, True), True)
            pre = calib[name]
            if name == "OUT":
                act_fmt = QFormat(config.logit_bits, choose_frac(pre, config.logit_bits, True), True)
                out_fmt = act_fmt
            elif variant == "modern":
                post = np.maximum(pre, 0)
                act_fmt = QFormat(ab, choose_frac(post, ab, False), False)
                out_fmt = act_fmt
            else:
                act_fmt = QFormat(ab, choose_frac(pre, ab, True, lo=ab - TANH_MAX_INT_BITS), True)
                out_fmt = QFormat(ab, ab - 2, True)   # sQ2.n covers the scaled tanh's +-1.7159
            acc_frac = in_fmt.frac + w_fmt.frac
            if act_fmt.frac > acc_frac:   # requantization never shifts left
                act_fmt = act_fmt.with_(frac=acc_frac)
                out_fmt = act_fmt if out_fmt.bits == act_fmt.bits and name == "OUT" or variant == "modern" else out_fmt
            feeds_rbf = name == LAYER_NAMES[-2] and _is_rbf(model)   # F6: the bitmaps' +-1 must be exact
            if name != "OUT" and variant != "modern" and not feeds_rbf:
                out_fmt = tanh_out_fmt(act_fmt, ab)
        w_int = to_ints(wf, w_fmt)
        acc_frac = in_fmt.frac + w_fmt.frac
        b_int = to_ints(bf, QFormat(40, acc_frac, True))
        if name in ("S2", "S4"):
            kind, extra = "pool", dict(pool="avg", kernel=2, stride=2)
            c, h, w = in_shape
            out_shape = (c, h // 2, w // 2)
            mac_w = np.repeat(w_int.reshape(-1, 1), 4, axis=1)
        elif name in ("C1", "C3"):
            pad = 2 if name == "C1" else 0
            mask = getattr(_module(model, name), "mask", None)
            table = None if mask is None else tuple(
                tuple(int(i) for i in torch.nonzero(mask[o, :, 0, 0]).flatten()) for o in range(mask.shape[0]))
            kind, extra = "conv", dict(kernel=w_int.shape[-1], stride=1, pad=pad, table=table)
            k = w_int.shape[-1]
            out_shape = (w_int.shape[0], in_shape[1] + 2 * pad - k + 1, in_shape[2] + 2 * pad - k + 1)
            mac_w = w_int
        else:
            kind, extra = "dense", {}
            out_shape = (w_int.shape[0],)
            mac_w = w_int
        acc_fmt = arith.accumulator_format(mac_w, b_int, in_fmt, w_fmt.frac)
        shift = acc_fmt.frac - act_fmt.frac
        if name == "OUT" or variant == "modern":
            activation = Activation("relu" if name != "OUT" else "none")
        else:
            activation = Activation("tanh", tanh_lut(act_fmt, out_fmt), f"{TANH_A}*tanh({TANH_S:.6f}*a)")
        layers.append(Layer(name=name, kind=kind, in_shape=in_shape, out_shape=out_shape, in_fmt=in_fmt,
                            out_fmt=out_fmt, weights=w_int, bias=b_int, w_fmt=w_fmt, acc_fmt=acc_fmt,
                            act_fmt=act_fmt, requant=Requant(1, shift), activation=activation, **extra))
        in_fmt, in_shape = out_fmt, out_shape
    return QNet(variant=variant, input_shape=(1, 28, 28), input_fmt=INPUT_FMT, layers=layers,
                meta=dict(meta or {}))


def layer_formats(qnet: QNet):
    """``{layer: (w_fmt, act_fmt, out_fmt)}`` of the layers with a MAC (see :func:`quantize_model`)."""
    return {l.name: (l.w_fmt, l.act_fmt, l.out_fmt) for l in qnet.layers if l.has_mac}


# -- fake quantization ----------------------------------------------------------------------

def _fq(x, fmt: QFormat, ste):
    """Fake-quantize real values to ``fmt`` (same rounding as :func:`to_ints`)."""
    v = x * (2.0 ** fmt.frac)
    if fmt.rounding == "half_up":
        q = torch.floor(v + 0.5)
    elif fmt.rounding == "half_even":
        q = torch.round(v)
    else:
        q = torch.floor(v)
    q = torch.clamp(q, fmt.min, fmt.max) * (2.0 ** -fmt.frac)
    return x + (q - x).detach() if ste else q


def fake_quant_forward(model, qnet: QNet, pixels, exact=False):
    """Forward pass of the float model with every tensor fake-quantized as ``qnet`` prescribes.

    Parameters
    ----------
    model : golden.model.LeNet5
        Supplies the (float) weights; they are quantized on the fly with the description's formats.
    qnet : QNet
        Supplies the formats, the requantization and the activation LUTs.
    pixels : uint8 array or tensor (N, 28, 28)
    exact : bool
        ``True``: float64, no gradients, tanh through the description's LUT: the result equals
        the integer reference exactly (values are dyadic rationals far below 2**53).
        ``False``: float32 with straight-through gradients (quantization-aware training).

    Returns
    -------
    torch.Tensor (N, classes): the real-valued logits (integer logits times ``2**-frac``); for an
    RBF output the negated distances ``-y`` (as :meth:`golden.model.LeNet5.forward`).
    """
    if exact:
        with torch.no_grad():
            return _fq_forward(model, qnet, pixels, torch.float64, exact=True)
    return _fq_forward(model, qnet, pixels, torch.float32, exact=False)


def _fq_forward(model, qnet, pixels, dtype, exact):
    ste = not exact
    h = (pixels if torch.is_tensor(pixels) else torch.tensor(np.asarray(pixels))).to(dtype)
    h = h.reshape(-1, 1, 28, 28) / 256.0
    for layer in qnet.layers:
        if layer.kind == "pool" and layer.pool == "max":
            h = F.max_pool2d(h, 2)
            continue
        if layer.is_rbf:   # exact in float64: the distances are integers times 2**-acc.frac
            c = torch.tensor(layer.weights, dtype=dtype) * 2.0 ** -layer.in_fmt.frac
            d = torch.flatten(h, 1)[:, None, :] - c[None, :, :]
            return -(d * d).sum(dim=2)      # -y, as the float model (argmax = argmin of y)
        wf, bf = _float_weights(model, layer.name)
        w = _fq(wf.to(dtype), layer.w_fmt, ste)
        b = _fq(bf.to(dtype), layer.acc_fmt, ste)
        if layer.kind == "conv":
            acc = F.conv2d(h, w, b, padding=layer.pad)
        elif layer.kind == "dense":
            acc = F.linear(torch.flatten(h, 1), w, b)
        else:
            acc = F.avg_pool2d(h, 2) * 4 * w[None, :, None, None] + b[None, :, None, None]
        a = _fq(acc, layer.act_fmt, ste)
        kind = layer.activation.kind
        if kind == "relu":
            a = F.relu(a)
        elif kind == "tanh":
            if exact:
                idx = torch.round(a * 2.0 ** layer.act_fmt.frac).long() - layer.act_fmt.min
                lut = torch.tensor(layer.activation.lut, dtype=dtype) * 2.0 ** -layer.out_fmt.frac
                a = lut[idx]
            else:
                a = _fq(TANH_A * torch.tanh(TANH_S * a), layer.out_fmt, ste)
        h = a
    return h


# -- quantization-aware training ------------------------------------------------------------

def qat_finetune(model, qnet: QNet, images, labels, epochs=3, lr=2e-4, batch_size=128, seed=0,
                 augment=True, progress=True):
    """Quantization-aware training: fine-tune ``model`` through :func:`fake_quant_forward`.

    The formats of ``qnet`` stay fixed; gradients pass the rounding by the straight-through
    estimator. Uses the training loop of :func:`golden.train.fit` (Adam, one-cycle schedule
    peaking at ``lr``, seeded shuffling and shifts, the variant's loss temperature of
    :data:`golden.train.DEFAULTS`), deterministic for a given seed.
    Returns a log dict (per-epoch loss, train accuracy, seconds).
    """
    from .train import DEFAULTS, deterministic, fit

    x_all = torch.tensor(np.asarray(images))
    y_all = torch.tensor(np.asarray(labels), dtype=torch.long)
    with deterministic(seed):
        epochs_log = fit(model, x_all, y_all, epochs=epochs, batch_size=batch_size, lr=lr, augment=augment,
                         seed=seed, progress=progress, desc="QAT",
                         forward=lambda x: fake_quant_forward(model, qnet, x * 256.0),
                         temperature=DEFAULTS.get(getattr(model, "variant", None), {}).get("temperature", 1.0))
    return {"epochs": epochs_log}


# -- the whole flow (used by `lenet5 quantize`) ---------------------------------------------

def _tag(config: QuantConfig, qat_epochs):
    if (config.w_bits, config.a_bits) == (8, 8) and not config.layer_w_bits and not config.layer_a_bits:
        tag = "int8"
    else:
        tag = f"w{config.w_bits}a{config.a_bits}"
        if config.layer_w_bits or config.layer_a_bits:
            tag += "_mixed"
    return tag + ("_qat" if qat_epochs else "")


def quantize_with_options(checkpoint, config: QuantConfig, out=None, data=None, qat_epochs=0, qat_lr=2e-4,
                          seed=0, progress=True):
    """Load a checkpoint, calibrate, quantize (and optionally fine-tune with QAT), save.

    Parameters
    ----------
    checkpoint : path
        Float checkpoint (``lenet5 train``).
    config : QuantConfig
    out : path, optional
        Description to write; default ``<checkpoint folder>/<variant>_<tag>.json`` where the tag
        is ``int8``, ``w4a8``, ... with ``_qat`` appended after QAT.
    data : path, optional
        MNIST folder (see :func:`golden.mnist.find_mnist_dir`).
    qat_epochs : int
        Quantization-aware fine-tuning epochs; the fine-tuned float model is saved as
        ``<out stem>.pt`` and named in the description's ``meta.checkpoint``.

    Returns
    -------
    (QNet, dict) : the description and a report (``out``, ``checkpoint``, ``qat`` log).

    Raises
    ------
    ValueError
        Bad checkpoint (see :func:`golden.model.load_checkpoint`), bad widths, missing MNIST.
    """
    import os
    from pathlib import Path

    from .evaluate import sha256
    from .mnist import load_mnist
    from .model import load_checkpoint, save_checkpoint

    checkpoint = Path(checkpoint)
    model, ck_meta = load_checkpoint(checkpoint)
    model.eval()
    stem = model.variant.replace("-", "_")
    out = Path(out) if out else checkpoint.parent / f"{stem}_{_tag(config, qat_epochs)}.json"
    images, labels = load_mnist("train", data=data)
    if not 1 <= config.calib_images <= len(images):
        raise ValueError(f"calib_images must be 1..{len(images)}, got {config.calib_images}")
    calib = calibrate(model, images[:config.calib_images])
    qnet = quantize_model(model, calib, config)
    report = {"out": out, "checkpoint": checkpoint}
    meta = {"checkpoint": os.path.relpath(checkpoint, out.parent), "checkpoint_sha256": sha256(checkpoint),
            "calibration": f"first {config.calib_images} MNIST training images",
            "widths": {"w_bits": config.w_bits, "a_bits": config.a_bits, "logit_bits": config.logit_bits,
                       "layer_w_bits": config.layer_w_bits, "layer_a_bits": config.layer_a_bits},
            "method": "PTQ: power-of-two formats by least squared error"}
    if qat_epochs:
        log = qat_finetune(model, qnet, images, labels, epochs=qat_epochs, lr=qat_lr, seed=seed,
                           progress=progress)
        qat_ck = out.with_suffix(".pt")
        save_checkpoint(model, qat_ck, {"parent": str(checkpoint.name), "qat": log, "qat_lr": qat_lr,
                                        "seed": seed})
        qnet = quantize_model(model, calib, config, formats=layer_formats(qnet))
        meta.update(checkpoint=os.path.relpath(qat_ck, out.parent), checkpoint_sha256=sha256(qat_ck),
                    method=meta["method"] + f"; QAT {qat_epochs} epochs (Adam, one-cycle peak lr {qat_lr}, shifts, seed {seed}) "
                                            f"from {checkpoint.name}")
        report.update(checkpoint=qat_ck, qat=log)
    qnet = QNet(qnet.variant, qnet.input_shape, qnet.input_fmt, qnet.layers, meta)
    qnet.save(out)
    return qnet, report
