"""Site files in: YAML with positions, the strict model, its field types."""
