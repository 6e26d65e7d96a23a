"""A real Dovecot IMAP server for the integration tests, from the distribution's packages.

Debian's ``dovecot-imapd`` provides ``/usr/sbin/dovecot``. The fixture writes a complete,
stand-alone configuration into a throw-away directory (nothing of ``/etc/dovecot`` is
read): plain IMAP on a free loopback port, one test user in a passwd-file with a {PLAIN}
password, maildir storage in the same directory, logs, state and sockets there too. Under
root the mail processes run as the ``mail`` system user; otherwise everything runs as the
current user. Use it from a test module with ``from tests.integration.dovecot import dovecot``.
"""

from __future__ import annotations

import getpass
import grp
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from imapclient import IMAPClient

from tests.integration.services import free_port, need

__all__ = ["DovecotServer", "dovecot"]

USER = "belediye@alo153.test"
PASSWORD = "Su-Kesintisi-153"
_START_ATTEMPTS = 3
_mailboxes = itertools.count(1)

_CONFIG = """\
protocols = imap
listen = 127.0.0.1
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
info_log_path = {root}/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 1 secs
first_valid_uid = {uid}
last_valid_uid = 0
first_valid_gid = {gid}
{accounts}
mail_location = maildir:{root}/mail/%n/Maildir
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/users
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={root}/mail/%n
}}
namespace inbox {{
  inbox = yes
  separator = /
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
{login_extra}}}
service pop3-login {{
  inet_listener pop3 {{
    port = 0
  }}
}}
service submission-login {{
  inet_listener submission {{
    port = 0
  }}
}}
"""


@dataclass(frozen=True)
class DovecotServer:
    """A running Dovecot: one user, plain IMAP on loopback."""

    host: str
    port: int
    root: Path
    user: str = USER
    password: str = PASSWORD

    def client(self) -> IMAPClient:
        """A logged-in imapclient connection (the caller logs out)."""
        client = IMAPClient(self.host, port=self.port, ssl=False, timeout=30)
        client.login(self.user, self.password)
        return client

    def new_mailbox(self, prefix: str = "Test") -> str:
        """A fresh, empty mailbox, so tests sharing the server never see each other's mail."""
        name = f"{prefix}{next(_mailboxes)}-{os.getpid()}"
        client = self.client()
        try:
            client.create_folder(name)
        finally:
            client.logout()
        return name

    def append(self, mailbox: str, *messages: bytes) -> None:
        """APPEND raw messages to ``mailbox``."""
        client = self.client()
        try:
            for message in messages:
                client.append(mailbox, message)
        finally:
            client.logout()

    def log(self) -> str:
        """The server's log (for failure messages)."""
        path = self.root / "dovecot.log"
        return path.read_text(errors="replace") if path.exists() else ""


def _accounts() -> tuple[int, int, str, str]:
    """(uid, gid, account settings, login-service settings) for root or an ordinary user."""
    if os.geteuid() == 0:
        mail = pwd.getpwnam("mail")
        return mail.pw_uid, mail.pw_gid, "", ""
    me, group = getpass.getuser(), grp.getgrgid(os.getgid()).gr_name
    accounts = (
        f"default_internal_user = {me}\ndefault_login_user = {me}\n"
        f"default_internal_group = {group}\n"
    )
    return os.getuid(), os.getgid(), accounts, "  chroot =\n"


def _greets(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            return sock.recv(64).startswith(b"* OK")
    except OSError:
        return False


@pytest.fixture(scope="session")
def dovecot() -> Iterator[DovecotServer]:
    """One real Dovecot for the session (skipped locally, failed in CI, when absent)."""
    sbin = Path("/usr/sbin/dovecot")
    binary = shutil.which("dovecot") or (str(sbin) if sbin.exists() else None)
    need(binary is not None, "Dovecot is not installed (apt-get install dovecot-imapd)")
    assert binary is not None
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("mail")
        except KeyError:
            need(False, "running as root and there is no 'mail' user to store mail as")
    # Not under pytest's basetemp: that is private to root and the mail user needs access.
    root = Path(tempfile.mkdtemp(prefix="intake-dovecot-"))
    root.chmod(0o755)
    uid, gid, accounts, login_extra = _accounts()
    for sub in ("run", "state", "mail"):
        (root / sub).mkdir()
    os.chown(root / "mail", uid, gid)
    users = root / "users"
    users.write_text(f"{USER}:{{PLAIN}}{PASSWORD}::::::\n")
    users.chmod(0o644)
    proc: subprocess.Popen[bytes] | None = None
    try:
        for attempt in range(1, _START_ATTEMPTS + 1):
            port = free_port()
            conf = root / "dovecot.conf"
            conf.write_text(
                _CONFIG.format(
                    root=root,
                    uid=uid,
                    gid=gid,
                    port=port,
                    accounts=accounts,
                    login_extra=login_extra,
                )
            )
            output = (root / "master.out").open("ab")
            proc = subprocess.Popen(
                [binary, "-F", "-c", str(conf)], stdout=output, stderr=subprocess.STDOUT
            )
            output.close()
            deadline = time.monotonic() + 20
            while proc.poll() is None and time.monotonic() < deadline and not _greets(port):
                time.sleep(0.1)
            if proc.poll() is None and _greets(port):
                break
            _stop(proc)
            proc = None
            if attempt == _START_ATTEMPTS:
                out = (root / "master.out").read_text(errors="replace")
                log = DovecotServer("127.0.0.1", port, root).log()
                raise RuntimeError(f"dovecot did not start:\n{out[-3000:]}\n{log[-3000:]}")
        yield DovecotServer(host="127.0.0.1", port=port, root=root)
    finally:
        if proc is not None:
            _stop(proc)
        shutil.rmtree(root, ignore_errors=True)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the master (it stops its children), SIGKILL if it hangs."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)
