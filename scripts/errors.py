"""The one error type every verb raises for the user (scripts/cli.py prints it)."""

from __future__ import annotations


class CommandError(Exception):
    """A user-facing failure: printed as one line with an optional hint, exit status 1."""

    def __init__(self, message: str, *, hint: str | None = None, status: int = 1) -> None:
        super().__init__(message)
        self.hint = hint
        self.status = status
