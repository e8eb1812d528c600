"""Use cases: one service per resource; no HTTP, no SQL. ``Services`` wires them together."""

from __future__ import annotations

from dataclasses import dataclass
from typing import final

from stockade.config import Settings
from stockade.domain import Clock
from stockade.security import Keyring, load_keyring
from stockade.services.actions import ActionService, bounds_from
from stockade.services.activations import ActivationRecorder, ActivationService
from stockade.services.auth import MISSING_AUTH_MESSAGE, Authenticator, Credentials
from stockade.services.catalog import Catalog, ResolvedAction
from stockade.services.invoke import SEALED_MESSAGE, ActionRunner, InvokeRequest, InvokeResult, InvokeService
from stockade.services.namespaces import Bootstrap, NamespaceService
from stockade.services.packages import PackageService
from stockade.services.rotation import KeyRotation, RotationReport
from stockade.services.rules import RuleService
from stockade.services.scans import DeployGate, ScanPolicy
from stockade.services.secrets import SecretBackend, SecretService, StoreSecretBackend
from stockade.services.throttle import Throttle
from stockade.services.triggers import TriggerService
from stockade.services.vault import ParameterVault
from stockade.store import Store

__all__ = [
    "MISSING_AUTH_MESSAGE",
    "SEALED_MESSAGE",
    "ActionRunner",
    "ActionService",
    "ActivationRecorder",
    "ActivationService",
    "DeployGate",
    "Authenticator",
    "Bootstrap",
    "Catalog",
    "Credentials",
    "InvokeRequest",
    "InvokeResult",
    "InvokeService",
    "KeyRotation",
    "NamespaceService",
    "PackageService",
    "ParameterVault",
    "ResolvedAction",
    "RotationReport",
    "RuleService",
    "ScanPolicy",
    "SecretBackend",
    "SecretService",
    "Services",
    "Throttle",
    "TriggerService",
    "bounds_from",
    "build_services",
]


@final
@dataclass(frozen=True, slots=True)
class Services:
    """Every use case, wired once."""

    settings: Settings
    store: Store
    clock: Clock
    auth: Authenticator
    catalog: Catalog
    actions: ActionService
    packages: PackageService
    triggers: TriggerService
    rules: RuleService
    invoke: InvokeService
    activations: ActivationService
    recorder: ActivationRecorder
    namespaces: NamespaceService
    throttle: Throttle
    vault: ParameterVault
    secrets: SecretService
    rotation: KeyRotation
    scans: DeployGate


def build_services(
    settings: Settings, store: Store, runner: ActionRunner, clock: Clock, keyring: Keyring | None = None
) -> Services:
    """Wire the services over a store, an action runner, a clock and the master keyring."""
    limits = settings.limits

    def reload_keyring() -> Keyring:
        return load_keyring(settings.master_key_path, settings.security.master_key)

    vault = ParameterVault(store, keyring or reload_keyring(), clock, reload_keyring=reload_keyring)
    catalog = Catalog(store, clock)
    recorder = ActivationRecorder(
        store,
        batch_size=settings.store.activation_batch_size,
        flush_interval_ms=settings.store.activation_flush_interval_ms,
    )
    throttle = Throttle(
        now_ms=clock.now_ms,
        invocations_per_minute=limits.invocations_per_minute,
        concurrent_invocations=limits.concurrent_invocations,
        fires_per_minute=limits.fires_per_minute,
    )
    secrets = SecretService(store, StoreSecretBackend(store, vault, clock), clock)
    invoke = InvokeService(
        catalog, runner, recorder, throttle, clock, vault, secrets, max_sequence_length=limits.max_sequence_length
    )
    gate = DeployGate(store, clock, settings.scan, admin_namespace=settings.default_namespace)
    return Services(
        settings=settings,
        store=store,
        clock=clock,
        auth=Authenticator(store, clock),
        catalog=catalog,
        actions=ActionService(catalog, limits, clock.now_ms, vault, secrets, gate),
        packages=PackageService(catalog, limits, clock.now_ms, vault),
        triggers=TriggerService(catalog, invoke, recorder, throttle, limits, clock, vault),
        rules=RuleService(catalog, clock.now_ms),
        invoke=invoke,
        activations=ActivationService(store, recorder),
        recorder=recorder,
        namespaces=NamespaceService(store, clock),
        throttle=throttle,
        vault=vault,
        secrets=secrets,
        rotation=KeyRotation(store, vault, clock),
        scans=gate,
    )
