"""Block sync: how a node that is behind catches up from its peers.

Nodes broadcast :class:`~node.wire.Status` (height, head hash, genesis hash) every second
and after every commit. A node that sees a peer ahead of it -- or whose replica asks with
RequestSync -- requests the missing range in chunks, rotating over the peers that are
ahead, and imports each block only after :meth:`node.ledger.chain.Chain.import_block` has
checked its seal against the sealer list and re-executed it to the same header. Serving
requests only reads storage, so a node catching up 10,000 blocks does not slow the
others' consensus beyond the bytes it asks for.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from typing import TYPE_CHECKING

from consensus.codec import DecodeError
from node.ledger.block import Block
from node.ledger.chain import ChainError
from node.runtime import wire
from storage.kv import StorageError

if TYPE_CHECKING:
    from node.runtime.host import SyncHost

log = logging.getLogger("ledgerlab.sync")

REQUEST_TIMEOUT = 5.0
MAX_RESPONSE_BYTES = 8 * 1024 * 1024


class BlockSync:
    """Peer heads, the sync loop, and the server side of block requests."""

    def __init__(self, node: SyncHost) -> None:
        self.node = node
        self.peers: dict[str, wire.Status] = {}
        self.stats: Counter[str] = Counter()
        self._target = 0
        self._hint: list[str] = []
        self._wake = asyncio.Event()
        self._waiting: dict[str, asyncio.Future[wire.BlockResponse]] = {}
        self._turn = 0
        self.syncing = False

    # -- what we hear -----------------------------------------------------------------

    def on_status(self, peer: str, status: wire.Status) -> None:
        if status.genesis_hash != self.node.chain.genesis_hash:
            self.stats["genesis_mismatch"] += 1
            log.warning(
                "peer %s has another genesis (%s); ignoring it",
                peer[:16],
                status.genesis_hash.hex()[:16],
            )
            return
        self.peers[peer] = status
        if status.height > self.node.chain.head.number:
            self._wake.set()

    def want(self, target: int, peers: list[str]) -> None:
        """The replica (or a commit we could not make) says we are behind."""
        self._target = max(self._target, target)
        self._hint = peers
        self._wake.set()

    def known_highest(self) -> tuple[int, bytes]:
        head = self.node.chain.head
        best = (head.number, head.block_hash)
        for status in self.peers.values():
            if status.height > best[0]:
                best = (status.height, status.head_hash)
        return best

    # -- serving ----------------------------------------------------------------------

    def serve(self, peer: str, request: wire.BlockRequest) -> None:
        store = self.node.chain.store
        end = min(request.end, self.node.chain.head.number)
        blocks: list[bytes] = []
        size = 0
        for number in range(request.start, end + 1):
            raw = store.block_by_number(number)
            if raw is None or (blocks and size + len(raw) > MAX_RESPONSE_BYTES):
                break
            blocks.append(raw)
            size += len(raw)
        self.stats["served_blocks"] += len(blocks)
        self.node.transport.send(peer, wire.encode(wire.BlockResponse(tuple(blocks))))

    def on_blocks(self, peer: str, response: wire.BlockResponse) -> None:
        waiter = self._waiting.get(peer)
        if waiter is None or waiter.done():
            self.stats["unsolicited"] += 1
            return
        waiter.set_result(response)

    # -- catching up ------------------------------------------------------------------

    def _candidates(self, head: int) -> list[str]:
        connected = self.node.transport.peers()
        ahead = [p for p, s in self.peers.items() if s.height > head and p in connected]
        hinted = [p for p in self._hint if p in connected and p not in ahead]
        return ahead + hinted

    async def run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1.0):
                    await self._wake.wait()
            self._wake.clear()
            while True:
                head = self.node.chain.head.number
                target = max(self._target, self.known_highest()[0])
                peers = self._candidates(head)
                if target <= head or not peers or self.node.storage_fault is not None:
                    break
                self.syncing = True
                peer = peers[self._turn % len(peers)]
                self._turn += 1
                end = min(target, head + self.node.config.sync_batch)
                if not await self._fetch_and_import(peer, head + 1, end):
                    self._forget(peer)
            self.syncing = False

    def _forget(self, peer: str) -> None:
        """``peer`` gave us nothing: skip it until it speaks again (Status, RequestSync).

        Without this a hinted peer (or one that answers with blocks we have) stays a
        candidate and is asked again at once, forever: a single lying height claim made
        the loop spin on BlockRequests and report syncing.
        """
        self.stats["peers_skipped"] += 1
        self.peers.pop(peer, None)
        self._hint = [p for p in self._hint if p != peer]

    async def _fetch_and_import(self, peer: str, start: int, end: int) -> bool:
        """Ask ``peer`` for ``start..end``; True if it gave us at least one new block."""
        imported = self.stats["imported"]
        waiter = asyncio.get_running_loop().create_future()
        self._waiting[peer] = waiter
        try:
            self.node.transport.send(peer, wire.encode(wire.BlockRequest(start, end)))
            async with asyncio.timeout(REQUEST_TIMEOUT):
                response = await waiter
        except TimeoutError:
            self.stats["timeouts"] += 1
            return False
        finally:
            self._waiting.pop(peer, None)
        for raw in response.blocks:
            if not self._import(peer, raw):
                break
            await asyncio.sleep(0)  # let consensus and RPC run between blocks
        # nothing (or only blocks we had): the peer is not as far as it said
        return self.stats["imported"] > imported

    def _import(self, peer: str, raw: bytes) -> bool:
        node = self.node
        try:
            block = Block.decode(raw)
        except DecodeError:
            self.stats["bad_blocks"] += 1
            return False
        if block.number <= node.chain.head.number:
            return True  # consensus committed it meanwhile
        try:
            executed = node.chain.import_block(block, known=node.pool.get)
        except ChainError as exc:
            self.stats["bad_blocks"] += 1
            self.peers.pop(peer, None)
            log.warning("block %d from %s refused: %s", block.number, peer[:16], exc)
            return False
        except StorageError as exc:  # the disk, not the block (node/runtime/storage_fault.py)
            node.storage_failed(f"cannot store synced block {block.number}: {exc}")
            return False
        except Exception as exc:  # a bug of ours on this block: count it, try another peer
            self.stats["import_errors"] += 1
            node.supervisor.report("sync", exc)
            self.peers.pop(peer, None)
            return False
        self.stats["imported"] += 1
        node.on_synced(block, executed, peer)
        return True
