"""CLI configuration: a wskprops-style file, overridden by command-line flags.

This is the only CLI module that reads the process environment. The CLI is a separate program
from the server, so it does not use ``stockade.config``; it follows ``wsk`` instead: the file
named by ``$WSK_CONFIG_FILE``, else ``~/.wskprops``, holds ``KEY=VALUE`` lines.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import final

__all__ = [
    "DEFAULT_APIHOST",
    "DEFAULT_NAMESPACE",
    "Props",
    "config_file_path",
    "load_props",
    "normalize_apihost",
    "parse_props",
    "read_props_file",
]

# The local development server; a wskprops file or --apihost points elsewhere.
DEFAULT_APIHOST = "http://127.0.0.1:3233"
DEFAULT_NAMESPACE = "_"
PROPS_FILE_NAME = ".wskprops"


@final
@dataclass(frozen=True, slots=True)
class Props:
    """The resolved connection settings of one CLI run."""

    apihost: str = DEFAULT_APIHOST
    # Invariant: never printed; ``__repr__`` hides it so a stray debug print cannot leak it.
    auth: str | None = field(default=None, repr=False)
    namespace: str = DEFAULT_NAMESPACE
    insecure: bool = False
    # Sign each request with HMAC (SIGN=hmac in wskprops, or --sign) instead of sending the key.
    sign: bool = False
    source: Path | None = None

    @property
    def base_url(self) -> str:
        """The API root, ``{apihost}/api/v1``."""
        return f"{normalize_apihost(self.apihost)}/api/v1"


def normalize_apihost(apihost: str) -> str:
    """Honour an explicit scheme; add ``https://`` when there is none (as ``wsk`` does)."""
    host = apihost.strip().rstrip("/")
    if "://" not in host:
        host = f"https://{host}"
    return host


def _unquote(value: str) -> str:
    """Strip one pair of matching surrounding quotes."""
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    return value


def parse_props(text: str) -> dict[str, str]:
    """Parse ``KEY=VALUE`` lines; blank lines and ``#`` comments are skipped, the last key wins."""
    props: dict[str, str] = {}
    for raw_line in text.splitlines():
        line = raw_line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        props[key.strip()] = _unquote(value.strip())
    return props


def read_props_file(path: Path) -> dict[str, str]:
    """Read a props file; a missing file is empty (``wsk`` creates it on first ``property set``)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    return parse_props(text)


def config_file_path(environ: Mapping[str, str]) -> Path:
    """``$WSK_CONFIG_FILE`` when set and non-empty, else ``~/.wskprops``."""
    configured = environ.get("WSK_CONFIG_FILE", "")
    if configured:
        return Path(configured).expanduser()
    home = environ.get("HOME")
    return (Path(home) if home else Path.home()) / PROPS_FILE_NAME


def load_props(
    *,
    apihost: str | None = None,
    auth: str | None = None,
    insecure: bool = False,
    sign: bool = False,
    environ: Mapping[str, str] | None = None,
) -> Props:
    """Resolve settings: flags beat the props file, which beats the defaults.

    Args:
        apihost: ``--apihost``, when given.
        auth: ``--auth``, when given.
        insecure: ``-i/--insecure``; skips TLS verification (not recommended).
        environ: the environment to read; the process environment when omitted.
    """
    env = os.environ if environ is None else environ
    path = config_file_path(env)
    file_props = read_props_file(path)
    return Props(
        apihost=apihost or file_props.get("APIHOST") or DEFAULT_APIHOST,
        auth=auth or file_props.get("AUTH") or None,
        namespace=file_props.get("NAMESPACE") or DEFAULT_NAMESPACE,
        insecure=insecure,
        sign=sign or file_props.get("SIGN", "").lower() == "hmac",
        source=path,
    )
