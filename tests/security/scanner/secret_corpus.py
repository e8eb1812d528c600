"""A labelled corpus for hard-coded secret detection, and its scoring (used by a test and by
``benchmarks/bench_secrets.py``).

Positives: every known token format (cloud, VCS, chat, payment, registries, AI providers,
private keys, JWTs, URL credentials) placed where real code puts it: assignments, call and
keyword arguments, wrapped literals, dictionaries, headers, env-style files, JavaScript, base64,
and pieces joined by ``+`` or across lines. The values are generated (seeded) in each provider's
format, so no real secret is stored here. Negatives: realistic false positives (hashes, commit
ids, UUIDs, integrity strings, encoded images, placeholders, environment reads, documentation
examples, test fixtures suppressed inline with a reason).
"""

from __future__ import annotations

import base64
import json
import random
import string
import uuid
from collections.abc import Callable
from dataclasses import dataclass

ALNUM = string.ascii_letters + string.digits
UPPER_DIGITS = string.ascii_uppercase + string.digits
B64 = ALNUM + "+/"
URLSAFE = ALNUM + "-_"
HEX = "0123456789abcdef"


@dataclass(frozen=True)
class Sample:
    """One file of one bundle; ``format`` is the expected format id, None for a negative."""

    name: str
    path: str
    text: str
    format: str | None


def _pick(rng: random.Random, alphabet: str, n: int) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


def _jwt(rng: random.Random) -> str:
    def enc(doc: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(doc).encode()).decode().rstrip("=")

    payload = {"sub": _pick(rng, HEX, 12), "iat": rng.randint(1_600_000_000, 1_800_000_000), "role": "admin"}
    return f"{enc({'alg': 'HS256', 'typ': 'JWT'})}.{enc(payload)}.{_pick(rng, URLSAFE, 43)}"


def _pem(rng: random.Random) -> str:
    body = "\n".join(_pick(rng, B64, 64) for _ in range(8))
    kind = rng.choice(["RSA ", "EC ", "OPENSSH ", ""])
    return f"-----BEGIN {kind}PRIVATE KEY-----\n{body}\n-----END {kind}PRIVATE KEY-----"


# format id → (generator, needs its name nearby)
GENERATORS: dict[str, tuple[Callable[[random.Random], str], bool]] = {
    "aws-access-key-id": (lambda r: r.choice(["AKIA", "ASIA"]) + _pick(r, UPPER_DIGITS, 16), False),
    "aws-secret-access-key": (lambda r: _pick(r, B64, 40), True),
    "gcp-api-key": (lambda r: "AIza" + _pick(r, URLSAFE, 35), False),
    "azure-storage-key": (
        lambda r: (
            "DefaultEndpointsProtocol=https;AccountName=shopdata;AccountKey="
            + _pick(r, B64, 86)
            + "==;EndpointSuffix=core.windows.net"
        ),
        False,
    ),
    "digitalocean-token": (lambda r: "dop_v1_" + _pick(r, HEX, 64), False),
    "hashicorp-vault-token": (lambda r: "hvs." + _pick(r, URLSAFE, 90), False),
    "github-token": (lambda r: r.choice(["ghp_", "gho_", "ghs_", "ghu_"]) + _pick(r, ALNUM, 36), False),
    "github-fine-grained-token": (lambda r: "github_pat_" + _pick(r, ALNUM, 22) + "_" + _pick(r, ALNUM, 59), False),
    "gitlab-token": (lambda r: "glpat-" + _pick(r, URLSAFE, 20), False),
    "bitbucket-app-password": (lambda r: "ATBB" + _pick(r, ALNUM, 32), False),
    "slack-token": (
        lambda r: (
            r.choice(["xoxb-", "xoxp-"])
            + _pick(r, string.digits, 12)
            + "-"
            + _pick(r, string.digits, 13)
            + "-"
            + _pick(r, ALNUM, 24)
        ),
        False,
    ),
    "slack-webhook": (
        lambda r: (
            "https://hooks.slack.com/services/T"
            + _pick(r, UPPER_DIGITS, 8)
            + "/B"
            + _pick(r, UPPER_DIGITS, 10)
            + "/"
            + _pick(r, ALNUM, 24)
        ),
        False,
    ),
    "discord-webhook": (
        lambda r: f"https://discord.com/api/webhooks/{_pick(r, string.digits, 18)}/{_pick(r, URLSAFE, 68)}",
        False,
    ),
    "discord-bot-token": (
        lambda r: r.choice("MNO") + _pick(r, URLSAFE, 23) + "." + _pick(r, URLSAFE, 6) + "." + _pick(r, URLSAFE, 27),
        False,
    ),
    "telegram-bot-token": (lambda r: _pick(r, string.digits, 10) + ":AA" + _pick(r, URLSAFE, 33), False),
    "twilio-api-key": (lambda r: "SK" + _pick(r, HEX, 32), False),
    "sendgrid-key": (lambda r: "SG." + _pick(r, URLSAFE, 22) + "." + _pick(r, URLSAFE, 43), False),
    "mailgun-key": (lambda r: "key-" + _pick(r, HEX, 32), False),
    "stripe-key": (lambda r: r.choice(["sk_live_", "rk_live_", "sk_test_"]) + _pick(r, ALNUM, 24), False),
    "stripe-webhook-secret": (lambda r: "whsec_" + _pick(r, ALNUM, 32), False),
    "square-token": (lambda r: r.choice(["sq0atp-" + _pick(r, URLSAFE, 22), "sq0csp-" + _pick(r, URLSAFE, 43)]), False),
    "braintree-token": (
        lambda r: f"access_token$production${_pick(r, HEX, 16)}${_pick(r, HEX, 32)}",
        False,
    ),
    "shopify-token": (lambda r: r.choice(["shpat_", "shpss_"]) + _pick(r, HEX, 32), False),
    "npm-token": (lambda r: "npm_" + _pick(r, ALNUM, 36), False),
    "pypi-token": (lambda r: "pypi-AgEIcHlwaS5vcmc" + _pick(r, URLSAFE, 70), False),
    "openai-key": (lambda r: "sk-proj-" + _pick(r, URLSAFE, 24) + "T3BlbkFJ" + _pick(r, URLSAFE, 24), False),
    "anthropic-key": (lambda r: "sk-ant-api03-" + _pick(r, URLSAFE, 93) + "AA", False),
    "jwt": (_jwt, False),
    "url-credentials": (
        lambda r: f"postgresql://app:{_pick(r, ALNUM, 16)}@db.internal:5432/orders",
        False,
    ),
}

FAMILIES = {
    "cloud": ["aws-access-key-id", "aws-secret-access-key", "gcp-api-key", "azure-storage-key", "digitalocean-token",
              "hashicorp-vault-token"],
    "vcs": ["github-token", "github-fine-grained-token", "gitlab-token", "bitbucket-app-password"],
    "chat": ["slack-token", "slack-webhook", "discord-webhook", "discord-bot-token", "telegram-bot-token",
             "twilio-api-key", "sendgrid-key", "mailgun-key"],
    "payment": ["stripe-key", "stripe-webhook-secret", "square-token", "braintree-token", "shopify-token"],
    "registry": ["npm-token", "pypi-token"],
    "ai": ["openai-key", "anthropic-key"],
    "token": ["jwt", "url-credentials"],
    "private-key": ["private-key"],
}  # fmt: skip


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _split(secret: str) -> tuple[str, str]:
    half = len(secret) // 2
    return secret[:half], secret[half:]


# Where code puts a secret: (context id, path, template). {s} the secret, {a}/{b} its halves,
# {e} its base64 encoding.
CONTEXTS: list[tuple[str, str, str]] = [
    ("assignment", "__main__.py", 'TOKEN = "{s}"\n'),
    ("keyword-argument", "__main__.py", 'client = sdk.Client(region="eu-west-1", credential="{s}")\n'),
    ("positional-argument", "__main__.py", 'response = call_service("{s}", timeout=5)\n'),
    ("wrapped-literal", "__main__.py", 'TOKEN = str("{s}")\n'),
    (
        "dictionary",
        "__main__.py",
        'CONFIG = {{"endpoint": "https://api.internal", "credential": "{s}", "retries": 3}}\n',
    ),
    ("header", "__main__.py", 'headers = {{"Authorization": "Bearer {s}", "Accept": "application/json"}}\n'),
    ("env-file", ".env", "LOG_LEVEL=info\nSERVICE_CREDENTIAL={s}\nREGION=eu-west-1\n"),
    ("base64", "__main__.py", 'BLOB = "{e}"\nTOKEN = base64.b64decode(BLOB).decode()\n'),
    ("concatenation", "__main__.py", 'TOKEN = "{a}" + "{b}"\n'),
    ("multi-line-concatenation", "__main__.py", 'TOKEN = (\n    "{a}"\n    "{b}"\n)\n'),
    ("javascript-option", "index.js", 'const client = new Client({{ region: "eu", credential: "{s}" }});\n'),
    ("javascript-concatenation", "index.js", 'const token = "{a}" + "{b}";\n'),
]
# Formats recognised only next to their name get contexts that name them.
NAMED_CONTEXTS: list[tuple[str, str, str]] = [
    ("keyword-argument", "__main__.py",
     's3 = boto3.client("s3", aws_access_key_id=KEY_ID, aws_secret_access_key="{s}")\n'),
    ("dictionary", "__main__.py", 'CREDENTIALS = {{"aws_secret_access_key": "{s}", "region": "eu-west-1"}}\n'),
    ("env-file", ".env", "AWS_REGION=eu-west-1\nAWS_SECRET_ACCESS_KEY={s}\n"),
    ("wrapped-literal", "__main__.py", 'AWS_SECRET_ACCESS_KEY = str("{s}")\n'),
]  # fmt: skip
PEM_CONTEXTS: list[tuple[str, str, str]] = [
    ("pem-file", "keys/service.pem", "{s}\n"),
    ("triple-quoted", "__main__.py", 'KEY = """{s}"""\n'),
    ("env-file", ".env", "SIGNING_KEY={n}\n"),
    ("base64", "__main__.py", 'KEY = base64.b64decode("{e}")\n'),
]

NEGATIVES: list[tuple[str, str, str]] = [
    ("sha256", "__main__.py", 'EXPECTED_SHA256 = "{hex64}"\n'),
    ("git-commit", "__main__.py", 'BUILD_COMMIT = "{hex40}"\n'),
    ("uuid", "__main__.py", 'REQUEST_NAMESPACE = "{uuid}"\n'),
    ("npm-integrity", "deps.json", '{{"integrity": "sha512-{b64_88}=="}}\n'),
    ("encoded-image", "__main__.py", 'ICON = "{png}"\n'),
    ("env-read", "__main__.py", 'TOKEN = os.environ["GITHUB_TOKEN"]\nKEY = os.getenv("AWS_SECRET_ACCESS_KEY")\n'),
    ("secret-store", "__main__.py", 'def main(args):\n    return connect(args["DB_PASSWORD"], token=args["API_TOKEN"])\n'),
    ("placeholder", "__main__.py", 'API_KEY = "<your-api-key>"\nTOKEN = "${{GITHUB_TOKEN}}"\n'),
    ("docs-placeholder", "README.txt", "Set STRIPE_KEY=sk_live_XXXXXXXXXXXXXXXXXXXXXXXX in your shell.\n"),
    ("aws-docs-example", "__main__.py", 'EXAMPLE_KEY_ID = "AKIAIOSFODNN7EXAMPLE"\n'),
    ("plain-url", "__main__.py", 'BASE = "https://api.example.com/v1/items?page=2"\n'),
    ("dsn-from-env", "__main__.py", 'DSN = "postgresql://app:${{DB_PASSWORD}}@db/app"\n'),
    ("encoded-text", "__main__.py", 'GREETING = "{hello}"\n'),
    ("class-names", "index.js", 'const name = "AbstractSingletonProxyFactoryBeanImplementation";\n'),
    ("version-strings", "requirements.txt", "requests==2.32.3\nurllib3==2.2.3\n"),
    ("fixture-suppressed", "test_parser.py",
     'FIXTURE = "{ghp}"  # stockade: allow-secret test fixture for the token parser, revoked\n'),
    ("fixture-suppressed-js", "fixture.js",
     'const sample = "{stripe}"; // stockade: allow-secret sample from the provider docs, not live\n'),
    ("css-colors", "style.json", '{{"primary": "#1a2b3c", "accent": "#ffcc00"}}\n'),
    ("hash-table", "__main__.py", 'KNOWN = {{"{hex40}": "v1", "{hex64}": "v2"}}\n'),
]  # fmt: skip


def build_corpus(seed: int = 13) -> list[Sample]:
    """The labelled samples (deterministic for a seed)."""
    rng = random.Random(seed)
    samples: list[Sample] = []
    for fmt, (gen, named) in GENERATORS.items():
        for ctx, path, template in NAMED_CONTEXTS if named else CONTEXTS:
            secret = gen(rng)
            a, b = _split(secret)
            text = template.format(s=secret, a=a, b=b, e=_b64(secret))
            samples.append(Sample(f"{fmt}/{ctx}", path, text, fmt))
    for ctx, path, template in PEM_CONTEXTS:
        pem = _pem(rng)
        text = template.format(s=pem, e=_b64(pem), n=pem.replace("\n", "\\n"))
        samples.append(Sample(f"private-key/{ctx}", path, text, "private-key"))
    for _round in range(3):
        for ctx, path, template in NEGATIVES:
            text = template.format(
                hex64=_pick(rng, HEX, 64),
                hex40=_pick(rng, HEX, 40),
                uuid=uuid.UUID(int=rng.getrandbits(128), version=4),
                b64_88=_pick(rng, B64, 86),
                png=base64.b64encode(b"\x89PNG\r\n\x1a\n" + rng.randbytes(96)).decode(),
                hello=_b64("hello world, this is an ordinary greeting for the logs"),
                ghp="ghp_" + _pick(rng, ALNUM, 36),
                stripe="sk_test_" + _pick(rng, ALNUM, 24),
            )
            samples.append(Sample(f"negative/{ctx}", path, text, None))
    return samples


@dataclass
class Score:
    """Counts for one format (or the negatives' bucket)."""

    positives: int = 0
    detected: int = 0
    false_positives: int = 0

    @property
    def recall(self) -> float:
        return self.detected / self.positives if self.positives else 1.0

    @property
    def precision(self) -> float:
        flagged = self.detected + self.false_positives
        return self.detected / flagged if flagged else 1.0


def _zip_b64(files: dict[str, str]) -> str:
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return base64.b64encode(buffer.getvalue()).decode()


def evaluate(scanner, samples: list[Sample], blocking: frozenset[str] = frozenset({"critical", "high"})):
    """Score each sample as a one-file action (a zip when the file is not the entry point).

    A positive counts as detected when the scan has a secret finding at a blocking severity on
    it; a negative is a false positive when it has any secret finding at a blocking severity
    (attributed to the format that fired, or "other" for detect-secrets' own detectors).
    Returns (per-format scores, misses, false positives).
    """
    from stockade.security.scanner import ScanInput

    scores: dict[str, Score] = {}
    misses: list[str] = []
    false_positives: list[str] = []
    for sample in samples:
        if sample.path == "__main__.py":
            scan = ScanInput(code=_zip_b64({"__main__.py": sample.text}), binary=True, family="python")
        else:
            files = {"__main__.py": "def main(args):\n    return {}\n", sample.path: sample.text}
            family = "nodejs" if sample.path.endswith(".js") else "python"
            if family == "nodejs":
                files = {"package.json": '{"name": "a", "main": "index.js"}', "index.js": "", **files}
                files.pop("__main__.py")
            scan = ScanInput(code=_zip_b64(files), binary=True, family=family)
        report = scanner.scan(scan)
        secret = [
            f
            for f in report.findings
            if f.rule_id.startswith("secret.") and f.severity.value in blocking and f.file == sample.path
        ]
        if sample.format is not None:
            score = scores.setdefault(sample.format, Score())
            score.positives += 1
            if secret:
                score.detected += 1
            else:
                misses.append(sample.name)
        elif secret:
            false_positives.append(sample.name)
            for finding in secret:
                fired = (finding.source or "").removeprefix("tokens:")
                key = fired if fired in scores or fired in GENERATORS or fired == "private-key" else "other"
                scores.setdefault(key, Score()).false_positives += 1
    return scores, misses, false_positives
