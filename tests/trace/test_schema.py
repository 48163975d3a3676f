"""The trace format as documented: every record a simulator writes follows the schema of
scripts/trace/schema.py, and every kind it writes is documented in docs/trace-format.md."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest

from consensus.sim import run_scenario
from consensus.sim.trace import JsonlTrace
from consensus.tracefmt import FORMAT, LIVE_ONLY_KINDS, RECORD_KINDS, VERSION
from scripts.trace.schema import REQUIRED, TraceError, parse_lines, validate
from tests.trace import scenarios

DOC = Path(__file__).resolve().parents[2] / "docs" / "trace-format.md"
SCENARIOS = (
    scenarios.normal,
    scenarios.view_change,
    scenarios.equivocation,
    scenarios.sync,
    scenarios.everything,
)


def documented_kinds() -> set[str]:
    """Kinds named in the doc: first cells of table rows (`` | `kind` | ``) and
    ``ev = "kind"`` in the text."""
    text = DOC.read_text(encoding="utf-8")
    cells = set(re.findall(r"^\| `([a-z_]+)` \|", text, flags=re.M))
    named = set(re.findall(r'`ev = "([a-z_]+)"`', text))
    return cells | named


def documented_fields(kind: str) -> str:
    """The doc's table row of ``kind`` (where its fields are listed)."""
    text = DOC.read_text(encoding="utf-8")
    rows = re.findall(rf"^\| `{kind}` \|.*$", text, flags=re.M)
    return " ".join(rows)


def sim_records() -> list[dict]:
    out: list[dict] = []
    for make in SCENARIOS:
        header, records = scenarios.records_of(make())
        out += [header, *records]
    return out


def test_every_kind_the_simulator_writes_is_documented_and_valid() -> None:
    records = sim_records()
    kinds = {r["ev"] for r in records}
    live_only = set(LIVE_ONLY_KINDS)  # tests/cli/test_trace_live.py shows those
    assert kinds == set(RECORD_KINDS) - live_only, "these scenarios should show every kind"
    assert kinds <= documented_kinds(), kinds - documented_kinds()
    for r in records:
        assert validate(r) == [], (r, validate(r))


def test_every_required_field_is_named_in_the_doc() -> None:
    text = DOC.read_text(encoding="utf-8")
    for kind, fields in REQUIRED.items():
        row = documented_fields(kind) or text
        for name in fields:
            assert f"`{name}`" in row or f"`{name}`" in text, (kind, name)


def test_the_header_comes_first_and_names_the_run() -> None:
    header, _ = scenarios.records_of(scenarios.equivocation())
    assert header["ev"] == "header" and header["format"] == FORMAT
    assert header["version"] == VERSION and header["source"] == "sim"
    assert header["time_unit"] == "us" and header["clock"] == "virtual"
    assert header["f"] == 1 and header["sealers"] == [0, 1, 2, 3]
    assert [n["behaviour"] for n in header["nodes"]] == [None, None, None, "equivocate"]


def test_phases_carry_the_quorum_that_caused_them() -> None:
    _, records = scenarios.records_of(scenarios.normal())
    phases = [r for r in records if r["ev"] == "phase"]
    assert {p["phase"] for p in phases} == {"pre-prepared", "prepared", "committed"}
    for p in phases:
        if p["phase"] != "pre-prepared":
            assert p["votes"] == len(p["voters"]) >= p["quorum"] == 3 and p["n"] == 4
    # every node is prepared before it commits, for each height
    for node in range(4):
        order = [(p["height"], p["phase"]) for p in phases if p["node"] == node]
        for h in (1, 2, 3):
            assert order.index((h, "prepared")) < order.index((h, "committed"))


def test_a_file_trace_reads_back(tmp_path: Path) -> None:
    buf = io.StringIO()
    run_scenario(scenarios.normal(), trace=JsonlTrace(buf))
    records = parse_lines(buf.getvalue().splitlines())
    assert records[0]["ev"] == "header" and len(records) > 100


@pytest.mark.parametrize(
    ("lines", "fragment"),
    [
        ([], "empty"),
        (['{"ev":"recv","t":1,"node":0}'], "missing"),
        (['{"ev":"header","t":0,"format":"other"}'], "missing"),
        (["not json"], "not JSON"),
        (["[1, 2]"], "not a JSON object"),
        (['{"ev":"commit","t":1.5,"node":0,"height":1,"view":0,"block":"ab"}'], "'t'"),
        (["[" * 200_000 + "]" * 200_000], "nested too deep"),
        (['{"ev":"x","t":0}' + " " * (1 << 20)], "longer than"),
    ],
)
def test_bad_traces_are_refused_with_the_line(lines: list[str], fragment: str) -> None:
    with pytest.raises(TraceError, match=fragment):
        parse_lines(lines, "t.jsonl")


def test_a_later_version_is_refused() -> None:
    header, _ = scenarios.records_of(scenarios.normal())
    header["version"] = VERSION + 1
    with pytest.raises(TraceError, match="version"):
        parse_lines([json.dumps(header)])


def test_unknown_kinds_and_fields_are_allowed() -> None:
    """Version 1 only grows: a reader must accept what a later writer adds."""
    header, _ = scenarios.records_of(scenarios.normal())
    extra = {"ev": "future_kind", "t": 5, "node": 0, "anything": [1]}
    assert len(parse_lines([json.dumps(header), json.dumps(extra)])) == 2
