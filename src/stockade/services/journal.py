"""The activation journal's row format: the sealed request, and records of interrupted work.

See docs/design/durability.md. A journal row's request is one box sealed under the namespace's
data key and bound to (namespace, "activations", activation id, "request"); the plain part of the
row holds only what closing the activation needs (action name, version, path, subject, cause).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from stockade.domain import (
    JSON,
    Activation,
    ActivationResponse,
    ActivationStatus,
    Identity,
    KeyValue,
)
from stockade.store import PendingActivation

if TYPE_CHECKING:  # invoke.py imports this module
    from stockade.domain import Action
    from stockade.services.invoke import InvokeRequest
    from stockade.services.vault import ParameterVault

__all__ = [
    "GAVE_UP_MESSAGE",
    "INTERRUPTED_BLOCKING_MESSAGE",
    "MAX_ATTEMPTS",
    "NOT_RERUN_MESSAGE",
    "identity_from_json",
    "identity_to_json",
    "interrupted_activation",
    "journal_entry",
    "request_context",
]

# Non-blocking activations are run at most this many times in all; blocking ones never again.
MAX_ATTEMPTS = 3
INTERRUPTED_BLOCKING_MESSAGE = (
    "The platform restarted while this blocking activation was in flight; "
    "blocking activations are not re-run (at most once)."
)
GAVE_UP_MESSAGE = "The platform restarted while this activation was in flight {n} times; it was not run again."
NOT_RERUN_MESSAGE = "The platform restarted while this activation was in flight and could not re-run it: {reason}"


def request_context(namespace: str, activation_id: str) -> tuple[str, str, str, str]:
    """Where a journalled request is bound (its box opens nowhere else)."""
    return (namespace, "activations", activation_id, "request")


def identity_to_json(identity: Identity) -> dict[str, JSON]:
    """The caller, as journalled."""
    return {
        "subject": identity.subject,
        "namespace": identity.namespace,
        "keyUuid": identity.key_uuid,
        "kind": identity.kind,
        "scope": list(identity.scope) if identity.scope is not None else None,
        "role": identity.role,
    }


def identity_from_json(raw: Any) -> Identity:
    """The caller of a journalled request."""
    if not isinstance(raw, dict):
        raise TypeError("no identity")
    scope = raw.get("scope")
    role = raw.get("role")
    return Identity(
        subject=str(raw["subject"]),
        namespace=str(raw["namespace"]),
        key_uuid=str(raw.get("keyUuid") or ""),
        kind=raw.get("kind") or "key",
        scope=tuple(str(s) for s in scope) if isinstance(scope, list) else None,
        role=role if isinstance(role, str) else None,
    )


def interrupted_activation(pending: PendingActivation, message: str, now_ms: int) -> Activation:
    """The terminal record of an activation closed at start-up (``whisk internal error``)."""
    doc = pending.doc
    raw_action = doc.get("action")
    action: dict[str, Any] = raw_action if isinstance(raw_action, dict) else {}
    cause = doc.get("cause")
    return Activation(
        activation_id=pending.activation_id,
        namespace=pending.namespace,
        subject=str(doc.get("subject") or ""),
        name=str(action.get("name") or "unknown"),
        version=str(action.get("version") or "0.0.1"),
        start=pending.accepted_ms,
        end=max(now_ms, pending.accepted_ms),
        response=ActivationResponse.failure(ActivationStatus.INTERNAL_ERROR, message),
        annotations=(
            KeyValue("path", str(action.get("entityPath") or "")),
            KeyValue("attempts", pending.attempts),
        ),
        cause=cause if isinstance(cause, str) else None,
        entity_path=str(action.get("entityPath") or ""),
    )


async def journal_entry(
    vault: ParameterVault, now_ms: int, request: InvokeRequest, action: Action, activation_id: str
) -> PendingActivation:
    """The journal row of an accepted activation; its whole request is one sealed box.

    The box (AES-256-GCM under the namespace's data key) is bound to (namespace, "activations",
    activation id, "request"): parameters are never stored in plaintext, and a row edited behind
    the platform's back (identity, action, blocking, another row's box) fails to open and is
    closed, not run.
    """
    identity = request.identity
    body: dict[str, JSON] = {
        "identity": identity_to_json(identity),
        "path": request.path.fqn,
        "params": dict(request.params),
        "blocking": request.blocking,
        "seal": request.seal,
        "supplied": sorted(request.supplied_keys) if request.supplied_keys is not None else None,
        "cause": request.cause,
        "transactionId": request.transaction_id,
    }
    context = request_context(identity.namespace, activation_id)
    doc: dict[str, JSON] = {
        "request": dict(await vault.seal_json(identity.namespace, context, body)),
        # Plain metadata, enough to close the activation when the request cannot be opened.
        "action": {"name": action.path.name, "version": action.version, "entityPath": action.path.relative},
        "subject": identity.subject,
        "cause": request.cause,
    }
    return PendingActivation(activation_id, identity.namespace, now_ms, request.blocking, 1, doc)
