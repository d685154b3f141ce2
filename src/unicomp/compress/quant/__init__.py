"""Quantization methods (RTN, GPTQ, AWQ, SmoothQuant), their shared grid, and packed kernels."""
