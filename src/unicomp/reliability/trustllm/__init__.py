"""TrustLLM 0.3.0 (Huang et al. 2024) re-implemented as pure scoring: metric definitions and the 24-subtask table."""
