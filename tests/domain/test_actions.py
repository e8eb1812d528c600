import pytest

from stockade.domain import Action, EntityPath, Exec, LimitBounds, Limits, is_binary_code, resolve_kind
from stockade.errors import BadRequestError


def test_resolve_kind():
    assert resolve_kind("nodejs:default") == "nodejs:20"
    assert resolve_kind("python:default") == "python:3"
    assert resolve_kind("python:3") == "python:3"
    assert resolve_kind("sequence") == "sequence"
    with pytest.raises(BadRequestError, match="'kind' must be a string"):
        resolve_kind(3)
    with pytest.raises(BadRequestError, match="The specified runtime 'go:1' is not supported"):
        resolve_kind("go:1")
    with pytest.raises(BadRequestError, match="not supported"):
        resolve_kind("cobol:default")


@pytest.mark.parametrize(
    ("code", "binary"),
    [("abcd", True), ("UEsDBA==", True), ("def main(a): pass", False), ("", False), ("abc", False), ("  abcd  ", True)],
)
def test_binary_shape(code, binary):
    assert is_binary_code(code) is binary


def test_exec_json():
    e = Exec("python:3", "print(1)", main="go")
    assert e.to_json() == {"kind": "python:3", "code": "print(1)", "binary": False, "main": "go"}
    assert e.to_json(include_code=False) == {"kind": "python:3", "binary": False, "main": "go"}
    assert e.family == "python"
    assert len(e.code_digest) == 64
    seq = Exec("sequence", components=("/a/b",))
    assert seq.to_json() == {"kind": "sequence", "components": ["/a/b"]}
    assert seq.binary is False
    assert seq.family is None


@pytest.mark.parametrize(
    ("limits", "message"),
    [
        (Limits(timeout=300_001), "duration 300001 milliseconds exceeds allowed threshold of 300000 milliseconds"),
        (Limits(timeout=99), "duration 99 milliseconds below allowed threshold of 100 milliseconds"),
        (Limits(memory=513), "memory size 513 MB exceeds allowed threshold of 512 MB"),
        (Limits(memory=127), "memory size 127 MB below allowed threshold of 128 MB"),
        (Limits(logs=11), "log size 11 MB exceeds allowed threshold of 10 MB"),
        (Limits(logs=-1), "log size -1 MB below allowed threshold of 0 MB"),
        (Limits(concurrency=2), "concurrency 2 exceeds allowed threshold of 1"),
        (Limits(concurrency=0), "concurrency 0 below allowed threshold of 1"),
    ],
)
def test_limits_out_of_bounds(limits, message):
    with pytest.raises(BadRequestError) as exc:
        limits.validate(LimitBounds())
    assert exc.value.message == message


def test_limits_in_bounds():
    assert Limits().validate(LimitBounds()) == Limits()
    assert Limits().to_json() == {"timeout": 60000, "memory": 256, "logs": 10, "concurrency": 1}


def test_action_documents():
    action = Action(EntityPath("ns", "a", "p"), Exec("nodejs:20", "x"), annotations=())
    doc = action.to_json()
    assert doc["namespace"] == "ns/p"
    assert doc["exec"]["code"] == "x"
    summary = action.to_summary()
    assert summary["exec"] == {"binary": False}
    assert "parameters" not in summary
    assert action.annotation("missing", 5) == 5
