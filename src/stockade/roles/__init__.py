"""Composition roots of the scale-out roles: ``stockade controller`` and ``stockade invoker``.

Like ``stockade.server`` (standalone), these wire settings, store, runner and network; the logic
lives in ``stockade.cluster`` and the services.
"""

from __future__ import annotations

import os
import re
import socket

from stockade.config import Settings

__all__ = ["process_id"]


def process_id(settings: Settings, role: str) -> str:
    """The id this process goes by in the cluster: ``nats.process_id``, else host name and pid."""
    if settings.nats.process_id:
        return settings.nats.process_id
    host = re.sub(r"[^A-Za-z0-9_-]", "-", socket.gethostname())[:40]
    return f"{role}-{host}-{os.getpid()}"
