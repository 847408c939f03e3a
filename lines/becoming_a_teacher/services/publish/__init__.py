"""Publish teacher training courses: owns providers, courses, sites and partnerships."""
