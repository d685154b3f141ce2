"""Distillation: students built from a teacher (Minitron depth / width, Low-Rank Clone) and trained on its logits."""
