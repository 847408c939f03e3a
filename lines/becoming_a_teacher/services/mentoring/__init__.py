"""What Manage school placements and Claim funding for mentor training share: one real app."""
