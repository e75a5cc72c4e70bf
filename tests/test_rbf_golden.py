"""classic-rbf in the golden model: the drawn 7x12 bitmaps, the RBF arithmetic against
hand-computed values, the input scaling folded into C1, the ``rbf`` layer of the quantized
description (round trip, rejections) and the integer reference against the fake-quantized model."""

import dataclasses
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from golden import reference
from golden.arith import (
    argmin_first,
    distance_format,
    distance_range,
    squared_distances,
)
from golden.model import RBF, LeNet5, input_affine, load_checkpoint, save_checkpoint
from golden.qformat import QFormat
from golden.qnet import QNet, QNetError
from golden.rbf_bitmaps import (
    BITMAPS,
    COLS,
    DRAWING,
    ROWS,
    bitmap_rows,
    hamming_distances,
)
from tests.conftest import _random_qnet

# -- the bitmaps ------------------------------------------------------------------------------

def test_bitmaps_shape_and_values():
    assert (ROWS, COLS) == (12, 7)
    assert len(BITMAPS) == 10 and all(len(b) == 84 for b in BITMAPS)
    assert {v for b in BITMAPS for v in b} == {-1, 1}
    # digit 1, second row ".. .##.." drawn as "...##..": components 7..13
    assert list(BITMAPS[1][7:14]) == [-1, -1, -1, 1, 1, -1, -1]
    # the first and last rows are blank (background) in every digit
    assert all(set(b[:7]) == {-1} and set(b[-7:]) == {-1} for b in BITMAPS)


def test_bitmap_rows_are_the_drawing():
    lines = DRAWING.strip("\n").split("\n")[1:]
    for d in range(10):
        assert bitmap_rows(d) == [line.split()[d] for line in lines]
    with pytest.raises(ValueError, match="0..9"):
        bitmap_rows(10)


def test_digits_are_distinct():
    dist = hamming_distances()
    assert len(dist) == 45
    assert min(dist.values()) == 10 and dist[(6, 8)] == 10


# -- the arithmetic ---------------------------------------------------------------------------

def test_squared_distances_by_hand():
    x = [[1, 2, 3], [0, 0, 0]]
    c = [[0, 0, 0], [1, 2, 3], [3, 2, 1], [-1, -1, -1]]
    assert squared_distances(x, c).tolist() == [[14, 0, 8, 29], [0, 14, 14, 3]]
    with pytest.raises(ValueError, match="do not match"):
        squared_distances(x, [[1, 2]])


def test_argmin_ties_go_to_the_lower_index():
    assert argmin_first([[5, 3, 3, 7], [0, 0, 0, 0], [9, 8, 7, 6]]).tolist() == [1, 0, 3]


def test_distance_range_and_format_by_hand():
    fmt = QFormat(4, 0, True)                      # -8 .. 7
    # unit 0: max((-8-1)^2, (7-1)^2) + max((-8+1)^2, (7+1)^2) = 81 + 64; unit 1: 0^2.. -> 64 + 49
    assert distance_range([[1, -1], [0, 0]], fmt) == (0, 145)
    assert distance_format([[1, -1], [0, 0]], fmt) == QFormat(8, 0, False)
    f6 = QFormat(8, 6, True)
    centers = np.array(BITMAPS) << 6
    # a +64 component's worst case is (-128 - 64)^2 = 192^2, a -64 one's (127 + 64)^2 = 191^2:
    # the widest unit is the digit with the most ink
    ink = max(sum(v > 0 for v in b) for b in BITMAPS)
    assert distance_range(centers, f6) == (0, ink * 192 ** 2 + (84 - ink) * 191 ** 2)
    assert distance_format(centers, f6) == QFormat(22, 12, False)


# -- the float model --------------------------------------------------------------------------

def test_input_affine_is_the_papers_scaling():
    a, b = input_affine("classic-rbf")
    assert b == pytest.approx(-0.1) and a * 255 / 256 + b == pytest.approx(1.175)
    assert input_affine("classic") is None and input_affine("modern") is None


def test_input_scaling_folds_exactly_into_c1():
    torch.manual_seed(1)
    model = LeNet5("classic-rbf").eval()
    u = torch.randint(0, 256, (4, 1, 28, 28)).float() / 256
    a, b = input_affine("classic-rbf")
    padded = F.pad(u, (2, 2, 2, 2))
    direct = model.c1(a * padded + b)               # the border is background: b
    w, bias = model.c1_folded()
    torch.testing.assert_close(F.conv2d(padded, w, bias), direct, rtol=0, atol=1e-5)
    plain = LeNet5("classic")
    assert plain.c1_folded()[0] is plain.c1.weight


def test_rbf_units_and_forward_sign():
    rbf = RBF()
    x = torch.tensor([BITMAPS[2]], dtype=torch.float32)
    y = rbf(x)[0]
    want = [4 * (sum(p != q for p, q in zip(BITMAPS[2], BITMAPS[d]))) for d in range(10)]
    assert y.tolist() == want and int(y.argmin()) == 2
    torch.manual_seed(0)
    model = LeNet5("classic-rbf").eval()
    imgs = torch.randint(0, 256, (3, 1, 28, 28)).float() / 256
    torch.testing.assert_close(model.distances(imgs), -model(imgs), rtol=0, atol=0)
    assert bool((model.distances(imgs) >= 0).all())
    with pytest.raises(TypeError, match="no RBF output"):
        LeNet5("classic").distances(imgs)


def test_checkpoint_rejects_other_prototypes(tmp_path):
    model = LeNet5("classic-rbf")
    path = tmp_path / "m.pt"
    save_checkpoint(model, path, {})
    blob = torch.load(path, weights_only=True)
    blob["state_dict"]["out.centers"][0, 0] *= -1
    torch.save(blob, path)
    with pytest.raises(ValueError, match="out.centers is not the RBF bitmaps"):
        load_checkpoint(path)


# -- the quantized description and the integer reference --------------------------------------

@pytest.fixture(scope="module")
def rbf_qnet():
    return _random_qnet("classic-rbf")


def test_rbf_layer_of_the_description(rbf_qnet, tmp_path):
    _, qnet = rbf_qnet
    out, f6 = qnet.layers[-1], qnet.layer("F6")
    assert (out.kind, out.in_shape, out.out_shape) == ("rbf", (84,), (10,))
    assert out.in_fmt == out.w_fmt == f6.out_fmt and f6.out_fmt.signed and f6.out_fmt.bits == 8
    one = 1 << f6.out_fmt.frac                      # +1 in F6's output format
    assert out.weights.tolist() == (np.array(BITMAPS) * one).tolist()
    acc = out.acc_fmt
    assert acc == out.out_fmt and not acc.signed and acc.frac == 2 * f6.out_fmt.frac and qnet.rbf_output
    path = tmp_path / "q.json"
    qnet.save(path)
    again = QNet.load(path)
    assert again.dumps() == qnet.dumps() and again.layers[-1].is_rbf


def _mutated(qnet, **changes):
    d = json.loads(qnet.dumps())
    d["layers"][-1].update(changes)
    return d


def test_rbf_layer_rejections_name_the_field(rbf_qnet):
    _, qnet = rbf_qnet
    with pytest.raises(QNetError, match=r"OUT\)\.w_fmt.*input format"):
        QNet.from_dict(_mutated(qnet, w_fmt=QFormat(8, 5, True).to_dict()))
    acc = qnet.layers[-1].acc_fmt
    narrow, signed = QFormat(acc.bits - 1, acc.frac, False), QFormat(acc.bits + 1, acc.frac, True)
    with pytest.raises(QNetError, match=r"acc_fmt\.bits.*worst-case distance"):
        QNet.from_dict(_mutated(qnet, acc_fmt=narrow.to_dict(), out_fmt=narrow.to_dict()))
    with pytest.raises(QNetError, match=r"acc_fmt.*unsigned"):
        QNet.from_dict(_mutated(qnet, acc_fmt=signed.to_dict(), out_fmt=signed.to_dict()))
    with pytest.raises(QNetError, match=r"weights_shape"):
        QNet.from_dict(_mutated(qnet, weights_shape=[10, 83], weights=[64] * 830))
    with pytest.raises(QNetError, match="must be the last layer"):
        QNet(qnet.variant, qnet.input_shape, qnet.input_fmt,
             [*qnet.layers, dataclasses.replace(qnet.layers[-1], name="OUT2")])


def test_reference_distances_and_argmin(rbf_qnet):
    from golden.evaluate import evaluate
    from golden.mnist import load_mnist

    model, qnet = rbf_qnet
    images, labels = load_mnist("test")
    ref = reference.run(qnet, images[:64])
    want = squared_distances(ref.taps["F6"], qnet.layers[-1].weights)
    assert np.array_equal(ref.logits, want)
    assert np.array_equal(ref.classes, argmin_first(want))
    res = evaluate(qnet, model, images[:64], labels[:64])
    assert res["agreement"] == 1.0 and res["logits_identical"] == 1.0


def test_per_layer_widths_of_the_rbf_layer_are_refused(rbf_qnet):
    from golden.quantize import QuantConfig, calibrate, quantize_model

    model, _ = rbf_qnet
    calib = calibrate(model, np.random.default_rng(0).integers(0, 256, (16, 28, 28), dtype=np.uint8))
    with pytest.raises(ValueError, match="OUT of classic-rbf is the RBF layer"):
        quantize_model(model, calib, QuantConfig(layer_w_bits={"OUT": 4}))


def test_rbf_layer_is_frozen(rbf_qnet):
    _, qnet = rbf_qnet
    with pytest.raises(dataclasses.FrozenInstanceError):
        qnet.layers[-1].kind = "dense"


def test_tanh_output_format_is_the_finest_that_holds_the_table():
    from golden.quantize import tanh_lut, tanh_out_fmt

    # LUT input +-0.5: |1.7159 tanh(1/3)| = 0.552 -> sQ1.7; input +-8: 1.7159 -> sQ2.6;
    # input [-1, 0.99]: -0.99999 rounds to -128/128, 0.9949 to 127/128 -> still sQ1.7
    assert tanh_out_fmt(QFormat(8, 8, True), 8) == QFormat(8, 7, True)
    assert tanh_out_fmt(QFormat(8, 4, True), 8) == QFormat(8, 6, True)
    assert tanh_out_fmt(QFormat(8, 7, True), 8) == QFormat(8, 7, True)
    lut = tanh_lut(QFormat(8, 8, True), QFormat(8, 7, True))
    # -0.5 -> -0.5523 * 128 = -70.7; 127/256 -> 0.5477 * 128 = 70.1: no saturation
    assert (min(lut), max(lut)) == (-71, 70)
