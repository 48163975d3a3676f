"""A failed case may leave its chain in any state (pending transactions, a halt): the
module's :class:`~tests.adversarial.harness.ChainKeeper` then gives the next case a
fresh chain, so one failure is reported once, by the case that caused it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    report = yield
    if report.failed:
        chain = getattr(item, "funcargs", {}).get("chain")
        if chain is not None and getattr(chain, "broken", "n/a") is None:
            chain.broken = f"{item.name} failed"
    return report
