"""Offline judges: deterministic rules that stand in for TrustLLM's Longformer, GPT-4 and embedding judges.

Every judge is versioned (`REFUSAL_RULES_VERSION`, `RULES_VERSION`) so a stored label names the rules that
produced it; changing a list means bumping the version.
"""

from unicomp.reliability.judges.refusal import REFUSAL_RULES_VERSION, is_refusal
from unicomp.reliability.judges.rules import RULES_VERSION

__all__ = ["REFUSAL_RULES_VERSION", "RULES_VERSION", "is_refusal"]
