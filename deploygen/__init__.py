"""deploygen: one site file, every layer's settings, aligned and proven."""

__version__ = "0.1.0"
