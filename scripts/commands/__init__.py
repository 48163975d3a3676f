"""One module per verb group; each defines ``register(subparsers)`` (see scripts.cli)."""
