"""The console's settings: on by default with 15-minute sessions; both configurable."""

from stockade.config import load_settings


def test_defaults_and_environment_overrides(tmp_path):
    default = load_settings(None, {"STOCKADE_DATA_DIR": str(tmp_path)})
    assert default.console.enabled is True
    assert default.console.session_ttl_s == 900
    changed = load_settings(
        None,
        {
            "STOCKADE_DATA_DIR": str(tmp_path),
            "STOCKADE_CONSOLE__ENABLED": "false",
            "STOCKADE_CONSOLE__SESSION_TTL_S": "300",
        },
    )
    assert changed.console.enabled is False
    assert changed.console.session_ttl_s == 300
