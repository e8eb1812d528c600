"""Settings: a TOML file plus STOCKADE_* variables, read once into frozen dataclasses.

Nothing else in Stockade reads ``os.environ``: ``load_settings`` is called once at start-up and
the result is passed down. Defaults are the secure ones; opt-outs are named ``allow_*`` or
``insecure_*`` and warned about at start-up.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, final

from stockade.errors import BadRequestError

__all__ = [
    "ApiSettings",
    "AuthSettings",
    "ConsoleSettings",
    "HttpSettings",
    "InvokerSettings",
    "LimitSettings",
    "NatsSettings",
    "ObservabilitySettings",
    "SecuritySettings",
    "Settings",
    "StoreSettings",
    "load_settings",
]

SandboxBackendName = Literal["linux", "insecure_process"]


class SettingsError(BadRequestError):
    """A settings file or variable has a value Stockade cannot use."""

    code = "bad_settings"


@final
@dataclass(frozen=True, slots=True)
class ApiSettings:
    """Where the control plane listens and how it names itself to actions."""

    host: str = "127.0.0.1"
    port: int = 3233
    # The URL actions see as __OW_API_HOST; derived from host/port when empty.
    public_url: str = ""
    max_body_bytes: int = 50 * 1024 * 1024
    # Serve HTTPS with this certificate and key (PEM files); plain HTTP when empty.
    tls_cert_file: str = ""
    tls_key_file: str = ""

    @property
    def base_url(self) -> str:
        """The URL clients and actions use to reach the API."""
        scheme = "https" if self.tls_cert_file else "http"
        return self.public_url or f"{scheme}://{self.host}:{self.port}"


@final
@dataclass(frozen=True, slots=True)
class HttpSettings:
    """The HTTP edge: request framing limits, slow clients, connection caps, strict JSON."""

    # Request line (method, target, version) and header limits: 414 and 431 past them.
    max_request_line_bytes: int = 8192
    max_header_bytes: int = 16 * 1024  # all header lines of one request together
    max_header_field_bytes: int = 8192  # one header line
    max_header_count: int = 100
    # Slow clients: the whole header must arrive within header_timeout_s of the connection (or of
    # the previous response); a body may pause at most body_idle_timeout_s; an idle kept-alive
    # connection is closed after keepalive_timeout_s.
    header_timeout_s: float = 10.0
    body_idle_timeout_s: float = 10.0
    keepalive_timeout_s: float = 5.0
    # Open connections: in total and from one client address (IPv6: one /64); 503 past them.
    max_connections: int = 1024
    max_connections_per_address: int = 64
    # JSON request bodies: nesting depth and values (members and elements) per document.
    max_json_depth: int = 64
    max_json_members: int = 100_000


@final
@dataclass(frozen=True, slots=True)
class StoreSettings:
    """Which database holds state: ``sqlite`` (embedded, default) or a ``postgresql://`` URL."""

    url: str = "sqlite"
    # Activation records are written behind the response in batches of at most this many.
    activation_batch_size: int = 256
    activation_flush_interval_ms: int = 20


@final
@dataclass(frozen=True, slots=True)
class LimitSettings:
    """Per-namespace throttles and entity limits (OpenWhisk deployment defaults)."""

    invocations_per_minute: int = 60
    concurrent_invocations: int = 30
    fires_per_minute: int = 60
    min_action_timeout_ms: int = 100
    max_action_timeout_ms: int = 300_000
    min_action_memory_mb: int = 128
    max_action_memory_mb: int = 512
    max_action_logs_mb: int = 10
    max_action_concurrency: int = 1
    max_code_bytes: int = 48 * 1024 * 1024
    max_parameters_bytes: int = 1024 * 1024
    max_payload_bytes: int = 1024 * 1024
    max_result_bytes: int = 1024 * 1024
    max_sequence_length: int = 50


@final
@dataclass(frozen=True, slots=True)
class InvokerSettings:
    """How actions are run: sandbox backend, warm pool and capacity."""

    # "linux" confines each action in namespaces, seccomp and Landlock; "insecure_process"
    # runs actions as plain child processes of the platform (not recommended).
    sandbox_backend: SandboxBackendName = "linux"
    # Most sandboxes alive at once (warm and busy) on this invoker.
    max_sandboxes: int = 64
    idle_ttl_s: float = 600.0
    # A warm sandbox is recycled after this many runs...
    max_runs_per_sandbox: int = 10_000
    # ...or once its memory peak reaches this share of its limit (where the mode can measure it).
    recycle_memory_percent: int = 90
    # How long a blocking invoke waits before answering 202 (the OpenWhisk 60 s).
    blocking_wait_ms: int = 60_000
    # Sandboxes being started at once; more cold starts queue (a load step must not start
    # dozens of sandboxes that compete with the API for the CPU).
    max_concurrent_starts: int = 4
    # With no idle sandbox of an action but busy ones, a run waits up to this long for one of
    # them (same namespace, action and version only) when that is expected sooner than a cold start.
    warm_wait_ms: int = 200
    # Linux backend: stem cells per runtime (Python, Node.js): sandboxes started ahead of time, up
    # to the loaded runtime, for the default limits without egress; an action's first run attaches
    # its code to one (docs/design/sandbox.md). 0 disables them.
    stem_cells: int = 1


@final
@dataclass(frozen=True, slots=True)
class AuthSettings:
    """Authentication beyond API keys, and brute-force protection."""

    # A JSON file of trusted JWT issuers (see security/jwt_auth.py); none when empty.
    jwt_issuers_file: str = ""
    # Failed logins of one (subject, address) pair within failure_window_s: slowed after this many...
    slow_after_failures: int = 5
    # ...and that pair refused for lockout_s after this many (other addresses keep working).
    lockout_after_failures: int = 20
    # Failed logins from one address, whatever the subject, before the address is refused.
    source_lockout_after_failures: int = 100
    failure_window_s: int = 60
    lockout_s: int = 300
    # Comma-separated addresses or CIDRs of reverse proxies whose X-Forwarded-For is believed;
    # empty (the default): the client address is always the TCP peer.
    trusted_proxies: str = ""

    def trusted_proxy_networks(self) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        """The parsed ``trusted_proxies`` (ValueError for a malformed entry)."""
        return tuple(
            ipaddress.ip_network(item.strip(), strict=False) for item in self.trusted_proxies.split(",") if item.strip()
        )


@final
@dataclass(frozen=True, slots=True)
class SecuritySettings:
    """Where the master key comes from: a 0600 keyring file, or one base64 key in a variable."""

    # Defaults to <data_dir>/master.key, created on first start.
    master_key_file: str = ""
    # A base64 master key (e.g. from STOCKADE_SECURITY__MASTER_KEY); overrides the file.
    master_key: str = field(default="", repr=False)


_SEVERITIES = ("critical", "high", "medium", "low", "info")


@final
@dataclass(frozen=True, slots=True)
class ScanSettings:
    """The deploy gate's platform defaults; a namespace may have its own policy in the store."""

    # Comma-separated severities: findings at these block a deploy, at those only warn.
    block_severities: str = "critical,high"
    warn_severities: str = "medium,low"
    # The gate runs on every create/update of a code action; turning it off is not recommended.
    insecure_disable_gate: bool = False
    # Advisories: where `stockade advisories sync` downloads OSV's per-ecosystem exports
    # ({url}/{ecosystem}/all.zip, the public OSV bucket by default), which ecosystems, and the age
    # after which the gate reports the data as stale (a warning; a namespace policy may block).
    advisories_url: str = "https://osv-vulnerabilities.storage.googleapis.com"
    advisories_ecosystems: str = "PyPI,npm"
    advisories_max_age_days: int = 7
    # Sync automatically every N hours in the background (0: only `stockade advisories sync`).
    advisories_sync_interval_h: float = 0.0
    # The largest export accepted (the PyPI export is ~40 MiB zipped).
    advisories_max_download_mb: int = 512


@final
@dataclass(frozen=True, slots=True)
class ObservabilitySettings:
    """Metrics, security events, anomaly detection, alerts and traces (docs/design/monitoring.md)."""

    # A bearer token that may read /metrics (for a Prometheus scraper); empty: only callers of
    # the platform's default namespace may. Compared in constant time.
    metrics_token: str = field(default="", repr=False)
    # Per-action anomaly detectors run after each activation is recorded, off the response path.
    anomaly_detection: bool = True
    # A JSON file of suspicious log patterns replacing the shipped defaults; empty: the defaults.
    log_patterns_file: str = ""
    # A JSON file of alert rules replacing the shipped platform defaults; empty: the defaults.
    alert_rules_file: str = ""
    # Stored events per (type, namespace, subject) and minute; more are counted, not stored.
    events_per_minute: int = 120
    # Webhook delivery: attempts before a dead-letter record, and the per-attempt timeout.
    webhook_max_attempts: int = 5
    webhook_timeout_s: float = 5.0
    webhook_backoff_s: float = 1.0
    # Webhooks to loopback, private and link-local addresses (not recommended: lets namespace
    # users reach the platform's internal network).
    allow_private_webhook_hosts: bool = False
    # Webhooks over plain http:// (not recommended: alerts travel unencrypted).
    allow_plain_http_webhooks: bool = False
    # OpenTelemetry spans of invocations (API → invoke → invoker); off by default.
    tracing_enabled: bool = False


@final
@dataclass(frozen=True, slots=True)
class ConsoleSettings:
    """The web console at /console (docs/design/console.md)."""

    # Serve /console from this controller.
    enabled: bool = True
    # Lifetime of a console session (cookie and server-side record), from sign-in; never
    # longer than the JWT it was exchanged for.
    session_ttl_s: int = 900


@final
@dataclass(frozen=True, slots=True)
class NatsSettings:
    """Scale-out (docs/design/scale-out.md): where controllers and invokers meet; unused standalone."""

    # nats://host:port of the NATS server with JetStream; empty: standalone only.
    url: str = ""
    # This process's id in the cluster (invoker consumer and heartbeat key, controller reply
    # subject); empty: the host name and process id.
    process_id: str = ""
    # Concurrent runs an invoker takes from the queue (its slots).
    invoker_slots: int = 16
    # Invoker heartbeat period; an invoker is dead once its key is older than dead_after_s.
    heartbeat_s: float = 1.0
    dead_after_s: float = 4.0
    # How long past an activation's deadline a controller waits for its result before it
    # records a whisk internal error (queueing time and the result's way back).
    result_grace_ms: int = 15_000


@final
@dataclass(frozen=True, slots=True)
class Settings:
    """Everything Stockade reads from its environment, once."""

    data_dir: Path = field(default_factory=lambda: Path.home() / ".stockade")
    default_namespace: str = "guest"
    log_level: str = "info"
    api: ApiSettings = field(default_factory=ApiSettings)
    http: HttpSettings = field(default_factory=HttpSettings)
    store: StoreSettings = field(default_factory=StoreSettings)
    limits: LimitSettings = field(default_factory=LimitSettings)
    invoker: InvokerSettings = field(default_factory=InvokerSettings)
    security: SecuritySettings = field(default_factory=SecuritySettings)
    auth: AuthSettings = field(default_factory=AuthSettings)
    scan: ScanSettings = field(default_factory=ScanSettings)
    observability: ObservabilitySettings = field(default_factory=ObservabilitySettings)
    console: ConsoleSettings = field(default_factory=ConsoleSettings)
    nats: NatsSettings = field(default_factory=NatsSettings)

    @property
    def master_key_path(self) -> Path:
        """The keyring file."""
        return Path(self.security.master_key_file) if self.security.master_key_file else self.data_dir / "master.key"

    def insecure_options(self) -> list[str]:
        """Opt-outs in force, for the start-up warning."""
        found = []
        if self.invoker.sandbox_backend == "insecure_process":
            found.append("invoker.sandbox_backend = insecure_process: actions run unconfined")
        if self.scan.insecure_disable_gate:
            found.append("scan.insecure_disable_gate = true: deploys are not scanned")
        if self.observability.allow_private_webhook_hosts:
            found.append("observability.allow_private_webhook_hosts = true: webhooks may reach internal addresses")
        if self.observability.allow_plain_http_webhooks:
            found.append("observability.allow_plain_http_webhooks = true: alerts may travel unencrypted")
        return found


_SECTIONS: dict[str, type[Any]] = {
    "api": ApiSettings,
    "http": HttpSettings,
    "store": StoreSettings,
    "limits": LimitSettings,
    "invoker": InvokerSettings,
    "security": SecuritySettings,
    "auth": AuthSettings,
    "scan": ScanSettings,
    "observability": ObservabilitySettings,
    "console": ConsoleSettings,
    "nats": NatsSettings,
}


def _coerce(value: Any, current: Any, name: str) -> Any:
    """Convert a TOML or environment value to the type of the field's default."""
    try:
        if isinstance(current, bool):
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in {"1", "true", "yes", "on"}:
                return True
            if text in {"0", "false", "no", "off"}:
                return False
            raise ValueError(value)
        if isinstance(current, int):
            return int(value)
        if isinstance(current, float):
            return float(value)
        if isinstance(current, Path):
            return Path(str(value)).expanduser()
        return str(value)
    except (TypeError, ValueError):
        raise SettingsError(f"setting {name} has an invalid value: {value!r}") from None


def _apply(obj: Any, values: Mapping[str, Any], prefix: str) -> Any:
    changes: dict[str, Any] = {}
    known = {f.name for f in dataclasses.fields(obj)}
    for key, value in values.items():
        if key not in known:
            raise SettingsError(f"unknown setting {prefix}{key}")
        current = getattr(obj, key)
        if key in _SECTIONS:
            if not isinstance(value, Mapping):
                raise SettingsError(f"setting {prefix}{key} must be a table")
            changes[key] = _apply(current, value, f"{prefix}{key}.")
        else:
            changes[key] = _coerce(value, current, f"{prefix}{key}")
    return dataclasses.replace(obj, **changes)


def _env_values(env: Mapping[str, str]) -> dict[str, Any]:
    """STOCKADE_API__PORT=8080 → {"api": {"port": "8080"}}; STOCKADE_DATA_DIR → {"data_dir": ...}."""
    out: dict[str, Any] = {}
    for key, value in env.items():
        # STOCKADE_TEST_* is reserved for the test suite and never configures the platform.
        if not key.startswith("STOCKADE_") or key == "STOCKADE_CONFIG" or key.startswith("STOCKADE_TEST_"):
            continue
        parts = key[len("STOCKADE_") :].lower().split("__")
        target = out
        for part in parts[:-1]:
            target = target.setdefault(part, {})
        target[parts[-1]] = value
    return out


def load_settings(path: Path | None = None, env: Mapping[str, str] | None = None) -> Settings:
    """Read settings from ``path`` (or $STOCKADE_CONFIG) and STOCKADE_* variables; env wins."""
    environ = os.environ if env is None else env
    settings = Settings()
    file_path = path or (Path(environ["STOCKADE_CONFIG"]) if environ.get("STOCKADE_CONFIG") else None)
    if file_path is not None:
        try:
            data = tomllib.loads(file_path.read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise SettingsError(f"cannot read settings file {file_path}: {exc}") from None
        settings = _apply(settings, data, "")
    settings = _apply(settings, _env_values(environ), "STOCKADE_")
    assert isinstance(settings, Settings)
    _validate(settings)
    return settings


def _validate(settings: Settings) -> None:
    if settings.invoker.sandbox_backend not in ("linux", "insecure_process"):
        raise SettingsError(f"unknown sandbox backend {settings.invoker.sandbox_backend!r}")
    if not (0 < settings.api.port < 65536):
        raise SettingsError(f"api.port out of range: {settings.api.port}")
    if settings.store.url != "sqlite" and not settings.store.url.startswith(("postgresql://", "postgres://")):
        raise SettingsError("store.url must be 'sqlite' or a postgresql:// URL")
    for name in ("block_severities", "warn_severities"):
        for item in getattr(settings.scan, name).split(","):
            if item.strip() and item.strip().lower() not in _SEVERITIES:
                raise SettingsError(f"scan.{name}: unknown severity {item.strip()!r} (use {', '.join(_SEVERITIES)})")
    if settings.scan.advisories_sync_interval_h < 0:
        raise SettingsError("scan.advisories_sync_interval_h must not be negative")
    if settings.scan.advisories_max_age_days < 1 or settings.scan.advisories_max_download_mb < 1:
        raise SettingsError("scan.advisories_max_age_days and advisories_max_download_mb must be at least 1")
    url = settings.scan.advisories_url
    loopback = url.startswith(("http://127.0.0.1", "http://localhost", "http://[::1]"))
    if not (url.startswith("https://") or loopback):
        raise SettingsError("scan.advisories_url must be an https:// URL (plain http only on loopback)")
    for ecosystem in settings.scan.advisories_ecosystems.split(","):
        if ecosystem.strip() not in ("PyPI", "npm"):
            raise SettingsError(f"scan.advisories_ecosystems: unsupported ecosystem {ecosystem.strip()!r} (PyPI, npm)")
    http = settings.http
    if min(http.max_request_line_bytes, http.max_header_bytes, http.max_header_field_bytes) < 256:
        raise SettingsError("http.max_request_line_bytes and the header byte limits must be at least 256")
    if min(http.max_header_count, http.max_connections, http.max_connections_per_address) < 1:
        raise SettingsError("http.max_header_count and the connection caps must be at least 1")
    if min(http.header_timeout_s, http.body_idle_timeout_s, http.keepalive_timeout_s) <= 0:
        raise SettingsError("http timeouts must be positive")
    if http.max_json_depth < 1 or http.max_json_members < 1:
        raise SettingsError("http.max_json_depth and http.max_json_members must be at least 1")
    if settings.invoker.max_sandboxes < 1:
        raise SettingsError("invoker.max_sandboxes must be at least 1")
    if settings.invoker.max_concurrent_starts < 1 or settings.invoker.warm_wait_ms < 0:
        raise SettingsError("invoker.max_concurrent_starts must be at least 1 and warm_wait_ms not negative")
    if not 0 <= settings.invoker.stem_cells <= 16:
        raise SettingsError("invoker.stem_cells must be between 0 and 16")
    auth = settings.auth
    if min(auth.lockout_after_failures, auth.source_lockout_after_failures, auth.failure_window_s, auth.lockout_s) < 1:
        raise SettingsError("auth lockout thresholds, failure_window_s and lockout_s must be at least 1")
    if auth.slow_after_failures < 0:
        raise SettingsError("auth.slow_after_failures must not be negative")
    try:
        auth.trusted_proxy_networks()
    except ValueError as exc:
        raise SettingsError(f"auth.trusted_proxies: {exc}") from None
    if settings.observability.webhook_max_attempts < 1 or settings.observability.events_per_minute < 1:
        raise SettingsError("observability.webhook_max_attempts and events_per_minute must be at least 1")
