"""What the ``ledgerlab`` chain verbs do, without the argument parsing.

``layout`` makes and reads a chain directory (like FISCO BCOS's ``build_chain.sh``
output); ``accounts`` keeps client keys; ``procs`` starts, checks and stops node
processes by pid; ``status`` asks running nodes how they are and renders the table.
The verbs in :mod:`scripts.commands` and the demo call these; so can tests.
"""

from scripts.launcher.layout import Chain, ChainError, NodeEntry, init_chain, load_chain

__all__ = ["Chain", "ChainError", "NodeEntry", "init_chain", "load_chain"]
