"""Amaranth HDL components of the LeNet-5 accelerator, its generator and the synthesis flow."""
