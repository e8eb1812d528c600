"""API tests use the `api`, `api_factory` and `make_settings` fixtures of tests/conftest.py."""
