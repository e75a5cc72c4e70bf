"""Float LeNet-5 (LeCun et al. 1998) in PyTorch, in two variants, and its checkpoint format.

Source: Y. LeCun, L. Bottou, Y. Bengio, P. Haffner, "Gradient-based learning applied to document
recognition", Proc. IEEE 86(11), 1998: Sec. II-B (architecture), Table I (C3 connections),
Appendix A (scaled tanh).

Three variants share the layer names and shapes ``c1, s2, c3, s4, c5, f6, out``:

``"modern"``
    ReLU after c1, c3, c5 and f6; s2/s4 are 2x2 stride-2 max pools; C3 fully connected (96 of
    96 input/output map pairs).
``"classic"``
    As in the paper: scaled tanh ``f(a) = A tanh(S a)`` (Appendix A) after c1, s2, c3, s4, c5
    and f6; s2/s4 are trainable sub-sampling layers (sum of each 2x2 block times a per-map
    coefficient plus a per-map bias, Sec. II-B); C3 connected as in Table I (60 of 96 pairs).
``"classic-rbf"``
    The paper's network complete: ``classic``, plus the paper's input scaling (Sec. II-A:
    background -0.1, foreground 1.175) and the output layer of 10 Euclidean RBF units (Sec. II-B,
    Fig. 3) ``y_i = sum_j (x_j - w_ij)^2`` whose parameters ``w_ij`` are the fixed +1/-1 7x12
    bitmaps of :mod:`golden.rbf_bitmaps`; the class is the unit with the smallest ``y_i``.

In ``modern`` and ``classic`` the output layer is a plain linear 10-way layer trained with
cross-entropy, and the input is the uint8 pixel divided by 256, which is exactly the uQ0.8 value
the integer model reads.

``classic-rbf`` reads the same pixel / 256 (``u``) and scales it as the paper does: ``x = A u + B``
with ``A = 1.28`` and ``B = -0.1`` (pixel 0 -> -0.1, pixel 255 -> 1.175; :func:`input_affine`).
The paper pads in the pixel domain (the 28x28 digit sits in a 32x32 field of background), so
the border is background too: ``x = A * pad(u) + B``, and C1 computes
``conv(A pad(u) + B, w) + bias = conv(pad(u), A w) + (bias + B sum(w))`` (per output map; the
sum is over its 25 weights). That identity is exact: :meth:`LeNet5.c1_folded` gives C1's weights
and biases with the scaling folded in, which is what the quantizer quantizes, so the quantized
network and the hardware read the plain uQ0.8 pixel with a zero border as for the other variants.
Its forward pass returns ``-y`` (so that the arg max is the arg min of the distances and
cross-entropy on ``-y`` is the training loss, see :mod:`golden.train`); :meth:`LeNet5.distances`
returns ``y``.

The parameter names (``c1.weight``, ``s2.coef``, ``c3.mask``, ...) are a contract with the
quantizer; see :meth:`LeNet5.layers`.
"""

import json
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from golden.paper import (
    C3_TABLE,
    INPUT_BACKGROUND,
    INPUT_FOREGROUND,
    INPUT_PAD,
    MNIST_SIDE,
    TANH_A,
    TANH_S,
)
from golden.rbf_bitmaps import BITMAPS

#: The model variants accepted by :class:`LeNet5`.
VARIANTS = ("modern", "classic", "classic-rbf")

#: Activation of each variant: the function's name and the layers whose output it follows.
#: The output layer ``out`` is never followed by an activation (its outputs are the logits).
ACTIVATIONS = {
    "modern": {"function": "relu", "after": ("c1", "c3", "c5", "f6")},
    "classic": {"function": "scaled_tanh", "after": ("c1", "s2", "c3", "s4", "c5", "f6")},
    "classic-rbf": {"function": "scaled_tanh", "after": ("c1", "s2", "c3", "s4", "c5", "f6")},
}

#: ``format`` field of a checkpoint file written by :func:`save_checkpoint`.
CHECKPOINT_FORMAT = "lenet5-checkpoint"
#: ``version`` field of a checkpoint file written by :func:`save_checkpoint`.
CHECKPOINT_VERSION = 1


def scaled_tanh(x):
    """Scaled hyperbolic tangent of LeNet-5 (LeCun et al. 1998, Appendix A).

    Parameters
    ----------
    x : torch.Tensor
        Pre-activations, any shape.

    Returns
    -------
    torch.Tensor
        ``TANH_A * tanh(TANH_S * x)`` with ``TANH_A = 1.7159`` and ``TANH_S = 2/3``, same shape
        as `x`; f(1) = 1, f(-1) = -1, values in (-1.7159, 1.7159).
    """
    return TANH_A * torch.tanh(TANH_S * x)


def input_affine(variant):
    """The input scaling ``x = A u + B`` of a variant, on ``u`` = pixel / 256.

    Returns
    -------
    (float, float) or None
        ``(A, B)`` for ``classic-rbf``: the paper's scaling (LeCun et al. 1998, Sec. II-A),
        background (pixel 0) -0.1 and foreground (pixel 255) 1.175, so ``A = 1.275 * 256 / 255 =
        1.28`` and ``B = -0.1``; ``None`` (no scaling, ``x = u``) for the other variants.
    """
    _check_variant(variant)
    if variant != "classic-rbf":
        return None
    span = INPUT_FOREGROUND - INPUT_BACKGROUND
    return span * 256.0 / 255.0, INPUT_BACKGROUND


def rbf_centers():
    """The RBF units' parameters as a float32 tensor of shape (10, 84), values +1/-1
    (:data:`golden.rbf_bitmaps.BITMAPS`)."""
    return torch.tensor(BITMAPS, dtype=torch.float32)


class RBF(nn.Module):
    """Euclidean radial basis function output units (LeCun et al. 1998, Sec. II-B, Eq. 7).

    ``y[n, i] = sum_j (x[n, j] - centers[i, j])**2``: the squared Euclidean distance of the input
    vector to each unit's parameter vector. The parameters are fixed (not trained): the +1/-1
    bitmaps of :mod:`golden.rbf_bitmaps`.

    Attributes
    ----------
    centers : torch.Tensor
        Buffer (in the state dict, checked on load) of shape ``(10, 84)``, values +1/-1.
    """

    def __init__(self):
        super().__init__()
        self.register_buffer("centers", rbf_centers())

    def forward(self, x):
        """Distances ``(N, 10)`` of `x` ``(N, 84)`` to the 10 centres (non-negative)."""
        diff = x[:, None, :] - self.centers[None, :, :]
        return (diff * diff).sum(dim=2)

    def extra_repr(self):
        return "units=10, inputs=84, fixed 7x12 bitmaps"


def _check_variant(variant):
    if variant not in VARIANTS:
        raise ValueError(f"unknown LeNet-5 variant {variant!r}; valid variants: "
                         + ", ".join(VARIANTS))


class Subsample(nn.Module):
    """Trainable 2x2 sub-sampling layer of LeNet-5 (S2, S4; LeCun et al. 1998, Sec. II-B).

    Each output unit adds the four inputs of its non-overlapping 2x2 block, multiplies the sum by
    a trainable coefficient and adds a trainable bias, one coefficient and one bias per feature
    map: ``y[n, c, i, j] = coef[c] * sum(x[n, c, 2i:2i+2, 2j:2j+2]) + bias[c]``. The activation
    that follows in the paper is applied by :class:`LeNet5`, not here.

    Parameters
    ----------
    channels : int
        Number of feature maps (6 for S2, 16 for S4).

    Attributes
    ----------
    coef : torch.nn.Parameter
        Shape ``(channels,)``, initialised to 0.25 (the block sum then starts as the mean).
    bias : torch.nn.Parameter
        Shape ``(channels,)``, initialised to 0.
    """

    def __init__(self, channels):
        super().__init__()
        self.channels = channels
        self.coef = nn.Parameter(torch.full((channels,), 0.25))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x):
        """Sub-sample `x` of shape ``(N, channels, H, W)`` (H, W even) to ``(N, channels, H/2, W/2)``."""
        block_sum = F.avg_pool2d(x, kernel_size=2, stride=2, divisor_override=1)
        return block_sum * self.coef.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)

    def extra_repr(self):
        return f"channels={self.channels}"


class SparseConv2d(nn.Conv2d):
    """Convolution with a fixed input/output feature-map connection table (C3, Table I).

    The kernel used in the forward pass is ``weight * mask``, where the buffer ``mask`` of shape
    ``(out_channels, in_channels, 1, 1)`` is 1 for connected (output, input) map pairs and 0
    otherwise, so absent pairs contribute exactly zero and receive zero gradient. The stored
    ``weight`` entries of absent pairs are zeroed at construction and by :meth:`zero_masked_`
    so that a checkpoint holds zeros there too. No padding, stride 1.

    Parameters
    ----------
    in_channels, out_channels, kernel_size : int
        As for :class:`torch.nn.Conv2d`.
    table : sequence of sequence of int
        ``table[o]`` lists the input maps that output map ``o`` reads; ``len(table)`` must be
        `out_channels`. For C3 this is :data:`golden.paper.C3_TABLE`.

    Attributes
    ----------
    weight : torch.nn.Parameter
        Shape ``(out_channels, in_channels, k, k)``; zero at unconnected pairs.
    bias : torch.nn.Parameter
        Shape ``(out_channels,)``.
    mask : torch.Tensor
        Buffer of shape ``(out_channels, in_channels, 1, 1)``, float 0/1.
    """

    def __init__(self, in_channels, out_channels, kernel_size, table):
        super().__init__(in_channels, out_channels, kernel_size)
        if len(table) != out_channels:
            raise ValueError(f"connection table has {len(table)} rows, expected {out_channels}")
        mask = torch.zeros(out_channels, in_channels, 1, 1)
        for o, inputs in enumerate(table):
            for i in inputs:
                if not 0 <= i < in_channels:
                    raise ValueError(f"connection table row {o} names input map {i}, "
                                     f"outside 0..{in_channels - 1}")
                mask[o, i] = 1.0
        self.register_buffer("mask", mask)
        self.zero_masked_()

    @torch.no_grad()
    def zero_masked_(self):
        """Set the stored weights of unconnected (output, input) pairs to exactly zero, in place."""
        self.weight.mul_(self.mask)
        return self

    def forward(self, x):
        """Convolve `x` ``(N, in, H, W)`` to ``(N, out, H-k+1, W-k+1)`` with ``weight * mask``."""
        return self._conv_forward(x, self.weight * self.mask, self.bias)


class LeNet5(nn.Module):
    """LeNet-5 (LeCun et al. 1998, Sec. II-B) for 28x28 MNIST digits.

    Layers and shapes (batch N; the 28x28 input is zero-padded to 32x32 first, as in the paper):

    ======  ===========================================  =====================
    name    module                                       output shape
    ======  ===========================================  =====================
    c1      Conv2d(1, 6, 5)                              (N, 6, 28, 28)
    s2      MaxPool2d(2) / Subsample(6)                  (N, 6, 14, 14)
    c3      Conv2d(6, 16, 5) / SparseConv2d(Table I)     (N, 16, 10, 10)
    s4      MaxPool2d(2) / Subsample(16)                 (N, 16, 5, 5)
    c5      Linear(400, 120) on flatten (C, H, W)        (N, 120)
    f6      Linear(120, 84)                              (N, 84)
    out     Linear(84, 10), logits / RBF (classic-rbf)   (N, 10)
    ======  ===========================================  =====================

    ``modern``: c1 -> relu -> maxpool -> c3 -> relu -> maxpool -> c5 -> relu -> f6 -> relu -> out.
    ``classic``: c1 -> f -> s2 -> f -> c3 -> f -> s4 -> f -> c5 -> f -> f6 -> f -> out with the
    scaled tanh ``f`` (:func:`scaled_tanh`, Appendix A), trainable sub-sampling (Sec. II-B) and
    the sparse C3 of Table I. C5 is a dense layer on the flattened 16x5x5 S4 output, which is
    what the paper's 5x5 convolution on a 5x5 map computes.

    ``classic-rbf``: as ``classic``, with the input scaled ``x = 1.28 u - 0.1`` after the padding
    (Sec. II-A) and ``out`` the :class:`RBF` layer; ``forward`` returns ``-y``.

    Otherwise ``out`` is a linear layer whose 10 outputs are trained as logits with cross-entropy.

    Parameters
    ----------
    variant : {"modern", "classic", "classic-rbf"}
        Which variant to build.

    Raises
    ------
    ValueError
        If `variant` is not a known variant name.
    """

    def __init__(self, variant: str):
        super().__init__()
        _check_variant(variant)
        self.variant = variant
        classic = variant in ("classic", "classic-rbf")
        self.c1 = nn.Conv2d(1, 6, 5)
        self.s2 = Subsample(6) if classic else nn.MaxPool2d(2, 2)
        self.c3 = SparseConv2d(6, 16, 5, table=C3_TABLE) if classic else nn.Conv2d(6, 16, 5)
        self.s4 = Subsample(16) if classic else nn.MaxPool2d(2, 2)
        self.c5 = nn.Linear(16 * 5 * 5, 120)
        self.f6 = nn.Linear(120, 84)
        self.out = RBF() if variant == "classic-rbf" else nn.Linear(84, 10)
        self._affine = input_affine(variant)
        self._act = scaled_tanh if classic else F.relu
        self._after = frozenset(ACTIVATIONS[variant]["after"])

    @property
    def activation(self):
        """Name of the activation function: ``"relu"`` or ``"scaled_tanh"``."""
        return ACTIVATIONS[self.variant]["function"]

    def layers(self):
        """The layers in forward order, for the quantizer.

        Returns
        -------
        list of (str, torch.nn.Module, str)
            ``(name, module, kind)`` for ``c1, s2, c3, s4, c5, f6, out``; kind is ``"conv"``,
            ``"pool"``, ``"dense"`` or (``out`` of ``classic-rbf``) ``"rbf"``. Whether a layer is
            followed by the activation is given by ``ACTIVATIONS[model.variant]["after"]``.
        """
        out_kind = "rbf" if isinstance(self.out, RBF) else "dense"
        kinds = (("c1", "conv"), ("s2", "pool"), ("c3", "conv"), ("s4", "pool"),
                 ("c5", "dense"), ("f6", "dense"), ("out", out_kind))
        return [(name, getattr(self, name), kind) for name, kind in kinds]

    @torch.no_grad()
    def apply_masks_(self):
        """Zero the stored C3 weights of the pairs absent from Table I (classic; no-op for modern)."""
        if isinstance(self.c3, SparseConv2d):
            self.c3.zero_masked_()
        return self

    def c1_folded(self):
        """C1's weights and biases for the input ``u`` = pixel / 256 with a zero border.

        For ``classic-rbf`` the input scaling ``x = A u + B`` (:func:`input_affine`) is folded in:
        ``(A * w, bias + B * sum(w))`` with the sum over each output map's 1x5x5 weights. Exact
        because the paper pads in the pixel domain (the border is ``u = 0``, i.e. ``x = B``). For
        the other variants C1's own ``(weight, bias)``. Differentiable (used by QAT).

        Returns
        -------
        (torch.Tensor, torch.Tensor)
            Weights ``(6, 1, 5, 5)`` and biases ``(6,)``.
        """
        w, b = self.c1.weight, self.c1.bias
        if self._affine is None:
            return w, b
        a, off = self._affine
        return a * w, b + off * w.sum(dim=(1, 2, 3))

    def distances(self, x):
        """RBF distances ``y`` of shape ``(N, 10)`` (``classic-rbf`` only; input as :meth:`forward`).

        Raises
        ------
        TypeError
            If the model has no RBF output layer.
        """
        if not isinstance(self.out, RBF):
            raise TypeError(f"LeNet-5 {self.variant!r} has no RBF output layer")
        return -self(x)

    def forward(self, x):
        """Compute the logits (``-y``, the negated RBF distances, for ``classic-rbf``).

        Parameters
        ----------
        x : torch.Tensor
            Float images of shape ``(N, 1, 28, 28)``, equal to the uint8 pixel / 256 (so in
            [0, 255/256]).

        Returns
        -------
        torch.Tensor
            Logits of shape ``(N, 10)``; the class is their arg max (for ``classic-rbf`` the
            arg min of the distances).
        """
        if x.dim() != 4 or tuple(x.shape[1:]) != (1, MNIST_SIDE, MNIST_SIDE):
            raise ValueError(f"LeNet5 expects input of shape (N, 1, {MNIST_SIDE}, {MNIST_SIDE}), "
                             f"got {tuple(x.shape)}")
        x = F.pad(x, (INPUT_PAD,) * 4)
        if self._affine is not None:   # after the padding: the border is background (Sec. II-A)
            x = self._affine[0] * x + self._affine[1]
        for name, module, _kind in self.layers():
            if name == "c5":
                x = torch.flatten(x, 1)
            x = module(x)
            if name in self._after:
                x = self._act(x)
        return -x if isinstance(self.out, RBF) else x

    def extra_repr(self):
        return f"variant={self.variant!r}"


def save_checkpoint(model, path, meta):
    """Write `model` and `meta` to a checkpoint file.

    The file is a :func:`torch.save` of the dict ``{"format": "lenet5-checkpoint",
    "version": 1, "variant": str, "state_dict": {name: tensor}, "meta": dict}``.

    Parameters
    ----------
    model : LeNet5
        The model to store (its C3 mask is re-applied to the stored weights first).
    path : str or pathlib.Path
        Output file (``.pt``); parent folders are created.
    meta : dict
        Free-form information (training hyper-parameters, accuracies, ...) made of plain JSON
        values (str, int, float, bool, None, lists, dicts with str keys), so that
        ``weights_only`` loading works; it is stored as its JSON round trip (tuples become
        lists).
    """
    if not isinstance(model, LeNet5):
        raise TypeError(f"save_checkpoint expects a LeNet5, got {type(model).__name__}")
    if not isinstance(meta, dict):
        raise TypeError(f"meta must be a dict, got {type(meta).__name__}")
    try:  # plain JSON values only (also turns str subclasses such as torch.__version__ to str)
        meta = json.loads(json.dumps(meta))
    except (TypeError, ValueError) as exc:
        raise TypeError(f"meta must hold plain JSON values only: {exc}") from None
    model.apply_masks_()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    torch.save({"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION,
                "variant": model.variant, "state_dict": state, "meta": meta}, path)


def load_checkpoint(path):
    """Read a checkpoint written by :func:`save_checkpoint`.

    Parameters
    ----------
    path : str or pathlib.Path
        Checkpoint file.

    Returns
    -------
    model : LeNet5
        The model, in eval mode, on the CPU.
    meta : dict
        The stored metadata.

    Raises
    ------
    ValueError
        If the file is missing or unreadable, is not a LeNet-5 checkpoint (wrong format or
        version), names an unknown variant, or its tensors are missing, unexpected or of the wrong
        shape for that variant.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"checkpoint {path} not found (train one with `lenet5 train`)")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle, zip and torch errors all mean "not a checkpoint"
        raise ValueError(f"{path} is not a LeNet-5 checkpoint (not a weights-only torch file: "
                         f"{type(exc).__name__}); write one with `lenet5 train`") from exc
    if not isinstance(blob, dict) or blob.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path} is not a LeNet-5 checkpoint (no format "
                         f"{CHECKPOINT_FORMAT!r} field)")
    if blob.get("version") != CHECKPOINT_VERSION:
        raise ValueError(f"{path}: unsupported checkpoint version {blob.get('version')!r} "
                         f"(this code reads version {CHECKPOINT_VERSION})")
    variant = blob.get("variant")
    if variant not in VARIANTS:
        raise ValueError(f"{path}: unknown LeNet-5 variant {variant!r}; valid variants: "
                         + ", ".join(VARIANTS))
    state = blob.get("state_dict")
    meta = blob.get("meta", {})
    if not isinstance(state, dict) or not isinstance(meta, dict):
        raise ValueError(f"{path}: malformed checkpoint (state_dict and meta must be dicts)")
    model = LeNet5(variant)
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append("missing tensors " + ", ".join(missing))
        if unexpected:
            parts.append("unexpected tensors " + ", ".join(unexpected))
        raise ValueError(f"{path}: checkpoint does not match LeNet-5 {variant!r}: "
                         + "; ".join(parts))
    for name, ref in expected.items():
        got = state[name]
        if not isinstance(got, torch.Tensor) or tuple(got.shape) != tuple(ref.shape):
            shape = tuple(got.shape) if isinstance(got, torch.Tensor) else type(got).__name__
            raise ValueError(f"{path}: tensor {name} has shape {shape}, expected "
                             f"{tuple(ref.shape)} for LeNet-5 {variant!r}")
        if not got.is_floating_point():
            raise ValueError(f"{path}: tensor {name} has dtype {got.dtype}, expected a float")
    if "c3.mask" in expected and not torch.equal(state["c3.mask"].float(), expected["c3.mask"]):
        raise ValueError(f"{path}: tensor c3.mask is not the C3 connection table of Table I")
    if "out.centers" in expected and not torch.equal(state["out.centers"].float(), expected["out.centers"]):
        raise ValueError(f"{path}: tensor out.centers is not the RBF bitmaps of golden.rbf_bitmaps "
                         f"(the checkpoint was trained with other prototypes; retrain it)")
    model.load_state_dict({k: v.to(expected[k].dtype) for k, v in state.items()})
    model.apply_masks_()
    model.eval()
    return model, meta
