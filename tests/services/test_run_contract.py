"""The run contract (issue 15): one typed request in, one typed outcome back, no adapter.

The invoke use case decides the namespace, the activation deadline and the parsed policy once
and hands them to the runner in a ``RunRequest``; the local ``Invoker`` is the ``ActionRunner``.
"""

from __future__ import annotations

import inspect

from stockade import server
from stockade.domain import ActionPolicy, RunRequest
from stockade.invoker import Invoker
from stockade.services.runner import ActionRunner

A = "/api/v1/namespaces/_/actions"
CODE = "def main(a):\n    return {'ok': True}\n"


def test_the_invoker_is_the_action_runner_with_no_adapter():
    assert not hasattr(server, "InvokerRunner")
    signature = inspect.signature(Invoker.run_action)
    assert list(signature.parameters) == ["self", "request"]
    runner: type[ActionRunner] = Invoker  # mypy checks the protocol; the test checks the shape
    assert runner is Invoker


def test_one_typed_request_carries_namespace_deadline_and_parsed_policy(api):
    policy = {"invoke": ["/guest/other"], "egress": ["example.com:443"]}
    body = {
        "exec": {"kind": "python:3", "code": CODE},
        "limits": {"timeout": 7000},
        "annotations": [{"key": "policy", "value": policy}],
    }
    assert api.put(f"{A}/contract", json=body).status_code == 200
    r = api.post(f"{A}/contract?blocking=true", json={"x": 1})
    assert r.status_code == 200, r.text
    request = api.runner.requests[-1]
    assert isinstance(request, RunRequest)
    assert request.namespace == "guest"
    assert request.policy == ActionPolicy(invoke=("/guest/other",), egress=("example.com:443",))
    assert request.deadline_ms is not None
    # The deadline is the one the action sees and the one its token expires at.
    assert request.activation_env["__OW_DEADLINE"] == str(request.deadline_ms)
    start = r.json()["start"]
    assert abs(request.deadline_ms - start - 7000) <= 5000
    assert request.parameters["x"] == 1


def test_a_policy_that_does_not_parse_grants_nothing(api):
    body = {
        "exec": {"kind": "python:3", "code": CODE},
        "annotations": [{"key": "policy", "value": "not a policy"}],
    }
    assert api.put(f"{A}/badpolicy", json=body).status_code in (200, 400)
    if api.get(f"{A}/badpolicy").status_code != 200:
        return  # refused at deploy time: nothing to run
    assert api.post(f"{A}/badpolicy?blocking=true", json={}).status_code == 200
    assert api.runner.requests[-1].policy == ActionPolicy()
