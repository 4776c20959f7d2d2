"""A private Dovecot IMAP server for tests: Debian's ``dovecot-imapd`` run on loopback
ports with its own configuration, a temporary mail directory and one passwd-file user.

It speaks plain IMAP with STARTTLS and IMAPS (a self-signed certificate for
127.0.0.1, its own CA file). Run as root, Dovecot's login processes need an
unprivileged user (``dovenull``, made by the package) and mail may not be
stored as root (``dovecot``); run as anyone else, everything is that user.

Dovecot missing means the tests that use it are skipped, unless
PATRON_TEST_REQUIRE_ALL=1 (as in CI), where it is a failure.
"""

from __future__ import annotations

import datetime
import grp
import imaplib
import ipaddress
import os
import pwd
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

DOVECOT = os.environ.get("PATRON_TEST_DOVECOT") or shutil.which(
    "dovecot", path=os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
)
USER, PASSWORD = "patron", "imap-test-password"


def dovecot_or_skip() -> str:
    if DOVECOT and os.path.exists(DOVECOT):
        return DOVECOT
    if os.environ.get("PATRON_TEST_REQUIRE_ALL") == "1":
        pytest.fail("Dovecot is required (PATRON_TEST_REQUIRE_ALL=1): install dovecot-imapd")
    pytest.skip("Dovecot not installed (apt-get install dovecot-imapd)")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _certificate(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_file.chmod(0o600)
    return cert_file, key_file


CONFIG = """\
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = yes
ssl_cert = <{cert}
ssl_key = <{key}
default_internal_user = {internal_user}
default_internal_group = {internal_group}
default_login_user = {login_user}
first_valid_uid = 1
mail_location = maildir:{root}/mail/%u
disable_plaintext_auth = no
auth_mechanisms = plain login
{capability}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/users
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {root}/users
  default_fields = uid={mail_user} gid={mail_group} home={root}/mail/%u
}}
namespace inbox {{
  inbox = yes
  separator = /
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {imap_port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {imaps_port}
    ssl = yes
  }}
}}
service anvil {{
  chroot =
}}
"""


@dataclass
class Dovecot:
    """A running private Dovecot; ``client()`` is a logged-in imaplib connection."""

    root: Path
    process: subprocess.Popen[bytes]
    imap_port: int
    imaps_port: int
    ca_file: Path

    def url(self, scheme: str = "imap", folder: str = "INBOX") -> str:
        port = self.imaps_port if scheme == "imaps" else self.imap_port
        return f"{scheme}://{USER}:{PASSWORD}@127.0.0.1:{port}/{folder}"

    def client(self) -> imaplib.IMAP4:
        client = imaplib.IMAP4("127.0.0.1", self.imap_port, timeout=10)
        client.starttls(ssl.create_default_context(cafile=str(self.ca_file)))
        client.login(USER, PASSWORD)
        return client

    def log(self) -> str:
        path = self.root / "dovecot.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        shutil.rmtree(self.root, ignore_errors=True)


def start_dovecot(*, capabilities: str = "") -> Dovecot:
    """Start a private Dovecot (``capabilities``: an ``imap_capability`` line's value,
    to offer less than Dovecot can)."""
    binary = dovecot_or_skip()
    # Not under pytest's temporary directory: that is private to the test user, and
    # Dovecot's unprivileged processes must reach their sockets.
    root = Path(tempfile.mkdtemp(prefix="patron-dovecot-"))
    root.chmod(0o755)
    for name in ("run", "state", "mail"):
        (root / name).mkdir()
    if os.geteuid() == 0:
        login_user, internal_user, mail_user = "dovenull", "dovecot", "dovecot"
        internal_group = mail_group = grp.getgrgid(pwd.getpwnam("dovecot").pw_gid).gr_name
        entry = pwd.getpwnam(mail_user)
        os.chown(root / "mail", entry.pw_uid, entry.pw_gid)
    else:
        me = pwd.getpwuid(os.geteuid()).pw_name
        group = grp.getgrgid(os.getegid()).gr_name
        login_user = internal_user = mail_user = me
        internal_group = mail_group = group
    cert, key = _certificate(root)
    (root / "users").write_text(f"{USER}:{{PLAIN}}{PASSWORD}::::::\n")
    imap_port, imaps_port = _free_port(), _free_port()
    config = root / "dovecot.conf"
    config.write_text(
        CONFIG.format(
            root=root,
            cert=cert,
            key=key,
            login_user=login_user,
            internal_user=internal_user,
            internal_group=internal_group,
            mail_user=mail_user,
            mail_group=mail_group,
            imap_port=imap_port,
            imaps_port=imaps_port,
            capability=f"imap_capability = {capabilities}" if capabilities else "",
        )
    )
    process = subprocess.Popen(  # noqa: S603
        [binary, "-F", "-c", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    server = Dovecot(root, process, imap_port, imaps_port, cert)
    deadline = time.monotonic() + 20
    while True:
        try:
            probe = imaplib.IMAP4("127.0.0.1", imap_port, timeout=2)
            probe.logout()
            return server
        except (OSError, imaplib.IMAP4.error) as error:
            if process.poll() is not None or time.monotonic() > deadline:
                output = process.stdout.read().decode(errors="replace") if process.stdout else ""
                log = server.log()
                server.stop()
                pytest.fail(f"Dovecot did not start ({error}):\n{output}\n{log}")
            time.sleep(0.1)


def empty_mailbox(server: Dovecot) -> None:
    """Delete every message and every folder but INBOX (between tests)."""
    client = server.client()
    try:
        client.select("INBOX")
        _status, found = client.uid("SEARCH", "ALL")
        if found and found[0]:
            client.uid(
                "STORE", b",".join(found[0].split()).decode(), "+FLAGS.SILENT", r"(\Deleted)"
            )
            client.expunge()
        _status, folders = client.list()
        names = []
        for line in folders:
            if isinstance(line, bytes):
                name = line.rsplit(b' "/" ', 1)[-1].strip().strip(b'"').decode()
                if name != "INBOX":
                    names.append(name)
        for name in sorted(names, key=len, reverse=True):
            client.unsubscribe(f'"{name}"')
            client.delete(f'"{name}"')
    finally:
        client.logout()
