"""The owner side: versioned records, their change log and feed, pages by position."""
