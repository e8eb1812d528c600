"""SandboxPlan: a spec resolved for this host (pure; no sandbox is started)."""

from __future__ import annotations

from pathlib import Path

import pytest

from stockade.sandbox.launch import runner_environment
from stockade.sandbox.plan import CODE_PATH, HostPaths, SandboxPlan, Slot, build_plan, cpu_backstop_s
from stockade.sandbox.rlimits import describe
from stockade.sandbox.spec import SandboxSpec

PATHS = HostPaths(
    python_prefixes=("/root/.pyenv/versions/3.11.7", "/usr"),
    runtimes_dir="/opt/runtimes",
    node_binary="/usr/bin/node",
    node_interpreter="/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
)


def _plan(tmp_path: Path, *, memory_cgroup: bool = False, **spec: object) -> SandboxPlan:
    family = spec.pop("family", "python")
    return build_plan(
        SandboxSpec(family=family, code_dir=tmp_path, **spec),  # type: ignore[arg-type]
        sandbox_id="sbx-test",
        mode="root",
        landlock_abi=7,
        paths=PATHS,
        memory_cgroup=memory_cgroup,
    )


def test_python_plan_binds_exactly_the_interpreter_prefix(tmp_path: Path) -> None:
    """/usr, the prefix (not its parents), certs, runtimes and the code; the code noexec at /fn."""
    plan = _plan(tmp_path)
    targets = {b.target: b for b in plan.binds}
    assert "/root/.pyenv/versions/3.11.7" in targets
    assert "/root" not in targets
    assert targets[CODE_PATH].source == str(tmp_path.resolve())
    assert targets[CODE_PATH].noexec
    assert not targets["/usr"].noexec
    assert plan.node_argv == ()


def test_node_plan_caps_the_heap_below_the_memory_limit(tmp_path: Path) -> None:
    """--max-old-space-size follows memory_mb; Landlock may execute node and its loader only."""
    plan = _plan(tmp_path, family="nodejs", memory_mb=256)
    assert plan.node_argv[:2] == ("/usr/bin/node", "--max-old-space-size=192")
    assert plan.node_argv[-1] == "3"
    assert plan.landlock_vars == {"node": "/usr/bin/node", "ld_so": PATHS.node_interpreter}
    assert "RLIMIT_AS" not in describe(plan)


def test_rlimits_follow_the_spec(tmp_path: Path) -> None:
    """NOFILE, FSIZE, CORE, NPROC from the spec; Python gets RLIMIT_AS a little above memory_mb."""
    plan = _plan(tmp_path, memory_mb=128, tmp_size_mb=8, max_pids=20, max_open_files=100, timeout_ms=3_000)
    limits = describe(plan)
    assert limits["RLIMIT_NOFILE"] == (100, 100)
    assert limits["RLIMIT_FSIZE"] == (8 << 20, 8 << 20)
    assert limits["RLIMIT_CORE"] == (0, 0)
    assert limits["RLIMIT_NPROC"] == (20, 20)
    assert limits["RLIMIT_CPU"] == (60, 65)
    assert (128 << 20) < limits["RLIMIT_AS"][0] <= (512 << 20)


def test_a_memory_cgroup_replaces_the_address_space_limit(tmp_path: Path) -> None:
    """With a memory cgroup bounding the sandbox, Python gets no RLIMIT_AS (threads reserve address
    space they never use: ThreadPoolExecutor(16) failed under it); everything else stays."""
    limits = describe(_plan(tmp_path, memory_mb=256, memory_cgroup=True))
    assert "RLIMIT_AS" not in limits
    assert limits["RLIMIT_NPROC"]
    assert limits["RLIMIT_NOFILE"]
    assert limits["RLIMIT_CPU"]


def test_cpu_backstop_defaults_to_ten_timeouts(tmp_path: Path) -> None:
    """RLIMIT_CPU backstop: explicit, else 10x the timeout and at least 60 s."""
    assert cpu_backstop_s(SandboxSpec(family="python", code_dir=tmp_path, timeout_ms=30_000)) == 300
    assert cpu_backstop_s(SandboxSpec(family="python", code_dir=tmp_path, cpu_backstop_s=2)) == 2


def test_plan_and_slot_survive_the_wire(tmp_path: Path) -> None:
    """What the zygote receives is what the backend planned."""
    plan = _plan(tmp_path, family="nodejs", egress_socket=tmp_path / "egress.sock")
    assert SandboxPlan.from_json(plan.to_json()) == plan
    slot = Slot(host_uid=200_003, host_gid=200_003, cgroup_procs=("/sys/fs/cgroup/pids/x/cgroup.procs",))
    assert Slot.from_dict(slot.to_dict()) == slot
    assert plan.has_egress
    assert plan.binds[-1].target == "/run/stockade/egress.sock"


def test_missing_code_dir_is_refused(tmp_path: Path) -> None:
    """A plan is never built for code that is not there."""
    with pytest.raises(ValueError, match="not a directory"):
        _plan(tmp_path / "missing")


def test_spec_rejects_nonsense_limits(tmp_path: Path) -> None:
    """Limits are validated where the spec is made."""
    with pytest.raises(ValueError, match="memory_mb"):
        SandboxSpec(family="python", code_dir=tmp_path, memory_mb=0)
    with pytest.raises(ValueError, match="cpu_percent"):
        SandboxSpec(family="python", code_dir=tmp_path, cpu_percent=0)


def test_runner_environment_is_the_base_plus_the_action_minus_loader_variables() -> None:
    """The host environment never leaks in; LD_* and NODE_OPTIONS from parameters are dropped."""
    env = runner_environment({"API_KEY": "k", "LD_PRELOAD": "/tmp/x.so", "NODE_OPTIONS": "--require x", "A=B": "c"})
    assert env == {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "API_KEY": "k"}
    assert not {"LD_PRELOAD", "NODE_OPTIONS", "A=B"} & env.keys()
