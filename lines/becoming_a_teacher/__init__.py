"""The Department for Education's "Becoming a teacher" service line."""
