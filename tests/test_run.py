"""`patron run` serves Patron with its worker, and Ctrl-C stops every process it started."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def children_of(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/status")
    return status.exists() and "zombie" not in status.read_text()


def test_run_serves_the_login_page_and_stops_cleanly_on_ctrl_c(tmp_path):
    port = free_port()
    env = {
        **os.environ,
        "PATRON_VAR_DIR": str(tmp_path),
        "PATRON_DATABASE_URL": f"sqlite:///{tmp_path / 'run.sqlite3'}",
        "PATRON_PORT": str(port),
        "PATRON_TESTING": "0",
        "PATRON_ADMIN_PASSWORD": "a long admin passphrase",
    }
    process = subprocess.Popen(  # noqa: S603
        [str(BIN / "patron"), "run"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        page = ""
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/login/", timeout=2) as r:
                    page = r.read().decode()
                    break
            except OSError:
                time.sleep(0.5)
        assert 'name="username"' in page, "the login page was not served"
        children = children_of(process.pid)
        assert len(children) == 2  # the web server and the worker
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, output
    assert f"http://127.0.0.1:{port}/" in output and "admin@example.com" in output
    assert "patron: stopped." in output
    time.sleep(0.5)
    assert not [pid for pid in children if alive(pid)]
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", port)) != 0  # nothing listens any more


def test_inbound_takes_smtp_connections_and_stops_on_sigterm(tmp_path):
    import smtplib

    port = free_port()
    env = {
        **os.environ,
        "PATRON_VAR_DIR": str(tmp_path),
        "PATRON_DATABASE_URL": f"sqlite:///{tmp_path / 'inbound.sqlite3'}",
        "PATRON_TESTING": "0",
        "PATRON_INBOUND_PORT": str(port),
        "PATRON_INBOUND_DOMAIN": "in.acme.example",
    }
    process = subprocess.Popen(  # noqa: S603
        [str(BIN / "patron"), "inbound"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.3)
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
            code, banner = smtp.ehlo("mx.sender.example")
            assert code == 250 and b"in.acme.example" in banner
            smtp.mail("someone@sender.example")
            assert smtp.rcpt("anyone@elsewhere.example")[0] == 550  # never a relay
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, output
    assert f"127.0.0.1:{port}" in output
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", port)) != 0


def test_run_starts_the_inbound_server_only_when_its_port_is_set(settings):
    from patron.cli import _children_commands

    settings.INBOUND_WITH_RUN = False
    assert [name for name, _command in _children_commands()] == ["web", "worker"]
    settings.INBOUND_WITH_RUN = True
    commands = dict(_children_commands())
    assert commands["inbound"][-1] == "inbound"
