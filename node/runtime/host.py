"""What block sync and the RPC service need of a node: two small protocols.

:class:`~node.runtime.sync.BlockSync` and :class:`~node.runtime.service.NodeService`
take these instead of the whole :class:`~node.runtime.node.Node`, so each says exactly
what it reads and calls, and a test can hand them a stand-in. ``Node`` satisfies both.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from consensus import Replica
    from consensus.crypto import KeyPair
    from node.ledger.block import Block
    from node.ledger.chain import Chain, ExecutedBlock
    from node.ledger.genesis import GenesisConfig
    from node.ledger.precompiles.consensus import Membership
    from node.runtime.byzantine import Byzantine
    from node.runtime.config import NodeConfig
    from node.runtime.latency import Latency
    from node.runtime.stall import StallWatch
    from node.runtime.storage_fault import StorageFault
    from node.runtime.supervisor import Supervisor
    from node.runtime.sync import BlockSync
    from node.runtime.txpool import TxPool, TxRejected
    from node.transport import Transport


class SyncHost(Protocol):
    """What :class:`~node.runtime.sync.BlockSync` reads and calls."""

    chain: Chain
    pool: TxPool
    transport: Transport
    config: NodeConfig
    supervisor: Supervisor
    storage_fault: StorageFault | None

    def on_synced(self, block: Block, executed: ExecutedBlock, source: str = "") -> None: ...

    def storage_failed(self, reason: str) -> None: ...


class ServiceHost(SyncHost, Protocol):
    """What :class:`~node.runtime.service.NodeService` reads and calls."""

    genesis: GenesisConfig
    replica: Replica
    sync: BlockSync
    stall: StallWatch
    latency: Latency
    key: KeyPair
    index: int | None
    role: str
    membership: Membership
    sealer_ids: list[str]
    members: list[str]
    frames_in: Counter[str]
    dropped: Counter[str]
    byzantine: Byzantine | None

    def submit(self, raws: list[bytes], *, force: bool = False) -> list[bytes | TxRejected]: ...

    def name_of(self, node_id: str) -> str: ...

    def current_timeout(self) -> float: ...

    def stall_reason(self) -> str: ...
