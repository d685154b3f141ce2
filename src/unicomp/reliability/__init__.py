"""Reliability track: TrustLLM's six dimensions scored offline.

`judges/` turns a generated answer into a label with deterministic, versioned rules (refusal,
answer match, stance, ...); `trustllm/` holds TrustLLM 0.3.0's metric definitions and the
declarative table of its 24 subtasks. Nothing here runs a model: it scores texts.
"""
