"""Findings and explanations out: text, JSON, GitHub."""
