"""Dispatch, global options, exit codes, error rendering, secrecy of the key, and `up`."""

from __future__ import annotations

import io
import os
import sys

import httpx
import pytest

import stockade.cli.main as cli_main
from stockade.cli.main import platform_argv, run, up_arguments

from .conftest import AUTH, KEY, basic_auth


@pytest.mark.parametrize(
    ("status", "code"),
    [(400, 2), (401, 3), (403, 3), (404, 4), (409, 5), (413, 2), (415, 2), (429, 6), (500, 7), (503, 7)],
)
def test_http_errors_map_to_exit_codes_and_render_on_stderr(cli, api, status, code):
    api.error(status, "nope", request_id="tx42")
    result = cli("trigger", "get", "t")
    assert result.code == code
    assert result.out == ""
    assert result.err == "error: nope (code: tx42)\n"


def test_connection_refused_exits_8(props_file):
    def refuse(request):
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    err = io.StringIO()
    code = run(["action", "list"], transport=httpx.MockTransport(refuse), stdout=io.StringIO(), stderr=err)
    assert code == 8
    assert err.getvalue().startswith("error: cannot reach APIHOST http://api.test:3233: ")


def test_global_options_work_before_and_after_the_command(cli, api):
    api.reply(200, ["guest"])
    assert cli("--json", "namespace", "list").json == ["guest"]
    api.reply(200, ["guest"])
    assert cli("namespace", "list", "--json").json == ["guest"]
    api.reply(200, ["guest"])
    assert cli("namespace", "list").out == "NAMESPACE\nguest\n"


def test_apihost_and_auth_flags_override_the_props_file(cli, api):
    cli("namespace", "list", "--apihost", "http://other.test:9000", "--auth", "u:k")
    assert api.last.url == "http://other.test:9000/api/v1/namespaces"
    assert api.last.headers["authorization"] == basic_auth("u:k")


def test_apihost_without_scheme_defaults_to_https(cli, api):
    cli("--apihost", "other.test:8443", "namespace", "list")
    assert api.last.url == "https://other.test:8443/api/v1/namespaces"


def test_namespace_from_props_is_the_default(cli, api, props_file):
    props_file.write_text(props_file.read_text() + "NAMESPACE=guest\n")
    cli("action", "get", "hello")
    assert api.last.path == "/api/v1/namespaces/guest/actions/hello"


def test_missing_auth_exits_3_without_a_request(cli, api, props_file):
    props_file.write_text("APIHOST=http://api.test\n")
    result = cli("action", "list")
    assert result.code == 3
    assert "AUTH" in result.err
    assert api.calls == []


def test_the_key_never_appears_in_output(cli, api, props_file):
    api.error(401, "The supplied authentication is invalid")
    result = cli("action", "list")
    api.reply(200, [])
    listed = cli("action", "list", "--json")
    props_file.write_text(f"APIHOST=http://api.test\nAUTH={KEY}\n")  # malformed: no uuid
    malformed = cli("action", "list")
    for res in (result, listed, malformed):
        assert KEY not in res.out + res.err
    assert AUTH not in result.err


def test_usage_errors_exit_2(cli, api, capsys):
    result = cli("action", "frobnicate")
    assert result.code == 2
    assert "invalid choice" in capsys.readouterr().err
    assert api.calls == []


def test_version(cli, capsys):
    assert cli("--version").code == 0
    assert capsys.readouterr().out.startswith("stockade ")


def test_ctrl_c_exits_130(cli, api, monkeypatch):
    def interrupt(request):
        raise KeyboardInterrupt

    monkeypatch.setattr(api, "handler", interrupt)
    result = cli("action", "list")
    assert result.code == 130


class Execed(Exception):
    """Raised by the fake os.execv so the test sees what would have been run."""

    def __init__(self, path, argv):
        super().__init__(path)
        self.path = path
        self.argv = argv


@pytest.fixture
def fake_execv(monkeypatch):
    def execv(path, argv):
        raise Execed(path, list(argv))

    monkeypatch.setattr(os, "execv", execv)


@pytest.mark.parametrize(
    ("argv", "forwarded"),
    [
        (["up"], []),
        (["up", "--port", "3233", "--data-dir", "X"], ["--port", "3233", "--data-dir", "X"]),
        (["up", "--help"], ["--help"]),
        (["up", "-i", "--json", "up"], ["-i", "--json", "up"]),
        (["--json", "--apihost", "h", "up", "--x"], ["--x"]),
        (["--apihost=h", "up"], []),
    ],
)
def test_up_execs_the_server_module_with_arguments_untouched(fake_execv, argv, forwarded):
    with pytest.raises(Execed) as info:
        run(argv)
    assert info.value.path == sys.executable
    assert info.value.argv == [sys.executable, "-m", "stockade.server", *forwarded]


@pytest.mark.parametrize("argv", [[], ["--help"], ["action", "up"], ["--apihost", "up", "action"], ["--version", "up"]])
def test_up_arguments_only_match_the_up_command(argv):
    assert up_arguments(argv) is None


def test_platform_argv():
    assert platform_argv(["--port", "1"]) == [sys.executable, "-m", "stockade.server", "--port", "1"]


def test_up_reports_exec_failure(monkeypatch):
    def broken(path, argv):
        raise FileNotFoundError(2, "No such file or directory")

    monkeypatch.setattr(os, "execv", broken)
    err = io.StringIO()
    assert run(["up"], stderr=err) == 1
    assert err.getvalue().startswith("error: cannot start the platform: ")


def test_main_reads_sys_argv(monkeypatch, fake_execv):
    monkeypatch.setattr(sys, "argv", ["stockade", "up", "--port", "9"])
    with pytest.raises(Execed) as info:
        cli_main.main()
    assert info.value.argv[-2:] == ["--port", "9"]


def test_python_dash_m_runs_the_cli():
    import subprocess

    done = subprocess.run(
        [sys.executable, "-m", "stockade.cli", "--version"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0
    assert done.stdout.startswith("stockade ")


def test_malformed_replies_do_not_crash_readable_output(cli, api):
    """A list endpoint answering an object prints an empty table; a get answering a list prints it raw."""
    api.reply(200, {"unexpected": 1})
    listed = cli("action", "list")
    assert (listed.code, listed.out) == (0, "NAME  KIND  VERSION  UPDATED\n")
    api.reply(200, ["odd"])
    got = cli("trigger", "get", "t")
    assert (got.code, got.json) == (0, ["odd"])
