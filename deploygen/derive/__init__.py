"""Site model -> effective settings of every layer, written or derived, and why."""
