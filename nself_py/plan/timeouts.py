"""Timeouts an online (lock-friendly) migration sets before its DDL.

A module of its own so that `db run`'s options and help carry the default without the planner.
"""

LOCK_TIMEOUT = "5s"
"""`SET lock_timeout` first: a statement that waits longer for its lock fails instead of
queueing every query behind it."""
