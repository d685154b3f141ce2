"""Pruning: magnitude, Wanda, SparseGPT; unstructured at any ratio and N:M patterns."""
