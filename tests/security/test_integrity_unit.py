"""The integrity MAC (security/integrity.py) and its service: what a stamp covers and survives."""

from __future__ import annotations

import hashlib

import pytest

from stockade.security.integrity import (
    INTEGRITY_FIELD,
    check_action,
    derive_integrity_key,
    seal_action_doc,
)

KEY = derive_integrity_key(b"k" * 32)
CODE = b"def main(a):\n    return a\n"
DOC = {
    "version": "0.0.1",
    "exec": {"kind": "python:3", "codeDigest": hashlib.sha256(CODE).hexdigest(), "binary": False, "main": "main"},
    "parameters": [{"key": "p", "sealed": {"kid": "d1", "ct": "AAAA"}}],
    "annotations": [{"key": "exec", "value": "python:3"}],
    "limits": {"timeout": 60000, "memory": 256, "logs": 10, "concurrency": 1},
}


def keys(kid):
    return KEY if kid == "i1" else None


def stamped(doc=DOC, ns="guest", name="a", collection="actions"):
    return seal_action_doc("i1", KEY, ns, name, doc, collection)


def test_a_stamped_document_with_its_code_verifies():
    assert check_action("guest", "a", stamped(), CODE, keys) is None


@pytest.mark.parametrize(
    ("mutate", "problem"),
    [
        (lambda d: d["exec"].update(kind="nodejs:20"), "MAC"),
        (lambda d: d["exec"].update(main="other"), "MAC"),
        (lambda d: d["exec"].update(codeDigest="0" * 64), "MAC"),
        (lambda d: d["parameters"][0]["sealed"].update(ct="BBBB"), "MAC"),
        (lambda d: d["parameters"].append({"key": "x", "value": 1}), "MAC"),
        (lambda d: d["limits"].update(timeout=300000), "MAC"),
        (lambda d: d.pop(INTEGRITY_FIELD), "no integrity stamp"),
        (lambda d: d[INTEGRITY_FIELD].update(kid="other"), "unknown integrity key"),
        (lambda d: d[INTEGRITY_FIELD].update(mac="0" * 64), "MAC"),
    ],
)
def test_every_edit_of_the_document_is_found(mutate, problem):
    import copy

    doc = copy.deepcopy(stamped())
    mutate(doc)
    found = check_action("guest", "a", doc, CODE, keys)
    assert found is not None
    assert problem in found


def test_code_blob_edits_and_moves_are_found():
    assert "digest" in check_action("guest", "a", stamped(), CODE + b"#", keys)
    assert "missing" in check_action("guest", "a", stamped(), None, keys)
    # The same document under another name, namespace or collection does not verify.
    doc = stamped()
    assert check_action("guest", "b", doc, CODE, keys) is not None
    assert check_action("other", "a", doc, CODE, keys) is not None
    assert check_action("guest", "a", doc, CODE, keys, "packages") is not None


def test_the_key_is_derived_not_the_data_key_itself():
    assert derive_integrity_key(b"k" * 32) != b"k" * 32
    assert derive_integrity_key(b"k" * 32) != derive_integrity_key(b"j" * 32)
