"""serviceline: the kernel every service of the line is built on."""
