"""Studies: a workload run through a span of the line, measured and reported."""
