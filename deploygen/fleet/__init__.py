"""Fleets: which sites run on which host, and what deploygen must know of each host."""
