import base64

from stockade.security import generate_key, hash_secret, parse_basic_auth, secret_matches


def test_keys_are_random_256_bit_and_only_hashed():
    a, b = generate_key(), generate_key()
    assert a.secret != b.secret
    assert len(a.secret) == 64
    int(a.secret, 16)
    assert a.token == f"{a.uuid}:{a.secret}"
    assert a.secret not in repr(a)
    assert len(hash_secret(a.secret)) == 32


def test_secret_matches_in_constant_time_helper():
    key = generate_key()
    stored = hash_secret(key.secret)
    assert secret_matches(key.secret, stored)
    last = "1" if key.secret[-1] == "0" else "0"
    assert not secret_matches(key.secret[:-1] + last, stored)


def basic(text: str) -> str:
    return "Basic " + base64.b64encode(text.encode()).decode()


def test_parse_basic_auth():
    assert parse_basic_auth(basic("u:s")) == ("u", "s")
    assert parse_basic_auth(basic("u:s:with:colons")) == ("u", "s:with:colons")
    for bad in (
        "Bearer x",
        "Basic",
        "Basic !!!",
        basic("nocolon"),
        basic(":s"),
        basic("u:"),
        "Basic " + base64.b64encode(b"\xff:x").decode(),
    ):
        assert parse_basic_auth(bad) is None
