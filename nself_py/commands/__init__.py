"""Commands: one function per user command, composing the stages; no printing."""
