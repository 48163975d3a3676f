"""The house rules of who may import whom, read from the source (function-level imports too).

scripts -> node -> {consensus, storage}; inside node, ledger is deterministic and knows no
asyncio, runtime, transport or rpc; rpc talks to the runtime through a protocol and never
imports it; the consensus core has no I/O, clock or randomness (the simulator may seed its
own); scripts' launcher does not import the CLI front end.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def modules(package: str) -> dict[str, Path]:
    out = {}
    for path in sorted((ROOT / package.replace(".", "/")).rglob("*.py")):
        rel = path.relative_to(ROOT).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def imports_of(path: Path, module: str) -> set[str]:
    """Every module ``path`` imports, anywhere in the file, absolute names."""
    found: set[str] = set()
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def violations(
    package: str, forbidden: tuple[str, ...], *, skip: tuple[str, ...] = ()
) -> list[str]:
    bad = []
    for module, path in modules(package).items():
        if module.startswith(skip):
            continue
        for imported in sorted(imports_of(path, module)):
            if any(imported == f or imported.startswith(f + ".") for f in forbidden):
                bad.append(f"{module} imports {imported}")
    return bad


OURS = ("node", "scripts", "consensus", "storage", "tests")
IO = ("asyncio", "socket", "selectors", "threading", "time", "random", "os", "subprocess")


@pytest.mark.parametrize(
    ("package", "forbidden", "skip"),
    [
        ("consensus", ("node", "scripts", "storage", "tests"), ()),
        ("consensus", IO, ("consensus.sim", "consensus.crypto")),
        ("storage", ("node", "scripts", "consensus", "tests", "asyncio"), ()),
        ("node.ledger", ("asyncio", "node.runtime", "node.transport", "node.rpc", "scripts"), ()),
        ("node.rpc", ("node.runtime", "node.transport", "scripts"), ()),
        ("node.transport", ("node.rpc", "scripts"), ()),
        ("node", ("scripts", "tests"), ()),
        ("scripts.launcher", ("scripts.cli", "scripts.commands"), ()),
    ],
)
def test_layer_rules(package: str, forbidden: tuple[str, ...], skip: tuple[str, ...]) -> None:
    assert violations(package, forbidden, skip=skip) == []


def test_the_reader_sees_every_room() -> None:
    found = set(modules("node"))
    for room in ("node.ledger", "node.runtime", "node.transport", "node.rpc"):
        assert room in found, room
    top = {p.name for p in (ROOT / "node").iterdir() if p.suffix == ".py"}
    assert top == {"__init__.py", "__main__.py"}, "every module lives in a room"


def test_the_checker_sees_function_level_imports(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text("def f():\n    import asyncio\n    from node.runtime import Node\n")
    found = imports_of(probe, "node.ledger.probe")
    assert {"asyncio", "node.runtime", "node.runtime.Node"} <= found
