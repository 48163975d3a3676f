"""Which exercises a learner has solved: a small JSON file, written atomically.

Where: ``--progress FILE``, else ``$LEDGERLAB_LEARN_PROGRESS``, else
``$XDG_STATE_HOME/ledgerlab/learn.json`` (``~/.local/state/ledgerlab/learn.json``).
A missing or unreadable file is an empty record (progress is a convenience, never a
reason to refuse an exercise); a file that is there but is not a progress record (another
JSON file, a typo in ``--progress``) is never overwritten.
"""

from __future__ import annotations

import errno
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
        self.foreign = False  # the file holds something else: save() leaves it alone
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return
        except (OSError, ValueError):  # a folder, a binary file, no permission
            self.foreign = True
            return
        try:
            raw = json.loads(text) if text.strip() else {"exercises": {}}
        except ValueError:
            raw = None
        exercises = raw.get("exercises") if isinstance(raw, dict) else None
        if isinstance(exercises, dict):
            self.data = {str(k): v for k, v in exercises.items() if isinstance(v, dict)}
        else:
            self.foreign = True

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
        if self.foreign:
            raise OSError(errno.EEXIST, "not a learn progress file, left unchanged")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(self.path.suffix + ".tmp")
        tmp.write_text(json.dumps({"version": 1, "exercises": self.data}, indent=1) + "\n")
        os.replace(tmp, self.path)
