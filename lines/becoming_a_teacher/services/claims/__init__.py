"""Claim funding for mentor training: owns claims and its own mentors, paid by school region."""
