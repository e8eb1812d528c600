"""StemPool: which ready stem cell a plan may take (pure bookkeeping; the real sandbox is tested in test_stem_cells)."""

from __future__ import annotations

from dataclasses import replace

from stockade.sandbox.plan import SandboxPlan
from stockade.sandbox.stems import Stem, StemPool, rlimits_to_lower

CPU_60 = ("RLIMIT_CPU", 61, 62)


def _plan(family="python", cpu=CPU_60, **changes) -> SandboxPlan:
    rlimits = (("RLIMIT_NOFILE", 64, 64), cpu)
    base = SandboxPlan(
        sandbox_id="stem",
        family=family,
        mode="root",
        binds=(),
        symlinks=(),
        tmp_size_mb=64,
        tmp_max_files=1024,
        has_egress=False,
        rlimits=rlimits,
        landlock_abi=6,
    )
    return replace(base, **changes)


def _stem(plan: SandboxPlan) -> Stem:
    return Stem(sandbox=object(), plan=plan, limits=(256, 64, 100))  # type: ignore[arg-type]


def test_an_equal_plan_takes_the_stem_with_nothing_to_lower():
    assert rlimits_to_lower(_plan(), _plan()) == {}


def test_a_python_stem_lowers_its_cpu_backstop_but_never_raises_it():
    assert rlimits_to_lower(_plan(), _plan(cpu=("RLIMIT_CPU", 11, 12))) == {"RLIMIT_CPU": [11, 12]}
    assert rlimits_to_lower(_plan(), _plan(cpu=("RLIMIT_CPU", 121, 122))) is None
    assert rlimits_to_lower(_plan(), _plan(cpu=("RLIMIT_CPU", 11, 122))) is None


def test_only_python_lowers_and_any_other_difference_refuses():
    assert rlimits_to_lower(_plan("nodejs"), _plan("nodejs", cpu=("RLIMIT_CPU", 11, 12))) is None
    assert rlimits_to_lower(_plan(), _plan(has_egress=True)) is None
    assert rlimits_to_lower(_plan(), _plan(cpu=("RLIMIT_CPU", 11, 12), tmp_size_mb=128)) is None
    assert rlimits_to_lower(_plan(), _plan("nodejs")) is None


def test_a_taken_stem_leaves_the_pool_and_counts_a_hit_or_miss():
    pool = StemPool(target=2)
    assert pool.wants("python")
    first, second = _stem(_plan()), _stem(_plan(tmp_size_mb=32))
    pool.add(first)
    pool.add(second)
    assert not pool.wants("python")
    assert pool.wants("nodejs")
    assert pool.take("python", (), _plan(tmp_size_mb=32)) == (second, {})
    assert pool.take("python", (), _plan(tmp_size_mb=32)) is None  # served once only
    assert pool.statistics().ready == {"python": 1, "nodejs": 0}
    assert pool.statistics().misses == 1


def test_node_boot_variables_take_the_ordinary_start():
    pool = StemPool(target=1)
    pool.add(_stem(_plan("nodejs")))
    assert pool.take("nodejs", ("NODE_OPTIONS",), _plan("nodejs")) is None
    assert pool.take("nodejs", ("SSL_CERT_FILE",), _plan("nodejs")) is None
    assert pool.take("nodejs", ("APP_NODE_X",), _plan("nodejs")) is not None
    assert pool.statistics().misses == 2


def test_drain_empties_every_runtime():
    pool = StemPool(target=1)
    stems = [_stem(_plan()), _stem(_plan("nodejs"))]
    for stem in stems:
        pool.add(stem)
    assert pool.drain() == stems
    assert pool.statistics().ready == {"python": 0, "nodejs": 0}
