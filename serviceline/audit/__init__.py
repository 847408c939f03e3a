"""Audits of a running line: drift, checksums, declared comparisons, lag and traces."""
