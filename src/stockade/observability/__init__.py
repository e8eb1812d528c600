"""Logs, metrics and audit: what the platform tells operators."""

from stockade.observability.logging import configure_logging

__all__ = ["configure_logging"]
