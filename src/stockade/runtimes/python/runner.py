"""Stockade Python runner: serves the runtime protocol on a control socket (stdlib only).

Runs inside the sandbox. ``serve(fd)`` answers length-prefixed JSON frames (init, run, check)
until the host closes the socket. Importing this module has no side effects, so a zygote can
import it once and call ``serve`` in each forked child. See docs/design/runtime-protocol.md.
"""

import contextlib
import glob
import hashlib
import importlib.util
import json
import os
import resource
import selectors
import signal
import socket
import stat
import struct
import sys
import threading
import traceback

__all__ = ["EGRESS_SOCKET", "MAX_FRAME_BYTES", "PROXY_PORT", "SENTINEL", "enable_egress", "serve", "tree_digest"]

SENTINEL = "XXX_THE_END_OF_A_WHISK_ACTIVATION_XXX"
MAX_FRAME_BYTES = 64 * 1024 * 1024
_SENTINEL_LINE = (SENTINEL + "\n").encode()
_HEADER = struct.Struct(">I")
_MODULE_NAME = "main__"
_U64 = struct.Struct(">Q")
# Egress (docs/design/egress.md): the host proxy's socket, bound here only for actions with egress
# grants, and the loopback port the forwarder serves it on for HTTP(S)_PROXY.
EGRESS_SOCKET = "/run/stockade/egress.sock"
PROXY_PORT = 3128
_FORWARDER_MAX_CONNECTIONS = 64
_FORWARDER_CHUNK = 64 * 1024


class _CpuBudgetExceeded(BaseException):
    """Raised by the SIGPROF handler; a BaseException so ``except Exception`` in actions misses it."""


class _ProtocolViolation(Exception):
    """The host sent something this runner cannot read; the runner exits."""


def _kind(mode):
    if stat.S_ISLNK(mode):
        return b"l"
    if stat.S_ISDIR(mode):
        return b"d"
    if stat.S_ISREG(mode):
        return b"f"
    return b"o"


def _walk(root, rel, out, listings):
    """Append (rel, kind, ino, size, mtime_ns, ctime_ns) for every entry below ``rel``.

    A directory is re-listed only when its own stat changed: adding, removing or renaming an
    entry always updates the directory's mtime and ctime. Bytes paths, links never followed.
    """
    path = os.path.join(root, rel) if rel else root
    st = os.lstat(path)
    key = (st.st_ino, st.st_mtime_ns, st.st_ctime_ns)
    cached = listings.get(rel)
    if cached is not None and cached[0] == key:
        names = cached[1]
    else:
        names = os.listdir(path)
        listings[rel] = (key, names)
    for name in names:
        child = rel + b"/" + name if rel else name
        st = os.lstat(os.path.join(root, child))
        kind = _kind(st.st_mode)
        out.append((child, kind, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns))
        if kind == b"d":
            _walk(root, child, out, listings)


def _content_digest(root, entries):
    digest = hashlib.sha256()
    for rel, kind, *_ in entries:
        digest.update(kind + rel + b"\0")
        if kind == b"f":
            with open(os.path.join(root, rel), "rb") as f:
                data = f.read()
            digest.update(_U64.pack(len(data)) + data)
        elif kind == b"l":
            target = os.readlink(os.path.join(root, rel))
            digest.update(_U64.pack(len(target)) + target)
    return digest.hexdigest()


def _is_read_only(path):
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def tree_digest(root, cache=None):
    """SHA-256 over every entry under ``root`` in sorted relative-path order (see stockade.invoker.code).

    ``cache`` (a dict) keeps the last stat fingerprint: when no entry's inode, size, mtime or ctime
    changed, the contents are not read again (ctime cannot be set from user space, so a write
    always shows). On a read-only mount the tree cannot change, so the first digest is kept.
    """
    cache = {} if cache is None else cache
    root_b = os.fsencode(root)
    if "digest" in cache and cache.get("read_only"):
        return cache["digest"]
    listings = cache.setdefault("listings", {})
    entries = []
    try:
        _walk(root_b, b"", entries, listings)
    except FileNotFoundError:
        # An entry vanished between listing and stat: list everything afresh.
        listings.clear()
        entries = []
        _walk(root_b, b"", entries, listings)
    entries.sort()
    if cache.get("entries") == entries:
        return cache["digest"]
    value = _content_digest(root_b, entries)
    cache["entries"] = entries
    cache["digest"] = value
    if "read_only" not in cache:
        cache["read_only"] = _is_read_only(root_b)
    return value


def _entry_id(fn, module):
    """A string that changes when ``main`` is rebound or its code object is swapped."""
    code = getattr(fn, "__code__", None)
    code_id = f"{id(code)}:{hash(code)}" if code is not None else "nocode"
    return f"{id(fn)}:{code_id}:{getattr(module, '__file__', '')}"


def _reap_children():
    """Reap exited children the action did not wait for, so no zombies pile up."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _write_sentinels():
    # Flush whatever the action buffered first, so its lines precede the sentinel in each pipe.
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        try:
            if stream is not None:
                stream.flush()
        except Exception:  # noqa: S110 - a broken user stream must not stop the reply
            pass
    for fd in (1, 2):
        with contextlib.suppress(OSError):
            os.write(fd, _SENTINEL_LINE)


def _describe(value):
    try:
        return json.dumps(value, ensure_ascii=False, allow_nan=False)
    except Exception:
        return repr(value)


# What a one-way frame (assign) returns: nothing is sent back.
_NO_REPLY = object()


class _Runner:
    """The per-process state: one initialised action, run one frame at a time."""

    def __init__(self, sock):
        self.sock = sock
        self.module = None
        self.fn = None
        self.main_name = "main"
        self.code_dir = ""
        self.digest_cache = {}
        self.cpu_ms = 0
        self.armed = False
        self.assigned = False
        self.started = False

    # -- framing ---------------------------------------------------------------------------------

    def _recv_exact(self, n):
        buf = bytearray(n)
        view = memoryview(buf)
        got = 0
        while got < n:
            k = self.sock.recv_into(view[got:], n - got)
            if k == 0:
                return None
            got += k
        return buf

    def receive(self):
        header = self._recv_exact(4)
        if header is None:
            return None
        (length,) = _HEADER.unpack(header)
        if length > MAX_FRAME_BYTES:
            raise _ProtocolViolation(f"frame of {length} bytes exceeds {MAX_FRAME_BYTES}")
        body = self._recv_exact(length)
        if body is None:
            return None
        message = json.loads(body)
        if not isinstance(message, dict):
            raise _ProtocolViolation("frame is not a JSON object")
        return message

    def send(self, message):
        """Send one reply: a dict, or bytes already encoded as a JSON object."""
        if isinstance(message, bytes):
            body = message
        else:
            try:
                body = json.dumps(message, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()
            except Exception as exc:
                body = json.dumps({"ok": False, "error": f"Internal error: cannot encode reply: {exc}"}).encode()
        self.sock.sendall(_HEADER.pack(len(body)) + body)

    # -- ops -------------------------------------------------------------------------------------

    def handle(self, message):
        # Reap at every op boundary: the action may leave children that exit after its run.
        _reap_children()
        op = message.get("op")
        if op == "assign":
            return self.assign(message)
        if op == "warm":
            return self.warm(message)
        self.started = True
        if op == "run":
            return self.run(message)
        if op == "check":
            return self.check()
        if op == "init":
            return self.init(message)
        return {"ok": False, "error": f"Internal error: unknown op {op!r}"}

    def assign(self, message):
        # A stem cell (started before its action was known) learns its action's environment here,
        # once, before any other frame; its code was just mounted on /fn, so enter /fn again.
        # No reply (the host does not wait for one); a runner that cannot take it ends the sandbox.
        if self.assigned or self.started:
            print("stockade runner: assign must be the first and only assign frame", file=sys.stderr)
            os._exit(70)
        self.assigned = True
        try:
            # Only ever lowered (the host sends a limit no higher than the stem cell's).
            for name, (soft, hard) in (message.get("rlimits") or {}).items():
                if not str(name).startswith("RLIMIT_"):
                    raise ValueError(f"not an rlimit: {name}")
                resource.setrlimit(getattr(resource, str(name)), (int(soft), int(hard)))
            for key, value in (message.get("env") or {}).items():
                os.environ[str(key)] = str(value)
            os.chdir(str(message.get("code_dir") or "/fn"))
        except BaseException as exc:
            print(f"stockade runner: assign failed: {exc}", file=sys.stderr)
            os._exit(70)
        return _NO_REPLY

    def warm(self, message):
        # A stem cell, before assign: load and run the runtime's warm-up action once, then forget
        # it, so init and run of the real action find their code paths already touched. One-way.
        if self.assigned or self.started:
            return _NO_REPLY
        saved_path, saved_cwd = list(sys.path), os.getcwd()
        try:
            # A warm-up that fails only leaves the paths cold.
            with contextlib.suppress(Exception):
                if self._load({"code_dir": str(message.get("code_dir", "")), "main": "main"}).get("ok"):
                    self._call({"warm": True}, 60_000)
                    self.check()
        finally:
            self.module = self.fn = None
            self.main_name, self.code_dir, self.digest_cache = "main", "", {}
            sys.modules.pop(_MODULE_NAME, None)
            sys.path[:] = saved_path
            os.chdir(saved_cwd)
        return _NO_REPLY

    def init(self, message):
        if self.module is not None:
            reply = {"ok": False, "error": "Internal error: runner already initialized"}
        else:
            reply = self._load(message)
        _reap_children()
        _write_sentinels()
        return reply

    def _load(self, message):
        code_dir = str(message.get("code_dir", ""))
        main_name = str(message.get("main") or "main")
        for key, value in (message.get("env") or {}).items():
            os.environ[str(key)] = str(value)
        entry = os.path.join(code_dir, "__main__.py")
        if not os.path.isfile(entry):
            return {"ok": False, "error": "Initialization has failed due to: no __main__.py at the root of the code"}
        # Why: zip actions import their sibling modules and bundled virtualenv like a script would.
        sys.path.insert(0, code_dir)
        for site_dir in sorted(glob.glob(os.path.join(code_dir, "virtualenv", "lib", "python*", "site-packages"))):
            import site

            site.addsitedir(site_dir)
            sys.path.remove(site_dir)
            sys.path.insert(1, site_dir)
        try:
            spec = importlib.util.spec_from_file_location(_MODULE_NAME, entry)
            module = importlib.util.module_from_spec(spec)
            sys.modules[_MODULE_NAME] = module
            spec.loader.exec_module(module)
        except BaseException as exc:  # any failure of action code (even SystemExit) is the action's
            traceback.print_exc()
            return {"ok": False, "error": f"Initialization has failed due to: {type(exc).__name__}: {exc}"}
        fn = getattr(module, main_name, None)
        if not callable(fn):
            return {"ok": False, "error": f"Initialization has failed due to: function '{main_name}' not found"}
        self.module, self.fn, self.main_name, self.code_dir = module, fn, main_name, code_dir
        return {"ok": True}

    def _on_sigprof(self, signum, frame):
        if self.armed:
            self.armed = False
            raise _CpuBudgetExceeded()

    def run(self, message):
        if self.fn is None:
            reply = {"ok": False, "error": "Internal error: runner not initialized"}
        else:
            env = message.get("env") or {}
            for key, value in env.items():
                os.environ[str(key)] = str(value)
            try:
                reply = self._call(message.get("value"), int(message.get("cpu_ms") or 0))
            finally:
                for key in env:
                    os.environ.pop(str(key), None)
            if message.get("check") and isinstance(reply, bytes):
                # Integrity facts ride on the reply: one round trip per run instead of two.
                facts = json.dumps(self.check(), separators=(",", ":")).encode()
                reply = b'{"check":' + facts + b"," + reply[1:]
        _reap_children()
        _write_sentinels()
        return reply

    def _call(self, value, cpu_ms):
        try:
            try:
                if cpu_ms > 0:
                    self.armed = True
                    signal.setitimer(signal.ITIMER_PROF, cpu_ms / 1000.0)
                result = self.fn(value if value is not None else {})
                if hasattr(result, "__await__"):
                    import asyncio

                    result = asyncio.run(_await(result))
            finally:
                # Invariant: disarm before anything else, so the handler cannot fire in our own code.
                self.armed = False
                if cpu_ms > 0:
                    signal.setitimer(signal.ITIMER_PROF, 0)
        except _CpuBudgetExceeded:
            print(f"The action exceeded its CPU time limit of {cpu_ms} milliseconds.", file=sys.stderr)
            return {"ok": False, "error": f"The action exceeded its CPU time limit of {cpu_ms} milliseconds."}
        except BaseException as exc:  # the action raising is a developer error, reported
            traceback.print_exc()
            return {"ok": False, "error": f"An error has occurred: {type(exc).__name__}: {exc}"}
        if not isinstance(result, (dict, list)):
            return {
                "ok": False,
                "error": f"The action did not produce a valid JSON or JSON Array response: {_describe(result)}",
            }
        try:
            # Encoded once, here, so an unserialisable result is the action's error, not ours.
            body = json.dumps(result, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()
        except Exception:
            return {
                "ok": False,
                "error": f"The action did not produce a valid JSON or JSON Array response: {_describe(result)}",
            }
        return b'{"ok":true,"result":' + body + b"}"

    def check(self):
        if self.module is None:
            return {"ok": False, "error": "Internal error: runner not initialized"}
        try:
            digest = tree_digest(self.code_dir, self.digest_cache)
        except OSError as exc:
            return {"ok": False, "error": f"Internal error: cannot read code: {exc}"}
        fn = getattr(self.module, self.main_name, None)
        return {"ok": True, "digest": digest, "entry": _entry_id(fn, self.module)}


async def _await(awaitable):
    return await awaitable


class _Forwarder:
    """Relays each TCP connection on 127.0.0.1:PROXY_PORT to the host proxy's unix socket.

    One daemon thread and a selector for every connection: threads count against the sandbox's
    process limit, so there is never a thread per connection. A side's unsent bytes stop reading
    from the other side until they are written (no unbounded buffering).
    """

    def __init__(self, listener, socket_path):
        self.listener = listener
        self.socket_path = socket_path
        self.selector = selectors.DefaultSelector()
        # socket -> [peer, pending bytes to write to peer, read side open]
        self.state = {}

    def _watch(self, sock):
        entry = self.state[sock]
        peer_entry = self.state.get(entry[0])
        events = 0
        if entry[2] and not entry[1]:
            events |= selectors.EVENT_READ
        if peer_entry is not None and peer_entry[1]:
            events |= selectors.EVENT_WRITE
        registered = sock in self.selector.get_map()
        if events and registered:
            self.selector.modify(sock, events)
        elif events:
            self.selector.register(sock, events)
        elif registered:
            self.selector.unregister(sock)

    def _close(self, sock):
        entry = self.state.pop(sock, None)
        if entry is None:
            return
        with contextlib.suppress(KeyError, ValueError):
            self.selector.unregister(sock)
        sock.close()
        self._close(entry[0])

    def _accept(self):
        try:
            client, _ = self.listener.accept()
        except OSError:
            return
        if len(self.state) >= 2 * _FORWARDER_MAX_CONNECTIONS:
            client.close()
            return
        upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            upstream.settimeout(5)
            upstream.connect(self.socket_path)
        except OSError:
            upstream.close()
            client.close()
            return
        for sock, peer in ((client, upstream), (upstream, client)):
            sock.setblocking(False)
            self.state[sock] = [peer, b"", True]
            self.selector.register(sock, selectors.EVENT_READ)

    def _readable(self, sock):
        entry = self.state[sock]
        try:
            data = sock.recv(_FORWARDER_CHUNK)
        except BlockingIOError:
            return
        except OSError:
            self._close(sock)
            return
        peer = entry[0]
        if not data:
            entry[2] = False
            with contextlib.suppress(OSError):
                peer.shutdown(socket.SHUT_WR)
            if not self.state[peer][2]:
                self._close(sock)
                return
        else:
            entry[1] = data
            self._flush(sock)
        self._watch(sock)
        if peer in self.state:
            self._watch(peer)

    def _flush(self, sock):
        """Write ``sock``'s pending bytes to its peer as far as the peer takes them."""
        entry = self.state[sock]
        try:
            sent = entry[0].send(entry[1])
        except BlockingIOError:
            return
        except OSError:
            self._close(sock)
            return
        entry[1] = entry[1][sent:]

    def _writable(self, target):
        """``target`` can take more: flush what its peer read for it."""
        source = self.state[target][0]
        if source in self.state and self.state[source][1]:
            self._flush(source)
        for each in (source, target):
            if each in self.state:
                self._watch(each)

    def run(self):
        self.listener.setblocking(False)
        self.selector.register(self.listener, selectors.EVENT_READ)
        while True:
            for key, events in self.selector.select():
                sock = key.fileobj
                if sock is self.listener:
                    self._accept()
                    continue
                if events & selectors.EVENT_WRITE and sock in self.state:
                    self._writable(sock)
                if events & selectors.EVENT_READ and sock in self.state:
                    self._readable(sock)


def enable_egress(socket_path=EGRESS_SOCKET, port=PROXY_PORT):
    """With the proxy socket present: serve it on 127.0.0.1:``port`` and point the proxy variables at it.

    Returns the forwarder's thread, or None when this sandbox has no egress (no socket).
    """
    if not os.path.exists(socket_path):
        return None
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(_FORWARDER_MAX_CONNECTIONS)
    thread = threading.Thread(target=_Forwarder(listener, socket_path).run, name="stockade-egress", daemon=True)
    thread.start()
    proxy = f"http://127.0.0.1:{port}"
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        os.environ[name] = proxy
    # Everything goes through the proxy, loopback included: the allowlist decides.
    os.environ["NO_PROXY"] = os.environ["no_proxy"] = ""
    return thread


def serve(control_fd):
    """Serve frames on ``control_fd`` until the host closes it; returns on EOF."""
    sock = socket.socket(fileno=control_fd)
    sock.setblocking(True)
    # Line-buffered like stderr, so the host sees lines in print order across both streams;
    # no .pyc writes, so the code directory stays exactly as materialised.
    sys.dont_write_bytecode = True
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(AttributeError, ValueError):
            stream.reconfigure(line_buffering=True)
    runner = _Runner(sock)
    signal.signal(signal.SIGPROF, runner._on_sigprof)
    try:
        enable_egress()
    except OSError as exc:
        # The action then simply has no network, as without grants.
        print(f"stockade runner: egress forwarder unavailable: {exc}", file=sys.stderr)
    try:
        while True:
            try:
                message = runner.receive()
            except (_ProtocolViolation, ValueError) as exc:
                print(f"stockade runner: protocol error: {exc}", file=sys.stderr)
                return
            if message is None:
                return
            try:
                reply = runner.handle(message)
            except _CpuBudgetExceeded:
                # A late SIGPROF outside the action's code: report it as the run's failure.
                _write_sentinels()
                reply = {"ok": False, "error": "The action exceeded its CPU time limit."}
            if reply is not _NO_REPLY:
                runner.send(reply)
    except (BrokenPipeError, ConnectionResetError):
        return
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)
        sock.detach()


if __name__ == "__main__":
    serve(int(sys.argv[1]) if len(sys.argv) > 1 else 3)
