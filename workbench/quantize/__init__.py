"""Quantization: fixed-point arithmetic shared by the integer kernels (and, later, the
quantizer itself)."""
