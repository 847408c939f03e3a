"""Tribal SITS: a student record system universities run, a client of the line."""
