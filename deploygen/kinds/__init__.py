"""App kinds."""
