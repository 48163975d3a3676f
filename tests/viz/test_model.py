"""The viz page's data: flights paired, votes counted, faults named, captions in words."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import pytest

from scripts.cli import main
from scripts.viz import TraceError, build, page_data, read_trace, render
from scripts.viz.model import FLAG_DOUBLE_VOTE, FLAG_EQUIVOCATION, MESSAGE_TYPES, PHASES
from tests.viz import traces

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def eq_data(tmp_path_factory: pytest.TempPathFactory) -> dict:
    path = traces.equivocation(tmp_path_factory.mktemp("viz") / "eq.jsonl")
    return page_data(*read_trace(path))


def _messages(data: dict) -> list[dict]:
    m, out, t = data["msgs"], [], 0
    for i in range(len(m["fl"])):
        t += m["ts"][i]
        out.append(
            {
                "ts": t,
                "tr": t + m["fl"][i],
                "src": m["src"][i],
                "dst": m["dst"][i],
                "type": MESSAGE_TYPES[m["ty"][i]],
                "h": m["h"][i],
                "v": m["v"][i],
                "flags": m["fg"][i],
            }
        )
    return out


def test_every_receipt_flies_from_its_send(eq_data: dict) -> None:
    msgs = _messages(eq_data)
    assert len(msgs) == 163  # every recv record of the seed-3 run
    assert all(0 <= m["src"] < 4 and 0 <= m["dst"] < 4 and m["src"] != m["dst"] for m in msgs)
    assert all(m["tr"] >= m["ts"] for m in msgs)
    pp1 = [m for m in msgs if m["type"] == "PrePrepare" and m["h"] == 1]
    assert {m["src"] for m in pp1} == {1} and {m["dst"] for m in pp1} == {0, 2, 3}
    assert len({m["ts"] for m in pp1}) == 1  # one broadcast, three flights


def test_equivocation_is_found_and_told(eq_data: dict) -> None:
    (e,) = eq_data["equivocations"]
    assert (e["leader"], e["view"], e["height"]) == (3, 0, 3)
    assert sorted(map(tuple, e["groups"].values())) == [(0,), (1, 2)]
    assert any(m["flags"] & FLAG_EQUIVOCATION for m in _messages(eq_data))
    assert eq_data["meta"]["lanes"][3]["behaviour"].startswith("equivocate")
    cap = next(c for c in eq_data["captions"] if c["kind"] == "equivocation")
    assert cap["title"] == "Byzantine equivocation by node3"
    assert "DIFFERENT proposals" in cap["text"] and "nobody commits in view 0" in cap["text"]


def test_view_change_caption_names_who_and_why(eq_data: dict) -> None:
    cap = next(c for c in eq_data["captions"] if c["kind"] == "view-change")
    assert cap["title"] == "View change: view 0 -> view 1"
    assert "its leader, node3, equivocated" in cap["text"]
    assert "Node0 and node2 timed out" in cap["text"]
    assert "The new leader, node0, collected 3 ViewChanges" in cap["text"]
    assert "proposes afresh" in cap["text"]


def test_quorum_counters_fill_up_to_the_commit(eq_data: dict) -> None:
    s = eq_data["snaps"]
    rows = [i for i in range(len(s["t"])) if s["n"][i] == 2 and s["h"][i] == 1]
    prepares = [s["pc"][i] for i in rows]
    assert prepares[0] == 0 and max(prepares) >= 3  # quorum 3 of 4
    assert prepares == sorted(prepares)  # counted up, never down, within the height
    phases = [PHASES[s["ph"][i]] for i in rows]
    assert phases.index("prepared") < phases.index("committed")
    assert eq_data["chain"][0][0] == 1 and len(eq_data["chain"]) == 5
    assert all(row[8] > 0 for row in eq_data["chain"])  # transactions, from execute records


def test_leader_crash_caption_and_sync(tmp_path: Path) -> None:
    data = page_data(*read_trace(traces.leader_crash(tmp_path / "lc.jsonl")))
    vc = next(c for c in data["captions"] if c["kind"] == "view-change")
    assert "its leader, node1, is down" in vc["text"]
    sync = next(c for c in data["captions"] if c["kind"] == "sync")
    assert "node1" in sync["title"] and "valid Commit signatures" in sync["text"]


def test_a_reproposal_is_told(tmp_path: Path) -> None:
    data = page_data(*read_trace(traces.reproposal(tmp_path / "rep.jsonl")))
    (nv,) = data["newViews"]
    assert (nv["view"], nv["height"], nv["proposal"], nv["reproposed"]) == (1, 1, "1A", 0)
    cap = next(c for c in data["captions"] if c["kind"] == "view-change")
    assert "Node0 committed height 1 in view 0, but the other nodes did not gather" in cap["text"]
    assert "re-proposes that block (1A)" in cap["text"]
    assert [row[0] for row in data["chain"]] == [1, 2, 3, 4]


def test_double_votes_and_garbage_are_told(tmp_path: Path) -> None:
    data = page_data(*read_trace(traces.byzantine(tmp_path / "dv.jsonl", "double-vote")))
    first = data["doubleVotes"][0]
    assert (first["node"], first["view"], first["height"]) == (3, 0, 1)
    assert first["types"] == ["Prepare", "Commit"] and len(first["blocks"]) >= 2
    assert any(m["flags"] & FLAG_DOUBLE_VOTE for m in _messages(data))
    cap = next(c for c in data["captions"] if c["title"] == "Byzantine double vote by node3")
    assert "DIFFERENT blocks" in cap["text"] and "evidence against node3" in cap["text"]
    spam = page_data(*read_trace(traces.byzantine(tmp_path / "spam.jsonl", "spam")))
    (g,) = spam["garbage"]
    assert g["node"] == 3 and g["count"] > 0
    assert any(c["title"] == "node3 sends garbage" for c in spam["captions"])


def test_records_without_a_header_are_understood(tmp_path: Path) -> None:
    _, records = read_trace(traces.equivocation(tmp_path / "eq.jsonl"))
    data = build(records, {})  # node ids and roles inferred from what the nodes did
    assert len(data["meta"]["lanes"]) == 4
    assert data["meta"]["lanes"][3]["behaviour"].startswith("equivocate")
    assert len(data["msgs"]["fl"]) == 163


def test_render_is_one_self_contained_page(eq_data: dict) -> None:
    html = render(eq_data)
    assert "<script src" not in html and "<link" not in html and "http" not in html.lower()
    blob = html.split('type="application/json">', 1)[1].split("</script>", 1)[0]
    assert json.loads(blob)["meta"]["lanes"][0]["name"] == "node0"


MAX_PAGE_BYTES = 3 * 1024 * 1024
"""A 10-node, 50-height page must stay under 3,145,728 bytes (3 MiB)."""


def test_ten_nodes_fifty_heights_page_size(large_page: tuple[Path, int]) -> None:
    page, size = large_page
    print(f"\n10 nodes, 50 heights: page {size} bytes")
    assert size == page.stat().st_size < MAX_PAGE_BYTES


def test_page_assets_ship_in_the_wheel() -> None:
    pyproject = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    shipped = pyproject["tool"]["setuptools"]["package-data"]["scripts.viz"]
    assert sorted(shipped) == ["page.css", "page.html", "page.js"]


HEADER = (
    '{"ev":"header","t":0,"format":"ledgerlab-trace","version":1,"source":"sim",'
    '"time_unit":"us","clock":"virtual","nodes":[],"sealers":[],"f":0}\n'
)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "empty (no header)"),
        ("not json\n", "not JSON"),
        ("[1, 2]\n", "not a JSON object"),
        ('{"ev": "recv", "t": 1}\n', "recv: missing 'type'"),
        (HEADER.replace('"version":1', '"version":2'), "trace version 2"),
        (HEADER, "holds no trace records"),
    ],
)
def test_bad_traces_are_one_line_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, message: str
) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text(content)
    out = tmp_path / "bad.html"
    with pytest.raises(TraceError, match=re.escape(message)):
        read_trace(bad)
    assert main(["viz", str(bad), "-o", str(out)]) == 1
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_cli_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["viz", str(tmp_path / "missing.jsonl")]) == 1
    assert "cannot read" in capsys.readouterr().err
    path = traces.equivocation(tmp_path / "eq.jsonl")
    assert main(["viz", str(path), "-o", str(path)]) == 1
    assert "overwrite its own trace" in capsys.readouterr().err
    assert main(["viz", str(path)]) == 0
    assert (tmp_path / "eq.html").stat().st_size > 10_000
