"""docs/tutorial.md and the exercises agree: titles, commands, doc links."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from scripts.learn import EXERCISES

DOCS = Path(__file__).resolve().parents[2] / "docs"
TUTORIAL = (DOCS / "tutorial.md").read_text(encoding="utf-8")


def slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    return {
        slug(line.lstrip("#"))
        for line in page.read_text(encoding="utf-8").splitlines()
        if line.startswith("#")
    }


@pytest.mark.parametrize("ex", EXERCISES, ids=lambda e: str(e.number))
def test_each_exercise_is_in_the_tutorial(ex) -> None:  # type: ignore[no-untyped-def]
    assert f"\n## {ex.number}. {ex.title}\n" in TUTORIAL
    section = TUTORIAL.split(f"\n## {ex.number}. ")[1].split("\n## ")[0]
    for command in ex.commands(1):
        assert command in section, command
    for ref in ex.reading:
        page, _, anchor = ref.partition("#")
        assert (DOCS.parent / page).is_file(), ref
        assert not anchor or anchor in anchors(DOCS.parent / page), ref
        assert Path(page).name in section, ref


def test_live_command_is_in_the_tutorial() -> None:
    live = EXERCISES[8].live
    assert live is not None and live.command(1) in TUTORIAL


def test_tutorial_links_resolve() -> None:
    for page, anchor in re.findall(r"\]\(([\w\-]+\.md)(?:#([\w\-]+))?\)", TUTORIAL):
        assert (DOCS / page).is_file(), page
        assert not anchor or anchor in anchors(DOCS / page), f"{page}#{anchor}"


# What the tutorial says each exercise shows with seed 1, and the answer that implies.
DOCUMENTED = {
    1: ("holding 3 matching Prepares", "3"),
    2: ("the chain stays at height 4", "4"),
    3: ("Node 2, the leader of height 1 in view 1", "2"),
    4: ("node 3 sends its own proposal to node 0", "0"),
    5: ("blocks 1-4 commit before 700 ms", "4"),
    6: ("fetches heights 3, 4 and 5", "5"),
    7: ("agreement FAILED fork at height 1", "agreement"),
    8: ("Block 6 was proposed by node 1", "1"),
    9: ("27, 90, 189 and 324 messages per block", "189"),
}


@pytest.mark.parametrize("ex", EXERCISES, ids=lambda e: str(e.number))
def test_the_tutorials_observations_are_the_seed_1_runs(ex) -> None:  # type: ignore[no-untyped-def]
    phrase, answer = DOCUMENTED[ex.number]
    section = TUTORIAL.split(f"\n## {ex.number}. ")[1].split("\n## ")[0]
    assert phrase in " ".join(section.split()), phrase
    assert ex.answer(ex.run(1)).accepts(answer)
