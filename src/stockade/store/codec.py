"""Activation records ↔ stored JSON documents."""

from __future__ import annotations

from typing import Any

from stockade.domain import JSON, Activation, ActivationResponse, ActivationStatus, kv_from_json, kv_to_json

__all__ = ["activation_from_doc", "activation_to_doc"]


def activation_to_doc(activation: Activation) -> dict[str, JSON]:
    """The stored form of an activation."""
    return {
        "activationId": activation.activation_id,
        "namespace": activation.namespace,
        "subject": activation.subject,
        "name": activation.name,
        "version": activation.version,
        "start": activation.start,
        "end": activation.end,
        "status": activation.response.status.code,
        "result": activation.response.result,
        "logs": list(activation.logs),
        "annotations": kv_to_json(activation.annotations),
        "cause": activation.cause,
        "entityPath": activation.entity_path,
        "publish": activation.publish,
        "extra": activation.extra,
    }


def activation_from_doc(doc: dict[str, Any]) -> Activation:
    """An activation from its stored form."""
    return Activation(
        activation_id=doc["activationId"],
        namespace=doc["namespace"],
        subject=doc["subject"],
        name=doc["name"],
        version=doc["version"],
        start=doc["start"],
        end=doc["end"],
        response=ActivationResponse(ActivationStatus.from_code(doc["status"]), doc.get("result")),
        logs=tuple(doc.get("logs") or ()),
        annotations=kv_from_json(doc.get("annotations"), "annotations"),
        cause=doc.get("cause"),
        entity_path=doc.get("entityPath", ""),
        publish=bool(doc.get("publish", False)),
        extra=dict(doc.get("extra") or {}),
    )
