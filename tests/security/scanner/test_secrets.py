"""Hard-coded secrets in code and in plain parameters, pointing to the secrets store."""

from stockade.security.scanner.bundle import SourceFile
from stockade.security.scanner.secrets import SECRET_STORE_HINT, scan_code_secrets, scan_parameter_secrets

AWS_KEY = "AKIA" + "Q3ZK7M2XW4PLR9TB"  # not AWS's documentation example, which is a placeholder
GITHUB_TOKEN = "ghp_" + "wWPw5k4aXcaT4fNP0UcnZwJUVFk6LO0pINUx"
PRIVATE_KEY = "-----BEGIN RSA " + "PRIVATE KEY-----"


def code_findings(rules, text, path="__main__.py"):
    return scan_code_secrets([SourceFile(path, text.encode())], rules)


def test_keys_and_tokens_in_code_are_found_without_repeating_them(rules):
    findings = code_findings(
        rules, f'AWS = "{AWS_KEY}"\npassword = "hunter2-is-not-secret"\nKEY = """{PRIVATE_KEY}\n"""\n'
    )
    assert {(f.rule_id, f.line) for f in findings} >= {
        ("secret.hardcoded", 1),
        ("secret.hardcoded", 2),
        ("secret.hardcoded", 3),
    }
    assert all(SECRET_STORE_HINT in f.message and AWS_KEY not in f.message for f in findings)


def test_allowlist_pragmas_in_scanned_code_are_not_honoured(rules):
    findings = code_findings(rules, f'AWS = "{AWS_KEY}"  # pragma: allowlist secret\n')
    assert [f.rule_id for f in findings] == ["secret.hardcoded"]


def test_entropy_only_hits_warn_and_lock_files_and_long_lines_are_skipped(rules, small_limits):
    findings = code_findings(
        rules, 'token_hint = "c2VjcmV0LXZhbHVlLXRoYXQtaXMtbG9uZy1lbm91Z2gtdG8tdHJpZ2dlcg=="\n', path="a.js"
    )
    assert {f.rule_id for f in findings} <= {"secret.high-entropy", "secret.hardcoded"}
    assert code_findings(rules, f'"{AWS_KEY}"', path="package-lock.json") == []
    tight = small_limits(max_line_bytes=10)
    # Long lines skip detect-secrets; the known-format pass (linear regexes) still reads them.
    assert [f.source for f in code_findings(tight, f'AWS = "{AWS_KEY}"\n')] == ["tokens:aws-access-key-id"]


def test_credential_parameters_are_found_by_name_and_by_format(rules):
    findings = scan_parameter_secrets(
        {
            "db_password": "correct horse battery staple",
            "github": GITHUB_TOKEN,
            "token": "short",
            "api_key": "${API_KEY}",
            "greeting": "hello world, how are you",
            "count": 3,
        },
        rules,
    )
    flagged = {f.message.split("'")[1] for f in findings}
    assert flagged == {"db_password", "github"}
    assert all(f.rule_id == "secret.plain-parameter" and SECRET_STORE_HINT in f.message for f in findings)
    assert all(GITHUB_TOKEN not in f.message for f in findings)


def test_no_string_parameters_no_findings(rules):
    assert scan_parameter_secrets({"n": 1, "flag": True}, rules) == []


# Issue 13: where real code puts secrets.

AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/" + "bPxRfiCYzQ3ZK7M2XW"
SLACK = "xoxb-" + "123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx"


def _blocking(findings):
    return [f for f in findings if f.severity.value in ("critical", "high") and f.rule_id.startswith("secret.")]


def test_keys_passed_as_call_and_keyword_arguments_are_found(rules):
    code = (
        f'import boto3\ns3 = boto3.client("s3", aws_access_key_id="{AWS_KEY}", aws_secret_access_key="{AWS_SECRET}")\n'
    )
    sources = {f.source for f in _blocking(code_findings(rules, code))}
    assert sources >= {"tokens:aws-access-key-id", "tokens:aws-secret-access-key"}
    assert _blocking(code_findings(rules, f'r = requests.get(url, auth=("{GITHUB_TOKEN}", ""))\n'))


def test_wrapped_literals_dicts_and_headers_are_found(rules):
    for code in (
        f'TOKEN = str("{GITHUB_TOKEN}")\n',
        f'CONFIG = {{"token": "{GITHUB_TOKEN}"}}\n',
        f'headers = {{"Authorization": "Bearer {SLACK}"}}\n',
    ):
        assert _blocking(code_findings(rules, code)), code


def test_base64_encoded_tokens_are_found_at_their_own_severity(rules):
    import base64

    encoded = base64.b64encode(GITHUB_TOKEN.encode()).decode()
    findings = _blocking(code_findings(rules, f'BLOB = "{encoded}"\n'))
    assert [(f.rule_id, f.severity.value, f.source) for f in findings] == [
        ("secret.hardcoded", "high", "tokens:github-token")
    ]
    assert "base64" in findings[0].message
    assert encoded not in findings[0].message


def test_joined_pieces_are_found(rules):
    a, b = GITHUB_TOKEN[:20], GITHUB_TOKEN[20:]
    assert _blocking(code_findings(rules, f'T = "{a}" + "{b}"\n'))
    assert _blocking(code_findings(rules, f'T = (\n    "{a}"\n    "{b}"\n)\n'))
    assert _blocking(code_findings(rules, f'T = "".join(["{a}", "{b}"])\n'))
    assert _blocking(code_findings(rules, f'const t = "{a}" + "{b}";\n', path="index.js"))


def test_env_style_files_in_zips_are_read(rules):
    from stockade.security.scanner.bundle import bundle_from_code

    zipped = zip_b64({"__main__.py": "def main(a):\n    return a\n", "config/.env.production": f"TOKEN={SLACK}\n"})
    bundle = bundle_from_code(zipped, binary=True, family="python", rules=rules)
    findings = _blocking(scan_code_secrets(bundle.sources(), rules))
    assert [(f.file, f.source) for f in findings] == [("config/.env.production", "tokens:slack-token")]


def test_inline_suppression_needs_a_reason_and_stays_on_record(rules):
    kept = code_findings(rules, f'T = "{GITHUB_TOKEN}"  # stockade: allow-secret test fixture, revoked token\n')
    assert [(f.rule_id, f.severity.value) for f in kept] == [("secret.suppressed", "info")]
    assert "test fixture, revoked token" in kept[0].message
    bare = code_findings(rules, f'T = "{GITHUB_TOKEN}"  # stockade: allow-secret\n')
    assert _blocking(bare)


def test_known_formats_in_plain_parameters_are_found_encoded_too(rules):
    import base64

    found = scan_parameter_secrets({"blob": base64.b64encode(SLACK.encode()).decode()}, rules)
    assert [(f.rule_id, f.source) for f in found] == [("secret.plain-parameter", "tokens:slack-token")]


def zip_b64(files):
    import base64
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return base64.b64encode(buffer.getvalue()).decode()
