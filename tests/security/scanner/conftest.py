"""Shared helpers for scanner tests: the rule book, a scanner, and in-memory zip builders."""

from __future__ import annotations

import base64
import io
import stat
import zipfile
from dataclasses import replace
from pathlib import Path

import pytest

from stockade.security.scanner import ScanInput, Scanner, default_rulebook

REPO = Path(__file__).resolve().parents[3]
# The real PyPA advisory snapshot (OSV YAML) in shared/, which sits beside the work tree.
ADVISORIES = REPO.parent / "shared" / "data" / "advisories" / "pypi"

WORD_COUNT_JS = """\
const { exec } = require('child_process');

function main(params) {
  return new Promise((resolve, reject) => {
    exec(`echo -n ${params.string} | wc -w`, (error, stdout) => {
      if (error) { reject(error); return; }
      resolve({ payload: parseInt(stdout, 10) });
    });
  });
}
exports.main = main;
"""

WORD_COUNT_PY = """\
import subprocess


def main(args):
    out = subprocess.check_output(f"echo -n {args['string']} | wc -w", shell=True)
    return {"payload": int(out)}
"""


def make_zip(files: dict[str, bytes | str], *, links: dict[str, str] | None = None) -> bytes:
    """A zip archive in memory; ``links`` adds symlink entries (name → target)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
        for name, target in (links or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(info, target)
    return buffer.getvalue()


def zip_code(files: dict[str, bytes | str], **kw) -> str:
    """A zip action's ``exec.code``: the archive in base64."""
    return base64.b64encode(make_zip(files, **kw)).decode()


@pytest.fixture(scope="session")
def rules():
    return default_rulebook()


@pytest.fixture
def small_limits(rules):
    """A rule book with tiny limits, for exercising the bounds quickly."""

    def build(**limits):
        return replace(rules, limits=replace(rules.limits, **limits))

    return build


@pytest.fixture(scope="session")
def scanner(rules):
    return Scanner(rules)


def plain(code: str, family: str = "python", **kw) -> ScanInput:
    return ScanInput(code=code, binary=False, family=family, **kw)


def zipped(files: dict[str, bytes | str], family: str = "python", **kw) -> ScanInput:
    return ScanInput(code=zip_code(files), binary=True, family=family, **kw)


def rule_ids(report_or_findings) -> set[str]:
    findings = getattr(report_or_findings, "findings", report_or_findings)
    return {f.rule_id for f in findings}
