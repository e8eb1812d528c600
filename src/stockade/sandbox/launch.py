"""Launch: the runner is pid 2; pid 1 is a tiny, fully confined reaper.

Two setup steps:

* ``fork_runner`` (while parked): pid 1 forks the runner-to-be, which carries on with setup, then
  confines itself (same uid, no capabilities, no_new_privs, Landlock, seccomp) and only reaps: as
  the static reaper binary (``reaper.c``) when it is built, which adds the Python seccomp filter
  first, else as this Python process. It exits with the runner's status as soon as the runner ends; the kernel
  then kills whatever else is left in the pid namespace. Forking here, ahead of time, keeps a fork of
  the interpreter off the cold start.
* ``exec_runner`` (last): run the runner in this process.

Why the runner is not pid 1: pid 1 of a namespace ignores every signal it has no handler for, so
SIGXCPU at the RLIMIT_CPU soft limit would do nothing and Node's abort would turn into SIGSEGV; and
pid 1 inherits every orphan to reap.

The runner process:

* fd 0 is /dev/null, fds 1 and 2 are the stdout/stderr pipes, fd 3 is the control socket, and fd 4
  the setup-status pipe (close-on-exec); every other inherited fd is closed;
* its environment is a fixed base plus the action's own variables (never the host's);
* Python: the zygote's already-imported runner is called as ``serve(3)``; the status pipe is closed
  first, which tells the host that setup finished. Node: node is exec'd, and the exec closes it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import sys
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import NoReturn, final

from stockade.sandbox.plan import CODE_PATH, RUNTIMES_PATH, SandboxPlan

__all__ = ["BASE_ENV", "Reaper", "RunnerFds", "exec_runner", "fork_runner", "runner_environment"]

# HOME and the temporary directory need no variable: /etc/passwd gives uid 1000 the home /tmp.
BASE_ENV: Mapping[str, str] = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"}
_CONTROL_FD = 3
_STATUS_FD = 4
_CLOSE_ALL_ABOVE = 1 << 20


@final
@dataclass(frozen=True, slots=True)
class RunnerFds:
    """The sandbox ends of the host's channels, as inherited from the zygote."""

    control: int
    stdout: int
    stderr: int
    status: int


@final
@dataclass(frozen=True, slots=True)
class Reaper:
    """The static pid-1 binary (an fd) and the seccomp program it installs first (the Python list)."""

    fd: int
    seccomp_program: bytes


def runner_environment(env: Mapping[str, str]) -> dict[str, str]:
    """The runner's environment: the base plus ``env``, minus variables that would change how the runtime loads.

    The dropped ones (LD_*, NODE_OPTIONS) would let an action's parameters preload code into the
    runtime before the runner's own checks run; everything else is the action's business.
    """
    result = dict(BASE_ENV)
    for key, value in env.items():
        if not key or "=" in key or "\0" in key or "\0" in value:
            continue
        if key.startswith("LD_") or key == "NODE_OPTIONS":
            continue
        result[key] = value
    return result


def _arrange_fds(fds: RunnerFds) -> None:
    # Move everything above the targets first, so no dup2 overwrites a source still needed.
    wanted = {1: fds.stdout, 2: fds.stderr, _CONTROL_FD: fds.control, _STATUS_FD: fds.status}
    high = {target: fcntl.fcntl(source, fcntl.F_DUPFD_CLOEXEC, 64) for target, source in wanted.items()}
    null = os.open("/dev/null", os.O_RDONLY | os.O_CLOEXEC)
    os.dup2(null, 0)
    for target, source in high.items():
        os.dup2(source, target, inheritable=target != _STATUS_FD)
    # Invariant: the runner holds only fds 0-4; nothing of the zygote's (its socket) leaks in.
    os.closerange(_STATUS_FD + 1, _CLOSE_ALL_ABOVE)


def _fail(message: str) -> NoReturn:
    try:
        os.write(_STATUS_FD, message.encode(errors="replace")[:4000])
    finally:
        os._exit(70)


def _run_runner(
    plan: SandboxPlan, fds: RunnerFds, env: Mapping[str, str], python_serve: Callable[[int], None] | None
) -> NoReturn:
    try:
        _arrange_fds(fds)
        environment = runner_environment(env)
        os.umask(0o022)
        os.chdir(CODE_PATH)
        if plan.family == "nodejs":
            # Ignored dispositions survive exec: past RLIMIT_FSIZE, write() fails with EFBIG instead of
            # the default SIGXFSZ killing node.
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            os.execve(plan.node_argv[0], list(plan.node_argv), environment)  # noqa: S606 - fixed argv from the plan
        if python_serve is None:
            raise RuntimeError("the zygote has no Python runner")
        os.environ.clear()
        os.environ.update(environment)
        # As if started as `python3 runner.py 3`, the runner's documented command line.
        sys.argv = [f"{RUNTIMES_PATH}/python/runner.py", str(_CONTROL_FD)]
    except BaseException as exc:
        _fail(f"sandbox setup failed at exec: {type(exc).__name__}: {exc}")
    os.close(_STATUS_FD)  # setup is complete: the host sees EOF on the status pipe
    code = 0
    try:
        python_serve(_CONTROL_FD)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        traceback.print_exc()
        code = 1
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError, ValueError):
                stream.flush()
    os._exit(code)


def _exec_reaper(reaper: Reaper) -> NoReturn:
    # Only fd 3 (the seccomp program, in a pipe) crosses the exec; the reaper's own fd is close-on-exec.
    try:
        binary = fcntl.fcntl(reaper.fd, fcntl.F_DUPFD_CLOEXEC, 64)
        read_end, write_end = os.pipe()
        os.write(write_end, reaper.seccomp_program)
        os.close(write_end)
        os.dup2(read_end, _CONTROL_FD, inheritable=True)
        os.closerange(0, _CONTROL_FD)
        os.closerange(_CONTROL_FD + 1, binary)
        os.closerange(binary + 1, _CLOSE_ALL_ABOVE)
        os.execve(binary, ["stockade-reaper"], {})  # noqa: S606 - our static binary, by fd
    finally:
        # The exec failed: the sandbox ends rather than keep a pid 1 under the weaker filter.
        os._exit(70)


def _reap_as_init(runner: int, reaper: Reaper | None) -> NoReturn:
    # Default dispositions: pid 1 ignores them, so nothing inside can interrupt the reaper.
    for number in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2):
        signal.signal(number, signal.SIG_DFL)
    if reaper is not None:
        # The static reaper keeps the same contract: the runner is ns pid 2 (asserted here).
        if runner != 2:
            os._exit(70)
        _exec_reaper(reaper)
    os.closerange(0, _CLOSE_ALL_ABOVE)
    while True:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            os._exit(0)
        if pid == runner:
            code = os.waitstatus_to_exitcode(status)
            os._exit(128 - code if code < 0 else code)


def fork_runner(confine_reaper: Callable[[], None], status_fd: int, reaper: Reaper | None = None) -> None:
    """Setup step: fork; returns in the child (the runner-to-be, pid 2). This process stays as pid 1, the reaper.

    ``confine_reaper`` takes every privilege from the reaper; if it fails, the reaper reports why on
    ``status_fd`` and exits, which ends the whole sandbox. With ``reaper``, pid 1 then executes the
    static reaper binary instead of staying a Python process (a fork of the zygote: about 2 MB of
    private pages).
    """
    runner = os.fork()
    if runner == 0:
        return
    try:
        confine_reaper()
    except BaseException as exc:  # a reaper that cannot confine itself ends the sandbox
        try:
            os.write(status_fd, f"sandbox setup failed at confining pid 1: {type(exc).__name__}: {exc}".encode()[:4000])
        finally:
            os._exit(70)
    _reap_as_init(runner, reaper)


def exec_runner(
    plan: SandboxPlan, fds: RunnerFds, env: Mapping[str, str], python_serve: Callable[[int], None] | None
) -> NoReturn:
    """Setup step: become the runner (Python: the zygote's imported runner; Node.js: exec node). Never returns."""
    _run_runner(plan, fds, env, python_serve)
