"""The invoker's side of egress: a proxy socket only for actions with grants, per-run activation ids,
and the socket's life tied to the sandbox's (InsecureProcessBackend: no real network isolation here;
tests/security/egress/ covers the Linux sandbox)."""

from __future__ import annotations

import pytest
import structlog

from stockade.config import InvokerSettings
from stockade.domain import Action, ActivationStatus, EntityPath, Exec, KeyValue
from stockade.invoker import CodeStore, EgressProxy, Invoker, RunRequest
from stockade.sandbox import InsecureProcessBackend

CODE = "def main(args):\n    return {'ok': True}\n"


def action(egress=None, name="a"):
    annotations = (KeyValue("policy", {"egress": egress}),) if egress is not None else ()
    return Action(EntityPath("guest", name), Exec("python:3", CODE), annotations=annotations)


class RecordingBackend:
    """InsecureProcessBackend that remembers every spec (and can be told to fail)."""

    def __init__(self):
        self.inner = InsecureProcessBackend()
        self.specs = []
        self.fail = False

    async def start(self, spec):
        self.specs.append(spec)
        if self.fail:
            raise OSError("no sandbox for you")
        return await self.inner.start(spec)

    def __getattr__(self, name):
        return getattr(self.inner, name)


@pytest.fixture
async def setup(tmp_path):
    backend = RecordingBackend()
    (tmp_path / "s").mkdir()
    proxy = EgressProxy(socket_dir=tmp_path / "s")
    invoker = Invoker(
        backend,
        CodeStore(tmp_path / "code"),
        settings=InvokerSettings(sandbox_backend="insecure_process"),
        egress=proxy,
    )
    yield invoker, backend, proxy
    await invoker.close()
    await backend.inner.close()
    await proxy.close()


async def test_a_socket_only_for_actions_with_grants(setup):
    invoker, backend, proxy = setup
    await invoker.run(RunRequest(action(["api.example.com:443"]), {}, "1" * 32))
    await invoker.run(RunRequest(action(name="b"), {}, "2" * 32))
    await invoker.run(RunRequest(action([], name="c"), {}, "3" * 32))
    granted, plain, empty = backend.specs
    assert granted.egress_socket is not None
    assert granted.egress_socket.exists()
    assert plain.egress_socket is None
    assert empty.egress_socket is None
    assert proxy.statistics().sockets_open == 1


async def test_the_lease_follows_the_current_activation_and_dies_with_the_sandbox(setup):
    invoker, backend, proxy = setup
    act = action(["api.example.com:443"])
    first = await invoker.run(RunRequest(act, {}, "1" * 32))
    second = await invoker.run(RunRequest(act, {}, "2" * 32))
    assert first.sandbox_id == second.sandbox_id
    [lease] = list(proxy._leases)
    assert lease.activation_id == "2" * 32
    assert lease.action == "/guest/a"
    await invoker.close()
    assert proxy.statistics().sockets_open == 0
    assert not backend.specs[0].egress_socket.exists()


async def test_a_failed_start_closes_the_socket(setup):
    invoker, backend, proxy = setup
    backend.fail = True
    outcome = await invoker.run(RunRequest(action(["api.example.com:443"]), {}, "1" * 32))
    assert outcome.response.status is ActivationStatus.INTERNAL_ERROR
    assert proxy.statistics().sockets_open == 0


async def test_a_malformed_grant_is_a_developer_error(setup):
    invoker, backend, _proxy = setup
    outcome = await invoker.run(RunRequest(action(["api.example.com"]), {}, "1" * 32))
    assert outcome.response.status is ActivationStatus.DEVELOPER_ERROR
    assert outcome.response.result["error"].startswith("The action's egress policy is invalid: ")
    assert backend.specs == []


async def test_an_unparseable_policy_grants_nothing(setup):
    invoker, backend, _proxy = setup
    odd = Action(EntityPath("guest", "x"), Exec("python:3", CODE), annotations=(KeyValue("policy", "everything"),))
    outcome = await invoker.run(RunRequest(odd, {}, "1" * 32))
    assert outcome.response.status is ActivationStatus.SUCCESS
    assert backend.specs[0].egress_socket is None


async def test_without_a_proxy_grants_give_no_network(tmp_path):
    backend = RecordingBackend()
    invoker = Invoker(
        backend, CodeStore(tmp_path / "code"), settings=InvokerSettings(sandbox_backend="insecure_process")
    )
    try:
        with structlog.testing.capture_logs() as logs:
            outcome = await invoker.run(RunRequest(action(["api.example.com:443"]), {}, "1" * 32))
    finally:
        await invoker.close()
        await backend.inner.close()
    assert outcome.response.status is ActivationStatus.SUCCESS
    assert backend.specs[0].egress_socket is None
    assert [entry["event"] for entry in logs if entry["event"].startswith("egress.")] == ["egress.unavailable"]
