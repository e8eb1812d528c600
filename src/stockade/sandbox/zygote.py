"""The zygote: a fresh process that forks new sandboxes in about 10 ms. Run as ``python -m stockade.sandbox.zygote FD``.

It imports the Python runner and compiles the seccomp filters once, then forks one child per sandbox
that runs ``setup.enter``. Children inherit its memory copy-on-write, so it must never hold anything a
sandbox may not see:

* it is started fresh (not forked from the platform), with an empty environment, and it is told only
  paths, never credentials;
* an action's environment (init parameters may be secrets) is received into one preallocated buffer
  only after every fork of its request, written into the child's order pipe, and zeroed at once.

Parked children: everything that depends only on the slot (namespaces, id maps, the cgroup move, which
waits for an RCU grace period of 6-15 ms here, and the fork of pid 1) is done ahead of time, so a cold
start pays only for the steps that need the action's plan. A request without a parked child parks one
on the spot.

Wire protocol (one SOCK_SEQPACKET socket from the backend, fd FD), JSON messages:

* first the config ``{"python_runner": path|null, "reaper": path|null}``; reply ``{"ready": true, ...}``;
* ``{"op": "park", "token": str, "slot": {...}}``; reply ``{"ok": true}``;
* ``{"op": "spawn", "plan": {...}, "parked": token|null, "slot": {...}|null}`` then the environment as
  its own message; reply ``{"ok": true, "pid": N}`` with fds [pidfd, control, stdout, stderr, status]
  by SCM_RIGHTS. The status pipe reaches EOF once setup finished; a failed setup writes why first;
* ``{"op": "unpark", "token": str}``; reply ``{"ok": true}``;
* ``{"op": "attach", "code_dir": path}`` with a pidfd of a stem cell's pid 1 by SCM_RIGHTS: a helper
  forked for the purpose mounts a read-only, noexec clone of ``code_dir`` on the stem cell's empty
  ``/fn`` (``mounts.attach_code``); reply ``{"ok": true}``.

Any failure is a reply ``{"ok": false, "error": ...}``. The zygote is a child subreaper: every
sandbox's pid 1 is reparented to it and reaped here.
"""

from __future__ import annotations

import contextlib
import gc
import importlib.util
import itertools
import json
import os
import select
import shutil
import signal
import socket
import struct
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NoReturn, final

from stockade.sandbox import _syscalls, landlock, mounts, namespaces, policy, seccomp, setup
from stockade.sandbox.launch import RunnerFds
from stockade.sandbox.plan import SandboxPlan, Slot

__all__ = ["ENV_MAX_BYTES", "REQUEST_MAX_BYTES", "main"]

REQUEST_MAX_BYTES = 1 << 16
ENV_MAX_BYTES = 128 << 10
_CHILD_TIMEOUT_S = 10.0
_U32 = struct.Struct("=I")
_PID = struct.Struct("=i")
_FD_SIZE = struct.calcsize("i")
_ATTACHER_IDLE_S = 0.02
_MAX_FD = 1 << 20
_WORKDIR_PREFIX = "stockade-zygote-"


@final
@dataclass(frozen=True, slots=True)
class _Channels:
    """A sandbox's channels: the host ends (sent to the backend) and the sandbox ends."""

    host: tuple[int, int, int, int]  # control, stdout, stderr, status (read ends)
    sandbox: RunnerFds

    @classmethod
    def make(cls) -> _Channels:
        # Plain fds: no socket object may later close a number the sandbox has reused.
        control_host, control_sandbox = (s.detach() for s in socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM))
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        status_r, status_w = os.pipe()
        return cls((control_host, out_r, err_r, status_r), RunnerFds(control_sandbox, out_w, err_w, status_w))

    def close_sandbox_ends(self) -> None:
        for fd in (self.sandbox.control, self.sandbox.stdout, self.sandbox.stderr, self.sandbox.status):
            os.close(fd)

    def close_host_ends(self) -> None:
        for fd in self.host:
            os.close(fd)


@final
@dataclass(frozen=True, slots=True)
class _Parked:
    pid: int
    order: int  # write end of the pipe the child waits on
    channels: _Channels


def _load_runner(path: str | None) -> tuple[Callable[[int], None] | None, str | None]:
    if path is None:
        return None, "no Python runner configured"
    try:
        spec = importlib.util.spec_from_file_location("stockade_python_runner", path)
        if spec is None or spec.loader is None:
            return None, f"cannot load {path}"
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
    except Exception as exc:
        return None, f"importing {path} failed: {type(exc).__name__}: {exc}"
    serve = getattr(module, "serve", None)
    if not callable(serve):
        return None, f"{path} has no serve(control_fd)"
    return serve, None


def _write_all(fd: int, data: bytes | memoryview) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _read_exact(fd: int, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = os.read(fd, size - len(data))
        if not chunk:
            raise EOFError("the zygote closed the order pipe")
        data += chunk
    return data


def _handshake(unshared_w: int, mapped_r: int) -> None:
    os.write(unshared_w, b"u")
    os.close(unshared_w)
    if os.read(mapped_r, 1) != b"m":
        raise RuntimeError("the zygote did not write the id maps")
    os.close(mapped_r)


def _read_plan(order_r: int) -> tuple[SandboxPlan, dict[str, str]]:
    # Invariant: a parked child learns its action, and the action's environment, only from this pipe.
    (plan_size,) = _U32.unpack(_read_exact(order_r, _U32.size))
    plan = SandboxPlan.from_json(_read_exact(order_r, plan_size))
    (env_size,) = _U32.unpack(_read_exact(order_r, _U32.size))
    env = json.loads(_read_exact(order_r, env_size) or b"{}")
    os.close(order_r)
    return plan, env


def _open_reaper(path: object) -> int | None:
    if not isinstance(path, str):
        return None
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    if not os.path.isfile(f"/proc/self/fd/{fd}"):
        os.close(fd)
        raise ValueError(f"the reaper {path} is not a regular file")
    return fd


def _sweep_stale_workdirs() -> None:
    """Remove the (empty) work directories of zygotes that died without cleaning up."""
    base = tempfile.gettempdir()
    for name in os.listdir(base):
        owner = name[len(_WORKDIR_PREFIX) :].split("-", 1)[0]
        if not name.startswith(_WORKDIR_PREFIX) or not owner.isdigit() or _is_alive(int(owner)):
            continue
        with contextlib.suppress(OSError):
            os.rmdir(os.path.join(base, name, "root"))
            os.rmdir(os.path.join(base, name))


def _is_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _close_all_but(keep: set[int]) -> None:
    # Invariant: a child keeps stdio and its own sandbox's fds, nothing of the zygote or of other sandboxes.
    low = 3
    for fd in sorted(k for k in keep if k >= 3):
        os.closerange(low, fd)
        low = fd + 1
    os.closerange(low, _MAX_FD)


class Zygote:
    """State built once at startup and shared, read-only, with every sandbox."""

    def __init__(self, sock: socket.socket, config: dict[str, Any]) -> None:
        self.sock = sock
        self.python_serve, self.python_error = _load_runner(config.get("python_runner"))
        self.seccomp_programs = {f: seccomp.compile_policy(policy.load_seccomp_policy(f)) for f in ("python", "nodejs")}
        self.landlock_policies = {f: policy.load_landlock_policy(f) for f in ("python", "nodejs")}
        self.landlock_abi = landlock.abi()
        # The static pid-1 binary, opened once (as root: its directory may be closed to slot uids);
        # every parked child inherits this fd and its pid 1 executes it.
        self.reaper_fd = _open_reaper(config.get("reaper"))
        # An empty directory: the mount point of every sandbox's root, in the sandbox's own mount
        # namespace (the host sees it stay empty).
        _sweep_stale_workdirs()
        self.workdir = tempfile.mkdtemp(prefix=f"{_WORKDIR_PREFIX}{os.getpid()}-")
        os.chmod(self.workdir, 0o755)  # noqa: S103 - an empty mount point the slot uids must reach
        self.root_dir = os.path.join(self.workdir, "root")
        os.mkdir(self.root_dir, 0o755)
        self.direct_ids = itertools.count()
        self.request_buffer = bytearray(REQUEST_MAX_BYTES)
        # Invariant: the only place an action's environment ever exists in the zygote; zeroed after each use.
        self.secret_buffer = bytearray(ENV_MAX_BYTES)
        self.parked: dict[str, _Parked] = {}
        # The next attach helper (pid, socket), forked ahead of time while idle.
        self.attacher: tuple[int, socket.socket] | None = None
        # Only once stem cells are in use (the first attach) is a helper kept ready.
        self.wants_attacher = False
        self.wake_read, self.wake_write = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.set_wakeup_fd(self.wake_write)

    def ready_message(self) -> dict[str, Any]:
        """What the backend learns at startup."""
        return {
            "ready": True,
            "pid": os.getpid(),
            "workdir": self.workdir,
            "landlock_abi": self.landlock_abi,
            "python_error": self.python_error,
            "reaper": self.reaper_fd is not None,
        }

    def serve(self) -> None:
        """Answer requests until the backend closes the socket."""
        while True:
            # The next attach helper is forked once the zygote has been idle for a moment, so the
            # fork does not compete with the sandbox that was just handed out.
            idle_s = _ATTACHER_IDLE_S if self.attacher is None and self.wants_attacher else None
            readable, _, _ = select.select([self.sock.fileno(), self.wake_read], [], [], idle_s)
            if not readable:
                self.fork_attacher()
                continue
            if self.wake_read in readable:
                try:
                    while os.read(self.wake_read, 512):
                        pass
                except BlockingIOError:
                    pass
                self.reap()
            if self.sock.fileno() in readable and not self.handle_request():
                return

    def reap(self) -> None:
        """Reap every exited child: setup children, parked ones, and sandboxes' pid 1s (we are their subreaper)."""
        while True:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return

    def _receive(self, buffer: bytearray, received_fds: list[int] | None = None) -> int | None:
        try:
            size, ancillary, flags, _ = self.sock.recvmsg_into([buffer], socket.CMSG_SPACE(_FD_SIZE))
        except ConnectionResetError:
            return None
        for level, kind, data in ancillary:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds = [int(fd) for fd in memoryview(data)[: len(data) - len(data) % _FD_SIZE].cast("i")]
                if received_fds is None:
                    for fd in fds:
                        os.close(fd)
                else:
                    received_fds += fds
        if size == 0:
            return None
        if flags & (socket.MSG_TRUNC | socket.MSG_CTRUNC):
            raise ValueError("message larger than the zygote accepts")
        return size

    def handle_request(self) -> bool:
        """Receive and answer one request. False at EOF."""
        passed: list[int] = []
        try:
            size = self._receive(self.request_buffer, passed)
        except BaseException:
            for fd in passed:
                os.close(fd)
            raise
        if size is None:
            for fd in passed:
                os.close(fd)
            return False
        fds: list[int] = []
        try:
            request = json.loads(bytes(self.request_buffer[:size]))
            op = request.get("op")
            if op != "attach" and self.attacher is None and self.wants_attacher:
                # Other work (the backend's refill) comes after a hand-over: fork the next helper now,
                # ahead of the next attach. The secret buffer is all zero here (no spawn yet).
                self.fork_attacher()
            if op == "spawn":
                reply, fds = self.handle_spawn(request)
            elif op == "park":
                reply = self.park(str(request["token"]), Slot.from_dict(request["slot"]))
            elif op == "unpark":
                reply = self.unpark(str(request["token"]))
            elif op == "attach":
                self.wants_attacher = True
                if len(passed) != 1:
                    raise ValueError("attach takes exactly one pidfd")
                reply = self.attach(str(request["code_dir"]), passed[0])
            else:
                reply = {"ok": False, "error": f"unknown op {op!r}"}
        except Exception as exc:  # every failure is reported to the backend, the zygote lives on
            reply, fds = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}, []
        finally:
            for fd in passed:
                os.close(fd)
        try:
            socket.send_fds(self.sock, [json.dumps(reply).encode()], fds)
        finally:
            for fd in fds:
                os.close(fd)
        return True

    def handle_spawn(self, request: dict[str, Any]) -> tuple[dict[str, Any], list[int]]:
        """A spawn request: park a child first if none was named, then hand it the plan."""
        try:
            plan = SandboxPlan.from_dict(request["plan"])
            token = request.get("parked")
            if token is None:
                token = f"direct-{next(self.direct_ids)}"
                self.park(token, Slot.from_dict(request["slot"]))
        except BaseException:
            # Invariant: every spawn consumes its environment message, or the next request would
            # read it as a request of its own.
            self._receive(self.secret_buffer)
            self.secret_buffer[:] = bytes(ENV_MAX_BYTES)
            raise
        return self.spawn(plan, token)

    def spawn(self, plan: SandboxPlan, token: str) -> tuple[dict[str, Any], list[int]]:
        """Hand ``plan`` and the environment (the next message) to the parked child ``token``; wait for its pid 1."""
        parked = self.parked.pop(token, None)
        env_size = ENV_MAX_BYTES  # until known, the whole buffer may hold secrets
        try:
            # The environment is received only now, after every fork of this request.
            env_size = self._receive(self.secret_buffer) or 0
            if parked is None:
                raise KeyError(f"no parked child {token}")
            if plan.family == "python" and self.python_serve is None:
                raise RuntimeError(f"Python sandboxes are unavailable: {self.python_error}")
            plan_json = plan.to_json()
            _write_all(parked.order, _U32.pack(len(plan_json)) + plan_json + _U32.pack(env_size))
            _write_all(parked.order, memoryview(self.secret_buffer)[:env_size])
        except BaseException:
            if parked is not None:
                parked.channels.close_host_ends()
            raise
        finally:
            self.secret_buffer[:env_size] = bytes(env_size)
            if parked is not None:
                os.close(parked.order)
        try:
            pid = self._read_pid(parked.channels.host[3])
            pidfd = os.pidfd_open(pid)
        except BaseException:
            parked.channels.close_host_ends()
            raise
        return {"ok": True, "pid": pid}, [pidfd, *parked.channels.host]

    def park(self, token: str, slot: Slot) -> dict[str, Any]:
        """Fork a child that takes ``slot`` (namespaces, id maps, cgroups, pid 1) and then waits for a plan."""
        if token in self.parked:
            raise ValueError(f"token {token} is already parked")
        # Invariant: children are forked only while the secret buffer is all zero.
        channels = _Channels.make()
        order_r, order_w = os.pipe()
        unshared_r, unshared_w = os.pipe()
        mapped_r, mapped_w = os.pipe()
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        child = os.fork()
        if child == 0:  # pragma: no cover - runs in the parked child
            hooks = setup.SetupHooks(
                wait_id_maps=lambda: _handshake(unshared_w, mapped_r),
                report_pid=lambda pid: _write_all(channels.sandbox.status, _PID.pack(pid)),
                wait_plan=lambda: _read_plan(order_r),
            )
            self._child(channels.sandbox, slot, hooks, keep={order_r, unshared_w, mapped_r})
        for fd in (order_r, unshared_w, mapped_r):
            os.close(fd)
        channels.close_sandbox_ends()
        try:
            ready, _, _ = select.select([unshared_r], [], [], _CHILD_TIMEOUT_S)
            if not ready or os.read(unshared_r, 1) != b"u":
                raise RuntimeError(self._setup_error(channels.host[3], "the child did not create its namespaces"))
            namespaces.write_id_maps(child, slot)
            os.write(mapped_w, b"m")
        except BaseException:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGKILL)
            os.close(order_w)
            channels.close_host_ends()
            raise
        finally:
            os.close(unshared_r)
            os.close(mapped_w)
        self.parked[token] = _Parked(child, order_w, channels)
        return {"ok": True}

    def attach(self, code_dir: str, pidfd: int) -> dict[str, Any]:
        """Mount ``code_dir`` on the empty ``/fn`` of the stem cell whose pid 1 ``pidfd`` names.

        The work is done by the attacher, a helper forked ahead of time (``fork_attacher``), so no
        fork is on this path; the zygote itself never joins a sandbox's namespaces. The attacher runs
        only ``mounts.attach_code`` and exits.
        """
        if not os.path.isabs(code_dir) or not os.path.isdir(code_dir):
            raise ValueError(f"code_dir {code_dir} is not a directory")
        if self.attacher is None:
            self.fork_attacher()
        assert self.attacher is not None
        helper, channel = self.attacher
        self.attacher = None
        ready: list[Any] = []
        try:
            socket.send_fds(channel, [code_dir.encode()], [pidfd])
            ready, _, _ = select.select([channel], [], [], _CHILD_TIMEOUT_S)
            message = channel.recv(4096) if ready else b"the attach helper timed out"
        finally:
            channel.close()
            # Reaped by the SIGCHLD loop; a helper that hangs is killed.
            with contextlib.suppress(ProcessLookupError):
                if not ready:
                    os.kill(helper, signal.SIGKILL)
        if message != b"ok":
            raise RuntimeError(f"attaching the code failed: {message.decode(errors='replace') or 'the helper died'}")
        return {"ok": True}

    def fork_attacher(self) -> None:
        """Fork the next attach helper, waiting for one request on a socket (off any request's path).

        Invariant: forked, like every child, only while the secret buffer is all zero.
        """
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        helper = os.fork()
        if helper == 0:  # pragma: no cover - runs in the helper
            code = 70
            try:
                signal.set_wakeup_fd(-1)
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                _syscalls.set_pdeathsig(signal.SIGKILL)
                self.sock.detach()
                ours.detach()
                _close_all_but({theirs.fileno()})
                mounts.rehearse_attach()
                data, fds, _, _ = socket.recv_fds(theirs, 4096, 1)
                if not data or len(fds) != 1:
                    os._exit(code)
                try:
                    mounts.attach_code(data.decode(), fds[0])
                    reply, code = b"ok", 0
                except BaseException as exc:
                    reply = f"{type(exc).__name__}: {exc}".encode(errors="replace")[:4000]
                theirs.send(reply)
            finally:
                os._exit(code)
        theirs.close()
        self.attacher = (helper, ours)

    def unpark(self, token: str) -> dict[str, Any]:
        """Dismiss a parked child (its pid 1 exits at EOF on the order pipe)."""
        parked = self.parked.pop(token, None)
        if parked is not None:
            os.close(parked.order)
            parked.channels.close_host_ends()
        return {"ok": True}

    @staticmethod
    def _setup_error(status_r: int, default: str) -> str:
        chunks = []
        ready, _, _ = select.select([status_r], [], [], 0)
        if ready:
            while chunk := os.read(status_r, 4096):
                chunks.append(chunk)
        text = b"".join(chunks)
        if text.startswith(_PID.pack(0)):
            text = text[_PID.size :]
        return text.decode(errors="replace") or default

    def _read_pid(self, status_r: int) -> int:
        ready, _, _ = select.select([status_r], [], [], _CHILD_TIMEOUT_S)
        if not ready:
            raise TimeoutError("the parked child did not report its pid 1")
        header = os.read(status_r, _PID.size)
        (pid,) = _PID.unpack(header) if len(header) == _PID.size else (0,)
        if pid <= 0:
            raise RuntimeError(self._setup_error(status_r, "sandbox setup failed"))
        return int(pid)

    def _child(self, fds: RunnerFds, slot: Slot, hooks: setup.SetupHooks, keep: set[int]) -> NoReturn:
        ctx: setup.SetupContext | None = None
        try:
            signal.set_wakeup_fd(-1)
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            self.sock.detach()
            reaper = {self.reaper_fd} if self.reaper_fd is not None else set()
            _close_all_but({fds.control, fds.stdout, fds.stderr, fds.status, *keep, *reaper})
            ctx = setup.SetupContext(
                slot=slot,
                fds=fds,
                seccomp_programs=self.seccomp_programs,
                landlock_policies=self.landlock_policies,
                python_serve=self.python_serve,
                landlock_abi=self.landlock_abi,
                root_dir=self.root_dir,
                reaper_fd=self.reaper_fd,
            )
            setup.enter(ctx, hooks)
        except BaseException as exc:  # report the failed step to the host, then die
            step = ctx.step if ctx else "start"
            message = f"sandbox setup failed at {step}: {type(exc).__name__}: {exc}"
            prefix = b"" if ctx is not None and ctx.is_inside else _PID.pack(0)
            try:
                _write_all(fds.status, prefix + message.encode(errors="replace")[:4000])
            finally:
                os._exit(70)

    def close(self) -> None:
        """Dismiss parked children and remove the work directory (mounted over only inside sandboxes)."""
        for token in list(self.parked):
            self.unpark(token)
        if self.attacher is not None:
            self.attacher[1].close()  # the helper exits at EOF
            self.attacher = None
        shutil.rmtree(self.workdir, ignore_errors=True)


def main(argv: list[str]) -> int:
    """Entry point: ``python -m stockade.sandbox.zygote FD``."""
    sock = socket.socket(fileno=int(argv[1]))
    # Die with the platform; and if it is already gone, do not start.
    _syscalls.set_pdeathsig(signal.SIGKILL)
    if os.getppid() == 1:
        return 1
    _syscalls.set_child_subreaper()
    config = sock.recv(REQUEST_MAX_BYTES)
    try:
        zygote = Zygote(sock, json.loads(config))
    except Exception as exc:
        sock.send(json.dumps({"ready": False, "error": f"{type(exc).__name__}: {exc}"}).encode())
        return 1
    # Shared pages stay shared: objects frozen here are never touched by a child's garbage collector.
    gc.collect()
    gc.freeze()
    try:
        sock.send(json.dumps(zygote.ready_message()).encode())
        zygote.serve()
    finally:
        zygote.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
