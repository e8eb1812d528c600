"""Keys and (later) crypto, authorization policy and the deploy gate; no I/O of its own."""

from stockade.security.crypto import (
    CryptoError,
    DataKey,
    MasterKey,
    SealedBox,
    ValueContext,
    key_id_of,
    new_key,
    open_value,
    seal_value,
    unwrap_data_key,
    wrap_data_key,
)
from stockade.security.keyring import Keyring, KeyringError, load_keyring, write_keyring
from stockade.security.keys import ApiKey, generate_key, hash_secret, parse_basic_auth, secret_matches

__all__ = [
    "ApiKey",
    "CryptoError",
    "DataKey",
    "Keyring",
    "KeyringError",
    "MasterKey",
    "SealedBox",
    "ValueContext",
    "generate_key",
    "hash_secret",
    "key_id_of",
    "load_keyring",
    "new_key",
    "open_value",
    "parse_basic_auth",
    "seal_value",
    "secret_matches",
    "unwrap_data_key",
    "wrap_data_key",
    "write_keyring",
]
