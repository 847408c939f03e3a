"""Get information about schools (GIAS): owns schools, keyed by URN."""
