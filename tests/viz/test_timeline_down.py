"""The timeline's grey bar covers the whole time a node is down (from its crash to its
restart), not only the moment the crash caption is shown; its legend names what the run
has ("pink: equivocation" was printed on runs without one, "grey" never)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from scripts.viz import write_page
from tests.viz import traces
from tests.viz.test_browser import _open, browser  # noqa: F401 (the fixture)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

SHARE_OF_GREY = """() => {
  const c = document.getElementById("tl"), g = c.getContext("2d");
  const y = Math.round(19 * (window.devicePixelRatio || 1));
  const row = g.getImageData(0, y, c.width, 1).data;
  let grey = 0;
  for (let i = 0; i < row.length; i += 4)
    if (row[i] === 0x3e && row[i + 1] === 0x4c && row[i + 2] === 0x59) grey++;  // #3e4c59
  return grey / c.width;
}"""


def test_a_crash_is_grey_on_the_timeline_until_the_restart(
    browser: Any,  # noqa: F811
    tmp_path: Path,
) -> None:
    # node1 is down from 50 ms to 3000 ms of a run that ends at about 3040 ms
    html = tmp_path / "crash.html"
    write_page(traces.leader_crash(tmp_path / "crash.jsonl"), html)
    page, errors = _open(browser, html)
    share = page.evaluate(SHARE_OF_GREY)
    assert share > 0.6, f"only {share:.0%} of the timeline is grey"
    assert not errors, errors


def test_no_grey_without_a_crash(browser: Any, tmp_path: Path) -> None:  # noqa: F811
    html = tmp_path / "eq.html"
    write_page(traces.equivocation(tmp_path / "eq.jsonl"), html)
    page, errors = _open(browser, html)
    assert page.evaluate(SHARE_OF_GREY) == 0
    assert not errors, errors


def test_a_clean_stop_is_down_like_a_crash(browser: Any, tmp_path: Path) -> None:  # noqa: F811
    """The leader-crash run with its crash written as a live `stop` record: the lane is
    DOWN, grey on the timeline until the restart, and the caption says stopped."""
    import json

    lines = traces.leader_crash(tmp_path / "crash.jsonl").read_text().splitlines()
    stopped = tmp_path / "stop.jsonl"
    with open(stopped, "w") as fh:
        for line in lines:
            r = json.loads(line)
            if r["ev"] == "crash":
                r = {**r, "ev": "stop", "how": "stop-node"}
            fh.write(json.dumps(r) + "\n")
    assert '"stop"' in stopped.read_text() and '"crash"' not in stopped.read_text()
    html = tmp_path / "stop.html"
    write_page(stopped, html)
    page, errors = _open(browser, html)
    assert page.evaluate(SHARE_OF_GREY) > 0.6
    page.evaluate("viz.seek(60000)")
    assert "DOWN" in page.inner_text('.lane[data-node="1"]')
    assert page.inner_text("#capTitle") == "node1 is stopped"
    assert not errors, errors
