"""Event loops the async tests of a package run on: the standard loop and uvloop.

Nodes run on uvloop when it is installed, and the two loops differ in corners that matter
(for example when an accepted socket starts reading), so transport and RPC tests run on
both. A conftest opts in with ``pytest_asyncio_loop_factories = both_loops``.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any


def both_loops(config: Any, item: Any) -> dict[str, Any]:
    factories: dict[str, Any] = {"asyncio": asyncio.new_event_loop}
    if sys.platform != "win32":  # uvloop is a dependency everywhere but Windows
        import uvloop

        factories["uvloop"] = uvloop.new_event_loop
    return factories
