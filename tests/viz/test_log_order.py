"""The page's "what just happened" log tells one instant cause first: the timer that fired,
then the ViewChange it made the node broadcast, one line per broadcast (it listed the sends
first, and split node0's broadcast around node2's: "node0 sends ViewChange to node2",
"node2 sends ... to 3 nodes", "node0 sends ... to 2 nodes")."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from scripts.viz import page_data, read_trace, write_page
from scripts.viz.model import MESSAGE_TYPES
from tests.viz import traces
from tests.viz.test_browser import _open, browser  # noqa: F401 (the fixture)

pytestmark = pytest.mark.timeout(300)


def test_the_copies_of_one_send_are_adjacent(tmp_path: Path) -> None:
    data = page_data(*read_trace(traces.equivocation(tmp_path / "eq.jsonl")))
    m, t, seen, last = data["msgs"], 0, set(), None
    for i in range(len(m["fl"])):
        t += m["ts"][i]
        send = (t, m["src"][i], MESSAGE_TYPES[m["ty"][i]])
        if send != last:
            assert send not in seen, f"the copies of {send} are split"
            seen.add(send)
        last = send


@pytest.mark.slow
def test_the_log_tells_the_timeout_before_the_view_change_it_sent(
    browser: Any,  # noqa: F811
    tmp_path: Path,
) -> None:
    html = tmp_path / "eq.html"
    write_page(traces.equivocation(tmp_path / "eq.jsonl"), html)
    page, errors = _open(browser, html)
    page.click("text=next view change")
    lines = [x for x in page.inner_text("#log").splitlines() if x.startswith("1100.0 ")]
    assert lines == [
        "1100.0 node0 TIMES OUT: timer fired: asks for view 1",
        "1100.0 node2 TIMES OUT: timer fired: asks for view 1",
        "1100.0 node0 sends ViewChange (view 1, height 3) to 3 nodes",
        "1100.0 node2 sends ViewChange (view 1, height 3) to 3 nodes",
    ], lines
    assert not errors, errors
