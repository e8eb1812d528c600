"""Fixtures for the deploy gate's threat tests (one file per threat, beside the other threats)."""

from dataclasses import replace

import pytest

from stockade.security.scanner import default_rulebook


@pytest.fixture(scope="session")
def scan_rules():
    """The packaged scanner rules."""
    return default_rulebook()


@pytest.fixture
def scan_limits(scan_rules):
    """The scanner rules with some limits made tiny."""

    def build(**limits):
        return replace(scan_rules, limits=replace(scan_rules.limits, **limits))

    return build
