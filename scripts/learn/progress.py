"""Which exercises a learner has solved: a small JSON file, written atomically.

Where: ``--progress FILE``, else ``$LEDGERLAB_LEARN_PROGRESS``, else
``$XDG_STATE_HOME/ledgerlab/learn.json`` (``~/.local/state/ledgerlab/learn.json``).
A missing or unreadable file is an empty record (progress is a convenience, never a
reason to refuse an exercise).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def default_path() -> Path:
    env = os.environ.get("LEDGERLAB_LEARN_PROGRESS")
    if env:
        return Path(env)
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "ledgerlab" / "learn.json"


class Progress:
    """Per exercise: attempts, whether it was ever answered right, the last seed."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.data: dict[str, dict[str, Any]] = {}
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            raw = {}
        exercises = raw.get("exercises") if isinstance(raw, dict) else None
        if isinstance(exercises, dict):
            self.data = {str(k): v for k, v in exercises.items() if isinstance(v, dict)}

    def entry(self, number: int) -> dict[str, Any]:
        return self.data.get(str(number), {})

    def solved(self, number: int) -> bool:
        return bool(self.entry(number).get("solved"))

    def record(self, number: int, *, right: bool, seed: int) -> None:
        e = self.data.setdefault(str(number), {})
        e["attempts"] = int(e.get("attempts", 0)) + 1
        e["solved"] = bool(e.get("solved")) or right
        e["last_seed"] = seed
        e["last_right"] = right

    def save(self) -> None:
        """Write the file (raises OSError; the caller warns and goes on)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(self.path.suffix + ".tmp")
        tmp.write_text(json.dumps({"version": 1, "exercises": self.data}, indent=1) + "\n")
        os.replace(tmp, self.path)
