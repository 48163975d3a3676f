"""``ledgerlab bench`` reports beyond the terminal: plots (PNG/SVG) and one HTML page.

The plots need matplotlib (``pip install -e '.[plot]'``); without it ``--plot`` is a
clear error and ``--html`` still writes the tables, with a note where the plots would
be. The HTML page is self-contained (inline CSS, plots as inline SVG), like Hyperledger
Caliper's report: one file to attach to an issue or mail.
"""

from __future__ import annotations

import html
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from scripts.errors import CommandError

PLOT_HINT = "install the plot extra: pip install -e '.[plot]' (matplotlib)"


def _figure_class() -> Any:
    try:
        from matplotlib.figure import Figure
    except ImportError:
        return None
    return Figure


def have_matplotlib() -> bool:
    return _figure_class() is not None


def _new_figure(width: float, height: float) -> Any:
    figure = _figure_class()
    if figure is None:
        raise CommandError("plots need matplotlib, which is not installed", hint=PLOT_HINT)
    return figure(figsize=(width, height), layout="constrained")


# ---------------------------------------------------------------------- one run


def run_figure(r: dict[str, Any]) -> Any:
    """Committed tx/s per second of the headline round and its latency CDF (plus the
    saturation steps with ``--max``)."""
    steps = (r.get("saturation") or {}).get("steps") or []
    fig = _new_figure(11 if steps else 9, 3.6)
    axes = fig.subplots(1, 3 if steps else 2)
    tl, cdf = axes[0], axes[1]
    seconds = [p[0] for p in r["timeline"]]
    tl.step(seconds, [p[1] for p in r["timeline"]], where="post", color="tab:blue")
    tl.axhline(r["ceiling_tps"], color="tab:red", ls="--", lw=1, label="same-run ceiling")
    tl.axhline(r["committed_tps"], color="tab:green", ls=":", lw=1, label="committed tx/s")
    if r["plan"]["warmup"]:
        tl.axvspan(0, r["plan"]["warmup"], color="0.9", label="warm-up")
    tl.set(
        xlabel=f"seconds since the first submit ({r['timeline_bucket_s']:g} s buckets)",
        ylabel="committed tx/s",
    )
    tl.set_title(f"throughput (ratio {r['ratio']:.2f} of the ceiling)", fontsize=10)
    tl.legend(fontsize=8)
    tl.set_ylim(bottom=0)
    points = r["latency_cdf_ms"]
    cdf.plot(points, [q / 100 for q in range(len(points))], color="tab:purple")
    lat = r["latency_ms"]
    cdf.set(xlabel="submit → commit (ms)", ylabel="fraction of transactions")
    cdf.set_title(f"latency CDF (p50 {lat['p50']:,.0f}, p99 {lat['p99']:,.0f} ms)", fontsize=10)
    cdf.grid(alpha=0.3)
    if steps:
        ax = axes[2]
        steps = sorted(steps, key=lambda s: s["rate"])  # the bisection's steps come last
        offered = [s["rate"] for s in steps]
        ax.plot(offered, [s["committed_tps"] for s in steps], "o-", label="committed tx/s")
        ax.plot(offered, offered, color="0.6", ls="--", lw=1, label="offered")
        ax.set(xlabel="offered tx/s", ylabel="committed tx/s")
        ax.set_title(f"saturation {r['saturation_tps'] or 0:,.0f} tx/s", fontsize=10)
        p99 = ax.twinx()
        p99.plot(offered, [s["latency_ms"]["p99"] for s in steps], "s:", color="tab:orange")
        p99.set_ylabel("p99 ms", color="tab:orange")
        ax.legend(fontsize=8, loc="upper left")
    fig.suptitle(_run_title(r), fontsize=11)
    return fig


def _run_title(r: dict[str, Any]) -> str:
    return (
        f"ledgerlab bench: {r['nodes']} nodes over {r['transport']}, {r['cores']} cores, "
        f"{r['committed_tps']:,.0f} tx/s committed"
    )


def save_figure(fig: Any, path: Path) -> None:
    """PNG, SVG or PDF, by the file's suffix."""
    try:
        fig.savefig(path, dpi=110)
    except (OSError, ValueError) as exc:
        raise CommandError(f"cannot write the plot {path}: {exc}") from None


def _svg(fig: Any) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata={"Date": None})
    text = buf.getvalue()
    return text[text.index("<svg") :]  # drop the XML prolog and doctype: inline in HTML


# ---------------------------------------------------------------------- a sweep


def sweep_figure(rows: Sequence[dict[str, Any]]) -> Any:
    """TPS, ratio to the ceiling (and the CPU ratio) and p99 against n, one line per
    transport x block size."""
    fig = _new_figure(12, 3.6)
    axes = fig.subplots(1, 3)
    series: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        series.setdefault(f"{row['transport']}, {row['block_txs']:,}-tx blocks", []).append(row)
    for label, points in series.items():
        points = sorted(points, key=lambda p: p["nodes"])
        n = [p["nodes"] for p in points]
        axes[0].plot(n, [p["committed_tps"] for p in points], "o-", label=label)
        (line,) = axes[1].plot(n, [p["ratio"] for p in points], "o-", label=label)
        axes[1].plot(
            n, [p["cpu_ratio"] for p in points], "s--", color=line.get_color(), alpha=0.6,
            label=f"{label}: CPU ratio",
        )  # fmt: skip
        axes[2].plot(n, [p["p99_ms"] for p in points], "o-", label=label)
    for ax, what in zip(
        axes,
        ("committed tx/s", "ratio to the ceiling; CPU ratio dashed", "p99 submit → commit (ms)"),
        strict=True,
    ):
        ax.set(xlabel="nodes (n)", ylabel=what)
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        ax.set_xticks(sorted({r["nodes"] for r in rows}))
    axes[0].legend(fontsize=8)
    fig.suptitle("ledgerlab bench sweep (medians)", fontsize=11)
    return fig


# ---------------------------------------------------------------------- HTML

_STYLE = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:1200px}
h1{font-size:1.4em}h2{font-size:1.1em;margin-top:1.6em;border-bottom:1px solid #ccc}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:3px 8px;
text-align:right;font-variant-numeric:tabular-nums}th{background:#f3f3f3}
td:first-child,th:first-child{text-align:left}.ok{color:#080}.bad{color:#b00}
.note{color:#666;font-size:.9em}svg{max-width:100%;height:auto}
"""


def plain(value: Any) -> str:
    """A table cell as text: ✓/✗, thousands separators, 2 decimals below 10, '' for None."""
    if isinstance(value, bool):
        return "✓" if value else "✗"
    if isinstance(value, float):
        return f"{value:,.2f}" if abs(value) < 10 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return "" if value is None else str(value)


def _cell(value: Any) -> str:
    if isinstance(value, bool):
        return f'<span class="{"ok" if value else "bad"}">{plain(value)}</span>'
    return html.escape(plain(value))


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{_cell(v)}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def page(title: str, sections: Sequence[tuple[str, str]]) -> str:
    """A self-contained HTML document of ``(heading, html)`` sections."""
    parts = [f"<h2>{html.escape(h)}</h2>{body}" for h, body in sections]
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>"
        f"<h1>{html.escape(title)}</h1>{''.join(parts)}</body></html>\n"
    )


def _plot_section(make: Any) -> str:
    if not have_matplotlib():
        return f'<p class="note">plots left out: {html.escape(PLOT_HINT)}</p>'
    return _svg(make())


def run_html(r: dict[str, Any]) -> str:
    m, lat = r["machine"], r["latency_ms"]
    summary = table(
        ["what", "value"],
        [
            ["nodes / transport", f"{r['nodes']} over {r['transport']}"],
            ["cores the nodes had", r["cores"]],
            [
                "submitted / accepted / committed",
                f"{r['submitted']:,} / {r['accepted']:,} / {r['committed']:,}",
            ],
            ["rejected", ", ".join(f"{k} {v:,}" for k, v in r["rejected"].items()) or "none"],
            ["committed tx/s", r["committed_tps"]],
            ["ceiling tx/s (same run)", r["ceiling_tps"]],
            ["ratio (headline)", f"{r['ratio']:.3f}"],
            ["cores the node processes got (CPU s / wall s)", r["cores_used"]],
            ["CPU ratio (minimal work / node CPU per tx)", r["cpu_ratio"]],
            ["saturation tx/s", r["saturation_tps"]],
            ["view changes", r["view_changes"]],
            ["consistent (heads, state roots)", r["consistent"]],
            ["total supply intact", r["supply_ok"]],
            ["all checks", r["ok"]],
        ],
    )
    latency = table(
        ["latency (ms)", "p50", "p90", "p99", "max", "samples"],
        [
            ["submit → commit (every tx)", lat["p50"], lat["p90"], lat["p99"], lat["max"],
             lat["samples"]],
            ["submit → receipt (sampled)", *(r["receipt_latency_ms"][k] for k in
             ("p50", "p90", "p99", "max", "samples"))],
        ],
    )  # fmt: skip
    nodes = table(
        ["node", "CPU s", "peak RSS MB", "height", "head hash", "state root"],
        [
            [name, s["cpu_s"], s["rss_mb"], r["heads"][name]["height"],
             r["heads"][name]["hash"], r["heads"][name]["state_root"]]
            for name, s in r["per_node"].items()
        ],
    )  # fmt: skip
    measured = [("before the load", r["ceiling"])]
    if r.get("ceiling_after"):
        measured.append(("after the load", r["ceiling_after"]))
    ceiling = table(
        ["measured", "minimal work µs/tx", "rounds µs", "tx bytes", "cores", "busy cores",
         "ceiling tx/s"],
        [[when, c["cost_us"], ", ".join(f"{x:.1f}" for x in c["rounds_us"]), c["tx_bytes"],
          c["cores"], c["busy_cores"], c["ceiling_tps"]] for when, c in measured],
    )  # fmt: skip
    sections = [
        ("Summary", summary),
        ("Plots", _plot_section(lambda: run_figure(r))),
        ("Latency", latency),
        ("Ceiling (decode, two SHA3-256, sender recovery, transfer on a dict)", ceiling),
        ("Nodes", nodes),
    ]
    if r.get("saturation"):
        steps = r["saturation"]["steps"]
        rows = [
            [s["rate"], s["committed_tps"], s["latency_ms"]["p50"], s["latency_ms"]["p99"],
             sum(s["rejected"].values()), s.get("past_saturation") or "kept up"]
            for s in steps
        ]  # fmt: skip
        ninety = r["saturation"].get("at_90_percent")
        if ninety:
            rows.append([f"{ninety['rate']:,} (90 %)", ninety["committed_tps"],
                         ninety["latency_ms"]["p50"], ninety["latency_ms"]["p99"],
                         sum(ninety["rejected"].values()), ""])  # fmt: skip
        sections.append(
            (
                "Saturation search (open-loop steps)",
                table(
                    ["offered tx/s", "committed tx/s", "p50 ms", "p99 ms", "refused", "verdict"],
                    rows,
                )
                + f'<p class="note">stopped: {html.escape(r["saturation"]["stop"])}</p>',
            )
        )
    sections.append(
        (
            "Machine",
            table(
                ["CPUs", "model", "Python", "load average before"],
                [[m["cpus"], m["cpu_model"], m["python"], str(m["loadavg_before"])]],
            ),
        )
    )
    return page(_run_title(r), sections)


def sweep_html(rows: Sequence[dict[str, Any]], machine: dict[str, Any]) -> str:
    return page(
        "ledgerlab bench sweep",
        [
            ("Results (medians)", sweep_table_html(rows)),
            ("Plot", _plot_section(lambda: sweep_figure(rows))),
            (
                "Machine",
                table(
                    ["CPUs", "model", "Python"],
                    [[machine["cpus"], machine["cpu_model"], machine["python"]]],
                ),
            ),
        ],
    )


SWEEP_COLUMNS = (
    ("transport", "transport"),
    ("block_txs", "block txs"),
    ("nodes", "n"),
    ("committed_tps", "tx/s"),
    ("ceiling_tps", "ceiling tx/s"),
    ("ratio", "ratio"),
    ("cores_used", "cores got"),
    ("cpu_ratio", "CPU ratio"),
    ("p50_ms", "p50 ms"),
    ("p99_ms", "p99 ms"),
    ("view_changes", "view changes"),
    ("max_rss_mb", "max RSS MB"),
    ("runs", "runs"),
    ("ok", "checks"),
)


def sweep_table_html(rows: Sequence[dict[str, Any]]) -> str:
    return table([h for _, h in SWEEP_COLUMNS], [[r[k] for k, _ in SWEEP_COLUMNS] for r in rows])


def write_text(path: Path, text: str, what: str) -> None:
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise CommandError(f"cannot write the {what} {path}: {exc.strerror or exc}") from None
