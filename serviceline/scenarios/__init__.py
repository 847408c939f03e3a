"""Scenarios: a small YAML story told on the simulated clock, checked as it goes."""
