"""unicomp: unified evaluation of LLM compression (pruning, quantization, distillation)."""

__version__ = "0.1.0"
