"""Code materialisation: plain files, safe zip extraction, read-only trees keyed by digest."""

from __future__ import annotations

import base64
import io
import os
import stat
import zipfile
from pathlib import Path

import pytest

from stockade.domain import Exec
from stockade.invoker.code import CodeError, CodeStore, extract_zip, tree_digest


def make_zip(entries) -> bytes:
    data = io.BytesIO()
    with zipfile.ZipFile(data, "w", zipfile.ZIP_DEFLATED) as zf:
        for entry in entries:
            if isinstance(entry, zipfile.ZipInfo):
                zf.writestr(entry, b"payload")
            else:
                name, content = entry
                zf.writestr(name, content)
    return data.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.fixture
def store(tmp_path):
    return CodeStore(tmp_path / "code", max_unpacked_bytes=1 << 20, max_files=50)


async def test_plain_python_code_becomes_main_module(store):
    code = await store.materialize(Exec("python:3", "def main(a):\n    return a\n"))
    assert sorted(os.listdir(code.path)) == ["__main__.py"]
    assert (code.path / "__main__.py").read_text() == "def main(a):\n    return a\n"
    assert code.digest == tree_digest(code.path)


async def test_plain_node_code_becomes_index_js(store):
    code = await store.materialize(Exec("nodejs:20", "function main() { return {}; }"))
    assert sorted(os.listdir(code.path)) == ["index.js"]


async def test_tree_is_read_only(store):
    data = make_zip([("__main__.py", "x = 1\n"), ("pkg/mod.py", "y = 2\n")])
    code = await store.materialize(Exec("python:3", b64(data)))
    assert stat.S_IMODE(code.path.stat().st_mode) == 0o555
    assert stat.S_IMODE((code.path / "pkg").stat().st_mode) == 0o555
    assert stat.S_IMODE((code.path / "pkg" / "mod.py").stat().st_mode) == 0o444
    assert stat.S_IMODE((code.path / "__main__.py").stat().st_mode) == 0o444


async def test_same_code_reuses_the_directory_and_different_families_do_not(store):
    first = await store.materialize(Exec("python:3", "def main(a): return a"))
    again = await store.materialize(Exec("python:3", "def main(a): return a"))
    node = await store.materialize(Exec("nodejs:20", "def main(a): return a"))
    assert first == again
    assert node.path != first.path


async def test_concurrent_materialisations_share_one_build(store):
    import asyncio

    exec_ = Exec("python:3", b64(make_zip([("__main__.py", "x = 1\n")])))
    results = await asyncio.gather(*(store.materialize(exec_) for _ in range(5)))
    assert len({r.path for r in results}) == 1
    assert [p.name for p in store.root.iterdir() if p.name.startswith(".")] == []


async def test_leftover_directory_from_an_earlier_process_is_replaced(tmp_path):
    root = tmp_path / "code"
    exec_ = Exec("python:3", "def main(a): return a")
    first = await CodeStore(root).materialize(exec_)
    os.chmod(first.path, 0o700)
    (first.path / "planted.py").write_text("evil")
    rebuilt = await CodeStore(root).materialize(exec_)
    assert rebuilt.path == first.path
    assert sorted(os.listdir(rebuilt.path)) == ["__main__.py"]


async def test_discard_deletes_and_next_materialise_rebuilds(store):
    exec_ = Exec("python:3", "def main(a): return a")
    code = await store.materialize(exec_)
    store.discard(code)
    assert not code.path.exists()
    again = await store.materialize(exec_)
    assert again.path.exists()


@pytest.mark.parametrize(
    "name",
    ["../evil.py", "a/../../evil.py", "/etc/evil.py", "a\\..\\evil.py", "..", "./../evil.py"],
)
def test_zip_slip_names_are_rejected_and_nothing_is_written_outside(tmp_path, name):
    target = tmp_path / "target"
    target.mkdir()
    with pytest.raises(CodeError, match="unsafe entry name"):
        extract_zip(make_zip([("ok.py", "1"), (name, "evil")]), target, max_unpacked_bytes=1 << 20, max_files=10)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["target"]
    assert not Path("/etc/evil.py").exists()


def test_symlink_entries_are_rejected(tmp_path):
    link = zipfile.ZipInfo("link")
    link.create_system = 3
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    with pytest.raises(CodeError, match="link or special file"):
        extract_zip(make_zip([link]), tmp_path, max_unpacked_bytes=1 << 20, max_files=10)
    assert not (tmp_path / "link").exists()


def test_zip_bomb_is_rejected_before_extraction(tmp_path):
    bomb = make_zip([("zeros.bin", b"\0" * (5 * 1024 * 1024))])
    assert len(bomb) < 20_000
    with pytest.raises(CodeError, match="at most 1048576 bytes"):
        extract_zip(bomb, tmp_path, max_unpacked_bytes=1 << 20, max_files=10)
    assert list(tmp_path.iterdir()) == []


def test_too_many_files_are_rejected(tmp_path):
    data = make_zip([(f"f{i}.py", "") for i in range(11)])
    with pytest.raises(CodeError, match="11 entries; at most 10"):
        extract_zip(data, tmp_path, max_unpacked_bytes=1 << 20, max_files=10)


def test_duplicate_entries_are_rejected(tmp_path):
    data = io.BytesIO()
    with zipfile.ZipFile(data, "w") as zf:
        zf.writestr("a.py", "1")
        with pytest.warns(UserWarning, match="Duplicate name"):
            zf.writestr("a.py", "2")
    with pytest.raises(CodeError, match="duplicate entry"):
        extract_zip(data.getvalue(), tmp_path, max_unpacked_bytes=1 << 20, max_files=10)


async def test_bad_zip_fails_and_leaves_no_temporary_directory(store):
    with pytest.raises(CodeError, match="not a valid zip"):
        await store.materialize(Exec("python:3", b64(b"this is not a zip file")))
    assert list(store.root.iterdir()) == []


async def test_unsafe_zip_through_the_store_leaves_nothing_behind(store):
    with pytest.raises(CodeError):
        await store.materialize(Exec("python:3", b64(make_zip([("__main__.py", "1"), ("../x", "2")]))))
    assert list(store.root.iterdir()) == []
    assert not (store.root.parent / "x").exists()


async def test_sequence_has_no_code(store):
    with pytest.raises(CodeError):
        await store.materialize(Exec("sequence", components=("/a/b",)))


def test_tree_digest_covers_names_contents_and_links(tmp_path):
    (tmp_path / "a").write_text("1")
    base = tree_digest(tmp_path)
    (tmp_path / "a").write_text("2")
    changed = tree_digest(tmp_path)
    assert changed != base
    (tmp_path / "a").write_text("1")
    assert tree_digest(tmp_path) == base
    (tmp_path / "d").mkdir()
    with_dir = tree_digest(tmp_path)
    assert with_dir != base
    os.symlink("a", tmp_path / "l")
    assert tree_digest(tmp_path) != with_dir
