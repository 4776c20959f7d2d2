"""The ``patron`` command."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from patron.cli import build_parser, main
from patron.core.services import authenticate_api_key
from patron.demo import DEMO_NAME
from tests.factories import WorkspaceFactory

BIN = Path(sys.executable).parent


@pytest.mark.parametrize(
    "command", [[str(BIN / "patron"), "--help"], [sys.executable, "-m", "patron", "--help"]]
)
def test_help_lists_the_commands(command):
    completed = subprocess.run(command, capture_output=True, text=True, check=False, timeout=60)  # noqa: S603
    assert completed.returncode == 0
    for word in ("run", "worker", "scheduler", "inbound", "demo", "apikey", "manage"):
        assert word in completed.stdout


def test_unknown_commands_are_refused(capsys):
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["launch"])
    assert exit_info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


@pytest.mark.django_db
def test_apikey_create_prints_a_working_key(capsys):
    workspace = WorkspaceFactory(slug="shop")
    with pytest.raises(SystemExit) as exit_info:
        main(["apikey", "create", "--workspace", "shop", "--name", "Provisioning"])
    assert exit_info.value.code == 0
    secret = capsys.readouterr().out.strip()
    key = authenticate_api_key(secret)
    assert key is not None and key.workspace == workspace and key.name == "Provisioning"


@pytest.mark.django_db
def test_apikey_create_for_an_unknown_workspace_says_so(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["apikey", "create", "--workspace", "nope", "--name", "X"])
    assert exit_info.value.code == 2
    assert "no workspace with the short name 'nope'" in capsys.readouterr().err


def test_demo_and_first_start_on_a_fresh_database(tmp_path):
    """`patron demo` on an empty installation creates the admin and the demo workspace."""
    env = {
        **os.environ,
        "PATRON_VAR_DIR": str(tmp_path),
        "PATRON_TESTING": "0",
        "PATRON_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.sqlite3'}",
    }
    completed = subprocess.run(  # noqa: S603
        [str(BIN / "patron"), "demo"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert "Created the administrator admin@example.com" in completed.stdout
    assert DEMO_NAME in completed.stdout
    again = subprocess.run(  # noqa: S603
        [str(BIN / "patron"), "demo"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert again.returncode == 0 and "Created the administrator" not in again.stdout
    counts = subprocess.run(  # noqa: S603
        [
            str(BIN / "patron"),
            "manage",
            "shell",
            "-c",
            "from patron.crm.models import Contact, Company;"
            "print(Contact.objects.unscoped().count(), Company.objects.unscoped().count())",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    contacts, companies = map(int, counts.stdout.strip().splitlines()[-1].split())
    assert contacts == 251 and companies == 40
