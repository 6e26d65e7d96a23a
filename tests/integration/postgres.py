"""A real PostgreSQL server for the integration tests, from the distribution's packages.

Debian installs the server binaries under ``/usr/lib/postgresql/<major>/bin`` (package
``postgresql``). The fixture makes a throw-away cluster (``initdb``), starts it on a free
loopback port with its socket in the cluster's directory, and stops it at the end of the
session. PostgreSQL refuses to run as root, so under root it runs as the ``postgres`` user.
Use it from a test module with ``from tests.integration.postgres import postgres_server``.
"""

from __future__ import annotations

import itertools
import os
import pwd
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.integration.services import free_port, need

__all__ = ["PostgresServer", "find_postgres_bin", "postgres_server", "postgres_url"]

USER = "intake"
DATABASE = "intake"
_START_ATTEMPTS = 3
_names = itertools.count(1)


def find_postgres_bin() -> Path | None:
    """The newest ``/usr/lib/postgresql/<major>/bin`` holding ``initdb`` and ``pg_ctl``."""
    candidates = [
        path.parent
        for path in Path("/usr/lib/postgresql").glob("*/bin/pg_ctl")
        if (path.parent / "initdb").is_file()
    ]
    if not candidates:
        on_path = shutil.which("pg_ctl")
        return Path(on_path).parent if on_path and shutil.which("initdb") else None

    def major(bin_dir: Path) -> int:
        digits = re.match(r"\d+", bin_dir.parent.name)
        return int(digits.group()) if digits else 0

    return max(candidates, key=major)


@dataclass(frozen=True)
class PostgresServer:
    """A running cluster: superuser ``intake``, no password (trust), loopback only."""

    host: str
    port: int
    user: str = USER

    def url(self, database: str = DATABASE) -> str:
        """SQLAlchemy URL of one database on this server (psycopg 3 driver)."""
        return f"postgresql+psycopg://{self.user}@{self.host}:{self.port}/{database}"

    def create_database(self, name: str | None = None) -> str:
        """Create a fresh, empty database and return its URL (one per test keeps tests apart)."""
        name = name or f"intake_test_{next(_names)}"
        if not re.fullmatch(r"[a-z_][a-z0-9_]*", name):
            raise ValueError(f"unsafe database name {name!r}")
        dsn = f"host={self.host} port={self.port} user={self.user} dbname=postgres"
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE \"{name}\" ENCODING 'UTF8' TEMPLATE template0")
        return self.url(name)


def _as_unprivileged() -> dict[str, Any]:
    """``subprocess`` arguments that drop root to the ``postgres`` user (no-op otherwise)."""
    if os.geteuid() != 0:
        return {}
    try:
        account = pwd.getpwnam("postgres")
    except KeyError:
        need(False, "running as root and there is no 'postgres' user to run PostgreSQL as")
        return {}  # unreachable: need() skipped or failed
    return {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}


def _run(args: Sequence[str | Path], cwd: Path, drop: dict[str, Any]) -> None:
    result = subprocess.run(
        [str(arg) for arg in args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        **drop,
    )
    if result.returncode != 0:
        raise RuntimeError(f"{Path(args[0]).name} failed:\n{result.stdout}\n{result.stderr}")


@contextmanager
def running_postgres(bin_dir: Path) -> Iterator[PostgresServer]:
    """Init, start and finally stop and delete a throw-away PostgreSQL cluster."""
    drop = _as_unprivileged()
    # Not under pytest's basetemp: that is private to root and the server user needs access.
    root = Path(tempfile.mkdtemp(prefix="intake-pg-"))
    data, sockets, log = root / "data", root / "sockets", root / "server.log"
    sockets.mkdir()
    if drop:
        for path in (root, sockets):
            os.chown(path, drop["user"], drop["group"])
    started = False
    try:
        _run(
            [
                bin_dir / "initdb",
                "-D",
                data,
                "-U",
                USER,
                "-A",
                "trust",
                "--encoding=UTF8",
                "--locale=C.UTF-8",
                "--no-sync",
            ],
            root,
            drop,
        )
        for attempt in range(1, _START_ATTEMPTS + 1):
            port = free_port()
            options = (
                f"-c listen_addresses=127.0.0.1 -p {port} -c unix_socket_directories={sockets} "
                "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
            )
            try:
                _run(
                    [
                        bin_dir / "pg_ctl",
                        "-D",
                        data,
                        "-l",
                        log,
                        "-w",
                        "-t",
                        "60",
                        "-o",
                        options,
                        "start",
                    ],
                    root,
                    drop,
                )
            except RuntimeError as err:  # most likely the port was taken meanwhile
                if attempt == _START_ATTEMPTS:
                    server_log = log.read_text(errors="replace") if log.exists() else ""
                    raise RuntimeError(f"{err}\nserver log:\n{server_log[-4000:]}") from err
                continue
            started = True
            break
        server = PostgresServer(host="127.0.0.1", port=port)
        server.create_database(DATABASE)
        yield server
    finally:
        if started:
            _run([bin_dir / "pg_ctl", "-D", data, "-m", "fast", "-w", "stop"], root, drop)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One real PostgreSQL for the whole test session (skipped locally, failed in CI, if absent)."""
    bin_dir = find_postgres_bin()
    need(
        bin_dir is not None,
        "PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin "
        "(apt-get install postgresql)",
    )
    assert bin_dir is not None
    with running_postgres(bin_dir) as server:
        yield server


@pytest.fixture(scope="session")
def postgres_url(postgres_server: PostgresServer) -> str:
    """URL of the session's ``intake`` database: ``postgresql+psycopg://intake@127.0.0.1:PORT/intake``."""
    return postgres_server.url()
