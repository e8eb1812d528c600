"""The REST client: auth, URLs, bodies, error envelopes and transport failures."""

from __future__ import annotations

import httpx
import pytest

from stockade import errors
from stockade.cli.client import (
    Client,
    CliError,
    Reply,
    error_from_reply,
    exit_code_for_status,
    is_error_envelope,
)

from .conftest import AUTH, KEY, FakeApi, basic_auth

BASE = "http://api.test:3233/api/v1"


def make_client(api: FakeApi, auth: str | None = AUTH) -> Client:
    return Client(BASE, auth, transport=httpx.MockTransport(api.handler))


def reply(status: int, data, request_id: str | None = "rid") -> Reply:
    return Reply(status=status, data=data, text="", request_id=request_id, activation_id=None)


@pytest.mark.parametrize(
    ("status", "exit_code"),
    [(400, 2), (401, 3), (403, 3), (404, 4), (409, 5), (413, 2), (415, 2), (429, 6), (500, 7), (502, 7), (503, 7)],
)
def test_exit_code_for_status_maps_each_class_of_failure(status, exit_code):
    assert exit_code_for_status(status) == exit_code


def test_exit_codes_agree_with_the_platform_error_classes():
    """The CLI's table matches errors.py for every 4xx class and 503.

    errors.py gives plain 500 exit code 1; the CLI deliberately maps every 5xx to 7 and keeps 1
    for failed activations.
    """
    classes = [
        cls
        for cls in vars(errors).values()
        if isinstance(cls, type) and issubclass(cls, errors.PlatformError) and cls.status != 500
    ]
    assert classes
    for cls in classes:
        assert exit_code_for_status(cls.status) == cls.exit_code, cls.__name__


def test_requests_carry_basic_auth_user_agent_and_json(api):
    client = make_client(api)
    client.put("namespaces/_/actions/a", {"x": 1}, overwrite=True)
    call = api.last
    assert call.method == "PUT"
    assert call.path == "/api/v1/namespaces/_/actions/a"
    assert call.query == {"overwrite": "true"}
    assert call.body == {"x": 1}
    assert call.headers["authorization"] == basic_auth()
    assert call.headers["content-type"] == "application/json"
    assert call.headers["user-agent"].startswith("stockade-cli/")


def test_percent_encoded_paths_are_sent_verbatim(api):
    make_client(api).get("namespaces/_/actions/a%20b%26c")
    assert api.last.path == "/api/v1/namespaces/_/actions/a%20b%26c"


def test_missing_credentials_are_refused_before_any_request(api):
    with pytest.raises(CliError) as info:
        make_client(api, auth=None)
    assert info.value.exit_code == 3
    assert "AUTH" in info.value.message
    assert api.calls == []


def test_malformed_credentials_never_echo_the_key(api):
    with pytest.raises(CliError) as info:
        make_client(api, auth=KEY)
    assert KEY not in info.value.render()
    assert info.value.exit_code == 3


def test_error_envelope_becomes_cli_error_with_request_id(api):
    api.error(404, "The requested resource does not exist.", request_id="abc123")
    with pytest.raises(CliError) as info:
        make_client(api).get("namespaces/_/actions/missing")
    error = info.value
    assert (error.status, error.exit_code, error.request_id) == (404, 4, "abc123")
    assert error.render() == "error: The requested resource does not exist. (code: abc123)"


def test_non_json_error_body_reports_status_and_text(api):
    api.reply(502, text="Bad Gateway from proxy")
    with pytest.raises(CliError) as info:
        make_client(api).get("namespaces")
    assert info.value.message == "HTTP 502 Bad Gateway: Bad Gateway from proxy"
    assert info.value.exit_code == 7
    assert info.value.render() == "error: HTTP 502 Bad Gateway: Bad Gateway from proxy"


def test_accepted_error_statuses_are_returned_not_raised(api):
    api.reply(502, {"activationId": "a" * 32})
    result = make_client(api).request("POST", "namespaces/_/actions/a", body={}, accept=(502,))
    assert result.status == 502
    assert result.data == {"activationId": "a" * 32}


def test_connection_refused_exits_8_with_cannot_reach_message():
    def refuse(request):
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    client = Client(BASE, AUTH, transport=httpx.MockTransport(refuse))
    with pytest.raises(CliError) as info:
        client.get("namespaces")
    assert info.value.exit_code == 8
    assert info.value.message.startswith("cannot reach APIHOST http://api.test:3233: ")
    assert "stockade up" in info.value.message


def test_timeouts_exit_8():
    def slow(request):
        raise httpx.ReadTimeout("timed out", request=request)

    with pytest.raises(CliError) as info:
        Client(BASE, AUTH, transport=httpx.MockTransport(slow)).get("namespaces")
    assert info.value.exit_code == 8
    assert "timed out" in info.value.message


def test_certificate_failures_suggest_insecure():
    def bad_cert(request):
        raise httpx.ConnectError("[SSL: CERTIFICATE_VERIFY_FAILED] self-signed", request=request)

    with pytest.raises(CliError) as info:
        Client(BASE, AUTH, transport=httpx.MockTransport(bad_cert)).get("namespaces")
    assert "--insecure" in info.value.message


@pytest.mark.parametrize("insecure", [True, False])
def test_insecure_turns_off_certificate_verification(monkeypatch, insecure):
    seen = {}
    real = httpx.Client

    def spy(**kwargs):
        seen.update(kwargs)
        return real(**kwargs)

    monkeypatch.setattr(httpx, "Client", spy)
    Client("https://api.test/api/v1", AUTH, insecure=insecure)
    assert seen["verify"] is (not insecure)
    assert seen["timeout"].read > 60  # outlasts the server's 60 s blocking wait


@pytest.mark.parametrize(
    ("data", "request_id", "expected"),
    [
        ({"error": "boom", "code": "rid"}, "rid", True),
        ({"error": "boom", "code": "rid"}, None, True),
        ({"error": "boom", "code": "other"}, "rid", False),  # an action's own result
        ({"error": "boom"}, "rid", False),
        ({"error": {"x": 1}, "code": "rid"}, "rid", False),
        ({"activationId": "x", "response": {}}, "rid", False),
        ([1, 2], "rid", False),
    ],
)
def test_is_error_envelope_tells_envelopes_from_results(data, request_id, expected):
    assert is_error_envelope(reply(502, data, request_id)) is expected


def test_error_from_reply_prefers_the_body_code_over_the_header():
    error = error_from_reply(reply(409, {"error": "resource already exists", "code": "body-id"}, "header-id"))
    assert (error.message, error.request_id, error.exit_code) == ("resource already exists", "body-id", 5)
