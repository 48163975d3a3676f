"""A node whose wall clock is off: started under libfaketime (Debian's ``faketime``).

``LD_PRELOAD=libfaketime.so.1 FAKETIME=+300`` shifts every wall-clock read of the
process by the offset: Python's ``time.time()`` and ``datetime.now()``, and OpenSSL's
own certificate checks, which an offset in the node's config could not reach. Monotonic
clocks stay true (``FAKETIME_DONT_FAKE_MONOTONIC=1``): a wrong wall clock does not make
seconds longer, and asyncio's timers run on the monotonic clock.

The offset is fixed when the process starts (libfaketime 0.9.10 stops re-reading an
offset file once the offset goes backwards), so ``clock_skew`` restarts the node under
the offset and, at the end, restarts it with a true clock: a node booted with a wrong
clock, then corrected. One more libfaketime 0.9.10 limit: ``time.sleep()`` fails with
EINVAL under it (``clock_nanosleep`` on the monotonic clock); node processes never call it.
"""

from __future__ import annotations

import glob
from pathlib import Path

_PATTERNS = (
    "/usr/lib/*/faketime/libfaketime.so.1",
    "/usr/lib/faketime/libfaketime.so.1",
    "/usr/local/lib/faketime/libfaketime.so.1",
)


def library() -> Path | None:
    """libfaketime's path, or None (``apt-get install faketime``)."""
    for pattern in _PATTERNS:
        found = sorted(glob.glob(pattern))
        if found:
            return Path(found[0])
    return None


def skew_env(offset: float) -> dict[str, str]:
    """Environment for a process whose wall clock is ``offset`` seconds off (+ ahead)."""
    lib = library()
    if lib is None:
        raise RuntimeError("clock_skew needs libfaketime: apt-get install faketime")
    return {
        "LD_PRELOAD": str(lib),
        "FAKETIME": f"{offset:+.0f}",
        "FAKETIME_DONT_FAKE_MONOTONIC": "1",
    }
