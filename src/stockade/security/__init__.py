"""Keys and (later) crypto, authorization policy and the deploy gate; no I/O of its own."""

from stockade.security.keys import ApiKey, generate_key, hash_secret, parse_basic_auth, secret_matches

__all__ = [
    "ApiKey",
    "generate_key",
    "hash_secret",
    "parse_basic_auth",
    "secret_matches",
]
