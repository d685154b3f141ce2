"""One exception type for every failure a user can fix.

The CLI prints a `UnicompError` as a single line (problem, then the fix) and exits non-zero
without a traceback; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class UnicompError(Exception):
    """A problem with the user's input or environment, with the way to fix it."""

    def __init__(self, problem: str, fix: str | None = None) -> None:
        self.problem = problem
        self.fix = fix
        super().__init__(self.one_line())

    def one_line(self) -> str:
        return f"{self.problem} ({self.fix})" if self.fix else self.problem


class NotFoundError(UnicompError):
    """A model, dataset, task or file that no source could provide."""
