"""Envelope encryption primitives and the master keyring."""

import base64
import json
import os

import pytest

from stockade.security import (
    CryptoError,
    DataKey,
    KeyringError,
    MasterKey,
    SealedBox,
    ValueContext,
    key_id_of,
    load_keyring,
    new_key,
    open_value,
    seal_value,
    unwrap_data_key,
    wrap_data_key,
    write_keyring,
)


def data_key(ns="ns"):
    material = new_key()
    return DataKey(ns, key_id_of(material), material)


CTX = ValueContext("ns", "actions", "act", "password")


def test_seal_and_open_round_trip():
    key = data_key()
    box = seal_value(key, CTX, {"nested": [1, "two"]})
    assert open_value(key, CTX, SealedBox.from_json(box.to_json())) == {"nested": [1, "two"]}
    assert b"two" not in box.ciphertext


@pytest.mark.parametrize(
    "other",
    [
        ValueContext("other", "actions", "act", "password"),
        ValueContext("ns", "packages", "act", "password"),
        ValueContext("ns", "actions", "act2", "password"),
        ValueContext("ns", "actions", "act", "token"),
    ],
)
def test_a_value_moved_elsewhere_does_not_decrypt(other):
    key = data_key()
    box = seal_value(key, CTX, "s3cr3t")
    with pytest.raises(CryptoError):
        open_value(key, other, box)


def test_tampered_or_wrong_key_fails():
    key = data_key()
    box = seal_value(key, CTX, "s3cr3t")
    flipped = SealedBox(box.key_id, box.nonce, bytes([box.ciphertext[0] ^ 1]) + box.ciphertext[1:], box.fingerprint)
    with pytest.raises(CryptoError):
        open_value(key, CTX, flipped)
    other = DataKey("ns", box.key_id, new_key())
    with pytest.raises(CryptoError):
        open_value(other, CTX, box)
    with pytest.raises(CryptoError):
        open_value(data_key(), CTX, box)  # different key id


def test_fingerprints_are_keyed_not_plain_hashes():
    a, b = data_key("a"), data_key("b")
    fa = seal_value(a, CTX, "password1").fingerprint
    fb = seal_value(b, CTX, "password1").fingerprint
    assert fa.startswith("hmac-sha256:")
    assert fa != fb
    assert seal_value(a, CTX, "password1").fingerprint == fa
    import hashlib

    assert hashlib.sha256(b'"password1"').hexdigest()[:32] not in fa


def test_wrap_unwrap_binds_namespace():
    master = MasterKey(new_key())
    key = data_key("ns")
    wrapped = wrap_data_key(master, key)
    assert unwrap_data_key(master, "ns", key.key_id, wrapped).key == key.key
    with pytest.raises(CryptoError):
        unwrap_data_key(master, "other", key.key_id, wrapped)
    with pytest.raises(CryptoError):
        unwrap_data_key(MasterKey(new_key()), "ns", key.key_id, wrapped)


def test_malformed_boxes():
    for bad in ({}, {"alg": "ROT13"}, {"alg": "AES-256-GCM", "kid": "k", "nonce": "!!", "ct": "", "fp": ""}, None):
        with pytest.raises(CryptoError):
            SealedBox.from_json(bad)


def test_keyring_file_is_created_0600_and_checked(tmp_path):
    path = tmp_path / "master.key"
    ring = load_keyring(path)
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert load_keyring(path).current.key_id == ring.current.key_id
    os.chmod(path, 0o644)
    with pytest.raises(KeyringError, match="group or others"):
        load_keyring(path)
    os.chmod(path, 0o600)
    path.write_text("not json")
    with pytest.raises(KeyringError):
        load_keyring(path)
    path.write_text(json.dumps({"keys": ["c2hvcnQ="]}))
    with pytest.raises(KeyringError, match="32 bytes"):
        load_keyring(path)
    with pytest.raises(KeyringError):
        load_keyring(tmp_path / "absent.key", create=False)


def test_inline_master_key_and_rotation_order(tmp_path):
    key = new_key()
    ring = load_keyring(tmp_path / "unused", base64.b64encode(key).decode())
    assert ring.current.key == key
    assert not (tmp_path / "unused").exists()
    a, b = MasterKey(new_key()), MasterKey(new_key())
    write_keyring(tmp_path / "ring", [b, a])
    loaded = load_keyring(tmp_path / "ring")
    assert loaded.current.key_id == b.key_id
    assert loaded.get(a.key_id) is not None
    assert loaded.get("nope") is None
    assert repr(a).startswith("MasterKey(id=")
    assert a.key.hex() not in repr(a)
