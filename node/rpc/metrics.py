"""Prometheus text exposition (format 0.0.4) without a client library.

The node runtime hands the RPC server a provider callback returning :class:`Metric`
values (height, view, txpool size, messages by type, ...); the server adds its own
request counters and renders everything at ``GET /metrics``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*\Z")
_LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")

Kind = Literal["counter", "gauge", "untyped"]
Sample = tuple[Mapping[str, str], float]


@dataclass(frozen=True, slots=True)
class Metric:
    """One metric family: a name, a type, a help line and labelled samples."""

    name: str
    kind: Kind
    help: str
    samples: Sequence[Sample]

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise ValueError(f"invalid metric name {self.name!r}")
        for labels, _ in self.samples:
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
    merged: dict[str, list[Sample]] = {}
    for m in metrics:
        if m.name not in families:
            families[m.name] = m
            merged[m.name] = []
        merged[m.name].extend(m.samples)
    lines: list[str] = []
    for name, m in families.items():
        lines.append(f"# HELP {name} {_escape_help(m.help)}")
        lines.append(f"# TYPE {name} {m.kind}")
        for labels, value in merged[name]:
            if labels:
                inner = ",".join(f'{k}="{_escape_label(str(v))}"' for k, v in labels.items())
                lines.append(f"{name}{{{inner}}} {_number(value)}")
            else:
                lines.append(f"{name} {_number(value)}")
    return "\n".join(lines) + "\n" if lines else ""
