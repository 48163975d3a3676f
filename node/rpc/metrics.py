"""Prometheus text exposition (format 0.0.4) without a client library.

The node runtime hands the RPC server a provider callback returning :class:`Metric`
values (height, view, txpool size, messages by type, ...); the server adds its own
request counters and renders everything at ``GET /metrics``. A :class:`Histogram` keeps
fixed buckets (``observe`` is a bisect and three additions) and renders as one
``histogram`` family: cumulative ``_bucket{le="..."}`` series ending in ``+Inf``, then
``_sum`` and ``_count``.

prometheus_client was measured against this module (docs/performance.md, "JSON-RPC"):
no gain on what the node renders, so the node keeps its dependency-free renderer.
"""

from __future__ import annotations

import bisect
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*\Z")
_LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")

Kind = Literal["counter", "gauge", "histogram", "untyped"]
Sample = tuple[Mapping[str, str], float]
# A series whose name is the family name plus a suffix (a histogram's _bucket, _sum, _count).
Suffixed = tuple[str, Mapping[str, str], float]


@dataclass(frozen=True, slots=True)
class Metric:
    """One metric family: a name, a type, a help line and labelled samples."""

    name: str
    kind: Kind
    help: str
    samples: Sequence[Sample]
    suffixed: Sequence[Suffixed] = ()

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise ValueError(f"invalid metric name {self.name!r}")
        for labels in [s[0] for s in self.samples] + [s[1] for s in self.suffixed]:
            for key in labels:
                if not _LABEL.match(key) or key.startswith("__"):
                    raise ValueError(f"invalid label name {key!r}")


def gauge(name: str, help: str, value: float, labels: Mapping[str, str] | None = None) -> Metric:
    return Metric(name, "gauge", help, [(labels or {}, value)])


def counter(name: str, help: str, value: float, labels: Mapping[str, str] | None = None) -> Metric:
    return Metric(name, "counter", help, [(labels or {}, value)])


def labelled(name: str, kind: Kind, help: str, label: str, values: Mapping[str, float]) -> Metric:
    """A family with one label, e.g. messages by type: ``{"prepare": 10, "commit": 9}``."""
    return Metric(name, kind, help, [({label: str(k)}, v) for k, v in sorted(values.items())])


class Histogram:
    """A Prometheus histogram with fixed upper bounds (seconds, say); O(log buckets) a
    sample. ``metric()`` renders it; ``+Inf`` is implied and always last."""

    __slots__ = ("bounds", "count", "counts", "help", "name", "sum")

    def __init__(self, name: str, help: str, bounds: Sequence[float]) -> None:
        if list(bounds) != sorted(set(bounds)) or not bounds or math.isinf(bounds[-1]):
            raise ValueError("bounds must be finite, strictly increasing and not empty")
        if not _NAME.match(name):
            raise ValueError(f"invalid metric name {name!r}")
        self.name = name
        self.help = help
        self.bounds = tuple(float(b) for b in bounds)
        self.counts = [0] * (len(self.bounds) + 1)  # per bucket, not cumulative; last: +Inf
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        # bisect_left: a value equal to a bound belongs to that bucket (le = "<=").
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.sum += value
        self.count += 1

    def metric(self, labels: Mapping[str, str] | None = None) -> Metric:
        base = dict(labels or {})
        rows: list[Suffixed] = []
        running = 0
        for bound, n in zip((*self.bounds, math.inf), self.counts, strict=True):
            running += n
            rows.append(("_bucket", {**base, "le": _number(bound)}, running))
        rows.append(("_sum", base, self.sum))
        rows.append(("_count", base, self.count))
        return Metric(self.name, "histogram", self.help, (), rows)


def _escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _escape_help(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n")


def _number(value: float) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


def render(metrics: Iterable[Metric]) -> str:
    """The text exposition of ``metrics``; families with a repeated name are merged."""
    families: dict[str, Metric] = {}
    merged: dict[str, list[Suffixed]] = {}
    for m in metrics:
        if m.name not in families:
            families[m.name] = m
            merged[m.name] = []
        merged[m.name].extend(("", labels, value) for labels, value in m.samples)
        merged[m.name].extend(m.suffixed)
    lines: list[str] = []
    for name, m in families.items():
        lines.append(f"# HELP {name} {_escape_help(m.help)}")
        lines.append(f"# TYPE {name} {m.kind}")
        for suffix, labels, value in merged[name]:
            if labels:
                inner = ",".join(f'{k}="{_escape_label(str(v))}"' for k, v in labels.items())
                lines.append(f"{name}{suffix}{{{inner}}} {_number(value)}")
            else:
                lines.append(f"{name}{suffix} {_number(value)}")
    return "\n".join(lines) + "\n" if lines else ""
