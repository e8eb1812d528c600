"""The fast subset of the reliability harness (``make reliability`` runs all of it, larger).

Each scenario starts a real ``stockade up`` on loopback, injects its fault and reconciles what
was acknowledged against what is stored (issue 17).
"""

from __future__ import annotations

import os

import pytest

from .harness import scenario_burst, scenario_crash, scenario_full_disk, scenario_limits

pytestmark = pytest.mark.e2e


@pytest.mark.timeout(300)
def test_kill_9_during_mixed_traffic_loses_no_acknowledged_activation_change_or_audit_entry(tmp_path):
    figures = scenario_crash(tmp_path, kills=1, non_blocking=30, blocking=6, writes=4)
    assert figures["crash.activations_accepted"] > 0
    assert figures["crash.activations_lost"] == 0
    assert figures["crash.activations_duplicated"] == 0
    assert figures["crash.activations_still_pending"] == 0
    assert figures["crash.changes_lost"] == 0
    assert figures["crash.audit_entries_missing"] == 0
    assert figures["crash.unhandled_errors_logged"] == 0


@pytest.mark.timeout(300)
def test_a_burst_of_concurrent_invokes_is_accepted_and_recorded_without_server_errors(tmp_path):
    figures = scenario_burst(tmp_path, 200)
    assert figures["burst.server_errors_5xx"] == 0
    recorded, accepted = str(figures["burst.recorded_of_accepted"]).split("/")
    assert recorded == accepted == str(figures["burst.accepted_202"])
    assert figures["burst.unhandled_errors_logged"] == 0


@pytest.mark.root
@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to mount a small tmpfs for the data directory")
@pytest.mark.timeout(300)
def test_a_full_disk_answers_507_keeps_reads_and_invokes_working_and_recovers(tmp_path):
    figures = scenario_full_disk(tmp_path)
    assert figures["full_disk.invoke_before_fill"] == 200
    assert figures["full_disk.write_status"] == 507
    assert figures["full_disk.write_error_shape_ok"] is True
    assert figures["full_disk.read_status"] == 200
    assert figures["full_disk.list_status"] == 200
    assert figures["full_disk.blocking_invoke_status"] == 200
    assert figures["full_disk.non_blocking_invoke_status"] == 507  # cannot be journalled: refused, not lost
    assert figures["full_disk.write_after_space_returns"] == 200
    assert figures["full_disk.non_blocking_after_space_returns"] == 202
    assert figures["full_disk.record_held_during_full_disk_committed"] is True
    assert figures["full_disk.unhandled_errors_logged"] == 0


@pytest.mark.timeout(300)
def test_a_namespace_driven_at_twice_its_limit_gets_the_limit_and_retry_after_on_every_429(tmp_path):
    figures = scenario_limits(tmp_path, limit=60, seconds=32)
    assert 0.95 * 60 <= figures["limits.accepted_max_in_any_60s"] <= 60
    assert figures["limits.refused_429"] > 0
    assert figures["limits.429_without_retry_after"] == 0
