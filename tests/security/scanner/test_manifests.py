"""Manifest readers: requirements, pyproject, poetry.lock, package.json, lock files, vendored metadata."""

import json

from stockade.security.scanner.bundle import bundle_from_zip
from stockade.security.scanner.manifests import read_manifests

from .conftest import make_zip, rule_ids


def manifests(rules, files):
    return read_manifests(bundle_from_zip(make_zip(files), rules), rules)


def deps(result):
    return {(d.ecosystem, d.normalized): d for d in result.dependencies}


def test_requirements_with_includes_options_markers_hashes_and_continuations(rules):
    result = manifests(
        rules,
        {
            "requirements.txt": (
                "# comment\n"
                "--index-url https://pypi.org/simple\n"
                "-r base.txt\n"
                "-c constraints.txt\n"
                "Requests==2.31.0 \\\n"
                "    --hash=sha256:aaaa --hash=sha256:bbbb\n"
                "flask>=2.0  # unpinned\n"
                "pywin32==306; sys_platform == 'win32'\n"
                "urllib3\n"
                "--pre\n"
            ),
            "base.txt": "Django===4.2.1\n",
            "constraints.txt": "urllib3==2.0.0\nnot-installed==1.0\n",
        },
    )
    found = deps(result)
    assert found["PyPI", "requests"].version == "2.31.0"
    assert found["PyPI", "requests"].line == 5
    assert found["PyPI", "django"].version == "4.2.1"
    assert found["PyPI", "django"].source == "base.txt"
    assert found["PyPI", "flask"].version is None
    assert found["PyPI", "pywin32"].version == "306"
    assert found["PyPI", "urllib3"].version == "2.0.0"  # pinned by the constraints file
    assert ("PyPI", "not-installed") not in found
    assert result.findings == []


def test_requirements_problems_become_findings(rules):
    result = manifests(
        rules,
        {
            "requirements.txt": (
                "-r missing.txt\n"
                "-r requirements.txt\n"
                "--extra-index-url http://insecure.example/simple\n"
                "--trusted-host insecure.example\n"
                "-e git+https://example.com/repo.git#egg=x\n"
                "git+https://example.com/other.git\n"
                "pkg @ https://example.com/pkg.zip\n"
                "this is not a requirement!!\n"
            ),
        },
    )
    assert rule_ids(result.findings) == {
        "manifest.malformed",
        "dependency.insecure-index",
        "dependency.direct-url",
        "dependency.index-override",
    }
    messages = " ".join(f.message for f in result.findings)
    assert "missing.txt" in messages
    assert "cycle" in messages
    assert "invalid requirement" in messages


def test_requirement_includes_nest_only_so_deep(small_limits):
    rules = small_limits(max_manifest_depth=2)
    files = {f"requirements{i}.txt": f"-r requirements{i + 1}.txt\n" for i in range(5)}
    files["requirements5.txt"] = "six==1.16.0\n"
    result = manifests(rules, files)
    assert any("nested deeper" in f.message for f in result.findings)


def test_pyproject_project_and_poetry_dependencies(rules):
    pyproject = """
[project]
name = "x"
dependencies = ["httpx==0.28.1", "anyio>=4"]
[project.optional-dependencies]
extra = ["rich==13.0.0"]
[tool.poetry.dependencies]
python = "^3.11"
pendulum = "3.0.0"
arrow = "^1.2"
tomli = {version = "==2.0.1"}
mylib = {git = "https://example.com/mylib.git"}
multi = [{version = "1.0"}, "2.0"]
"""
    found = deps(manifests(rules, {"pyproject.toml": pyproject}))
    assert found["PyPI", "httpx"].version == "0.28.1"
    assert found["PyPI", "anyio"].version is None
    assert found["PyPI", "rich"].version == "13.0.0"
    assert found["PyPI", "pendulum"].version == "3.0.0"
    assert found["PyPI", "arrow"].version is None
    assert found["PyPI", "tomli"].version == "2.0.1"
    assert found["PyPI", "multi"].version is None
    assert ("PyPI", "python") not in found
    assert ("PyPI", "mylib") not in found


def test_poetry_lock_pins_versions(rules):
    lock = '[[package]]\nname = "Arrow"\nversion = "1.3.0"\n\n[[package]]\nname = "broken"\n'
    result = manifests(rules, {"pyproject.toml": '[tool.poetry.dependencies]\narrow = "^1.2"\n', "poetry.lock": lock})
    arrows = [d for d in result.dependencies if d.normalized == "arrow"]
    assert {d.version for d in arrows} == {"1.3.0"}


def test_package_json_and_lock_files_v1_v2_v3(rules):
    package = {
        "name": "action",
        "dependencies": {
            "lodash": "4.17.20",
            "express": "^4.18.0",
            "left-pad": "github:user/left-pad",
            "alias": "npm:minimist@1.2.5",
        },
        "optionalDependencies": {"debug": "=2.6.8"},
        "devDependencies": {"jest": "29.0.0"},
    }
    v3 = {
        "lockfileVersion": 3,
        "packages": {
            "": {"name": "action"},
            "node_modules/express": {"version": "4.18.2"},
            "node_modules/express/node_modules/qs": {"version": "6.11.0"},
            "node_modules/@scope/pkg": {"version": "1.0.0"},
            "node_modules/jest": {"version": "29.0.0", "dev": True},
            "node_modules/linked": {"link": True},
            "node_modules/git-dep": {"version": "git+https://example.com/x.git"},
        },
    }
    found = deps(manifests(rules, {"package.json": json.dumps(package), "package-lock.json": json.dumps(v3)}))
    assert found["npm", "lodash"].version == "4.17.20"
    assert found["npm", "express"].version == "4.18.2"  # the lock file pins the range
    assert found["npm", "qs"].version == "6.11.0"
    assert found["npm", "@scope/pkg"].version == "1.0.0"
    assert found["npm", "minimist"].version == "1.2.5"
    assert found["npm", "debug"].version == "2.6.8"
    assert ("npm", "jest") not in found
    assert ("npm", "left-pad") not in found

    v1 = {
        "lockfileVersion": 1,
        "dependencies": {
            "a": {"version": "1.0.0", "dependencies": {"b": {"version": "2.0.0"}}},
            "c": {"version": "1.0.0", "dev": True},
        },
    }
    found = deps(manifests(rules, {"npm-shrinkwrap.json": json.dumps(v1)}))
    assert found["npm", "b"].version == "2.0.0"
    assert ("npm", "c") not in found


def test_vendored_packages_are_found_from_their_metadata(rules):
    result = manifests(
        rules,
        {
            "__main__.py": "import requests\n",
            "requests/__init__.py": "eval(input())\n",
            "requests-2.2.1.dist-info/METADATA": "Metadata-Version: 2.1\nName: requests\nVersion: 2.2.1\n\nName: not-this\n",
            "requests-2.2.1.dist-info/RECORD": "requests/__init__.py,sha256=x,10\nrequests-2.2.1.dist-info/METADATA,,\n",
            "virtualenv/lib/python3.11/site-packages/six-1.16.0.dist-info/METADATA": "Name: six\nVersion: 1.16.0\n",
            "broken-1.0.dist-info/METADATA": "Name: broken\n",
            "node_modules/lodash/package.json": json.dumps({"name": "lodash", "version": "4.17.20"}),
            "node_modules/@types/node/package.json": json.dumps({"name": "@types/node", "version": "20.0.0"}),
            "node_modules/lodash/test/package.json": json.dumps({"name": "fixture", "version": "0.0.0"}),
        },
    )
    found = deps(result)
    assert found["PyPI", "requests"].vendored
    assert found["PyPI", "requests"].version == "2.2.1"
    assert found["PyPI", "six"].version == "1.16.0"
    assert found["npm", "lodash"].version == "4.17.20"
    assert found["npm", "@types/node"].version == "20.0.0"
    assert ("npm", "fixture") not in found
    assert [f.rule_id for f in result.findings] == ["manifest.malformed"]
