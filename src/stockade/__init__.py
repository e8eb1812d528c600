"""Stockade: a self-hostable, OpenWhisk-compatible serverless platform, secure by default."""

__version__ = "0.1.0"
__all__ = ["__version__"]
