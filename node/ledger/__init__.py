"""What every node computes identically: transactions, blocks, genesis, the executor,
the chain and the precompiles. Deterministic and free of asyncio: it imports nothing of
node.runtime, node.transport or node.rpc (tests/test_layers.py holds that rule)."""
