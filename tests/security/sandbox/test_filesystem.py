"""Threats against the filesystem, from inside a Python and a Node.js action (issue 3).

Each test runs attack code inside a real sandbox and asserts the attempt failed, with a positive
control where one makes sense so the test can tell "blocked" from "the probe itself is broken".
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import pytest

from .conftest import StartAction

pytestmark = [pytest.mark.sandbox, pytest.mark.asyncio(loop_scope="module")]

# main({"paths": [...]}) -> {path: "READ <hex>" | error code}
READ = {
    "python": """
def main(args):
    out = {}
    for path in args["paths"]:
        try:
            with open(path, "rb") as handle:
                out[path] = "READ " + handle.read(64).hex()
        except OSError as exc:
            out[path] = type(exc).__name__
    return out
""",
    "nodejs": """
const fs = require('fs');
function main(args) {
  const out = {};
  for (const p of args.paths) {
    try { out[p] = 'READ ' + fs.readFileSync(p).subarray(0, 64).toString('hex'); } catch (e) { out[p] = e.code; }
  }
  return out;
}
""",
}
# main({"paths": [...]}) -> {path: "WROTE" | error code}
WRITE = {
    "python": """
def main(args):
    out = {}
    for path in args["paths"]:
        try:
            with open(path, "w") as handle:
                handle.write("x")
            out[path] = "WROTE"
        except OSError as exc:
            out[path] = type(exc).__name__
    return out
""",
    "nodejs": """
const fs = require('fs');
function main(args) {
  const out = {};
  for (const p of args.paths) {
    try { fs.writeFileSync(p, 'x'); out[p] = 'WROTE'; } catch (e) { out[p] = e.code; }
  }
  return out;
}
""",
}
# main({"dir": path}) -> {"entries": [...]} every path under dir (no link following), or the error
WALK = {
    "python": """
import os
def main(args):
    found = []
    try:
        for root, dirs, files in os.walk(args["dir"]):
            found += [os.path.join(root, n) for n in dirs + files]
    except OSError as exc:
        return {"error": type(exc).__name__}
    return {"entries": sorted(found)}
""",
    "nodejs": """
const fs = require('fs');
const path = require('path');
function walk(dir, out) {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    out.push(p);
    if (e.isDirectory()) walk(p, out);
  }
}
function main(args) {
  const out = [];
  try { walk(args.dir, out); } catch (e) { return { error: e.code }; }
  return { entries: out.sort() };
}
""",
}


def _blocked(outcomes: dict[str, str]) -> bool:
    return all(not value.startswith(("READ", "WROTE")) for value in outcomes.values())


async def test_host_etc_shadow_is_not_there(start_action: StartAction, family: str) -> None:
    """/etc/shadow (and any way round to the host's /etc) does not exist inside."""
    sandbox = await start_action(family, READ[family])
    paths = ["/etc/shadow", "/etc/gshadow", "/proc/1/root/etc/shadow", "/proc/self/root/etc/shadow", "/etc/passwd"]
    reply = await sandbox.run({"paths": paths})
    assert reply["ok"], reply
    result = reply["result"]
    # Positive control: the sandbox's own tiny /etc/passwd is readable.
    assert result.pop("/etc/passwd").startswith("READ"), result
    assert _blocked(result), result


async def test_host_root_home_is_not_there(start_action: StartAction, family: str, is_root: bool) -> None:
    """Nothing of the host's /root is visible: only the interpreter prefix (Python) is bound there."""
    secret = Path(f"/root/.stockade-test-secret-{secrets.token_hex(4)}")
    if is_root:
        secret.write_text("host secret")
    try:
        sandbox = await start_action(family, WALK[family])
        reply = await sandbox.run({"dir": "/root"})
        reader = await start_action(family, READ[family])
        read = await reader.run({"paths": [str(secret)]})
    finally:
        if is_root:
            secret.unlink(missing_ok=True)
    assert reply["ok"], reply
    entries = reply["result"].get("entries", [])
    allowed_prefixes = tuple(p.rstrip("/") for p in _python_prefixes()) if family == "python" else ()
    # Nothing but the path down to (and inside) a bound interpreter prefix.
    for entry in entries:
        assert any(entry.startswith(p) or p.startswith(entry + "/") for p in allowed_prefixes), entry
    assert read["ok"], read
    assert _blocked(read["result"]), read


def _python_prefixes() -> list[str]:
    import sys

    return sorted({os.path.realpath(sys.base_prefix), os.path.realpath(sys.base_exec_prefix)})


async def test_other_actions_code_and_tmp_are_not_reachable(
    start_action: StartAction, family: str, tmp_path: Path
) -> None:
    """A second action sees neither the first's code (by any host path) nor its /tmp."""
    token = secrets.token_hex(8)
    writer_code = {
        "python": f"def main(args):\n    open('/tmp/secret', 'w').write('{token}')\n    return {{}}\n",
        "nodejs": f"function main() {{ require('fs').writeFileSync('/tmp/secret', '{token}'); return {{}}; }}\n",
    }[family]
    first = await start_action(family, writer_code, extra_files={"secret.txt": token})
    assert (await first.run())["ok"]
    second = await start_action(family, READ[family])
    # Where the first action's code lives on the host (start_action writes under tmp_path).
    host_code_dirs = [str(p) for p in tmp_path.glob("action-*")]
    assert host_code_dirs
    paths = [
        "/tmp/secret",
        "/fn/secret.txt",
        f"/proc/{first.process.pid}/root/tmp/secret",
        f"/proc/{first.process.pid}/root/fn/secret.txt",
        *[f"{d}/secret.txt" for d in host_code_dirs],
    ]
    reply = await second.run({"paths": paths})
    assert reply["ok"], reply
    assert _blocked(reply["result"]), reply["result"]
    assert token not in str(reply["result"])


async def test_writes_outside_tmp_fail(start_action: StartAction, family: str) -> None:
    """The root, /usr, the code, /etc, /dev, /opt, /proc/sys: all read-only. /tmp is the only writable place."""
    sandbox = await start_action(family, WRITE[family])
    targets = [
        "/evil",
        "/usr/evil",
        "/usr/bin/python3",
        "/fn/evil",
        "/etc/passwd",
        "/etc/evil",
        "/dev/evil",
        "/opt/stockade/runtimes/evil",
        "/proc/sys/kernel/hostname",
        "/proc/sysrq-trigger",
        "/tmp/ok",
    ]
    reply = await sandbox.run({"paths": targets})
    assert reply["ok"], reply
    result = reply["result"]
    assert result.pop("/tmp/ok") == "WROTE", "positive control: /tmp must be writable"
    assert _blocked(result), result


async def test_tmp_cannot_exceed_its_size_or_inode_limit(start_action: StartAction, family: str) -> None:
    """Filling /tmp stops at tmp_size_mb (ENOSPC, or EFBIG for one file); creating files stops at tmp_max_files."""
    code = {
        "python": """
import os
def main(args):
    written = 0
    try:
        with open('/tmp/big', 'wb') as handle:
            for _ in range(64):
                handle.write(b'x' * (1 << 20))
                handle.flush()
                written += 1
        size_error = None
    except OSError as exc:
        size_error = type(exc).__name__ + ':' + str(exc.errno)
    os.unlink('/tmp/big')
    files = 0
    try:
        for i in range(10000):
            open('/tmp/f%d' % i, 'w').close()
            files += 1
        files_error = None
    except OSError as exc:
        files_error = type(exc).__name__ + ':' + str(exc.errno)
    for name in os.listdir('/tmp'):
        os.unlink('/tmp/' + name)
    return {"written_mb": written, "size_error": size_error, "files": files, "files_error": files_error}
""",
        "nodejs": """
const fs = require('fs');
function main() {
  let written = 0, sizeError = null, files = 0, filesError = null;
  const chunk = Buffer.alloc(1 << 20, 120);
  try {
    const fd = fs.openSync('/tmp/big', 'w');
    try { for (let i = 0; i < 64; i++) { fs.writeSync(fd, chunk); written++; } } finally { fs.closeSync(fd); }
  } catch (e) { sizeError = e.code; }
  fs.unlinkSync('/tmp/big');
  try { for (let i = 0; i < 10000; i++) { fs.closeSync(fs.openSync('/tmp/f' + i, 'w')); files++; } } catch (e) { filesError = e.code; }
  for (const name of fs.readdirSync('/tmp')) fs.unlinkSync('/tmp/' + name);
  return { written_mb: written, size_error: sizeError, files, files_error: filesError };
}
""",
    }[family]
    sandbox = await start_action(family, code, tmp_size_mb=4, tmp_max_files=64)
    reply = await sandbox.run()
    assert reply["ok"], reply
    result = reply["result"]
    assert result["size_error"] is not None, result
    assert result["written_mb"] <= 4, result
    assert result["files_error"] is not None, result
    assert result["files"] < 64, result
    # Contained, not crashed: the same sandbox keeps serving, with the same limits.
    again = await sandbox.run()
    assert again["ok"], again
    assert again["result"] == result, again


async def test_action_cannot_rewrite_its_code_or_keep_a_replaced_main(start_action: StartAction, family: str) -> None:
    """The code at /fn is read-only; replacing main in memory shows up in the runner's check; a new sandbox runs the original."""
    code = {
        "python": """
import os
def main(args):
    if args.get("replace"):
        globals()["main"] = lambda a: {"who": "attacker"}
        return {"replaced": True}
    out = {"who": "original"}
    for name, attempt in (
        ("write", lambda: open('/fn/__main__.py', 'a').write('x')),
        ("unlink", lambda: os.unlink('/fn/__main__.py')),
        ("rename", lambda: os.rename('/fn/__main__.py', '/fn/x.py')),
        ("chmod", lambda: os.chmod('/fn/__main__.py', 0o777)),
        ("create", lambda: open('/fn/extra.py', 'w')),
    ):
        try:
            attempt()
            out[name] = "DONE"
        except OSError as exc:
            out[name] = type(exc).__name__
    return out
""",
        "nodejs": """
const fs = require('fs');
function main(args) {
  if (args.replace) { module.exports.main = () => ({ who: 'attacker' }); return { replaced: true }; }
  const out = { who: 'original' };
  const attempts = {
    write: () => fs.appendFileSync('/fn/index.js', 'x'),
    unlink: () => fs.unlinkSync('/fn/index.js'),
    rename: () => fs.renameSync('/fn/index.js', '/fn/x.js'),
    chmod: () => fs.chmodSync('/fn/index.js', 0o777),
    create: () => fs.writeFileSync('/fn/extra.js', 'x'),
  };
  for (const [name, attempt] of Object.entries(attempts)) {
    try { attempt(); out[name] = 'DONE'; } catch (e) { out[name] = e.code; }
  }
  return out;
}
module.exports.main = main;
""",
    }[family]
    sandbox = await start_action(family, code)
    reply = await sandbox.run()
    assert reply["ok"], reply
    result = reply["result"]
    assert result.pop("who") == "original"
    assert all(value != "DONE" for value in result.values()), result
    before = await sandbox.request({"op": "check"})
    assert (await sandbox.run({"replace": True}))["ok"]
    after = await sandbox.request({"op": "check"})
    assert before["ok"], (before, after)
    assert after["ok"], (before, after)
    assert before["digest"] == after["digest"], "the code on disk must not change"
    assert before["entry"] != after["entry"], "the runner's check must reveal the replaced main"
    fresh = await start_action(family, code)
    assert (await fresh.run())["result"]["who"] == "original"
