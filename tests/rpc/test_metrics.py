"""Prometheus text rendering: names, labels, escaping, merged families."""

from __future__ import annotations

import math

import pytest

from node.rpc.metrics import Metric, counter, gauge, labelled, render


def test_render_families_and_samples() -> None:
    text = render(
        [
            gauge("ledgerlab_height", "committed head", 12),
            labelled("ledgerlab_msgs_total", "counter", "messages", "type", {"b": 2, "a": 1.5}),
            counter("ledgerlab_msgs_total", "ignored duplicate help", 3, {"type": "c"}),
            gauge("ledgerlab_flag", "a bool", True),
        ]
    )
    assert text == (
        "# HELP ledgerlab_height committed head\n"
        "# TYPE ledgerlab_height gauge\n"
        "ledgerlab_height 12\n"
        "# HELP ledgerlab_msgs_total messages\n"
        "# TYPE ledgerlab_msgs_total counter\n"
        'ledgerlab_msgs_total{type="a"} 1.5\n'
        'ledgerlab_msgs_total{type="b"} 2\n'
        'ledgerlab_msgs_total{type="c"} 3\n'
        "# HELP ledgerlab_flag a bool\n"
        "# TYPE ledgerlab_flag gauge\n"
        "ledgerlab_flag 1\n"
    )


def test_escaping_and_special_values() -> None:
    text = render(
        [
            Metric(
                "m", "untyped", "help with \\ and\nnewline", [({"peer": 'a"b\\c\nd'}, math.nan)]
            ),
            gauge("inf", "x", math.inf),
            gauge("ninf", "x", -math.inf),
        ]
    )
    assert "# HELP m help with \\\\ and\\nnewline\n" in text
    assert 'm{peer="a\\"b\\\\c\\nd"} NaN\n' in text
    assert "inf +Inf\n" in text and "ninf -Inf\n" in text
    assert render([]) == ""


@pytest.mark.parametrize("name", ["", "1abc", "a-b", "a b", "é"])
def test_invalid_metric_names(name: str) -> None:
    with pytest.raises(ValueError):
        gauge(name, "x", 1)


@pytest.mark.parametrize("label", ["", "1a", "a-b", "__reserved"])
def test_invalid_label_names(label: str) -> None:
    with pytest.raises(ValueError):
        gauge("ok", "x", 1, {label: "v"})
