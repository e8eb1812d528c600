"""Test doubles that ship with the package: a frozen clock, an in-process runner, builders."""

from stockade.testing.clock import FrozenClock
from stockade.testing.runner import InProcessRunner, RunOutcomeRecord

__all__ = ["FrozenClock", "InProcessRunner", "RunOutcomeRecord"]
