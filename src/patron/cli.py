"""The ``patron`` command.

patron run                      migrate, create the first admin and demo data, then
                                serve the web app with a worker and the scheduler
patron worker [--with-scheduler] run background workers (database queue, or Redis
                                when PATRON_REDIS_URL is set)
patron scheduler                enqueue periodic jobs when they are due
patron inbound [--host H] [--port P]
                                the SMTP server for replies, unsubscribes by mail
                                and bounces (PATRON_INBOUND_HOST/PORT)
patron imap-poll [--once]       fetch replies, unsubscribes and bounces from the
                                mailbox of PATRON_IMAP_URL (instead of an MX)
patron demo [--owner EMAIL]     create the demo workspace (once)
patron apikey create --workspace SLUG --name NAME
                                print a new API key, for provisioning
patron manage ...               any Django management command
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import Any


def _setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "patron.settings")
    import django

    django.setup()


def _call(*args: str) -> None:
    from django.core.management import call_command

    call_command(*args)


def prepare(*, seed_demo: bool) -> None:
    """Migrate, collect static files, create the first admin and the demo workspace."""
    from django.conf import settings

    from patron.core.models import User
    from patron.core.services import bootstrap_installation

    _call("migrate", "--no-input", "--verbosity", "0")
    _call("collectstatic", "--no-input", "--verbosity", "0")
    installation = bootstrap_installation(
        admin_email=settings.ADMIN_EMAIL or None, admin_password=settings.ADMIN_PASSWORD or None
    )
    admin: User | None
    password: str | None = None
    if installation is not None:
        admin, password = installation.admin, installation.password
    else:
        admin = User.objects.filter(is_staff=True).order_by("pk").first()
    if seed_demo and admin is not None:
        from patron.demo import seed_demo_workspace

        seed_demo_workspace(owner=admin)
    print()
    print(f"  Patron is starting at {settings.BASE_URL}/")
    if admin is not None:
        print(f"  Log in as:  {admin.email}")
        if password and not settings.ADMIN_PASSWORD:
            print(f"  Password:   {password}")
        elif not settings.ADMIN_PASSWORD:
            print("  Password:   the one printed at the first start (change it with")
            print(f"              `patron manage changepassword {admin.email}`)")
    transport = settings.EMAIL_TRANSPORT
    where = "captured in the Outbox" if transport == "capture" else f"sent by {transport}"
    print(f"  Mail is {where}.")
    if settings.INBOUND_WITH_RUN:
        print(f"  Inbound mail: SMTP on {settings.INBOUND_HOST}:{settings.INBOUND_PORT}.")
    if settings.IMAP_URL:
        from patron.mail.imap import mailbox_from_url

        every = settings.IMAP_POLL_SECONDS
        print(f"  Inbound mail: IMAP {mailbox_from_url(settings.IMAP_URL)} every {every} s.")
    print("  Stop with Ctrl-C.")
    print(flush=True)


def _children_commands() -> list[tuple[str, list[str]]]:
    from django.conf import settings

    python = sys.executable
    web = [
        python, "-m", "granian",
        "--interface", "wsgi",
        "--host", settings.HOST,
        "--port", str(settings.PORT),
        "--workers", str(settings.WEB_WORKERS),
        "--blocking-threads", str(settings.WEB_THREADS),
        "--log-level", "warning",
        "patron.wsgi:application",
    ]  # fmt: skip
    worker = [python, "-m", "patron", "worker", "--with-scheduler"]
    commands = [("web", web), ("worker", worker)]
    if settings.INBOUND_WITH_RUN:
        commands.append(("inbound", [python, "-m", "patron", "inbound"]))
    return commands


def supervise(commands: Sequence[tuple[str, list[str]]]) -> int:
    """Run the processes until Ctrl-C (or one of them dies), then stop them all."""
    processes: dict[str, subprocess.Popen[bytes]] = {}
    stopping = False

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    for name, command in commands:
        # Own process groups: a Ctrl-C reaches the supervisor only, which then
        # stops the children in order instead of all of them dying at once.
        processes[name] = subprocess.Popen(command, start_new_session=True)  # noqa: S603
    exit_code = 0
    try:
        while not stopping:
            for name, process in processes.items():
                code = process.poll()
                if code is not None:
                    print(f"patron: the {name} process exited with {code}; stopping.", flush=True)
                    exit_code = code or 1
                    stopping = True
                    break
            time.sleep(0.2)
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 15
        for process in processes.values():
            remaining = max(0.1, deadline - time.monotonic())
            try:
                process.wait(timeout=remaining)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    print("patron: stopped.", flush=True)
    return exit_code


def cmd_run(args: argparse.Namespace) -> int:
    _setup_django()
    from django.conf import settings

    prepare(seed_demo=settings.SEED_DEMO and not args.no_demo)
    return supervise(_children_commands())


def _start_scoring_loop(stop: Any) -> None:
    """Scores, lifecycle stages and hand-offs follow the activity log beside the scheduler."""
    import threading

    from django.conf import settings

    from patron.automation.scoring import run_scoring_loop

    if settings.SCORING_POLL_SECONDS > 0:
        threading.Thread(target=run_scoring_loop, args=(stop,), name="scoring", daemon=True).start()


def cmd_worker(args: argparse.Namespace) -> int:
    _setup_django()
    import threading

    from django.conf import settings

    from patron.core.scheduler import run_scheduler

    stop = threading.Event()
    scheduler_thread = None
    if args.with_scheduler:
        scheduler_thread = threading.Thread(
            target=run_scheduler, args=(stop,), name="scheduler", daemon=True
        )
        scheduler_thread.start()
        _start_scoring_loop(stop)
    try:
        if settings.REDIS_URL:
            # django-tasks-rq needs its own job class on the worker side.
            _call("rqworker", "default", "--with-scheduler", "--job-class", "django_tasks_rq.Job")
        else:
            _call("db_worker", "--queue-name", "default", "--interval", "0.5")
    finally:
        stop.set()
        if scheduler_thread is not None:
            scheduler_thread.join(timeout=10)
    return 0


def cmd_scheduler(args: argparse.Namespace) -> int:
    _setup_django()
    import threading

    from patron.core.scheduler import run_scheduler

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    _start_scoring_loop(stop)
    try:
        run_scheduler(stop)
    except KeyboardInterrupt:
        stop.set()
    return 0


def cmd_inbound(args: argparse.Namespace) -> int:
    _setup_django()
    import threading

    from django.conf import settings

    from patron.mail.inbound import build_server

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    server = build_server(args.host, args.port)
    server.start()
    print(
        f"patron inbound: taking mail for {settings.INBOUND_DOMAIN} and "
        f"{settings.RETURN_PATH_DOMAIN} on {server.hostname}:{server.port}",
        flush=True,
    )
    try:
        stop.wait()
    finally:
        server.stop()
        server.handler.close()
    return 0


def cmd_imap_poll(args: argparse.Namespace) -> int:
    _setup_django()
    import logging
    import threading

    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured
    from django.db import close_old_connections

    from patron.mail import imap

    try:
        mailbox = imap.mailbox_from_url(settings.IMAP_URL)
    except ImproperlyConfigured as error:
        print(f"patron imap-poll: {error}", file=sys.stderr)
        return 2
    if args.once:
        try:
            result = imap.poll()
        except imap.ImapError as error:
            print(f"patron imap-poll: {error}", file=sys.stderr)
            return 1
        print(
            "patron imap-poll: "
            + ("another poller is at work" if result.busy else str(result.as_dict()))
        )
        return 0
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    print(f"patron imap-poll: polling {mailbox} every {settings.IMAP_POLL_SECONDS} s", flush=True)
    log = logging.getLogger("patron.mail.imap")
    while not stop.is_set():
        close_old_connections()
        try:
            imap.poll()
        except Exception:
            log.exception("IMAP poll failed; trying again at the next poll")
        stop.wait(settings.IMAP_POLL_SECONDS)
    close_old_connections()
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    _setup_django()
    from patron.core.models import User
    from patron.demo import seed_demo_workspace

    _call("migrate", "--no-input", "--verbosity", "0")
    if args.owner:
        owner = User.objects.filter(email=args.owner.lower()).first()
        if owner is None:
            print(f"patron demo: no user with the email {args.owner}", file=sys.stderr)
            return 2
    else:
        owner = User.objects.filter(is_staff=True).order_by("pk").first()
        if owner is None:
            from patron.core.services import bootstrap_installation

            installation = bootstrap_installation()
            assert installation is not None
            owner = installation.admin
            print(f"Created the administrator {owner.email} with password {installation.password}")
    workspace = seed_demo_workspace(owner=owner)
    print(f"Demo workspace: {workspace.name} ({workspace.slug}), owner {owner.email}")
    return 0


def cmd_apikey(args: argparse.Namespace) -> int:
    _setup_django()
    from patron.core.models import Workspace
    from patron.core.services import create_api_key

    workspace = Workspace.objects.filter(slug=args.workspace).first()
    if workspace is None:
        print(
            f"patron apikey: no workspace with the short name {args.workspace!r}", file=sys.stderr
        )
        return 2
    created = create_api_key(workspace=workspace, name=args.name, created_by=None)
    print(created.secret)
    return 0


def cmd_manage(args: argparse.Namespace) -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "patron.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(["patron manage", *args.rest])
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="patron",
        description="Patron: CRM, email marketing and marketing automation on one contact record.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser(
        "run", help="prepare the database and serve Patron (web, worker, scheduler)"
    )
    run.add_argument("--no-demo", action="store_true", help="do not create the demo workspace")
    run.set_defaults(func=cmd_run)

    worker = commands.add_parser("worker", help="run a background worker")
    worker.add_argument(
        "--with-scheduler", action="store_true", help="also run the scheduler in this process"
    )
    worker.set_defaults(func=cmd_worker)

    scheduler = commands.add_parser("scheduler", help="enqueue periodic jobs when due")
    scheduler.set_defaults(func=cmd_scheduler)

    inbound = commands.add_parser(
        "inbound", help="run the SMTP server for replies, unsubscribes by mail and bounces"
    )
    inbound.add_argument("--host", help="address to listen on (default PATRON_INBOUND_HOST)")
    inbound.add_argument(
        "--port", type=int, help="port to listen on (default PATRON_INBOUND_PORT, 2525)"
    )
    inbound.set_defaults(func=cmd_inbound)

    imap_poll = commands.add_parser(
        "imap-poll",
        help="fetch replies, unsubscribes and bounces from the mailbox of PATRON_IMAP_URL",
    )
    imap_poll.add_argument(
        "--once", action="store_true", help="poll once and exit (default: every interval)"
    )
    imap_poll.set_defaults(func=cmd_imap_poll)

    demo = commands.add_parser("demo", help="create the demo workspace (once)")
    demo.add_argument(
        "--owner", help="email of the user who owns it (default: the first administrator)"
    )
    demo.set_defaults(func=cmd_demo)

    apikey = commands.add_parser("apikey", help="manage API keys")
    apikey_commands = apikey.add_subparsers(dest="apikey_command", required=True, metavar="ACTION")
    create = apikey_commands.add_parser("create", help="create a key and print it")
    create.add_argument("--workspace", required=True, help="the workspace's short name (slug)")
    create.add_argument("--name", required=True, help="what the key is for")
    create.set_defaults(func=cmd_apikey)

    manage = commands.add_parser("manage", help="run a Django management command", add_help=False)
    manage.add_argument("rest", nargs=argparse.REMAINDER)
    manage.set_defaults(func=cmd_manage)
    return parser  # fmt: skip


def main(argv: Sequence[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    sys.exit(args.func(args))
