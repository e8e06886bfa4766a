"""A real PostgreSQL server for the suite: a throwaway cluster started once per test session.

Debian's `postgresql` package (installed by `.ci/run`) provides initdb/pg_ctl; the cluster lives
in a temporary folder, listens on a free loopback port only, and is stopped (immediately: the
data is thrown away) when the session ends. Each test gets its own schema (`pg_url`), which is
far cheaper than a database per test. initdb refuses to run as root, so as root the cluster is
made and run by the `postgres` user (created by the package) in a folder it owns.

Without the binaries the PostgreSQL cases are skipped with the reason, unless CI=true: there
they must run.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest

from tests.fakes.rig import free_port

PG_BIN_DIRS = [Path(f"/usr/lib/postgresql/{v}/bin") for v in (17, 16, 15, 14, 13)]
PG_USER = "bot"
PG_PASSWORD = "pg-Pa55word-C0FFEE"  # in tests/conftest.py's SECRETS: no log line may hold it


@dataclass(frozen=True, slots=True)
class PgServer:
    """A running throwaway cluster."""

    host: str
    port: int
    database: str

    @property
    def url(self) -> str:
        """The DATABASE_URL of its database (with the password)."""
        return f"postgresql://{PG_USER}:{PG_PASSWORD}@{self.host}:{self.port}/{self.database}"

    def schema_url(self, schema: str) -> str:
        """A URL whose connections work in `schema` (search_path)."""
        return f"{self.url}?search_path={schema}"


def pg_bin() -> Path | None:
    """The folder with initdb and pg_ctl, or None."""
    override = os.environ.get("PG_BIN")
    candidates = [Path(override)] if override else PG_BIN_DIRS
    for folder in candidates:
        if (folder / "initdb").is_file() and (folder / "pg_ctl").is_file():
            return folder
    return None


def _run_as(user: str | None, argv: list[str]) -> None:
    command = argv if user is None else ["runuser", "-u", user, "--", *argv]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)  # noqa: S603
    if result.returncode != 0:
        raise RuntimeError(f"{argv[0]} failed: {result.stdout[-2000:]} {result.stderr[-2000:]}")


def start_cluster(root: Path) -> tuple[PgServer, list[str]]:
    """initdb + pg_ctl start in `root`; return the server and the command that stops it."""
    folder = pg_bin()
    if folder is None:
        raise FileNotFoundError("initdb/pg_ctl")
    user: str | None = None
    if os.geteuid() == 0:
        user = "postgres"
        entry = pwd.getpwnam(user)
        os.chown(root, entry.pw_uid, entry.pw_gid)
    data = root / "data"
    pwfile = root / "pw"
    pwfile.write_text(PG_PASSWORD + "\n", encoding="utf-8")
    if user is not None:
        entry = pwd.getpwnam(user)
        os.chown(pwfile, entry.pw_uid, entry.pw_gid)
    _run_as(
        user,
        [
            str(folder / "initdb"),
            "-D",
            str(data),
            "-U",
            PG_USER,
            f"--pwfile={pwfile}",
            "-A",
            "scram-sha-256",
            "--locale=C",
            "-E",
            "UTF8",
            "--no-sync",
        ],
    )
    port = free_port()
    # Durability off: a throwaway cluster; fsync only slows the 2-core machine down.
    options = (
        f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
        " -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
    )
    log = root / "server.log"
    _run_as(
        user,
        [str(folder / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(log), "-w", "start"],
    )
    stop = [str(folder / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"]
    if user is not None:
        stop = ["runuser", "-u", user, "--", *stop]
    return PgServer("127.0.0.1", port, "postgres"), stop


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """One PostgreSQL cluster for the whole session (skipped without binaries, unless CI)."""
    if pg_bin() is None:
        if os.environ.get("CI") == "true":
            pytest.fail("PostgreSQL binaries missing (CI=true: .ci/run installs postgresql)")
        pytest.skip("PostgreSQL binaries not found (apt-get install postgresql, or set PG_BIN)")
    root = Path(tempfile.mkdtemp(prefix="bot-pg-"))
    try:
        server, stop = start_cluster(root)
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise
    try:
        yield server
    finally:
        subprocess.run(stop, capture_output=True, timeout=60, check=False)  # noqa: S603
        shutil.rmtree(root, ignore_errors=True)


async def admin_execute(server: PgServer, sql: str) -> None:
    """Run one statement as the cluster's superuser, on a connection of its own."""
    admin = await asyncpg.connect(server.url)
    try:
        await admin.execute(sql)
    finally:
        await admin.close()


async def new_schema(server: PgServer) -> str:
    """Create a fresh schema; return its name."""
    schema = f"t_{uuid.uuid4().hex[:16]}"
    await admin_execute(server, f"CREATE SCHEMA {schema}")
    return schema


async def drop_schema(server: PgServer, schema: str) -> None:
    """Drop a schema made by `new_schema` and everything in it."""
    await admin_execute(server, f"DROP SCHEMA IF EXISTS {schema} CASCADE")


@pytest.fixture
async def pg_url(pg_server: PgServer) -> AsyncIterator[str]:
    """A DATABASE_URL whose connections land in a fresh schema of their own."""
    schema = await new_schema(pg_server)
    yield pg_server.schema_url(schema)
    await drop_schema(pg_server, schema)
