"""Quantization of an imported float network (:class:`~golden.importers.graph.FloatNet`) into a
:class:`golden.qnet.QNet`.

The same integer semantics as :mod:`golden.quantize` (the project's own models), for any network
of the supported family:

* each tensor has a format (:class:`~golden.qformat.QFormat`) and a *scale*, the real value of one
  LSB. Post-training quantization (PTQ) picks power-of-two scales (``2**-frac``) by least squared
  error over the weights and calibration activations; a QONNX import takes bit widths and scales
  from the Quant nodes instead (any positive scale; the format's ``frac`` is then the nearest
  power of two and only names it);
* biases are integers at the accumulator's scale ``s_in * s_w``; accumulator widths come from
  :func:`golden.arith.accumulator_format` (worst case);
* requantization ``saturate(round_shift(acc * M, S))``: ``M = 1`` and ``S`` the exponent when
  ``s_acc / s_act`` is a power of two, else the 16-bit ``M`` and the ``S`` closest to that ratio;
* ReLU outputs are unsigned (the requantizer's saturation at 0 is the ReLU); tanh is a lookup table
  of ``tanh`` over the requantized value, into ``sQ1.(a-1)``; average pooling is ``coef = 1/4``
  (``sQ0.2``), a rounding shift by 2 back to the input format;
* the input: the pixel byte ``p`` is read as ``uQ0.8`` (``p / 256``, as for the project's own
  models). The preprocessing ``x = gain * p + offset`` (:class:`~golden.importers.graph.Preprocess`)
  is folded into the first conv layer when that is exact (no offset, or a first conv without zero
  padding in normalised space: ``w' = 256 gain w``, ``b' = b + offset * sum(w)``); otherwise
  an input layer ``IN`` is put in front: a 1x1 convolution of one channel, ``x_int =
  saturate(round_shift(p * M + C, S))`` in a calibrated signed format, which the integer
  reference and the hardware execute as any conv layer, so zero padding after normalisation stays
  exact (the border is ``x = 0``, not ``p = 0``).
"""

from __future__ import annotations

import math

import numpy as np

from .. import arith
from ..limits import MAX_MULTIPLIER_BITS, MAX_SHIFT
from ..qformat import QFormat
from ..qnet import Activation, Layer, QNet, Requant
from ..quantize import INPUT_FMT, TANH_MAX_INT_BITS, choose_frac, to_ints
from .graph import FloatNet, ImportModelError

__all__ = ["INPUT_LAYER", "layer_names", "quantize_float_net", "requant_for"]

#: Name of the input-affine layer (a 1x1 convolution) when the preprocessing cannot be folded.
INPUT_LAYER = "IN"
#: Width (bits) of the input layer's multiplier (one product; precision is cheap here).
INPUT_W_BITS = 16


def layer_names(stages):
    """LeNet-style names by position: ``C<i>`` conv, ``S<i>`` pool, ``F<i>`` dense, ``OUT`` the last."""
    names = []
    for i, st in enumerate(stages, 1):
        names.append("OUT" if i == len(stages) else {"conv": "C", "pool": "S", "dense": "F"}[st.kind] + str(i))
    return names


def _pow2_exponent(x):
    """k when x == 2**k exactly, else None."""
    m, e = math.frexp(x)
    return e - 1 if m == 0.5 else None


def _nominal_frac(scale):
    return round(-math.log2(scale))


def requant_for(ratio, where):
    """``(M, S)`` with ``M / 2**S`` equal to ``ratio`` (a power of two: ``M = 1``) or closest to it
    with ``M`` below ``2**16``.

    Raises
    ------
    ImportModelError
        When no ``M`` in 1..65535 and ``S`` in 0..62 come within 1 % of ``ratio``.
    """
    k = _pow2_exponent(ratio)
    if k is not None and -MAX_SHIFT <= k <= 0:
        return 1, -k
    best = None
    for s in range(MAX_SHIFT, -1, -1):
        m = round(ratio * 2.0 ** s)
        if 1 <= m < (1 << MAX_MULTIPLIER_BITS):
            best = (m, s)
            break
    if best is None or abs(best[0] / 2.0 ** best[1] / ratio - 1) > 0.01:
        raise ImportModelError(f"{where}: the requantization ratio {ratio:.6g} (accumulator scale / output scale) "
                               f"cannot be a {MAX_MULTIPLIER_BITS}-bit multiplier and a right shift of 0..{MAX_SHIFT}")
    return best


def _tanh_lut(act_fmt, s_act, out_fmt, s_out):
    """tanh over every ``act_fmt`` integer ``q`` (real value ``q * s_act``), as integers of scale ``s_out``."""
    q = np.arange(act_fmt.min, act_fmt.max + 1, dtype=np.float64)
    return tuple(int(v) for v in to_ints(np.tanh(q * s_act) / s_out, QFormat(out_fmt.bits, 0, out_fmt.signed)))


def _act_fmt(st, pre, bits, signed_hint, logit_bits, last, acc_frac):
    """(act_fmt, scale) chosen by PTQ for a stage's requantized value."""
    if last:
        f = QFormat(logit_bits, choose_frac(pre, logit_bits, True), True)
    elif st.activation == "relu":
        f = QFormat(bits, choose_frac(np.maximum(pre, 0), bits, False), False)
    elif st.activation == "tanh":
        f = QFormat(bits, choose_frac(pre, bits, True, lo=bits - TANH_MAX_INT_BITS), True)
    else:
        f = QFormat(bits, choose_frac(pre, bits, signed_hint), signed_hint)
    if f.frac > acc_frac:                      # requantization never shifts left
        f = f.with_(frac=acc_frac)
    return f, 2.0 ** -f.frac


def _quant_fmt(q, where):
    """(QFormat, scale) of a QONNX quantizer ``(bits, scale, signed, rounding)``."""
    bits, scale, signed, rounding = q
    if not 2 <= bits <= 16:
        raise ImportModelError(f"{where}: {bits}-bit quantizer; widths 2..16 are supported")
    return QFormat(int(bits), _nominal_frac(scale), bool(signed), rounding=rounding), float(scale)


def _fold_input(net: FloatNet):
    """True when the preprocessing folds exactly into the first conv layer."""
    first = net.stages[0]
    return net.preprocess.offset == 0 or first.pad == 0


def quantize_float_net(net: FloatNet, calib_images, *, w_bits=8, a_bits=8, logit_bits=16, layer_w_bits=None,
                       layer_a_bits=None, input_quant=None, meta=None):
    """The quantized description of an imported network.

    Parameters
    ----------
    net : FloatNet
    calib_images : uint8 array (N, 28, 28)
        Calibration images (PTQ formats; also used by a QONNX import for formats it does not give).
    w_bits, a_bits, logit_bits : int
        Default widths (bits) of weights, activations and the output logits.
    layer_w_bits, layer_a_bits : dict, optional
        Per-layer widths keyed by the description's layer names (:func:`layer_names`).
    input_quant : tuple (bits, scale, signed, rounding), optional
        QONNX: the quantizer of the network input (the ``IN`` layer's output format).
    meta : dict, optional
        Stored in the description.

    Returns
    -------
    QNet
        ``variant = "imported"``, input ``(1, 28, 28)`` in uQ0.8.

    Raises
    ------
    ImportModelError
        A quantizer outside 2..16 bits, or a requantization ratio no multiplier and shift reach.
    golden.qnet.QNetError
        A description that does not validate (e.g. an accumulator wider than 46 bits).
    """
    layer_w_bits, layer_a_bits = dict(layer_w_bits or {}), dict(layer_a_bits or {})
    names = layer_names(net.stages)
    unknown = sorted((set(layer_w_bits) | set(layer_a_bits)) - set(names))
    if unknown:
        raise ImportModelError(f"per-layer widths name {', '.join(unknown)}; this network's layers are "
                               f"{', '.join(names)}")
    pre_acts = {}
    import torch

    net.forward(calib_images, dtype=torch.float64, pre_activations=pre_acts)
    stages = [st for st in net.stages]
    weights = [None if st.weight is None else st.weight.copy() for st in stages]
    biases = [None if st.bias is None else st.bias.copy() for st in stages]
    layers = []
    in_fmt, s_in = INPUT_FMT, 2.0 ** -INPUT_FMT.frac
    side = net.input_side
    first_pad = stages[0].pad + (2 if side == 32 else 0)
    folded = input_quant is None and _fold_input(net)
    pp = net.preprocess
    if folded:
        w0 = weights[0]
        biases[0] = biases[0] + pp.offset * w0.reshape(w0.shape[0], -1).sum(1)
        weights[0] = w0 * (pp.gain / s_in)
    else:
        # IN: x_int = saturate(round_shift(p * M + C, S)), a 1x1 conv on the 28x28 digit (pad 2 for 32x32)
        pad_in = 2 if side == 32 else 0
        if pad_in:
            raise ImportModelError(
                f"{stages[0].name}: a 32x32 model whose first conv pads (padding {stages[0].pad}) after a Normalize "
                f"with a mean (here {pp.mean}) needs an input layer that pads too, which the generator's 1x1 "
                "convolution does not support yet; pad the digit to 32x32 with conv padding 0, or use the 28x28 "
                "input with padding 2")
        first_pad = stages[0].pad
        if input_quant is not None:
            act_fmt, s_act = _quant_fmt(input_quant, "input quantizer")
        else:
            x = pre_acts["input"]
            act_fmt = QFormat(a_bits, choose_frac(x, a_bits, True), True)
            s_act = 2.0 ** -act_fmt.frac
        w_fmt = QFormat(INPUT_W_BITS, choose_frac(np.array([pp.gain / s_in]), INPUT_W_BITS, True), True)
        s_w = 2.0 ** -w_fmt.frac
        w_int = to_ints(np.array([[[[pp.gain / s_in]]]]), w_fmt)
        b_int = np.array([round(pp.offset / (s_in * s_w))], np.int64)
        acc_fmt = arith.accumulator_format(w_int, b_int, in_fmt, w_fmt.frac)
        m, s = requant_for(s_in * s_w / s_act, "input layer")
        out_side = 28 + 2 * pad_in
        layers.append(Layer(name=INPUT_LAYER, kind="conv", in_shape=(1, 28, 28), out_shape=(1, out_side, out_side),
                            in_fmt=in_fmt, out_fmt=act_fmt, kernel=1, stride=1, pad=pad_in, table=None,
                            weights=w_int, bias=b_int, w_fmt=w_fmt, acc_fmt=acc_fmt, act_fmt=act_fmt,
                            requant=Requant(m, s), activation=Activation("none")))
        in_fmt, s_in = act_fmt, s_act
    in_shape = layers[-1].out_shape if layers else (1, 28, 28)
    for k, (st, name) in enumerate(zip(stages, names)):
        last = k == len(stages) - 1
        pad = first_pad if k == 0 else st.pad
        if st.kind == "pool" and st.pool == "max":
            c, h, w = in_shape
            layers.append(Layer(name=name, kind="pool", pool="max", kernel=2, stride=2, in_shape=in_shape,
                                out_shape=(c, h // 2, w // 2), in_fmt=in_fmt, out_fmt=in_fmt))
            in_shape = layers[-1].out_shape
            continue
        wb, ab = layer_w_bits.get(name, w_bits), layer_a_bits.get(name, a_bits)
        pre = pre_acts[k]
        if st.kind == "pool":                                    # average: coef 1/4 in sQ0.2
            w_fmt, s_w = QFormat(2, 2, True), 0.25
            w_int = np.ones(in_shape[0], np.int64)
            b_int = np.zeros(in_shape[0], np.int64)
            mac_w = np.repeat(w_int.reshape(-1, 1), 4, axis=1)
        else:
            if "w" in st.quant:
                w_fmt, s_w = _quant_fmt(st.quant["w"], f"layer {st.name} weights")
                w_int = arith.saturate(np.rint(weights[k] / s_w).astype(np.int64), w_fmt)
            else:
                w_fmt = QFormat(wb, choose_frac(weights[k], wb, True), True)
                s_w = 2.0 ** -w_fmt.frac
                w_int = to_ints(weights[k], w_fmt)
            if st.kind == "conv" and st.table is not None:
                for o, row in enumerate(st.table):
                    absent = [i for i in range(in_shape[0]) if i not in row]
                    w_int[o, absent] = 0
            b_int = np.rint(biases[k] / (s_in * s_w)).astype(np.int64)
            mac_w = w_int
        acc_fmt = arith.accumulator_format(mac_w, b_int, in_fmt, w_fmt.frac)
        s_acc = s_in * s_w
        if "out" in st.quant and not last:
            act_fmt, s_act = _quant_fmt(st.quant["out"], f"layer {st.name} activation quantizer")
        elif st.kind == "pool" and st.activation == "none":
            act_fmt, s_act = in_fmt, s_in
        else:
            act_fmt, s_act = _act_fmt(st, pre, ab, True, logit_bits, last, acc_fmt.frac)
        m, s = requant_for(s_acc / s_act, f"layer {st.name}")
        if st.activation == "tanh":
            out_fmt = QFormat(ab, ab - 1, True)
            activation = Activation("tanh", _tanh_lut(act_fmt, s_act, out_fmt, 2.0 ** -out_fmt.frac),
                                    f"tanh(a * {s_act!r})")
            s_out = 2.0 ** -out_fmt.frac
        else:
            out_fmt, s_out = act_fmt, s_act
            activation = Activation("relu" if st.activation == "relu" else "none")
        if st.kind == "conv":
            c, h, w = in_shape
            out_shape = (w_int.shape[0], h + 2 * pad - st.kernel + 1, w + 2 * pad - st.kernel + 1)
            extra = {"kernel": st.kernel, "stride": 1, "pad": pad, "table": st.table}
            kind = "conv"
        elif st.kind == "dense":
            out_shape, extra, kind = (w_int.shape[0],), {}, "dense"
        else:
            c, h, w = in_shape
            out_shape, extra, kind = (c, h // 2, w // 2), {"pool": "avg", "kernel": 2, "stride": 2}, "pool"
        layers.append(Layer(name=name, kind=kind, in_shape=in_shape, out_shape=out_shape, in_fmt=in_fmt,
                            out_fmt=out_fmt, weights=w_int, bias=b_int, w_fmt=w_fmt, acc_fmt=acc_fmt,
                            act_fmt=act_fmt, requant=Requant(int(m), int(s)), activation=activation, **extra))
        in_fmt, s_in, in_shape = out_fmt, s_out, out_shape
    meta = dict(meta or {})
    meta["input"] = dict(net.preprocess.to_dict(), side=side,
                         applied="folded into the first conv layer" if folded else
                         f"input layer {INPUT_LAYER}: x = saturate(round_shift(p * M + C, S))")
    return QNet(variant="imported", input_shape=(1, 28, 28), input_fmt=INPUT_FMT, layers=layers, meta=meta)
