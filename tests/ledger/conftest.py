"""Fixtures for the ledger-core tests (helpers live in tests/ledger/support.py)."""

from __future__ import annotations

import pytest

from tests.ledger.support import Chain, open_genesis, permissioned_genesis


@pytest.fixture
def open_chain() -> Chain:
    return Chain(open_genesis())


@pytest.fixture
def perm_chain() -> Chain:
    return Chain(permissioned_genesis())
