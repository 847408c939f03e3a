"""Thesis Cloud: a student record system universities run, a client of the line."""
