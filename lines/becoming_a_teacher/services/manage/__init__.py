"""Manage teacher training applications: providers' view of Apply's applications, kept as a copy."""
