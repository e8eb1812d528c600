"""Every documented setting (each field of Settings and its sections) set through a TOML file and
through STOCKADE_* variables takes effect; the auth section reaches the services it configures."""

import asyncio
import base64
import dataclasses
import json
from pathlib import Path

import pytest

from security.test_jwt import ISSUER, jwks, rsa_key, token
from stockade.config import Settings, load_settings
from stockade.domain import SystemClock
from stockade.errors import ThrottledError, UnauthenticatedError
from stockade.services import build_services
from stockade.store import open_sqlite_store
from stockade.testing import InProcessRunner

# Strings whose values are validated: a valid non-default value each.
VALID = {
    ("invoker", "sandbox_backend"): "insecure_process",
    ("store", "url"): "postgresql://db.example/stockade",
    ("scan", "block_severities"): "critical",
    ("scan", "warn_severities"): "high,medium",
    ("scan", "advisories_url"): "https://advisories.example/osv",
    ("scan", "advisories_ecosystems"): "npm",
    ("auth", "trusted_proxies"): "10.0.0.0/8, 192.0.2.7",
    ("", "log_level"): "debug",
    ("", "default_namespace"): "platform",
}


def _non_default(section: str, name: str, value):
    if (section, name) in VALID:
        return VALID[(section, name)]
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 7
    if isinstance(value, float):
        return value + 1.5
    if isinstance(value, Path):
        return Path("/srv/stockade-test")
    return f"set-{section}-{name}"


def every_setting():
    """(section, name, non-default value) for every field; section "" is the top level."""
    defaults = Settings()
    out = []
    for field in dataclasses.fields(defaults):
        value = getattr(defaults, field.name)
        if dataclasses.is_dataclass(value):
            out.extend(
                (field.name, inner.name, _non_default(field.name, inner.name, getattr(value, inner.name)))
                for inner in dataclasses.fields(value)
            )
        else:
            out.append(("", field.name, _non_default("", field.name, value)))
    return out


SETTINGS = every_setting()


def _toml_value(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(str(value))


def _read(settings, section, name):
    return getattr(getattr(settings, section), name) if section else getattr(settings, name)


def test_the_list_covers_the_auth_section():
    names = {(s, n) for s, n, _ in SETTINGS}
    assert {
        ("auth", "jwt_issuers_file"),
        ("auth", "slow_after_failures"),
        ("auth", "lockout_after_failures"),
        ("auth", "source_lockout_after_failures"),
        ("auth", "failure_window_s"),
        ("auth", "lockout_s"),
        ("auth", "trusted_proxies"),
    } <= names


def test_every_setting_through_toml(tmp_path):
    top = [f"{name} = {_toml_value(v)}" for s, name, v in SETTINGS if not s]
    sections: dict[str, list[str]] = {}
    for section, name, value in SETTINGS:
        if section:
            sections.setdefault(section, []).append(f"{name} = {_toml_value(value)}")
    text = "\n".join(top) + "\n" + "".join(f"[{s}]\n" + "\n".join(lines) + "\n" for s, lines in sections.items())
    cfg = tmp_path / "all.toml"
    cfg.write_text(text)
    settings = load_settings(cfg, env={})
    for section, name, value in SETTINGS:
        assert _read(settings, section, name) == value, (section, name)


def test_every_setting_through_the_environment():
    env = {}
    for section, name, value in SETTINGS:
        key = f"STOCKADE_{section.upper()}__{name.upper()}" if section else f"STOCKADE_{name.upper()}"
        env[key] = str(value).lower() if isinstance(value, bool) else str(value)
    settings = load_settings(env=env)
    for section, name, value in SETTINGS:
        assert _read(settings, section, name) == value, (section, name)


@pytest.mark.parametrize("bad", ["STOCKADE_AUTH__LOCKOUT_S=0", "STOCKADE_AUTH__TRUSTED_PROXIES=not-an-address"])
def test_bad_auth_values_are_settings_errors(bad):
    from stockade.config import SettingsError

    key, value = bad.split("=", 1)
    with pytest.raises(SettingsError):
        load_settings(env={key: value})


def test_auth_settings_from_the_environment_reach_the_services(tmp_path):
    """The section used to crash the loader; now each value configures what it names."""
    issuers = tmp_path / "issuers.json"
    key = rsa_key()
    jwks_file = tmp_path / "jwks.json"
    jwks_file.write_text(json.dumps(jwks(key, "k1")))
    issuers.write_text(
        json.dumps(
            [
                {
                    "issuer": ISSUER,
                    "audiences": ["stockade"],
                    "namespace": "guest",
                    "role": "invoker",
                    "jwks_file": str(jwks_file),
                }
            ]
        )
    )
    settings = load_settings(
        env={
            "STOCKADE_DATA_DIR": str(tmp_path),
            "STOCKADE_AUTH__JWT_ISSUERS_FILE": str(issuers),
            "STOCKADE_AUTH__SLOW_AFTER_FAILURES": "3",
            "STOCKADE_AUTH__LOCKOUT_AFTER_FAILURES": "4",
            "STOCKADE_AUTH__SOURCE_LOCKOUT_AFTER_FAILURES": "9",
            "STOCKADE_AUTH__FAILURE_WINDOW_S": "30",
            "STOCKADE_AUTH__LOCKOUT_S": "60",
            "STOCKADE_AUTH__TRUSTED_PROXIES": "10.1.2.3",
        }
    )
    assert [str(n) for n in settings.auth.trusted_proxy_networks()] == ["10.1.2.3/32"]

    async def scenario():
        store = open_sqlite_store(tmp_path / "db.sqlite")
        await store.open()
        try:
            services = build_services(settings, store, InProcessRunner(), SystemClock())
            # The issuers file is read: a token of that issuer authenticates.
            credentials = await services.auth.authenticate(f"Bearer {token(key)}", source="192.0.2.1")
            assert credentials.identity.subject == f"{ISSUER}#svc-1"
            # The pair threshold (4) and the source threshold (9) are the ones set.
            bad = "Basic " + base64.b64encode(b"some-uuid:wrong").decode()
            for _ in range(4):
                with pytest.raises(UnauthenticatedError):
                    await services.auth.authenticate(bad, source="192.0.2.2")
            with pytest.raises(ThrottledError):
                await services.auth.authenticate(bad, source="192.0.2.2")
            for i in range(9):
                with pytest.raises(UnauthenticatedError):
                    await services.auth.authenticate(
                        "Basic " + base64.b64encode(f"uuid-{i}:wrong".encode()).decode(), source="192.0.2.3"
                    )
            with pytest.raises(ThrottledError):
                await services.auth.authenticate(f"Bearer {token(key)}", source="192.0.2.3")
            guard = services.auth.guard
            assert (guard._slow_after, guard._window_ms, guard._lock_ms) == (3, 30_000, 60_000)
        finally:
            await store.close()

    asyncio.run(scenario())
