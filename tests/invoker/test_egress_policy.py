"""Egress policy: grant parsing, the presets data file, and the address checks the proxy relies on."""

from __future__ import annotations

import ipaddress
import json

import pytest

from stockade.invoker.egress_policy import (
    EGRESS_DATA_PATH,
    EgressPolicyError,
    PortSet,
    load_egress_data,
    normalize_address,
    parse_egress,
    parse_host,
)

DATA = load_egress_data()
OPENWHISK_HOSTED = (
    "21, 22, 25, 53, 80, 123, 143, 200-299, 389, 443, 445, 465, 587, 636, 1433, 2000-2999, 3000, 3306, 4242, "
    "4317, 4343, 5400, 5432, 5671, 5672, 6061, 6062, 6379, 6380, 6651, 8000, 8020, 8080, 8085, 8088, 8089, 8300, "
    "8500, 8600, 9090, 9092, 9093, 9094, 9096-9352, 9354, 10000-20000, 27016, 27017, 27018, 27019, 30303, 50010, "
    "60020"
)


def ip(text):
    return ipaddress.ip_address(text)


def policy(*grants):
    return parse_egress(grants, DATA)


# -- parsing ------------------------------------------------------------------------------------


def test_no_grants_is_an_empty_policy():
    assert policy().is_empty


@pytest.mark.parametrize(
    ("text", "inside", "outside"),
    [
        ("443", [443], [442, 444]),
        ("8000-8100", [8000, 8050, 8100], [7999, 8101]),
        ("80,443", [80, 443], [81, 8080]),
        ("*", [1, 65535], [0, 65536]),
    ],
)
def test_port_sets(text, inside, outside):
    ports = PortSet.parse(text)
    assert all(p in ports for p in inside)
    assert not any(p in ports for p in outside)


@pytest.mark.parametrize("text", ["", "0", "65536", "10-5", "http", "80;443", "1-2-3", "-1", "443,"])
def test_bad_port_sets_are_refused(text):
    with pytest.raises(EgressPolicyError):
        PortSet.parse(text)


def test_grant_kinds():
    parsed = policy(
        "api.example.com:443",
        "*.example.org:80,443",
        "*:8080",
        "203.0.113.7:443",
        "10.213.0.0/16:5432",
        "[2001:db8::1]:443",
        "[fd00:1::/64]:443",
        "preset:web",
    )
    assert [(r.kind, r.name) for r in parsed.hosts] == [
        ("exact", "api.example.com"),
        ("suffix", "example.org"),
        ("any", ""),
        ("any", ""),
    ]
    assert [str(r.network) for r in parsed.networks] == [
        "203.0.113.7/32",
        "10.213.0.0/16",
        "2001:db8::1/128",
        "fd00:1::/64",
    ]


def test_host_names_are_normalised():
    parsed = policy("API.Example.COM.:443")
    assert parsed.hosts[0].name == "api.example.com"


@pytest.mark.parametrize(
    "grant",
    [
        "api.example.com",  # no port
        "api.example.com:",  # empty port
        "2001:db8::1:443",  # IPv6 without brackets
        "[2001:db8::1]443",
        "*.10.0.0.1:80",  # wildcard over an address
        "exa mple.com:80",
        "-bad.example.com:80",
        "ex@mple.com:80",
        "10.0.0.0/33:80",
        "10.0.0.1/8:80",  # host bits set
        "127.1:80",  # numeric shorthand
        "2130706433:80",
        "0x7f.0.0.1:80",
        "preset:nope",
        "[fe80::1%eth0]:80",
        "a" * 64 + ".example.com:80",
        ":80",
    ],
)
def test_malformed_grants_are_refused(grant):
    with pytest.raises(EgressPolicyError):
        policy(grant)


def test_unknown_preset_lists_the_known_ones():
    with pytest.raises(EgressPolicyError, match="preset:openwhisk-hosted"):
        policy("preset:nope")


def test_too_many_grants_are_refused():
    with pytest.raises(EgressPolicyError, match="at most"):
        policy(*[f"h{i}.example.com:443" for i in range(300)])


def test_openwhisk_hosted_preset_is_exactly_the_reference_list():
    preset = DATA.presets["openwhisk-hosted"]
    expected = PortSet.parse(OPENWHISK_HOSTED.replace(" ", ""))
    assert preset.ports == expected
    allowed = {p for p in range(1, 65536) if p in preset.ports}
    assert len(allowed) == len({p for p in range(1, 65536) if p in expected})
    assert {22, 443, 9096, 9352, 10000, 20000, 60020} <= allowed
    assert not {23, 8443, 9095, 9353, 20001, 65535} & allowed


# -- the data file ------------------------------------------------------------------------------


def test_every_data_entry_has_a_reason():
    raw = json.loads(EGRESS_DATA_PATH.read_text())
    for entry in raw["presets"] + raw["blocked_networks"]:
        assert entry["reason"].strip()


@pytest.mark.parametrize(
    ("mutation", "message"),
    [
        (lambda d: d.update(extra=1), "unknown keys"),
        (lambda d: d["presets"][0].pop("reason"), "reason"),
        (lambda d: d["presets"][0].update(hosts="example.com"), "hosts"),
        (lambda d: d["presets"][0].update(ports=[]), "ports"),
        (lambda d: d["presets"][0].update(ports=["70000"]), "outside"),
        (lambda d: d["presets"].append(dict(d["presets"][0])), "repeated"),
        (lambda d: d["blocked_networks"][0].update(cidr="10.0.0.1/8"), "host bits"),
        (lambda d: d["blocked_networks"][0].pop("kind"), "kind"),
        (lambda d: d.update(blocked_networks=[]), "must not be empty"),
        (lambda d: d.pop("description"), "description"),
    ],
)
def test_malformed_data_files_are_refused(tmp_path, mutation, message):
    raw = json.loads(EGRESS_DATA_PATH.read_text())
    mutation(raw)
    path = tmp_path / "egress.json"
    path.write_text(json.dumps(raw))
    with pytest.raises(EgressPolicyError, match=message):
        load_egress_data(path)


def test_unreadable_data_file_is_refused(tmp_path):
    (tmp_path / "egress.json").write_text("{not json")
    with pytest.raises(EgressPolicyError, match="cannot read"):
        load_egress_data(tmp_path / "egress.json")


# Loopback, private, link-local, reserved, documentation, multicast and unspecified addresses (a
# superset of what Python's ipaddress calls non-global): every one must be blocked by the data file.
SPECIAL = [
    "0.0.0.0",  # noqa: S104 - an address to check, not one to bind
    "0.1.2.3",
    "10.0.0.1",
    "100.64.0.1",
    "127.0.0.1",
    "127.255.255.254",
    "169.254.169.254",
    "172.16.0.1",
    "172.31.255.255",
    "192.0.0.8",
    "192.0.2.1",
    "192.168.1.1",
    "198.18.0.1",
    "198.51.100.1",
    "203.0.113.1",
    "224.0.0.1",
    "239.255.255.250",
    "240.0.0.1",
    "255.255.255.255",
    "::",
    "::1",
    "::ffff:127.0.0.1",
    "100::1",
    "2001:db8::1",
    "2001:2::1",
    "fc00::1",
    "fd00:ec2::254",
    "fe80::1",
    "fec0::1",
    "ff02::1",
]


@pytest.mark.parametrize("text", SPECIAL)
def test_every_special_address_is_blocked(text):
    address = ip(text)
    assert DATA.blocked_range(normalize_address(address)) is not None


@pytest.mark.parametrize("text", ["93.184.216.34", "1.1.1.1", "2606:4700:4700::1111", "8.8.8.8"])
def test_public_addresses_are_not_blocked(text):
    assert DATA.blocked_range(ip(text)) is None


def test_the_most_specific_blocked_range_names_the_address():
    assert DATA.blocked_range(ip("::1")).kind == "loopback"
    assert DATA.blocked_range(ip("169.254.169.254")).kind == "link-local"


# -- hosts --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Example.COM", "example.com"),
        ("example.com.", "example.com"),
        ("127.0.0.1", ip("127.0.0.1")),
        ("[::1]", ip("::1")),
        ("::ffff:169.254.169.254", ip("169.254.169.254")),
        ("[::ffff:7f00:1]", ip("127.0.0.1")),
    ],
)
def test_parse_host(text, expected):
    assert parse_host(text) == expected


@pytest.mark.parametrize(
    "text", ["", "127.1", "2130706433", "0177.0.0.1", "0x7f000001", "a..b", "é.example", "fe80::1%lo"]
)
def test_parse_host_refuses_ambiguous_or_invalid_hosts(text):
    with pytest.raises(EgressPolicyError):
        parse_host(text)


# -- decisions ----------------------------------------------------------------------------------


def test_exact_name_needs_the_port():
    rules = policy("api.example.com:443")
    assert rules.check_destination("api.example.com", 443)[1] is None
    assert rules.check_destination("API.example.com", 443)[1] is None
    assert rules.check_destination("api.example.com", 22)[1].code == "port_not_allowed"
    assert rules.check_destination("other.example.com", 443)[1].code == "host_not_allowed"


def test_suffix_matches_subdomains_only():
    rules = policy("*.example.com:443")
    assert rules.check_destination("a.example.com", 443)[1] is None
    assert rules.check_destination("a.b.example.com", 443)[1] is None
    assert rules.check_destination("example.com", 443)[1].code == "host_not_allowed"
    assert rules.check_destination("evilexample.com", 443)[1].code == "host_not_allowed"
    assert rules.check_destination("example.com.evil.net", 443)[1].code == "host_not_allowed"


def test_cidr_only_policy_never_lets_a_name_be_resolved():
    """Names must be granted by name: otherwise any name would reach the host's resolver (a DNS tunnel)."""
    rules = policy("10.213.0.0/16:80")
    assert rules.check_destination("anything.attacker.example", 80)[1].code == "host_not_allowed"


def test_granted_name_resolving_to_loopback_or_metadata_is_blocked():
    rules = policy("api.example.com:443")
    for text in (
        "127.0.0.1",
        "169.254.169.254",
        "10.0.0.5",
        "::1",
        "::ffff:127.0.0.1",
        "fe80::1",
        "fd00::1",
        "0.0.0.0",  # noqa: S104 - an address to check, not one to bind
    ):
        denial = rules.check_address(ip(text), 443, by_name=True)
        assert denial is not None, text
        assert denial.code == "address_blocked", text
    assert rules.check_address(ip("93.184.216.34"), 443, by_name=True) is None


def test_a_cidr_grant_inside_a_blocked_range_unlocks_it():
    rules = policy("db.internal:5432", "10.213.0.0/16:5432")
    assert rules.check_address(ip("10.213.4.5"), 5432, by_name=True) is None
    assert rules.check_address(ip("10.213.4.5"), 5433, by_name=True).code == "port_not_allowed"
    assert rules.check_address(ip("10.214.0.1"), 5432, by_name=True).code == "address_blocked"


def test_broad_cidrs_never_unlock_blocked_ranges():
    rules = policy("0.0.0.0/0:443", "[::/0]:443", "10.0.0.0/7:443")
    for text in ("127.0.0.1", "169.254.169.254", "10.1.2.3", "::1", "fe80::1"):
        assert rules.check_address(ip(text), 443, by_name=False).code == "address_blocked", text
    assert rules.check_address(ip("93.184.216.34"), 443, by_name=False) is None


def test_metadata_only_when_named_exactly():
    rules = policy("169.254.169.254/32:80")
    assert rules.check_address(ip("169.254.169.254"), 80, by_name=False) is None
    assert rules.check_address(ip("169.254.169.253"), 80, by_name=False).code == "address_blocked"


def test_raw_addresses_need_an_address_grant_or_any_host():
    rules = policy("api.example.com:443", "198.51.100.0/24:443")
    assert rules.check_address(ip("93.184.216.34"), 443, by_name=False).code == "address_not_allowed"
    # 198.51.100.0/24 is a blocked documentation range; the grant lies inside it, so it is unlocked.
    assert rules.check_address(ip("198.51.100.9"), 443, by_name=False) is None
    assert rules.check_address(ip("198.51.100.9"), 80, by_name=False).code == "port_not_allowed"
    public = policy("1.1.1.0/24:443")
    assert public.check_address(ip("1.1.1.1"), 443, by_name=False) is None
    assert public.check_address(ip("1.1.1.1"), 80, by_name=False).code == "port_not_allowed"
    anyhost = policy("*:443")
    assert anyhost.check_address(ip("93.184.216.34"), 443, by_name=False) is None
    assert anyhost.check_address(ip("93.184.216.34"), 80, by_name=False).code == "address_not_allowed"


def test_ipv4_mapped_addresses_are_checked_as_ipv4():
    rules = policy("10.213.0.0/16:80")
    assert rules.check_address(ip("::ffff:10.213.0.2"), 80, by_name=False) is None
    assert rules.check_address(ip("::ffff:127.0.0.1"), 80, by_name=False).code == "address_blocked"


def test_preset_allows_public_hosts_on_its_ports_only():
    rules = policy("preset:openwhisk-hosted")
    assert rules.check_destination("api.example.com", 443)[1] is None
    assert rules.check_destination("api.example.com", 8443)[1].code == "port_not_allowed"
    assert rules.check_address(ip("93.184.216.34"), 5432, by_name=False) is None
    assert rules.check_address(ip("127.0.0.1"), 5432, by_name=False).code == "address_blocked"
    assert rules.check_address(ip("169.254.169.254"), 80, by_name=True).code == "address_blocked"


def test_destination_checks_refuse_bad_hosts_and_ports():
    rules = policy("*:*")
    assert rules.check_destination("2130706433", 80)[1].code == "bad_destination"
    assert rules.check_destination("a b", 80)[1].code == "bad_destination"
    assert rules.check_destination("example.com", 0)[1].code == "bad_destination"
    target, denial = rules.check_destination("[::ffff:169.254.169.254]", 80)
    assert denial is None
    assert target == ip("169.254.169.254")
