"""Golden model of the LeNet-5 accelerator.

PyTorch LeNet-5 (LeCun et al. 1998), MNIST loading, training, quantization to fixed point, the
quantized-network description (the single source of truth for golden and hardware) and the
bit-exact integer reference that defines what the hardware must compute.

This package never imports :mod:`hw`, :mod:`sim`, Amaranth or cocotb.
"""
