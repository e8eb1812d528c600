"""TLS: a generated development certificate, and `stockade up --self-signed` serving HTTPS."""

import os
import socket
import ssl
import subprocess
import sys
import time

import httpx
import pytest
from cryptography import x509

from stockade.security.tls import ensure_self_signed


def test_self_signed_certificate_is_made_once_with_a_private_key(tmp_path):
    cert, key = ensure_self_signed(tmp_path / "tls", ["localhost", "127.0.0.1"])
    assert oct(key.stat().st_mode & 0o777) == "0o600"
    loaded = x509.load_pem_x509_certificate(cert.read_bytes())
    names = loaded.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in names.get_values_for_type(x509.DNSName)
    assert [str(ip) for ip in names.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    before = cert.read_bytes()
    assert ensure_self_signed(tmp_path / "tls", ["localhost"]) == (cert, key)
    assert cert.read_bytes() == before  # still valid: reused, not regenerated


def test_stockade_up_serves_https(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = (tmp_path / "server.log").open("wb")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "stockade.server",
            "--port",
            str(port),
            "--data-dir",
            str(tmp_path),
            "--self-signed",
            "--sandbox",
            "insecure_process",
            "--wskprops",
            str(tmp_path / "wskprops"),
        ],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ},
    )
    try:
        cert = tmp_path / "tls" / "self-signed.pem"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if (
                    cert.exists()
                    and httpx.get(
                        f"https://127.0.0.1:{port}/", verify=ssl.create_default_context(cafile=str(cert)), timeout=1
                    ).status_code
                    == 200
                ):
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        else:
            raise AssertionError((tmp_path / "server.log").read_text())
        props = (tmp_path / "wskprops").read_text()
        assert f"APIHOST=https://127.0.0.1:{port}" in props
        # REST responses over TLS carry HSTS like web actions and the gateway (one edge function).
        context = ssl.create_default_context(cafile=str(cert))
        for path, headers in (("/", {}), ("/api/v1/namespaces/_/actions", {"Authorization": "Basic x"})):
            r = httpx.get(f"https://127.0.0.1:{port}{path}", verify=context, headers=headers, timeout=5)
            assert r.headers["strict-transport-security"] == "max-age=31536000; includeSubDomains"
            assert r.headers["x-content-type-options"] == "nosniff"
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"https://127.0.0.1:{port}/", timeout=5)  # untrusted without the certificate
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        log.close()
