"""Lines written as YAML files, run by the same kernel as any other."""
