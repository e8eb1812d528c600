"""Repeated authentication failures from one source are slowed, then refused (429), and recorded."""

import base64

from stockade.services.auth import FailureLimiter
from stockade.testing import FrozenClock


def test_limiter_slows_then_locks_then_forgives():
    clock = FrozenClock()
    limiter = FailureLimiter(clock, window_s=60, slow_after=2, lock_after=4, lock_s=300)
    delays = [limiter.failed("1.2.3.4") for _ in range(3)]
    assert delays == [0.0, 0.0, 0.5]
    limiter.failed("1.2.3.4")
    assert limiter.is_locked("1.2.3.4")
    assert not limiter.is_locked("5.6.7.8")
    clock.advance(301_000)
    assert not limiter.is_locked("1.2.3.4")


def test_api_locks_out_a_guessing_client(api_factory, make_settings):
    from dataclasses import replace

    settings = make_settings()
    settings = replace(settings, auth=replace(settings.auth, slow_after_failures=100, lockout_after_failures=5))
    api = api_factory(settings)
    uuid = api.keys["guest"].split(":")[0]
    for i in range(5):
        bad = base64.b64encode(f"{uuid}:{i:064d}".encode()).decode()
        assert api.client.get("/api/v1/namespaces", headers={"Authorization": f"Basic {bad}"}).status_code == 401
    locked = api.client.get("/api/v1/namespaces", headers=api.auth())
    assert locked.status_code == 429
    assert "Too many failed authentication attempts" in locked.json()["error"]
    services = api.client.app.state.services
    entries = api.client.portal.call(services.audit.entries, "")
    failures = [e for e in entries if e.entry["action"] == "auth.failed"]
    assert len(failures) == 5
    assert failures[0].entry["actor"] == uuid
