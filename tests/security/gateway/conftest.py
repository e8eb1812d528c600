"""Fixtures for the API gateway threat tests: the same as tests/gateway's (one definition)."""

from gateway.conftest import ECHO, ISSUER, Gateway, Tokens, gw, jwt_gw, make_gw

__all__ = ["ECHO", "ISSUER", "Gateway", "Tokens", "gw", "jwt_gw", "make_gw"]
