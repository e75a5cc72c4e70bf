"""Shared fixtures: quantized networks built from seeded, untrained float models (fast, no training)."""

import functools

import pytest


@functools.lru_cache(maxsize=None)
def _random_qnet(variant, w_bits=8, a_bits=8):
    import torch
    from golden.mnist import load_mnist
    from golden.model import LeNet5
    from golden.quantize import QuantConfig, calibrate, quantize_model

    torch.manual_seed(0)
    model = LeNet5(variant).eval()
    images, _ = load_mnist("train")
    calib = calibrate(model, images[:256])
    return model, quantize_model(model, calib, QuantConfig(w_bits=w_bits, a_bits=a_bits))


@pytest.fixture(params=["modern", "classic"])
def random_qnet(request):
    """(float model, QNet) of an untrained LeNet-5 of each variant, int8."""
    return _random_qnet(request.param)
