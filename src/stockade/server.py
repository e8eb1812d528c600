"""``python -m stockade.server``: the standalone platform (what ``stockade up`` runs).

The composition root: reads settings once, picks the sandbox backend, wires store, invoker and
API, bootstraps the default namespace on first start, and serves on loopback by default.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from pathlib import Path

import structlog

from stockade.api.app import Platform, create_app, default_store
from stockade.config import Settings, load_settings
from stockade.console import console_routes
from stockade.domain import SystemClock
from stockade.edge.server import serve as serve_http
from stockade.errors import PlatformError
from stockade.gateway import gateway_routes
from stockade.invoker import EgressProxy, Invoker
from stockade.observability import configure_logging
from stockade.observability.tracing import Tracer, build_tracer
from stockade.sandbox import BackendReport, SandboxBackend
from stockade.sandbox.insecure_process import InsecureProcessBackend
from stockade.security.tls import ensure_self_signed
from stockade.services import Services
from stockade.services.runner import ActionRunner

__all__ = ["build_backend", "main", "parser", "prepare", "serve", "start_backend"]

log = structlog.get_logger("stockade.server")


def build_backend(settings: Settings) -> SandboxBackend:
    """The sandbox backend the settings name."""
    if settings.invoker.sandbox_backend == "insecure_process":
        return InsecureProcessBackend()
    from stockade.sandbox.linux import LinuxSandboxBackend

    return LinuxSandboxBackend.from_settings(settings)


def _parse_args(argv: Sequence[str]) -> argparse.Namespace:
    return parser().parse_args(list(argv))


def parser(
    prog: str = "stockade up", description: str = "Start the Stockade platform (standalone)."
) -> argparse.ArgumentParser:
    """The command line of ``stockade up`` (and, with more options, of ``stockade controller``)."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--config", type=Path, help="settings file (TOML)")
    parser.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port to listen on (default 3233)")
    parser.add_argument("--data-dir", type=Path, help="where state lives (default ~/.stockade)")
    parser.add_argument("--store", help="'sqlite' (default) or a postgresql:// URL")
    parser.add_argument(
        "--sandbox",
        choices=["linux", "insecure_process"],
        help="sandbox backend: linux (default) or insecure_process (not recommended: no isolation)",
    )
    parser.add_argument("--namespace", help="name of the default namespace created on first start")
    parser.add_argument("--tls-cert", type=Path, help="serve HTTPS with this certificate (PEM)")
    parser.add_argument("--tls-key", type=Path, help="private key of --tls-cert (PEM)")
    parser.add_argument(
        "--self-signed",
        action="store_true",
        help="serve HTTPS with a generated self-signed certificate (development only)",
    )
    parser.add_argument("--log-format", choices=["json", "console"], default="console")
    parser.add_argument("--wskprops", type=Path, help="where to write the credentials file on first start")
    return parser


def _settings_from(args: argparse.Namespace) -> Settings:
    env = dict(os.environ)
    if getattr(args, "nats", None):
        env["STOCKADE_NATS__URL"] = str(args.nats)
    if getattr(args, "id", None):
        env["STOCKADE_NATS__PROCESS_ID"] = str(args.id)
    overrides = {
        "STOCKADE_API__HOST": args.host,
        "STOCKADE_API__PORT": args.port,
        "STOCKADE_DATA_DIR": args.data_dir,
        "STOCKADE_STORE__URL": args.store,
        "STOCKADE_INVOKER__SANDBOX_BACKEND": args.sandbox,
        "STOCKADE_DEFAULT_NAMESPACE": args.namespace,
        "STOCKADE_API__TLS_CERT_FILE": args.tls_cert,
        "STOCKADE_API__TLS_KEY_FILE": args.tls_key,
    }
    env.update({k: str(v) for k, v in overrides.items() if v is not None})
    return load_settings(args.config, env)


def write_wskprops(path: Path, api_host: str, token: str, namespace: str) -> None:
    """Write a wskprops file readable only by its owner."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(f"APIHOST={api_host}\nAUTH={token}\nNAMESPACE={namespace}\n")


def _print_report(settings: Settings, report: BackendReport) -> None:
    print(f"stockade: sandbox backend {report.name} ({report.mode})", file=sys.stderr)
    for item in report.enforced:
        print(f"  enforced: {item}", file=sys.stderr)
    for item in report.not_enforced:
        print(f"  NOT enforced in this mode: {item}", file=sys.stderr)
    for item in (*report.warnings, *settings.insecure_options()):
        print(f"  WARNING: {item}", file=sys.stderr)


def prepare(args: argparse.Namespace) -> Settings | None:
    """Settings, logging, data directory and TLS from the command line; None (reported) when unusable."""
    try:
        settings = _settings_from(args)
    except PlatformError as exc:
        print(f"stockade: {exc.message}", file=sys.stderr)
        return None
    configure_logging(settings.log_level, args.log_format)
    settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    if args.self_signed:
        cert, key = ensure_self_signed(settings.data_dir / "tls", ["localhost", settings.api.host])
        settings = replace(settings, api=replace(settings.api, tls_cert_file=str(cert), tls_key_file=str(key)))
        print(
            f"stockade: WARNING: serving HTTPS with a self-signed certificate ({cert}); development only",
            file=sys.stderr,
        )
    if bool(settings.api.tls_cert_file) != bool(settings.api.tls_key_file):
        print("stockade: --tls-cert and --tls-key go together", file=sys.stderr)
        return None
    return settings


def start_backend(settings: Settings) -> SandboxBackend | None:
    """The sandbox backend, reported; None (reported) when it cannot run here."""
    backend = build_backend(settings)
    report = backend.report()
    _print_report(settings, report)
    if report.mode == "unavailable":
        # Secure by default: no silent fallback to running actions unconfined.
        print(
            "stockade: the Linux sandbox cannot run on this host (see above); refusing to start.\n"
            "  Fix the host (user namespaces, /proc/sys/kernel/unprivileged_userns_clone), run as root,\n"
            "  or, for development with trusted code only, start with --sandbox insecure_process (not recommended).",
            file=sys.stderr,
        )
        return None
    return backend


def main(argv: Sequence[str] | None = None) -> int:
    """Run the standalone platform until interrupted."""
    args = _parse_args(sys.argv[1:] if argv is None else argv)
    settings = prepare(args)
    if settings is None:
        return 2
    backend = start_backend(settings)
    if backend is None:
        return 2
    # One tracer for the API, the services and the invoker (spans to stderr); None when tracing is off.
    tracer = build_tracer()[0] if settings.observability.tracing_enabled else None
    # The egress allowlist proxy (one per process); only real sandboxes have a network to guard.
    egress = EgressProxy() if settings.invoker.sandbox_backend != "insecure_process" else None
    invoker = Invoker.from_settings(settings, backend, tracer=tracer, egress=egress)

    async def wire_egress_events(services: Services) -> None:
        if egress is not None:
            egress.set_event_sink(services.monitoring.events)

    async def close_invoker() -> None:
        await invoker.close()
        if egress is not None:
            await egress.close()
        await backend.close()

    return serve(settings, args, invoker, tracer=tracer, on_open=[wire_egress_events], on_close=[close_invoker])


def serve(
    settings: Settings,
    args: argparse.Namespace,
    runner: ActionRunner,
    *,
    tracer: Tracer | None = None,
    on_open: Sequence[Callable[[Services], Awaitable[None]]] = (),
    on_close: Sequence[Callable[[], Awaitable[None]]] = (),
) -> int:
    """Serve the API over ``runner`` (the local invoker, or a controller's dispatcher) until interrupted."""
    wskprops_path = args.wskprops or settings.data_dir / "wskprops"

    async def install_catalog(services: Services) -> None:
        # The system namespace and its catalog: created on first start, updated when Stockade's changed.
        written = await services.system.install()
        if written:
            print(f"stockade: system catalog /whisk.system: wrote {', '.join(written)}", file=sys.stderr)

    async def bootstrap(services: Services) -> None:
        result = await services.namespaces.bootstrap(settings.default_namespace)
        if result.key is None:
            print(f"stockade: namespace {result.namespace!r} ready; credentials in {wskprops_path}", file=sys.stderr)
            return
        write_wskprops(wskprops_path, settings.api.base_url, result.key.token, result.namespace)
        home_props = Path.home() / ".wskprops"
        if args.wskprops is None and not home_props.exists():
            write_wskprops(home_props, settings.api.base_url, result.key.token, result.namespace)
        print(
            f"stockade: created namespace {result.namespace!r}\n"
            f"  AUTH={result.key.token}\n"
            f"  (shown once; written to {wskprops_path} with mode 0600)\n"
            f"  use it with: export WSK_CONFIG_FILE={wskprops_path}",
            file=sys.stderr,
        )

    async def advisories_status(services: Services) -> None:
        # Say at start when the dependency check has nothing (or old data) to check against.
        if settings.scan.insecure_disable_gate:
            return
        for ecosystem, info in (await services.advisory_sync.status()).items():
            if info["state"] == "missing":
                print(
                    f"stockade: WARNING: no {ecosystem} advisories loaded: the deploy gate cannot check {ecosystem} "
                    "dependencies (each deploy gets an advisories.unavailable finding); run `stockade advisories sync`",
                    file=sys.stderr,
                )
            elif info["state"] == "stale":
                print(
                    f"stockade: WARNING: {ecosystem} advisories are older than {settings.scan.advisories_max_age_days} "
                    "day(s): run `stockade advisories sync`",
                    file=sys.stderr,
                )

    platform = Platform(
        settings=settings,
        store=default_store(settings),
        runner=runner,
        clock=SystemClock(),
        on_open=[bootstrap, install_catalog, advisories_status, *on_open],
        on_close=list(on_close),
        tracer=tracer,
        # The web console (same origin as the API) and the API gateway, next to the API's routes.
        routes=[*(console_routes() if settings.console.enabled else []), *gateway_routes()],
    )
    app = create_app(platform)
    print(f"stockade: serving the OpenWhisk API on {settings.api.base_url}", file=sys.stderr)
    serve_http(app, settings)
    return 0


if __name__ == "__main__":
    sys.exit(main())
