"""The bit-exact integer reference: against the fake-quantized float model, taps, and input checks."""

import numpy as np
import pytest

from golden import reference
from golden.mnist import load_mnist
from golden.quantize import fake_quant_forward


@pytest.fixture(scope="module")
def test_images():
    images, labels = load_mnist("test")
    return images[:600], labels[:600]


def test_integer_reference_equals_fake_quantized_float_model(random_qnet, test_images):
    """The float64 fake-quantized forward pass and the integer reference give identical logits."""
    model, qnet = random_qnet
    images, _ = test_images
    ref = reference.run(qnet, images)
    fq = fake_quant_forward(model, qnet, images, exact=True).numpy() * 2.0 ** qnet.output_fmt.frac
    assert np.array_equal(np.rint(fq).astype(np.int64), ref.logits)
    assert np.abs(fq - np.rint(fq)).max() == 0.0, "fake-quantized logits are not on the integer grid"


def test_taps_have_the_described_shapes_and_formats(random_qnet, test_images):
    _, qnet = random_qnet
    images, _ = test_images
    ref = reference.run(qnet, images[:50])
    assert ref.taps["input"].shape == (50, 1, 28, 28)
    for layer in qnet.layers:
        tap = ref.taps[layer.name]
        assert tap.dtype == np.int64
        assert tap.shape == (50, *layer.out_shape), layer.name
        assert tap.min() >= layer.out_fmt.min and tap.max() <= layer.out_fmt.max, layer.name
    assert np.array_equal(ref.logits, ref.taps["OUT"])
    assert np.array_equal(ref.classes, np.argmax(ref.logits, axis=1))


def test_layer_functions_compose_to_run(random_qnet, test_images):
    """The public per-layer functions (used by hardware testbenches) reproduce run()'s taps."""
    _, qnet = random_qnet
    images, _ = test_images
    ref = reference.run(qnet, images[:20])
    h = ref.taps["input"]
    for layer in qnet.layers:
        if layer.has_mac:
            acc = reference.layer_accumulate(layer, h)
            assert acc.min() >= layer.acc_fmt.min and acc.max() <= layer.acc_fmt.max
            h = reference.layer_postprocess(layer, acc)
        else:
            h = reference.layer_forward(layer, h)
        assert np.array_equal(h, ref.taps[layer.name])


def test_chunking_does_not_change_results(random_qnet, test_images, monkeypatch):
    _, qnet = random_qnet
    images, _ = test_images
    whole = reference.run(qnet, images[:100], taps=False).logits
    monkeypatch.setattr(reference, "CHUNK", 7)
    assert np.array_equal(reference.run(qnet, images[:100], taps=False).logits, whole)


@pytest.mark.parametrize("bad,match", [
    (np.zeros((3, 32, 32), np.uint8), "shape"),
    (np.zeros((3, 28), np.uint8), "shape"),
    (np.zeros((2, 28, 28), np.float32), "integers"),
    (np.full((1, 28, 28), 300, np.int32), "lie in"),
    (np.full((1, 28, 28), -1, np.int32), "lie in"),
])
def test_bad_images_are_rejected(random_qnet, bad, match):
    _, qnet = random_qnet
    with pytest.raises(ValueError, match=match):
        reference.run(qnet, bad)


def test_single_image_is_accepted(random_qnet, test_images):
    _, qnet = random_qnet
    images, _ = test_images
    one = reference.run(qnet, images[3])
    assert one.logits.shape == (1, qnet.num_classes)
    assert np.array_equal(one.logits[0], reference.run(qnet, images[:4]).logits[3])
