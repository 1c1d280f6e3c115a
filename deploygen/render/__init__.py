"""Effective settings -> files on disk: targets, templates, manifest, atomic output."""
