"""A line's model: its topology, which line runs, who may call what, shared identifiers."""
