"""Manage school placements: owns placements, school partnerships and its own mentors."""
