"""A throwaway, real PostgreSQL server for tests (the MariaDB one's twin: tests/support/mariadb.py).

Usage (tests/conftest.py)::

    from tests.support.postgres import postgres_server_fixture

    postgres_server = postgres_server_fixture()        # session-scoped fixture named "postgres_server"

    def test_something(postgres_server):
        url = postgres_server.fresh_database()          # new empty UTF-8 database, its own URL
        ...

`start()` runs `initdb` into a fresh temp dir (in /dev/shm when that is a roomy tmpfs, else
$TMPDIR; SHOAL_TEST_POSTGRES_TMPDIR overrides), then `postgres` on 127.0.0.1 with a free port,
its unix socket and log in that dir, fsync off (the data is thrown away). It never touches a
system cluster: no pg_ctlcluster, no /var/lib/postgresql, no port 5432 unless it happens to be
free. PostgreSQL refuses to run as root, so as root the server runs as the `postgres` user
(created by Debian's postgresql package; `nobody` otherwise) and the temp dir is handed to it.

The cluster has UTF-8 encoding and the C.UTF-8 locale where the system has it (as Docker's and
Debian's clusters have a UTF-8 locale), else C. Superuser `postgres` connects over the socket
without a password (the admin connection); user `shoal` logs in over TCP with a random
password and may create databases, as the app's user would.

If `SHOAL_TEST_POSTGRES_URL` is set (a `postgresql+psycopg://...` URL of a user allowed to
create databases), no server is started: `fresh_database()` creates databases on that server,
and `stop()` drops the databases it made.

Binaries are found on PATH, else in /usr/lib/postgresql/<newest version>/bin (Debian puts them
there, off PATH).
"""
from __future__ import annotations

import atexit
import os
import re
import secrets
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable

from . import die_with_parent, end_process, free_port, skip_or_fail, tail

ENV_URL = "SHOAL_TEST_POSTGRES_URL"
_DB_NAME_RE = re.compile(r"^[a-z0-9_]{1,63}$")
_DEBIAN_ROOT = Path("/usr/lib/postgresql")


class PostgresError(RuntimeError):
    pass


def find_bin(name: str) -> str | None:
    """Path of a PostgreSQL server program (`initdb`, `postgres`), or None when not installed."""
    found = shutil.which(name)
    if found:
        return found
    versions = []
    if _DEBIAN_ROOT.is_dir():
        for entry in _DEBIAN_ROOT.iterdir():
            if entry.name.isdigit() and (entry / "bin" / name).is_file():
                versions.append((int(entry.name), entry / "bin" / name))
    return str(max(versions)[1]) if versions else None


def postgres_available() -> tuple[bool, str]:
    """(usable, reason): whether a PostgreSQL-path test can run here, and if not, why."""
    if os.environ.get(ENV_URL):
        return True, ""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return False, "psycopg is not installed (it is in requirements.txt: pip install -r requirements.txt)"
    if find_bin("initdb") is None or find_bin("postgres") is None:
        return False, ("PostgreSQL server programs (initdb, postgres) not found: install Debian's postgresql "
                       f"(`bash scripts/test.sh` does it when run as root) or set {ENV_URL}")
    if _is_root() and _run_as() is None:
        return False, "running as root and there is no 'postgres' or 'nobody' user to run the server as"
    return True, ""


def default_base_dir() -> str | None:
    override = os.environ.get("SHOAL_TEST_POSTGRES_TMPDIR")
    if override:
        return override
    shm = "/dev/shm"
    try:
        if os.path.isdir(shm) and os.access(shm, os.W_OK) and shutil.disk_usage(shm).free >= 1 << 30:
            return shm
    except OSError:
        pass
    return None


def _is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def _run_as() -> tuple[int, int] | None:
    """(uid, gid) the server runs as when we are root."""
    import pwd

    for name in ("postgres", "nobody"):
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            continue
        return entry.pw_uid, entry.pw_gid
    return None


def _pid_alive(pid_file: Path) -> bool | None:
    try:
        pid = int(pid_file.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_stale_dirs(base_dir: str | os.PathLike[str] | None, max_age: float = 3600.0) -> None:
    """Remove datadirs of test processes that were killed hard (another live session's are kept)."""
    base = Path(base_dir or tempfile.gettempdir())
    for candidate in base.glob("shoal-postgres-*"):
        try:
            owner = _pid_alive(candidate / "owner.pid")
            server = _pid_alive(candidate / "data" / "postmaster.pid")
            if owner or server:
                continue
            if owner is None and time.time() - candidate.stat().st_mtime < max_age:
                continue
            shutil.rmtree(candidate, ignore_errors=True)
        except OSError:
            continue


class PostgresServer:
    """One PostgreSQL server process for a test session (or one external server)."""

    user = "shoal"
    database = "shoal_test"

    def __init__(self, *, startup_timeout: float = 30.0, external_url: str | None = None,
                 base_dir: str | os.PathLike[str] | None = None, durable: bool = False) -> None:
        self.startup_timeout = startup_timeout
        # durable: PostgreSQL's own defaults for fsync, synchronous_commit and full-page writes. Off by
        # default (faster tests); a test that crashes the server needs them on, or commits of the last
        # fraction of a second are lost, as on a real server configured that way.
        self.durable = durable
        self.external_url = external_url if external_url is not None else (os.environ.get(ENV_URL) or None)
        self.base_dir = base_dir if base_dir is not None else default_base_dir()
        self.password = "pw_" + secrets.token_hex(12)
        self.port: int | None = None
        self.tmpdir: Path | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        self.startup_seconds: float | None = None
        self.locale = ""
        self._url: str | None = None
        self._created: list[str] = []
        self._counter = 0
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ public API
    @property
    def external(self) -> bool:
        return bool(self.external_url)

    @property
    def url(self) -> str:
        """SQLAlchemy URL of database `shoal_test` (or of SHOAL_TEST_POSTGRES_URL)."""
        if self._url is None:
            raise PostgresError("PostgresServer is not started")
        return self._url

    @property
    def log_file(self) -> Path | None:
        return self.tmpdir / "postgres.log" if self.tmpdir else None

    def start(self) -> "PostgresServer":
        if self._url is not None:
            return self
        began = time.monotonic()
        if self.external:
            self._start_external()
        else:
            self._start_local()
        self.startup_seconds = time.monotonic() - began
        atexit.register(self.stop)
        return self

    def stop(self) -> None:
        """Stop the server and delete its files (external mode: drop the databases it made)."""
        if self.external:
            if self._url is not None:
                for name in list(self._created):
                    try:
                        self.drop_database(name)
                    except Exception:  # noqa: BLE001 - best effort on teardown
                        pass
            self._url = None
            return
        proc, self.proc = self.proc, None
        end_process(proc, signal.SIGINT)  # "fast" shutdown: disconnect clients, no waiting for them
        self._url = None
        if self.tmpdir is not None:
            shutil.rmtree(self.tmpdir, ignore_errors=True)
            self.tmpdir = None

    def crash(self) -> None:
        """End the server at once and keep its files, as a crashed database host would: SIGQUIT is
        PostgreSQL's immediate shutdown (every process exits without a checkpoint; the next start runs
        crash recovery). A SIGKILL of the postmaster alone would leave its backends holding the
        shared memory, and the restart would wait on them."""
        if self.external:
            raise PostgresError("cannot crash an external server")
        proc, self.proc = self.proc, None
        end_process(proc, signal.SIGQUIT)

    def restart(self) -> None:
        """Start the server again on the same files and port after `crash()`."""
        postgres = find_bin("postgres")
        if self.external or self.tmpdir is None or postgres is None:
            raise PostgresError("restart needs a local server that was started and crashed")
        ok, error = self._spawn_and_wait(postgres)
        if not ok:
            raise PostgresError(error)

    def __enter__(self) -> "PostgresServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def fresh_database(self, name: str | None = None, *, locale: str | None = None) -> str:
        """Create a new empty UTF-8 database owned by the test user and return its SQLAlchemy URL.

        Without a name, a unique `shoal_t<N>_<hex>` is used; an existing database of that name is
        dropped first, so the result is always empty. `locale` ("C", "C.UTF-8") overrides the
        cluster's."""
        with self._lock:
            self._counter += 1
            if name is None:
                name = f"shoal_t{self._counter}_{secrets.token_hex(3)}"
        if not _DB_NAME_RE.match(name):
            raise ValueError(f"database name {name!r}: use 1-63 lower-case letters, digits or _")
        owner = self._owner()
        with self.admin_connection() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            where = f" LOCALE '{locale}' TEMPLATE template0" if locale else ""
            if locale and not re.fullmatch(r"[A-Za-z0-9_.-]+", locale):
                raise ValueError(f"locale {locale!r}")
            conn.execute(f'CREATE DATABASE "{name}" OWNER "{owner}" ENCODING \'UTF8\'{where}')
        with self._lock:
            if name not in self._created:
                self._created.append(name)
        return self.url_for(name)

    def drop_database(self, name: str) -> None:
        if not _DB_NAME_RE.match(name):
            raise ValueError(f"database name {name!r}: use 1-63 lower-case letters, digits or _")
        with self.admin_connection() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        with self._lock:
            if name in self._created:
                self._created.remove(name)

    def url_for(self, database: str) -> str:
        from sqlalchemy.engine import make_url

        return make_url(self.url).set(database=database).render_as_string(hide_password=False)

    def admin_connection(self):
        """A psycopg connection (autocommit) allowed to create and drop databases.

        Local server: superuser `postgres` over the unix socket. External: the URL's user."""
        import psycopg

        if self.external:
            return psycopg.connect(**self._external_connect_args(), autocommit=True)
        if self.tmpdir is None or self.port is None:
            raise PostgresError("PostgresServer is not started")
        return psycopg.connect(host=str(self.tmpdir), port=self.port, user="postgres", dbname="postgres",
                               autocommit=True, connect_timeout=5)

    def log_tail(self, max_chars: int = 4000) -> str:
        if self.log_file is None:
            return "(no log: server not started or external)"
        return tail(self.log_file, max_chars)

    # ------------------------------------------------------------------ internals
    def _owner(self) -> str:
        if self.external:
            from sqlalchemy.engine import make_url

            return make_url(self.external_url or "").username or "postgres"
        return self.user

    def _external_connect_args(self) -> dict[str, Any]:
        from sqlalchemy.engine import make_url

        url = make_url(self.external_url or "")
        if url.get_backend_name() != "postgresql":
            raise PostgresError(f"{ENV_URL} must be a postgresql+psycopg:// URL")
        return {"host": url.host or "127.0.0.1", "port": url.port or 5432, "user": url.username or "postgres",
                "password": url.password or "", "dbname": "postgres", "connect_timeout": 5}

    def _start_external(self) -> None:
        import psycopg
        from sqlalchemy.engine import make_url

        try:
            with psycopg.connect(**self._external_connect_args()) as conn:
                conn.execute("SELECT 1")
        except psycopg.Error as exc:
            raise PostgresError(f"{ENV_URL} server not reachable: {exc}") from exc
        url = make_url(self.external_url or "").set(drivername="postgresql+psycopg")
        self._url = url.set(database=url.database or self.database).render_as_string(hide_password=False)

    def _as_server_user(self) -> dict[str, Any]:
        """Popen/run keywords that drop root for the server's programs (none when not root)."""
        if not _is_root():
            return {}
        ids = _run_as()
        if ids is None:
            raise PostgresError("no 'postgres' or 'nobody' user to run the server as")
        return {"user": ids[0], "group": ids[1], "extra_groups": []}

    def _start_local(self) -> None:
        initdb, postgres = find_bin("initdb"), find_bin("postgres")
        if initdb is None or postgres is None:
            raise PostgresError(postgres_available()[1] or "PostgreSQL not found")
        sweep_stale_dirs(self.base_dir)
        self.tmpdir = Path(tempfile.mkdtemp(prefix="shoal-postgres-", dir=self.base_dir))
        (self.tmpdir / "owner.pid").write_text(str(os.getpid()))
        try:
            if _is_root():
                uid, gid = _run_as() or (0, 0)
                os.chown(self.tmpdir, uid, gid)
            self._initdb(initdb)
            last_error = ""
            for _attempt in range(3):
                self.port = free_port()
                ok, last_error = self._spawn_and_wait(postgres)
                if ok:
                    break
                if "already in use" not in last_error and "could not bind" not in last_error:
                    raise PostgresError(last_error)
            else:
                raise PostgresError(last_error)
            self._provision()
        except BaseException:
            self.stop()
            raise

    def _initdb(self, initdb: str) -> None:
        assert self.tmpdir is not None
        log = self.tmpdir / "initdb.log"
        result = None
        for locale in ("C.UTF-8", "C"):
            cmd = [initdb, "-D", str(self.tmpdir / "data"), "-U", "postgres", "--encoding=UTF8",
                   f"--locale={locale}", "--auth-local=trust", "--auth-host=scram-sha-256", "--no-sync"]
            shutil.rmtree(self.tmpdir / "data", ignore_errors=True)
            with open(log, "wb") as out:
                result = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                        timeout=120, check=False, cwd=self.tmpdir, **self._as_server_user())
            if result.returncode == 0:
                self.locale = locale
                return
        raise PostgresError(f"initdb failed ({result.returncode if result else '?'}):\n{tail(log)}")

    def _spawn_and_wait(self, postgres: str) -> tuple[bool, str]:
        import psycopg

        assert self.tmpdir is not None and self.port is not None and self.log_file is not None
        if self.log_file.exists():
            self.log_file.unlink()
        cmd = [
            postgres, "-D", str(self.tmpdir / "data"), "-p", str(self.port), "-k", str(self.tmpdir),
            "-c", "listen_addresses=127.0.0.1",
            *(() if self.durable else ("-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off")),
            "-c", "max_connections=300", "-c", "shared_buffers=32MB",
            "-c", "dynamic_shared_memory_type=mmap", "-c", "logging_collector=off",
        ]
        out = open(self.log_file, "wb")
        try:
            self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         cwd=self.tmpdir, preexec_fn=die_with_parent, **self._as_server_user())
        finally:
            out.close()
        deadline = time.monotonic() + self.startup_timeout
        last_exc: Exception | None = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                code = self.proc.returncode
                self.proc = None
                return False, f"postgres exited with {code} during startup:\n{tail(self.log_file)}"
            if (self.tmpdir / f".s.PGSQL.{self.port}").exists():
                try:
                    with self.admin_connection() as conn:
                        conn.execute("SELECT 1")
                    return True, ""
                except psycopg.Error as exc:
                    last_exc = exc
            time.sleep(0.05)
        proc, self.proc = self.proc, None
        proc.kill()
        proc.wait(timeout=10)
        raise PostgresError(f"postgres not ready within {self.startup_timeout:.0f} s (last error: {last_exc}):\n"
                            f"{tail(self.log_file)}")

    def _provision(self) -> None:
        import psycopg
        from psycopg import sql

        with self.admin_connection() as conn:
            conn.execute(sql.SQL("CREATE ROLE {} LOGIN CREATEDB PASSWORD {}").format(
                sql.Identifier(self.user), sql.Literal(self.password)))
            conn.execute(f'CREATE DATABASE "{self.database}" OWNER "{self.user}" ENCODING \'UTF8\'')
        self._url = f"postgresql+psycopg://{self.user}:{self.password}@127.0.0.1:{self.port}/{self.database}"
        # Prove the normal user can log in over TCP with its password, as the app will.
        with psycopg.connect(host="127.0.0.1", port=self.port, user=self.user, password=self.password,
                             dbname=self.database, connect_timeout=5) as conn:
            conn.execute("SELECT 1")


# ---------------------------------------------------------------------- pytest glue
_shared: PostgresServer | None = None
_shared_users = 0
_shared_lock = threading.Lock()


def acquire_shared_server() -> PostgresServer:
    """The process-wide server, started on first use (refcounted with release_shared_server)."""
    global _shared, _shared_users
    with _shared_lock:
        if _shared is None:
            _shared = PostgresServer().start()
        _shared_users += 1
        return _shared


def release_shared_server() -> None:
    global _shared, _shared_users
    with _shared_lock:
        _shared_users -= 1
        if _shared_users <= 0 and _shared is not None:
            _shared.stop()
            _shared = None
            _shared_users = 0


def postgres_server_fixture(name: str = "postgres_server", scope: str = "session") -> Callable[..., Any]:
    """Make a pytest fixture yielding a started PostgresServer (skips when none can run)."""
    import pytest

    @pytest.fixture(scope=scope, name=name)  # type: ignore[call-overload]
    def _postgres_server():
        usable, reason = postgres_available()
        if not usable:
            skip_or_fail(reason)
        server = acquire_shared_server()
        try:
            yield server
        finally:
            release_shared_server()

    return _postgres_server


__all__ = [
    "ENV_URL", "PostgresError", "PostgresServer", "acquire_shared_server", "find_bin", "postgres_available",
    "postgres_server_fixture", "release_shared_server",
]

if __name__ == "__main__":  # python -m tests.support.postgres: start, time, stop
    t0 = time.monotonic()
    with PostgresServer() as srv:
        print(f"started in {srv.startup_seconds:.2f} s ({srv.locale}): {srv.url}")
        print(srv.fresh_database())
    print(f"start+stop {time.monotonic() - t0:.2f} s")
