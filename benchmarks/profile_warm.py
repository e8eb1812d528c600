"""Profile the warm blocking-invoke path: wrk at 8 connections against a Stockade while py-spy
records the server (flame graph and top functions under var/bench/). Usage: profile_warm.py TAG"""

from __future__ import annotations

import base64
import subprocess
import sys
from pathlib import Path

import httpx
from bench_invoke import PY, wrk

from common import REPO, start_stockade, stop

SPY = str(Path(sys.executable).parent / "py-spy")


def main() -> None:
    tag = sys.argv[1] if len(sys.argv) > 1 else "now"
    out = REPO / "var" / "bench"
    out.mkdir(parents=True, exist_ok=True)
    proc, url, auth, _data = start_stockade()
    try:
        uuid, key = auth.split(":", 1)
        client = httpx.Client(auth=(uuid, key), timeout=30)
        client.put(
            f"{url}/api/v1/namespaces/_/actions/bpy?overwrite=true", json={"exec": {"kind": "python:3", "code": PY}}
        )
        target = f"{url}/api/v1/namespaces/_/actions/bpy?blocking=true&result=true"
        client.post(target, json={}).raise_for_status()
        basic = "Basic " + base64.b64encode(auth.encode()).decode()
        spy = subprocess.Popen(
            [SPY, "record", "-p", str(proc.pid), "-d", "6", "-r", "200", "-o", str(out / f"flame-{tag}.svg")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        raw = subprocess.Popen(
            [
                SPY,
                "record",
                "-p",
                str(proc.pid),
                "-d",
                "6",
                "-r",
                "200",
                "-f",
                "raw",
                "-o",
                str(out / f"flame-{tag}.txt"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        print(wrk(target, basic, 8, 7))
        spy.wait()
        raw.wait()
    finally:
        stop(proc)


if __name__ == "__main__":
    main()
