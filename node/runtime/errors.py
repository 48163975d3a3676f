"""Errors of the node runtime that callers handle (one line each)."""


class NodeError(Exception):
    """The node cannot start with this configuration (printed as one line)."""
