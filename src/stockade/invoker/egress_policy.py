"""Egress policy: an action's ``policy.egress`` grants, parsed into rules the allowlist proxy checks.

Grant forms (a port part is always required; PORTS is ``443``, ``8000-8100``, ``80,443`` or ``*``)::

    api.example.com:443          an exact host name
    *.example.com:443            any name below example.com (not example.com itself)
    *:80,443                     any public host (names and addresses)
    203.0.113.7:443              one IPv4 address;  [2001:db8::1]:443 for IPv6
    10.213.0.0/16:5432           a CIDR;  [fd00:1::/64]:443 for IPv6
    preset:openwhisk-hosted      a named preset from policies/egress.json

The proxy decides in two phases (``check_destination`` before any DNS lookup, ``check_address`` on
every address the host resolved), so:

* Names must be granted by name: a name no host rule matches is refused *before* it is resolved,
  which keeps the host's resolver from becoming a DNS tunnel for arbitrary names.
* The address the connection will actually use is checked: a granted name that resolves to
  loopback, link-local (169.254.169.254), private, multicast or other blocked ranges
  (``blocked_networks`` in the data file) is refused unless a CIDR grant lying inside that range
  names it. A broad CIDR such as ``0.0.0.0/0`` never unlocks a blocked range.
* IPv4-mapped IPv6 addresses are checked as the IPv4 address they carry.
* Numeric host spellings that are not a plain dotted quad (``2130706433``, ``127.1``, ``0x7f.0.0.1``)
  are refused: resolvers read them as addresses, this policy would read them as names.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal, final

__all__ = [
    "EGRESS_DATA_PATH",
    "Address",
    "BlockedNetwork",
    "Denial",
    "DenialCode",
    "EgressData",
    "EgressPolicy",
    "EgressPolicyError",
    "HostRule",
    "NetworkRule",
    "PortSet",
    "Preset",
    "load_egress_data",
    "normalize_address",
    "parse_egress",
    "parse_host",
]

EGRESS_DATA_PATH: Final = Path(__file__).resolve().parent / "policies" / "egress.json"

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
DenialCode = Literal[
    "bad_destination",
    "host_not_allowed",
    "port_not_allowed",
    "address_blocked",
    "address_not_allowed",
    "connection_limit",
    "byte_limit",
]
HostKind = Literal["exact", "suffix", "any"]

_LABEL = re.compile(r"\A[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?\Z")
_NUMERIC_LABEL = re.compile(r"\A(?:0x[0-9a-f]*|[0-9]+)\Z")
_PORT_ITEM = re.compile(r"\A([0-9]{1,5})(?:-([0-9]{1,5}))?\Z")
_PRESET_PREFIX = "preset:"
_MAX_GRANTS = 256


class EgressPolicyError(ValueError):
    """A grant or the data file is malformed; nothing is allowed rather than a partial policy."""


@final
@dataclass(frozen=True, slots=True)
class PortSet:
    """Inclusive TCP port ranges."""

    ranges: tuple[tuple[int, int], ...]

    def __contains__(self, port: object) -> bool:
        return isinstance(port, int) and any(low <= port <= high for low, high in self.ranges)

    @classmethod
    def parse(cls, text: str) -> PortSet:
        """``443``, ``8000-8100``, ``80,443`` or ``*`` (every port)."""
        if text == "*":
            return cls(((1, 65535),))
        ranges = []
        for item in text.split(","):
            match = _PORT_ITEM.match(item.strip())
            if match is None:
                raise EgressPolicyError(f"'{text}' is not a port list (443, 8000-8100, 80,443 or *)")
            low = int(match.group(1))
            high = int(match.group(2) or low)
            if not 1 <= low <= high <= 65535:
                raise EgressPolicyError(f"port range '{item.strip()}' is outside 1-65535 or reversed")
            ranges.append((low, high))
        return cls(tuple(sorted(ranges)))


@final
@dataclass(frozen=True, slots=True)
class HostRule:
    """Names (exact, ``*.suffix`` or any) on ``ports``; ``grant`` is the text it came from."""

    kind: HostKind
    name: str
    ports: PortSet
    grant: str

    def matches_name(self, host: str) -> bool:
        """True when the (normalised) host name is one this rule covers."""
        if self.kind == "any":
            return True
        if self.kind == "suffix":
            return host.endswith("." + self.name)
        return host == self.name


@final
@dataclass(frozen=True, slots=True)
class NetworkRule:
    """Addresses in ``network`` on ``ports``."""

    network: Network
    ports: PortSet
    grant: str


@final
@dataclass(frozen=True, slots=True)
class BlockedNetwork:
    """A range the proxy refuses unless a CIDR grant inside it names it."""

    network: Network
    kind: str
    reason: str


@final
@dataclass(frozen=True, slots=True)
class Preset:
    """A named grant: any public host on ``ports`` (the only shape presets have so far)."""

    name: str
    ports: PortSet
    reason: str


@final
@dataclass(frozen=True, slots=True)
class EgressData:
    """The validated data file: presets by name and the blocked ranges, most specific first."""

    presets: Mapping[str, Preset]
    blocked: tuple[BlockedNetwork, ...]

    def blocked_range(self, address: Address) -> BlockedNetwork | None:
        """The most specific blocked range holding ``address`` (already normalised), if any."""
        for entry in self.blocked:
            if entry.network.version == address.version and address in entry.network:
                return entry
        return None


@final
@dataclass(frozen=True, slots=True)
class Denial:
    """Why a destination is refused: a stable code for metrics and a sentence for people."""

    code: DenialCode
    reason: str


def _required(entry: Mapping[str, Any], key: str, where: str) -> str:
    value = entry.get(key)
    if not isinstance(value, str) or not value.strip():
        raise EgressPolicyError(f"{where}: '{key}' must be a non-empty string")
    return value


def _check_keys(entry: object, allowed: set[str], where: str) -> Mapping[str, Any]:
    if not isinstance(entry, dict):
        raise EgressPolicyError(f"{where} must be an object")
    unknown = set(entry) - allowed
    if unknown:
        raise EgressPolicyError(f"{where}: unknown keys {sorted(unknown)}")
    return entry


def load_egress_data(path: Path = EGRESS_DATA_PATH) -> EgressData:
    """Read and validate the presets and blocked ranges; raises EgressPolicyError on any flaw."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise EgressPolicyError(f"{path.name}: cannot read: {exc}") from exc
    data = _check_keys(raw, {"description", "presets", "blocked_networks"}, path.name)
    _required(data, "description", path.name)
    presets: dict[str, Preset] = {}
    for i, item in enumerate(data.get("presets") or []):
        where = f"{path.name}: presets[{i}]"
        entry = _check_keys(item, {"name", "hosts", "ports", "reason"}, where)
        name = _required(entry, "name", where)
        if not re.fullmatch(r"[a-z0-9][a-z0-9-]*", name) or name in presets:
            raise EgressPolicyError(f"{where}: name '{name}' is malformed or repeated")
        if entry.get("hosts") != "*":
            raise EgressPolicyError(f"{where}: 'hosts' must be '*' (any public host)")
        ports = entry.get("ports")
        if not isinstance(ports, list) or not ports or not all(isinstance(p, str) for p in ports):
            raise EgressPolicyError(f"{where}: 'ports' must be a non-empty list of strings")
        presets[name] = Preset(name, PortSet.parse(",".join(ports)), _required(entry, "reason", where))
    blocked = []
    for i, item in enumerate(data.get("blocked_networks") or []):
        where = f"{path.name}: blocked_networks[{i}]"
        entry = _check_keys(item, {"cidr", "kind", "reason"}, where)
        try:
            network = ipaddress.ip_network(_required(entry, "cidr", where))
        except ValueError as exc:
            raise EgressPolicyError(f"{where}: {exc}") from exc
        blocked.append(BlockedNetwork(network, _required(entry, "kind", where), _required(entry, "reason", where)))
    if not blocked:
        raise EgressPolicyError(f"{path.name}: blocked_networks must not be empty")
    blocked.sort(key=lambda b: b.network.prefixlen, reverse=True)
    return EgressData(presets, tuple(blocked))


def normalize_address(address: Address) -> Address:
    """IPv4-mapped (``::ffff:a.b.c.d``) addresses become the IPv4 address; others are returned as they are."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def parse_host(text: str) -> str | Address:
    """A destination host as a lower-case name or a normalised address; EgressPolicyError otherwise.

    IPv6 literals may come with or without brackets. Names are ASCII LDH labels (plus ``_``); a name
    whose last label is numeric is refused, since resolvers would read it as an address.
    """
    host = text.strip()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if "%" in host:
        raise EgressPolicyError(f"'{text}' carries an IPv6 zone, which is never a valid destination")
    try:
        return normalize_address(ipaddress.ip_address(host))
    except ValueError:
        pass
    name = host.lower().removesuffix(".")
    labels = name.split(".")
    if not name or len(name) > 253 or not all(_LABEL.match(label) for label in labels):
        raise EgressPolicyError(f"'{text}' is not a valid host name or address")
    if _NUMERIC_LABEL.match(labels[-1]):
        raise EgressPolicyError(f"'{text}' looks numeric but is not a plain address; write the address itself")
    return name


def _split_grant(grant: str) -> tuple[str, str]:
    if grant.startswith("["):
        end = grant.find("]")
        if end < 0 or grant[end + 1 : end + 2] != ":":
            raise EgressPolicyError(f"egress grant '{grant}': write IPv6 as [address]:ports")
        return grant[1:end], grant[end + 2 :]
    host, sep, ports = grant.rpartition(":")
    if ":" in host:
        raise EgressPolicyError(f"egress grant '{grant}': write IPv6 as [address]:ports")
    if not sep or not host:
        raise EgressPolicyError(f"egress grant '{grant}' needs a port part, as in api.example.com:443")
    return host, ports


def _parse_grant(grant: str, data: EgressData) -> HostRule | NetworkRule:
    if grant.startswith(_PRESET_PREFIX):
        preset = data.presets.get(grant[len(_PRESET_PREFIX) :])
        if preset is None:
            known = ", ".join(_PRESET_PREFIX + name for name in sorted(data.presets))
            raise EgressPolicyError(f"egress grant '{grant}' names no preset (known: {known})")
        return HostRule("any", "", preset.ports, grant)
    host, port_text = _split_grant(grant)
    ports = PortSet.parse(port_text)
    if host == "*":
        return HostRule("any", "", ports, grant)
    if "/" in host:
        try:
            network = ipaddress.ip_network(host, strict=True)
        except ValueError as exc:
            raise EgressPolicyError(f"egress grant '{grant}': {exc}") from exc
        return NetworkRule(network, ports, grant)
    if host.startswith("*."):
        suffix = parse_host(host[2:])
        if not isinstance(suffix, str):
            raise EgressPolicyError(f"egress grant '{grant}': a wildcard needs a domain, not an address")
        return HostRule("suffix", suffix, ports, grant)
    try:
        target = parse_host(host)
    except EgressPolicyError as exc:
        raise EgressPolicyError(f"egress grant '{grant}': {exc}") from exc
    if isinstance(target, str):
        return HostRule("exact", target, ports, grant)
    return NetworkRule(ipaddress.ip_network(target), ports, grant)


@final
@dataclass(frozen=True, slots=True)
class EgressPolicy:
    """One action's egress rules. Empty = no egress at all (no proxy socket, empty network namespace)."""

    hosts: tuple[HostRule, ...] = ()
    networks: tuple[NetworkRule, ...] = ()
    data: EgressData | None = None

    @property
    def is_empty(self) -> bool:
        """True when nothing is granted."""
        return not self.hosts and not self.networks

    def check_destination(self, host: str, port: int) -> tuple[str | Address, Denial | None]:
        """Phase 1, before any DNS lookup: the parsed host, and a Denial when it is refused already."""
        try:
            target = parse_host(host)
        except EgressPolicyError as exc:
            return host, Denial("bad_destination", str(exc))
        if not 1 <= port <= 65535:
            return target, Denial("bad_destination", f"port {port} is outside 1-65535")
        if not isinstance(target, str):
            return target, None  # addresses are decided by check_address
        rules = [rule for rule in self.hosts if rule.matches_name(target)]
        if not rules:
            return target, Denial("host_not_allowed", f"host {target} is not granted (grant it by name)")
        if not any(port in rule.ports for rule in rules):
            return target, Denial("port_not_allowed", f"port {port} is not granted for {target}")
        return target, None

    def check_address(self, address: Address, port: int, *, by_name: bool) -> Denial | None:
        """Phase 2, on the address the proxy would connect to; None when allowed.

        ``by_name``: the destination was a name that passed ``check_destination`` (so a host rule
        already granted the name and port); otherwise it was an address literal.
        Precondition: ``self.data`` is set (``parse_egress`` sets it).
        """
        assert self.data is not None
        address = normalize_address(address)
        blocked = self.data.blocked_range(address)
        if blocked is not None:
            unlocking = [
                rule
                for rule in self.networks
                if rule.network.version == address.version
                and address in rule.network
                and rule.network.subnet_of(blocked.network)  # type: ignore[arg-type]
            ]
            if any(port in rule.ports for rule in unlocking):
                return None
            if unlocking:
                return Denial("port_not_allowed", f"port {port} is not granted for {address}")
            return Denial(
                "address_blocked", f"{address} is {blocked.kind} ({blocked.network}); only a CIDR grant inside it may"
            )
        if by_name:
            return None
        if any(rule.kind == "any" and port in rule.ports for rule in self.hosts):
            return None
        in_network = [rule for rule in self.networks if address in rule.network]
        if any(port in rule.ports for rule in in_network):
            return None
        if in_network:
            return Denial("port_not_allowed", f"port {port} is not granted for {address}")
        return Denial("address_not_allowed", f"address {address} is not granted")


def parse_egress(grants: Iterable[str], data: EgressData) -> EgressPolicy:
    """The rules of ``grants`` (the ``policy.egress`` list); raises EgressPolicyError on any bad grant."""
    hosts: list[HostRule] = []
    networks: list[NetworkRule] = []
    for count, grant in enumerate(grants, 1):
        if count > _MAX_GRANTS:
            raise EgressPolicyError(f"at most {_MAX_GRANTS} egress grants")
        rule = _parse_grant(grant.strip(), data)
        if isinstance(rule, HostRule):
            hosts.append(rule)
        else:
            networks.append(rule)
    return EgressPolicy(tuple(hosts), tuple(networks), data)
