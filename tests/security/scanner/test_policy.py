"""Policy lint: web auth, provide-api-key, wildcard grants, egress, size, unused dependencies."""

from stockade.security.scanner.bundle import SourceFile, bundle_from_zip
from stockade.security.scanner.manifests import read_manifests
from stockade.security.scanner.policy import imported_names, lint_policy

from .conftest import make_zip, rule_ids


def lint(rules, files, annotations=None):
    bundle = bundle_from_zip(make_zip(files), rules)
    deps = read_manifests(bundle, rules).dependencies
    return lint_policy(annotations=annotations or {}, bundle=bundle, dependencies=deps, rules=rules)


def test_web_actions_need_require_whisk_auth(rules):
    files = {"__main__.py": "def main(a):\n    return a\n"}
    assert rule_ids(lint(rules, files, {"web-export": True})) == {"policy.web-without-auth"}
    assert lint(rules, files, {"web-export": True, "require-whisk-auth": "s3cret"}) == []
    assert lint(rules, files, {"web-export": False}) == []


def test_provide_api_key_only_when_the_code_uses_it(rules):
    unused = {"__main__.py": "def main(a):\n    return a\n"}
    assert rule_ids(lint(rules, unused, {"provide-api-key": True})) == {"policy.api-key-unneeded"}
    used = {"__main__.py": "import os\nKEY = os.environ['__OW_API_KEY']\n"}
    assert lint(rules, used, {"provide-api-key": True}) == []
    client = {"index.js": "const ow = require('openwhisk');\n"}
    assert lint(rules, client, {"provide-api-key": True}) == []


def test_wildcard_grants_and_unrestricted_egress(rules):
    files = {"__main__.py": "x = 1\n"}
    findings = lint(
        rules,
        files,
        {
            "policy": {"grants": [{"resource": "actions/*", "verbs": ["read"]}, {"resource": "x", "verbs": ["*"]}]},
            "egress": {"hosts": ["api.example.com:443", "*"]},
            "allow-egress": True,
        },
    )
    assert [f.rule_id for f in findings].count("policy.wildcard-grant") == 2
    assert [f.rule_id for f in findings].count("policy.unrestricted-egress") == 2
    assert lint(rules, files, {"egress": ["api.example.com:443"], "policy": {"grants": ["actions/read"]}}) == []


def test_oversized_bundles(small_limits):
    rules = small_limits(max_bundle_bytes=100)
    assert "bundle.oversized" in rule_ids(lint(rules, {"__main__.py": "x = 1\n" * 50}))


def test_declared_dependencies_never_imported(rules):
    files = {
        "__main__.py": "import yaml\nfrom dateutil import parser\nimport importlib\nimportlib.import_module('jwt.api')\n",
        "requirements.txt": "PyYAML==6.0.1\npython-dateutil==2.9.0\nPyJWT==2.8.0\nrequests==2.31.0\n",
    }
    findings = lint(rules, files)
    assert [(f.rule_id, f.package) for f in findings] == [("dependency.unused", "requests")]


def test_declared_node_dependencies_never_required(rules):
    files = {
        "index.js": "const _ = require('lodash');\nimport x from '@scope/pkg/sub';\nconst y = await import('./local.js');\n",
        "package.json": '{"dependencies": {"lodash": "4.17.21", "@scope/pkg": "1.0.0", "express": "4.18.2"}}',
    }
    assert [f.package for f in lint(rules, files)] == ["express"]


def test_vendored_top_level_names_count_as_imports(rules):
    files = {
        "__main__.py": "import weird_module\n",
        "requirements.txt": "oddly-named==1.0\n",
        "oddly_named-1.0.dist-info/top_level.txt": "weird_module\n",
    }
    assert lint(rules, files) == []


def test_import_detection_survives_unparsable_code():
    python, node = imported_names(
        [SourceFile("a.py", b"import os\nfrom json import x\ndef (:\n"), SourceFile("b.js", b"require('fs')")]
    )
    assert python == {"os", "json"}
    assert node == {"fs"}
