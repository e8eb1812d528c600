"""Not collected on its own: run by tests/security/test_live_server.py to prove its log check can fail.

A route that raises a plain exception is a real unhandled error: the live server must log it
(once, with the marker below) and answer an OpenWhisk-shaped 500.
"""

from starlette.routing import Route

CANARY = "live-canary-unhandled"


async def _boom(request):
    raise RuntimeError(CANARY)


def test_an_unhandled_error_is_logged_by_the_live_server(api):
    api.client.app.router.routes.insert(0, Route("/canary", _boom))
    r = api.client.get("/canary")
    assert r.status_code == 500
    assert set(r.json()) == {"error", "code"}
    assert CANARY not in r.text
