"""The consumer side: reading an owner and keeping a copy of its records."""
