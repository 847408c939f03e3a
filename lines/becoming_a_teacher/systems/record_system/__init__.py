"""What the four student record systems share; each differs from the others in settings only."""
