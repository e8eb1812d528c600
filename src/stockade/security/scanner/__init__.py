"""The deploy gate's scanning library: pure, no store and no HTTP.

``Scanner`` reads an action (or a local path) in memory, never running it, and reports
vulnerable and unpinned dependencies, insecure code (bandit for Python, ESLint with
eslint-plugin-security for JavaScript), hard-coded secrets and policy problems as a
``ScanReport``; ``to_sarif`` renders one as SARIF 2.1.0. Rules, mappings and limits are data
files under ``rules/``, validated on load.
"""

from stockade.security.scanner.advisories import (
    Advisory,
    AdvisoryError,
    Affected,
    cvss3_base_score,
    iter_osv_documents,
    parse_osv,
    parse_osv_text,
)
from stockade.security.scanner.dependencies import AdvisoryIndex
from stockade.security.scanner.findings import (
    AdvisoryRef,
    Dependency,
    Finding,
    ScanReport,
    Severity,
    parse_severities,
)
from stockade.security.scanner.js_analysis import JsAnalyser, default_js_analyser
from stockade.security.scanner.rules import RuleBook, RulesError, default_rulebook, load_rulebook
from stockade.security.scanner.sarif import to_sarif
from stockade.security.scanner.scan import PreparedScan, ScanInput, Scanner
from stockade.security.scanner.secrets import SECRET_STORE_HINT
from stockade.security.scanner.versions import SemVer, is_affected_version, normalize_package_name

__all__ = [
    "SECRET_STORE_HINT",
    "Advisory",
    "AdvisoryError",
    "AdvisoryIndex",
    "AdvisoryRef",
    "Affected",
    "Dependency",
    "Finding",
    "JsAnalyser",
    "PreparedScan",
    "RuleBook",
    "RulesError",
    "ScanInput",
    "ScanReport",
    "Scanner",
    "SemVer",
    "Severity",
    "cvss3_base_score",
    "default_js_analyser",
    "default_rulebook",
    "is_affected_version",
    "iter_osv_documents",
    "load_rulebook",
    "normalize_package_name",
    "parse_osv",
    "parse_osv_text",
    "parse_severities",
    "to_sarif",
]
