"""Reading an action in memory: plain code, zip archives, local paths, vendored files."""

import base64

from stockade.security.scanner.bundle import bundle_from_code, bundle_from_path, bundle_from_zip

from .conftest import make_zip, rule_ids


def test_plain_code_becomes_the_invokers_entry_file(rules):
    assert set(bundle_from_code("x = 1", binary=False, family="python", rules=rules).files) == {"__main__.py"}
    assert set(bundle_from_code("let x", binary=False, family="nodejs", rules=rules).files) == {"index.js"}
    assert set(bundle_from_code("x", binary=False, family=None, rules=rules).files) == {"action.txt"}


def test_zip_members_are_read_and_vendored_code_is_skipped(rules):
    bundle = bundle_from_zip(
        make_zip(
            {
                "__main__.py": "print(1)",
                "./lib/util.py": "x = 1",
                "lib/": "",
                "image.png": b"\x89PNG",
                "requests/__init__.py": "vendored",
                "requests-2.0.dist-info/RECORD": "requests/__init__.py,,\n",
                "node_modules/x/index.js": "vendored",
                "node_modules/x/package.json": "{}",
            }
        ),
        rules,
    )
    assert set(bundle.files) == {
        "__main__.py",
        "lib/util.py",
        "requests-2.0.dist-info/RECORD",
        "node_modules/x/package.json",
    }
    assert [s.path for s in bundle.sources()] == ["__main__.py", "lib/util.py"]
    assert "image.png" in bundle.names
    assert bundle.findings == []


def test_binary_source_files_are_not_analysed(rules):
    bundle = bundle_from_zip(make_zip({"blob.py": b"\x00\x01\x02" * 10}), rules)
    assert bundle.sources() == []


def test_invalid_base64_is_a_finding(rules):
    bundle = bundle_from_code("@@@@", binary=True, family="python", rules=rules)
    assert rule_ids(bundle.findings) == {"bundle.unreadable"}


def test_local_paths_directory_zip_and_file(rules, tmp_path):
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "__main__.py").write_text("x = 1")
    (tmp_path / "app" / ".git").mkdir()
    (tmp_path / "app" / ".git" / "config").write_text("secret")
    (tmp_path / "app" / "fifo").symlink_to("/etc/passwd")
    bundle = bundle_from_path(tmp_path / "app", rules)
    assert set(bundle.files) == {"__main__.py"}
    assert rule_ids(bundle.findings) == {"bundle.link"}

    archive = tmp_path / "app.zip"
    archive.write_bytes(make_zip({"index.js": "let x"}))
    assert set(bundle_from_path(archive, rules).files) == {"index.js"}

    single = tmp_path / "one.py"
    single.write_text("y = 2")
    assert set(bundle_from_path(single, rules).files) == {"one.py"}

    missing = bundle_from_path(tmp_path / "nope.py", rules)
    assert rule_ids(missing.findings) == {"bundle.unreadable"}


def test_base64_zip_code_is_decoded(rules):
    code = base64.b64encode(make_zip({"__main__.py": "x = 1"})).decode()
    assert set(bundle_from_code(code, binary=True, family="python", rules=rules).files) == {"__main__.py"}
