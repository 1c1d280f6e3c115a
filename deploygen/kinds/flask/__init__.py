"""The Flask kind."""
