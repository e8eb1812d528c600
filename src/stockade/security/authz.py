"""Roles and permissions: the matrix (policy as data, in policies/roles.json) and the checks.

Pure: given a role, whether the namespace is protected, and the permission asked for, answer
yes or no. Who holds which role is looked up by the services.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass
from importlib import resources
from typing import final

__all__ = ["ROLES", "Permission", "Role", "RoleMatrix", "load_role_matrix"]


class Permission(enum.Enum):
    """Separate rights within a namespace."""

    READ = "read"
    READ_CODE = "read_code"
    WRITE = "write"
    INVOKE = "invoke"
    READ_ACTIVATIONS = "read_activations"
    SECRETS = "secrets"
    ROLES = "roles"
    AUDIT = "audit"
    MONITOR = "monitor"


class Role(enum.Enum):
    """Roles for people and automation."""

    OWNER = "owner"
    DEVELOPER = "developer"
    DEPLOYER = "deployer"
    INVOKER = "invoker"
    VIEWER = "viewer"
    AUDITOR = "auditor"


ROLES = tuple(r.value for r in Role)
# In a protected namespace only deployers may use these (the build system changes production).
PROTECTED_PERMISSIONS = frozenset({Permission.WRITE, Permission.SECRETS})


@final
@dataclass(frozen=True, slots=True)
class RoleMatrix:
    """Which role holds which permission."""

    grants: dict[Role, frozenset[Permission]]

    def allows(self, role: Role | None, permission: Permission, *, protected: bool = False) -> bool:
        """True when ``role`` holds ``permission`` (in a protected namespace, writes are deployers' only)."""
        if role is None:
            return False
        if protected and permission in PROTECTED_PERMISSIONS and role is not Role.DEPLOYER:
            return False
        return permission in self.grants[role]


def load_role_matrix(text: str | None = None) -> RoleMatrix:
    """Parse and validate the role matrix (the packaged policies/roles.json by default)."""
    raw = text if text is not None else (resources.files("stockade.security") / "policies" / "roles.json").read_text()
    doc = json.loads(raw)
    known = {p.value for p in Permission}
    if set(doc["permissions"]) != known:
        raise ValueError(f"roles.json must describe exactly the permissions {sorted(known)}")
    grants: dict[Role, frozenset[Permission]] = {}
    for role in Role:
        entry = doc["roles"].get(role.value)
        if entry is None or not entry.get("reason"):
            raise ValueError(f"roles.json: role {role.value!r} is missing or has no reason")
        unknown = set(entry["permissions"]) - known
        if unknown:
            raise ValueError(f"roles.json: role {role.value!r} has unknown permissions {sorted(unknown)}")
        grants[role] = frozenset(Permission(p) for p in entry["permissions"])
    if set(doc["roles"]) - {r.value for r in Role}:
        raise ValueError("roles.json names a role that does not exist")
    return RoleMatrix(grants)
