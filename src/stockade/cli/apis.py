"""``stockade api``: routes of the API gateway (create, list, delete) with their protections.

Routes are served at ``{APIHOST}/api/gw/{namespace}{BASE_PATH}{REL_PATH}``. Every option maps
to a field of ``/api/v1/namespaces/{ns}/apis`` (see docs/design/gateway.md).
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from stockade.cli.client import CliError, Json
from stockade.cli.context import Context, Subparsers, add_command, add_group
from stockade.cli.names import segment
from stockade.cli.output import records

__all__ = ["parse_rate", "register", "route_body"]

_AUTH = {"none": "none", "key": "api_key", "jwt": "jwt"}
_RESPONSE_TYPES = ("json", "http", "html", "text", "svg")
_VERBS = ("GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS")
_MAX_SCHEMA_FILE_BYTES = 64 * 1024


def _path(ctx: Context) -> str:
    return f"namespaces/{segment(ctx.namespace)}/apis"


def parse_rate(text: str) -> float:
    """``10/s``, ``10`` or ``600/m`` → requests per second."""
    number, _, unit = text.strip().partition("/")
    per = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0}.get(unit.strip().lower())
    try:
        value = float(number)
    except ValueError:
        value = math.nan
    if per is None or not math.isfinite(value) or value <= 0:
        raise CliError(f"a rate looks like 10/s, 600/m or 5 (got {text!r})", exit_code=2)
    return value / per


def _bucket(rate: str | None, burst: int | None, what: str) -> Json:
    if rate is None:
        if burst is not None:
            raise CliError(f"--{what}burst needs --{what}rate", exit_code=2)
        return None
    per_s = parse_rate(rate)
    return {"capacity": burst if burst is not None else max(1, math.ceil(per_s)), "refillPerSecond": per_s}


def _schema(file: str | None) -> Json:
    if file is None:
        return None
    try:
        data = Path(file).read_bytes()[: _MAX_SCHEMA_FILE_BYTES + 1]
    except OSError as exc:
        raise CliError(f"cannot read {file}: {exc.strerror}", exit_code=2) from None
    if len(data) > _MAX_SCHEMA_FILE_BYTES:
        raise CliError(f"{file} is larger than {_MAX_SCHEMA_FILE_BYTES} bytes", exit_code=2)
    try:
        schema: Json = json.loads(data)
    except ValueError as exc:
        raise CliError(f"{file} is not JSON: {exc}", exit_code=2) from None
    return schema


def route_body(ctx: Context, args: argparse.Namespace) -> dict[str, Json]:
    """The PUT body of ``api create``."""
    if args.scopes and args.client_auth != "jwt":
        raise CliError("--scope needs --client-auth jwt", exit_code=2)
    body: dict[str, Json] = {
        "basePath": args.base_path,
        "relPath": args.rel_path,
        "verb": args.verb.upper(),
        "action": ctx.action_name(args.action).fqn,
        "responseType": args.response_type,
        "auth": _AUTH[args.client_auth],
        "scopes": list(args.scopes or []),
        "corsOrigins": list(args.cors or []),
    }
    if args.name:
        body["apiName"] = args.name
    schema = _schema(args.schema)
    if schema is not None:
        body["requestSchema"] = schema
    if args.max_body is not None:
        body["maxBodyBytes"] = args.max_body
    client_rate = _bucket(args.rate, args.burst, "")
    if client_rate is not None:
        body["clientRateLimit"] = client_rate
    route_rate = _bucket(args.route_rate, args.route_burst, "route-")
    if route_rate is not None:
        body["routeRateLimit"] = route_rate
    if args.quota_day is not None or args.quota_month is not None:
        body["quota"] = {"perDay": args.quota_day, "perMonth": args.quota_month}
    return body


def _create(ctx: Context, args: argparse.Namespace) -> int:
    """``api create``."""
    reply = ctx.client.put(_path(ctx), route_body(ctx, args), overwrite=bool(args.overwrite))
    url = reply.data.get("url") if isinstance(reply.data, dict) else None
    ctx.out.result(f"{'updated' if args.overwrite else 'created'} route {args.verb.upper()} {url}", reply)
    return 0


def _limits(route: dict[str, Json]) -> str:
    parts = []
    for key, label in (("clientRateLimit", "client"), ("routeRateLimit", "route")):
        bucket = route.get(key)
        if isinstance(bucket, dict):
            parts.append(f"{label} {bucket.get('refillPerSecond')}/s burst {bucket.get('capacity')}")
    quota = route.get("quota")
    if isinstance(quota, dict):
        parts += [f"{v}/{unit}" for unit, v in (("day", quota.get("perDay")), ("month", quota.get("perMonth"))) if v]
    return ", ".join(parts) or "-"


def _list(ctx: Context, args: argparse.Namespace) -> int:
    """``api list``."""
    reply = ctx.client.get(_path(ctx), {"basepath": args.base_path} if args.base_path else None)
    if ctx.out.json_mode:
        ctx.out.raw(reply)
        return 0
    rows = [
        [
            str(r.get("verb")),
            str(r.get("url")),
            str(r.get("action")),
            str(r.get("auth")),
            _limits(r),
        ]
        for r in records(reply.data)
    ]
    ctx.out.table(["VERB", "URL", "ACTION", "AUTH", "LIMITS"], rows)
    return 0


def _delete(ctx: Context, args: argparse.Namespace) -> int:
    """``api delete``."""
    params: dict[str, str | int] = {"basepath": args.base_path}
    if args.rel_path:
        params["relpath"] = args.rel_path
    if args.verb:
        params["operation"] = args.verb.upper()
    reply = ctx.client.delete(_path(ctx), params)
    count = reply.data.get("deleted") if isinstance(reply.data, dict) else "?"
    ctx.out.result(f"deleted {count} route(s)", reply)
    return 0


def register(groups: Subparsers[argparse.ArgumentParser]) -> None:
    """Add the ``api`` command group."""
    verbs = add_group(groups, "api", "expose actions through the API gateway (routes, auth, limits, quotas)")
    create = add_command(verbs, "create", _create, "route BASE_PATH + REL_PATH with VERB to ACTION")
    create.add_argument("base_path", metavar="BASE_PATH", help="API base path, e.g. /shop")
    create.add_argument("rel_path", metavar="REL_PATH", help="path under it; {name} segments are parameters")
    create.add_argument("verb", metavar="VERB", type=str.upper, choices=_VERBS, help="HTTP method")
    create.add_argument("action", metavar="ACTION", help="the action to run (in your namespace)")
    create.add_argument("--response-type", choices=_RESPONSE_TYPES, default="json", help="result mapping (json)")
    create.add_argument("--name", metavar="API_NAME", help="a name for the API")
    # Not --auth: that is every command's credentials option (UUID:KEY).
    create.add_argument(
        "--client-auth", choices=tuple(_AUTH), default="none", help="how API clients authenticate (none)"
    )
    create.add_argument(
        "--scope", dest="scopes", action="append", metavar="S", help="JWT scope the caller needs (repeatable)"
    )
    create.add_argument("--schema", metavar="FILE", help="JSON Schema the request body must satisfy")
    create.add_argument("--max-body", type=int, metavar="BYTES", help="largest request body (platform limit)")
    create.add_argument("--rate", metavar="N/s", help="token bucket per client: refill rate")
    create.add_argument("--burst", type=int, metavar="N", help="token bucket per client: capacity")
    create.add_argument("--route-rate", metavar="N/s", help="token bucket for the whole route: refill rate")
    create.add_argument("--route-burst", type=int, metavar="N", help="token bucket for the whole route: capacity")
    create.add_argument("--quota-day", type=int, metavar="N", help="requests per client per UTC day")
    create.add_argument("--quota-month", type=int, metavar="N", help="requests per client per UTC month")
    create.add_argument(
        "--cors", action="append", metavar="ORIGIN", help="origin allowed to call from a browser (repeatable; '*' any)"
    )
    create.add_argument("--overwrite", action="store_true", help="replace the route if it exists")
    listing = add_command(verbs, "list", _list, "list routes with their protections")
    listing.add_argument("base_path", metavar="BASE_PATH", nargs="?", help="only this API")
    delete = add_command(verbs, "delete", _delete, "delete an API, one of its paths, or one operation")
    delete.add_argument("base_path", metavar="BASE_PATH", help="API base path")
    delete.add_argument("rel_path", metavar="REL_PATH", nargs="?", help="only this path")
    delete.add_argument("verb", metavar="VERB", nargs="?", type=str.upper, choices=_VERBS, help="only this method")
