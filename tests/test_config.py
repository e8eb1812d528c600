from pathlib import Path

import pytest

from stockade.config import Settings, SettingsError, load_settings


def test_defaults_are_secure():
    settings = load_settings(env={})
    assert settings.api.host == "127.0.0.1"
    assert settings.api.port == 3233
    assert settings.invoker.sandbox_backend == "linux"
    assert settings.store.url == "sqlite"
    assert settings.insecure_options() == []


def test_file_then_environment(tmp_path: Path):
    cfg = tmp_path / "s.toml"
    cfg.write_text('data_dir = "/srv/sk"\n[api]\nport = 8080\n[limits]\ninvocations_per_minute = 5\n')
    settings = load_settings(cfg, env={"STOCKADE_API__PORT": "9090", "STOCKADE_TEST_ANYTHING": "ignored"})
    assert settings.api.port == 9090
    assert settings.limits.invocations_per_minute == 5
    assert settings.data_dir == Path("/srv/sk")
    assert settings.api.base_url == "http://127.0.0.1:9090"


def test_config_path_from_environment(tmp_path: Path):
    cfg = tmp_path / "s.toml"
    cfg.write_text('[invoker]\nsandbox_backend = "insecure_process"\nidle_ttl_s = 5\n')
    settings = load_settings(env={"STOCKADE_CONFIG": str(cfg)})
    assert settings.invoker.idle_ttl_s == 5.0
    assert settings.insecure_options()


@pytest.mark.parametrize(
    "env",
    [
        {"STOCKADE_API__PORT": "x"},
        {"STOCKADE_API__PORT": "70000"},
        {"STOCKADE_NOPE": "1"},
        {"STOCKADE_INVOKER__SANDBOX_BACKEND": "docker"},
        {"STOCKADE_STORE__URL": "mysql://x"},
        {"STOCKADE_INVOKER__MAX_SANDBOXES": "0"},
        {"STOCKADE_API": "flat"},
    ],
)
def test_bad_values_are_refused(env):
    with pytest.raises(SettingsError):
        load_settings(env=env)


def test_unreadable_file(tmp_path: Path):
    with pytest.raises(SettingsError, match="cannot read settings file"):
        load_settings(tmp_path / "missing.toml", env={})
    bad = tmp_path / "bad.toml"
    bad.write_text("[[[")
    with pytest.raises(SettingsError):
        load_settings(bad, env={})


def test_settings_are_frozen():
    with pytest.raises(AttributeError):
        Settings().data_dir = Path("/")  # type: ignore[misc]


@pytest.mark.parametrize("value", ["-1", "17"])
def test_stem_cells_out_of_range_is_refused(value):
    with pytest.raises(SettingsError, match="stem_cells"):
        load_settings(env={"STOCKADE_INVOKER__STEM_CELLS": value})


def test_stem_cells_reach_the_linux_backend():
    from stockade.sandbox.linux import LinuxSandboxBackend

    settings = load_settings(env={"STOCKADE_INVOKER__STEM_CELLS": "2"})
    backend = LinuxSandboxBackend.from_settings(settings)
    assert backend._stems.target == 2
    assert load_settings(env={}).invoker.stem_cells == 1
