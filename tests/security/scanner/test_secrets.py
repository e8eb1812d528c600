"""Hard-coded secrets in code and in plain parameters, pointing to the secrets store."""

from stockade.security.scanner.bundle import SourceFile
from stockade.security.scanner.secrets import SECRET_STORE_HINT, scan_code_secrets, scan_parameter_secrets

AWS_KEY = "AKIA" + "IOSFODNN7EXAMPLE"
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
    assert code_findings(tight, f'AWS = "{AWS_KEY}"\n') == []


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
