"""What every student construction shares: a config derived from the teacher's (validated by
transformers, refused in one line), and the check that the student took every weight it was given."""

from __future__ import annotations

from typing import Any

from unicomp.errors import UnicompError


def derive_config(teacher_config: Any, changes: dict[str, Any], fix: str) -> Any:
    """The teacher's config with `changes`, as the architecture's own class validates it."""
    try:
        return teacher_config.__class__(**{**teacher_config.to_dict(), **changes})
    except Exception as exc:  # ValueError, or huggingface_hub's wrapper around one
        cause = exc.__cause__ or exc
        raise UnicompError(f"transformers refuses the student's config: {str(cause).splitlines()[0]}", fix) from None


def load_weights(student: Any, state: dict[str, Any], what: str) -> Any:
    """Load `state` into `student` and refuse any mismatch (but the head a tied config shares)."""
    missing, unexpected = student.load_state_dict(state, strict=False)
    tied = {"lm_head.weight"} if getattr(student.config, "tie_word_embeddings", False) else set()
    if set(missing) - tied or unexpected:
        raise UnicompError(f"the student does not match its weights (missing {sorted(set(missing) - tied)[:3]}, "
                           f"unexpected {sorted(unexpected)[:3]})", f"report this as a bug in {what}")
    return student.eval()


__all__ = ["derive_config", "load_weights"]
