"""Threat: the gate running the code it scans. Nothing a scanned action contains is executed."""

import json

import pytest

from stockade.security.scanner import Scanner

from .scanner.conftest import plain, zipped


@pytest.fixture
def marker(tmp_path):
    return tmp_path / "executed"


def test_setup_py_postinstall_and_top_level_code_never_run(scan_rules, marker, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    touch_py = f"open({str(marker)!r}, 'w').write('ran')\n"
    touch_js = f"require('fs').writeFileSync({json.dumps(str(marker))}, 'ran');\n"
    files = {
        "setup.py": "from setuptools import setup\n" + touch_py + "setup(name='x')\n",
        "__main__.py": touch_py + "def main(a):\n    return a\n",
        "conftest.py": touch_py,
        "sitecustomize.py": touch_py,
        "index.js": touch_js + "exports.main = () => ({});\n",
        "package.json": json.dumps(
            {
                "scripts": {
                    "preinstall": f"touch {marker}",
                    "postinstall": f"touch {marker}",
                    "prepare": f"touch {marker}",
                }
            }
        ),
        ".eslintrc.js": touch_js,
        "eslint.config.js": touch_js,
        "requirements.txt": f"-r {marker}\n",
    }
    Scanner(scan_rules).scan(zipped(files, "nodejs"))
    Scanner(scan_rules).scan(plain(touch_py, "python"))
    Scanner(scan_rules).scan(plain(touch_js, "nodejs"))
    app = tmp_path / "app"
    app.mkdir()
    for name, content in files.items():
        (app / name).write_text(content)
    Scanner(scan_rules).complete(Scanner(scan_rules).prepare_path(app), [])
    assert not marker.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["app"]
