from stockade.domain import (
    Activation,
    ActivationResponse,
    ActivationStatus,
    Binding,
    EntityPath,
    KeyValue,
    Package,
    Rule,
    Trigger,
    new_activation_id,
)


def test_status_codes_round_trip():
    for code in range(4):
        assert ActivationStatus.from_code(code).code == code
    assert ActivationStatus.DEVELOPER_ERROR.value == "action developer error"


def test_response_json():
    ok = ActivationResponse(ActivationStatus.SUCCESS, {"a": 1})
    assert ok.to_json() == {"status": "success", "success": True, "result": {"a": 1}, "size": 7}
    failed = ActivationResponse.failure(ActivationStatus.APPLICATION_ERROR, "x")
    assert failed.to_json()["result"] == {"error": "x"}
    assert failed.success is False
    assert ActivationResponse(ActivationStatus.SUCCESS).to_json() == {"status": "success", "success": True}


def make(**kw):
    base = dict(
        activation_id=new_activation_id(),
        namespace="ns",
        subject="me",
        name="a",
        version="0.0.1",
        start=1000,
        end=1500,
        response=ActivationResponse(ActivationStatus.SUCCESS, {}),
    )
    return Activation(**{**base, **kw})


def test_activation_record_and_summary():
    act = make(cause="c" * 32, annotations=(KeyValue("kind", "python:3"),))
    doc = act.to_json()
    assert doc["duration"] == 500
    assert doc["cause"] == "c" * 32
    assert "statusCode" not in doc["response"]
    summary = act.to_summary()
    assert summary["statusCode"] == 0
    assert "response" not in summary
    assert len(act.activation_id) == 32


def test_trigger_activation_has_no_end():
    act = make(end=0)
    assert "end" not in act.to_json()
    assert "duration" not in act.to_summary()


def test_sequence_duration_is_explicit():
    assert make(extra={"duration": 42}).duration == 42


def test_package_binding_and_trigger_rules():
    pkg = Package(EntityPath("ns", "b"), binding=Binding("ns", "p"))
    assert pkg.is_binding
    assert pkg.to_summary()["binding"] == {"namespace": "ns", "name": "p"}
    assert pkg.to_json()["binding"] == {"namespace": "ns", "name": "p"}
    assert Package(EntityPath("ns", "p")).to_summary()["binding"] is False
    trig = Trigger(EntityPath("ns", "t"))
    action = EntityPath("ns", "a")
    active = trig.with_rule("ns/r", action, "active")
    assert active.rule_status("ns/r") == "active"
    assert active.to_json()["rules"]["ns/r"]["action"] == {"path": "ns", "name": "a"}
    assert active.without_rule("ns/r").rule_status("ns/r") == "inactive"
    assert "rules" not in trig.to_json()
    rule = Rule(EntityPath("ns", "r"), EntityPath("ns", "t"), action)
    assert "status" not in rule.to_summary()
    assert rule.to_json("active")["status"] == "active"
