"""Keys, authentication and (later) crypto, authorization and the deploy gate."""

from stockade.security.auth import MISSING_AUTH_MESSAGE, Authenticator, Credentials
from stockade.security.keys import ApiKey, generate_key, hash_secret, parse_basic_auth, secret_matches

__all__ = [
    "MISSING_AUTH_MESSAGE",
    "ApiKey",
    "Authenticator",
    "Credentials",
    "generate_key",
    "hash_secret",
    "parse_basic_auth",
    "secret_matches",
]
