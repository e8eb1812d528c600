"""Composition roots of the scale-out roles: ``stockade controller`` and ``stockade invoker``.

Like ``stockade.server`` (standalone), these wire settings, store, runner and network; the logic
lives in ``stockade.cluster`` and the services.
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import sys

from stockade import server
from stockade.config import Settings

__all__ = ["process_id", "role_settings"]


def role_settings(args: argparse.Namespace, role: str) -> Settings | None:
    """The settings of a scale-out role (``server.prepare``), refused (reported) without ``nats.url``."""
    settings = server.prepare(args)
    if settings is None:
        return None
    if not settings.nats.url:
        print(f"stockade {role}: nats.url (or --nats) is required", file=sys.stderr)
        return None
    if settings.store.url == "sqlite":
        print(
            f"stockade {role}: WARNING: store.url is sqlite; controllers and invokers on other hosts need "
            "PostgreSQL (store.url = postgresql://...)",
            file=sys.stderr,
        )
    return settings


def process_id(settings: Settings, role: str) -> str:
    """The id this process goes by in the cluster: ``nats.process_id``, else host name and pid."""
    if settings.nats.process_id:
        return settings.nats.process_id
    host = re.sub(r"[^A-Za-z0-9_-]", "-", socket.gethostname())[:40]
    return f"{role}-{host}-{os.getpid()}"
