"""A lossy variant of the test Cluster: drop chosen deliveries."""

from __future__ import annotations

from collections.abc import Callable

from consensus import Broadcast, MessageReceived, Send
from consensus.messages import Message
from tests.consensus.test_replica import Cluster

Drop = Callable[[int, int, Message], bool]
"""``drop(src, dst, message) -> bool``: True to lose this delivery."""


class LossyCluster(Cluster):
    """Like Cluster, but ``self.drop`` may lose any message on any link."""

    def __init__(self, n: int, down: tuple[int, ...] = ()) -> None:
        super().__init__(n, down)
        self.drop: Drop = lambda src, dst, msg: False

    def perform(self, i: int, action: object) -> None:
        if isinstance(action, Broadcast):
            data = action.message.encode()
            for j in range(self.n):
                if j != i and not self.drop(i, j, action.message):
                    self.queue.append((j, MessageReceived(data, i)))
        elif isinstance(action, Send):
            if not self.drop(i, action.to, action.message):
                self.queue.append((action.to, MessageReceived(action.message.encode(), i)))
        else:
            super().perform(i, action)
