"""The page names the quorum with the right formula: ``2f+1`` only when n = 3f + 1.

Five sealers tolerate f = 1 but need 4 matching votes (n - f); the page used to say
"4 = 2f+1", which is false arithmetic in front of someone learning where quorums come from.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from consensus.sim import NetworkSpec, Scenario
from scripts.viz import page_data, read_trace, write_page
from tests.viz import traces
from tests.viz.test_browser import _open, browser  # noqa: F401 (the fixture)

pytestmark = pytest.mark.timeout(300)


def five_sealers_equivocation(path: Path) -> Path:
    """5 sealers (f = 1, quorum 4); node4 equivocates when it leads height 4 in view 0."""
    s = Scenario(network=NetworkSpec(), nodes=5, blocks=5, seed=3, signatures="fake")
    s.byzantine[4] = "equivocate"
    return traces.write_trace(path, s)


def test_captions_say_n_minus_f_when_n_is_not_3f_plus_1(tmp_path: Path) -> None:
    data = page_data(*read_trace(five_sealers_equivocation(tmp_path / "eq5.jsonl")))
    texts = " ".join(c["text"] for c in data["captions"])
    assert {c["kind"] for c in data["captions"]} >= {"equivocation", "view-change"}
    assert "4 = n - f" in texts
    assert "2f+1" not in texts.replace("f+1 = 2", "")


def test_captions_keep_2f_plus_1_on_four_sealers(tmp_path: Path) -> None:
    data = page_data(*read_trace(traces.equivocation(tmp_path / "eq.jsonl")))
    texts = " ".join(c["text"] for c in data["captions"])
    assert "3 = 2f+1" in texts and "n - f" not in texts


@pytest.mark.slow
def test_the_page_summary_and_normal_caption_on_five_sealers(
    browser: Any,  # noqa: F811
    tmp_path: Path,
) -> None:
    html = tmp_path / "eq5.html"
    write_page(five_sealers_equivocation(tmp_path / "eq5.jsonl"), html)
    page, errors = _open(browser, html)
    assert "quorum 4 = n - f" in page.inner_text("#summary")
    page.click("text=step ▶▶")  # the first event: height 1, the normal case
    caption = page.inner_text("#capText")
    assert "holding 4 = n - f matching Prepares" in caption, caption
    assert not errors, errors
