"""A throwaway, real MariaDB server for tests.

Usage (tests/conftest.py)::

    from tests.support.mariadb import MariaDBServer, find_mariadbd, mariadb_server_fixture

    mariadb_server = mariadb_server_fixture()          # session-scoped fixture named "mariadb_server"

    def test_something(mariadb_server):
        url = mariadb_server.fresh_database()           # new empty utf8mb4 database, its own URL
        ...

or by hand::

    if find_mariadbd() is None and not os.environ.get("SHOAL_TEST_MYSQL_URL"):
        pytest.skip(...)
    server = MariaDBServer().start()
    server.url            # mysql+pymysql://shoal:PW@127.0.0.1:PORT/shoal_test?charset=utf8mb4
    server.stop()

`start()` runs `mariadb-install-db` into a fresh temp dir, then `mariadbd --no-defaults`
on 127.0.0.1 with a free port, its own socket, pid file and error log in that dir.
The dir goes in /dev/shm when that is a roomy tmpfs (start ~1.1 s; on this machine's
disk 2-5 s, mostly install-db's fsyncs), else $TMPDIR; SHOAL_TEST_MYSQL_TMPDIR overrides. It creates database `shoal_test` (utf8mb4) and user `shoal` with a
random password, granted all privileges (not GRANT OPTION) so tests may create databases.
`stop()` sends SIGTERM, waits, then SIGKILL, and removes the temp dir.

If `SHOAL_TEST_MYSQL_URL` is set (a `mysql+pymysql://...` URL of a user allowed to create
databases), no server is started: `url` is that URL, `fresh_database()` creates databases
on that server, and `stop()` drops the databases it created.
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

import pymysql

from . import die_with_parent, end_process, free_port, skip_or_fail, tail

ENV_URL = "SHOAL_TEST_MYSQL_URL"
_SBIN_DIRS = ("/usr/sbin", "/usr/local/sbin", "/sbin", "/usr/bin", "/usr/local/bin")
_DB_NAME_RE = re.compile(r"^[A-Za-z0-9_]{1,64}$")


def _which(*names: str) -> str | None:
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    # A non-root PATH often lacks sbin, where Debian puts mariadbd.
    for directory in _SBIN_DIRS:
        for name in names:
            candidate = Path(directory) / name
            if candidate.is_file() and os.access(candidate, os.X_OK):
                return str(candidate)
    return None


def find_mariadbd() -> str | None:
    """Path of the server binary (`mariadbd`, else `mysqld`), or None when not installed."""
    return _which("mariadbd", "mysqld")


def find_install_db() -> str | None:
    return _which("mariadb-install-db", "mysql_install_db")


def mysql_available() -> tuple[bool, str]:
    """(usable, reason): whether a MySQL-path test can run here, and if not, why."""
    if os.environ.get(ENV_URL):
        return True, ""
    if find_mariadbd() is None:
        return False, (
            "MariaDB server binary (mariadbd/mysqld) not found: install Debian's mariadb-server "
            "(`bash scripts/test.sh` does it when run as root) or set SHOAL_TEST_MYSQL_URL"
        )
    if find_install_db() is None:
        return False, "mariadb-install-db not found (it comes with Debian's mariadb-server)"
    return True, ""


def default_base_dir() -> str | None:
    """Where the throwaway datadir goes: $SHOAL_TEST_MYSQL_TMPDIR, else /dev/shm when it is a
    roomy tmpfs (install + start take ~1 s there against 2-5 s on this machine's disk),
    else the system temp dir (None)."""
    override = os.environ.get("SHOAL_TEST_MYSQL_TMPDIR")
    if override:
        return override
    shm = "/dev/shm"
    try:
        if os.path.isdir(shm) and os.access(shm, os.W_OK) and shutil.disk_usage(shm).free >= 1 << 30:
            return shm
    except OSError:
        pass
    return None


def _pid_alive(pid_file: Path) -> bool | None:
    """True/False for the pid in the file; None when there is no readable pid file."""
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_stale_dirs(base_dir: str | os.PathLike[str] | None, max_age: float = 3600.0) -> None:
    """Remove datadirs left by a test process that was killed hard (they may sit in RAM).

    Each dir holds `owner.pid` (the test process) and, while up, `mariadbd.pid`. A dir is
    stale when neither names a live process; a dir without an owner file counts as stale
    once older than `max_age` seconds. Another live session's dir is left alone.
    """
    base = Path(base_dir or tempfile.gettempdir())
    for candidate in base.glob("shoal-mariadb-*"):
        try:
            owner = _pid_alive(candidate / "owner.pid")
            server = _pid_alive(candidate / "mariadbd.pid")
            if owner or server:
                continue
            if owner is None and time.time() - candidate.stat().st_mtime < max_age:
                continue
            shutil.rmtree(candidate, ignore_errors=True)
        except OSError:
            continue


def _is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


class MariaDBError(RuntimeError):
    pass


class MariaDBServer:
    """One MariaDB server process for a test session (or one external server)."""

    user = "shoal"
    database = "shoal_test"

    def __init__(
        self,
        *,
        binary: str | None = None,
        startup_timeout: float = 30.0,
        external_url: str | None = None,
        base_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        self.binary = binary
        self.startup_timeout = startup_timeout
        self.external_url = external_url if external_url is not None else (os.environ.get(ENV_URL) or None)
        self.base_dir = base_dir if base_dir is not None else default_base_dir()
        self.password = "pw_" + secrets.token_hex(12)
        self.port: int | None = None
        self.tmpdir: Path | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        self.startup_seconds: float | None = None
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
        """SQLAlchemy URL of database `shoal_test` (or of SHOAL_TEST_MYSQL_URL)."""
        if self._url is None:
            raise MariaDBError("MariaDBServer is not started")
        return self._url

    @property
    def socket_path(self) -> Path | None:
        return self.tmpdir / "mysqld.sock" if self.tmpdir else None

    @property
    def error_log(self) -> Path | None:
        return self.tmpdir / "mariadbd.err" if self.tmpdir else None

    def start(self) -> "MariaDBServer":
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
        end_process(proc, signal.SIGTERM)
        self._url = None
        if self.tmpdir is not None:
            shutil.rmtree(self.tmpdir, ignore_errors=True)
            self.tmpdir = None

    def crash(self) -> None:
        """SIGKILL the server process but keep its files, as a crashed database host would."""
        if self.external:
            raise MariaDBError("cannot crash an external server")
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)

    def restart(self) -> None:
        """Start the server again on the same files and port after `crash()` (InnoDB recovers)."""
        if self.external or self.tmpdir is None:
            raise MariaDBError("restart needs a local server that was started and crashed")
        binary = self.binary or find_mariadbd()
        assert binary is not None
        ok, error = self._spawn_and_wait(binary)
        if not ok:
            raise MariaDBError(error)

    def __enter__(self) -> "MariaDBServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def fresh_database(self, name: str | None = None) -> str:
        """Create a new empty utf8mb4 database and return its SQLAlchemy URL.

        Without a name, a unique `shoal_t<N>_<hex>` is used. An existing database of that
        name is dropped first, so the result is always empty.
        """
        with self._lock:
            self._counter += 1
            if name is None:
                name = f"shoal_t{self._counter}_{secrets.token_hex(3)}"
        if not _DB_NAME_RE.match(name):
            raise ValueError(f"database name {name!r}: use 1-64 letters, digits or _")
        with self.admin_connection() as conn, conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
            cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
        with self._lock:
            if name not in self._created:
                self._created.append(name)
        return self.url_for(name)

    def drop_database(self, name: str) -> None:
        if not _DB_NAME_RE.match(name):
            raise ValueError(f"database name {name!r}: use 1-64 letters, digits or _")
        with self.admin_connection() as conn, conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        with self._lock:
            if name in self._created:
                self._created.remove(name)

    def url_for(self, database: str) -> str:
        """The server's URL with another database name."""
        from sqlalchemy.engine import make_url

        return make_url(self.url).set(database=database).render_as_string(hide_password=False)

    def admin_connection(self) -> pymysql.connections.Connection:
        """A pymysql connection with rights to create/drop databases (autocommit on).

        Local server: root over the unix socket. External: the SHOAL_TEST_MYSQL_URL user.
        """
        if self.external:
            return pymysql.connect(**self._external_connect_args(), autocommit=True)
        if self.tmpdir is None:
            raise MariaDBError("MariaDBServer is not started")
        return pymysql.connect(
            unix_socket=str(self.socket_path), user="root", password="", charset="utf8mb4",
            autocommit=True, connect_timeout=5,
        )

    def log_tail(self, max_chars: int = 4000) -> str:
        if self.error_log is None:
            return "(no error log: server not started or external)"
        return tail(self.error_log, max_chars)

    # ------------------------------------------------------------------ internals
    def _external_connect_args(self) -> dict[str, Any]:
        from sqlalchemy.engine import make_url

        url = make_url(self.external_url or "")
        if url.get_backend_name() not in {"mysql", "mariadb"}:
            raise MariaDBError(f"{ENV_URL} must be a mysql+pymysql:// URL")
        args: dict[str, Any] = {
            "host": url.host or "127.0.0.1",
            "port": url.port or 3306,
            "user": url.username or "root",
            "password": url.password or "",
            "charset": "utf8mb4",
            "connect_timeout": 5,
        }
        if "unix_socket" in url.query:
            args["unix_socket"] = url.query["unix_socket"]
        return args

    def _start_external(self) -> None:
        from sqlalchemy.engine import make_url

        try:
            with pymysql.connect(**self._external_connect_args()) as conn, conn.cursor() as cur:
                cur.execute("SELECT VERSION()")
        except pymysql.MySQLError as exc:
            raise MariaDBError(f"{ENV_URL} server not reachable: {exc}") from exc
        url = make_url(self.external_url or "")
        if not url.database:
            url = url.set(database=self.database)
        if "charset" not in url.query:
            url = url.update_query_dict({"charset": "utf8mb4"})
        self._url = url.render_as_string(hide_password=False)
        # Make sure the database in the URL exists (created with utf8mb4 if not).
        with self.admin_connection() as conn, conn.cursor() as cur:
            cur.execute(
                f"CREATE DATABASE IF NOT EXISTS `{url.database}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
            )

    def _start_local(self) -> None:
        binary = self.binary or find_mariadbd()
        install_db = find_install_db()
        if binary is None or install_db is None:
            raise MariaDBError(mysql_available()[1] or "mariadbd not found")
        sweep_stale_dirs(self.base_dir)
        self.tmpdir = Path(tempfile.mkdtemp(prefix="shoal-mariadb-", dir=self.base_dir))
        (self.tmpdir / "owner.pid").write_text(str(os.getpid()))
        try:
            self._install(install_db)
            last_error = ""
            for _attempt in range(3):
                self.port = free_port()
                ok, last_error = self._spawn_and_wait(binary)
                if ok:
                    break
                if "already in use" not in last_error and "Bind on TCP/IP port" not in last_error:
                    raise MariaDBError(last_error)
            else:
                raise MariaDBError(last_error)
            self._provision()
        except BaseException:
            self.stop()
            raise

    def _common_args(self) -> list[str]:
        # Small InnoDB files and relaxed durability: this data is thrown away.
        return [
            "--innodb-log-file-size=16M",
            "--innodb-buffer-pool-size=64M",
            "--innodb-flush-log-at-trx-commit=2",
            "--character-set-server=utf8mb4",
            "--collation-server=utf8mb4_unicode_ci",
        ]

    def _install(self, install_db: str) -> None:
        assert self.tmpdir is not None
        datadir = self.tmpdir / "data"
        cmd = [
            install_db, "--no-defaults",
            f"--datadir={datadir}",
            "--auth-root-authentication-method=normal",
            "--skip-test-db",
            "--skip-name-resolve",
            *self._common_args(),
        ]
        if _is_root():
            cmd.append("--user=root")
        log = self.tmpdir / "install-db.log"
        with open(log, "wb") as out:
            result = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    timeout=120, check=False)
        if result.returncode != 0:
            raise MariaDBError(f"{' '.join(cmd)} failed ({result.returncode}):\n{tail(log)}")

    def _spawn_and_wait(self, binary: str) -> tuple[bool, str]:
        assert self.tmpdir is not None and self.port is not None
        err = self.error_log
        assert err is not None
        if err.exists():
            err.unlink()
        cmd = [
            binary, "--no-defaults",
            f"--datadir={self.tmpdir / 'data'}",
            f"--socket={self.socket_path}",
            f"--pid-file={self.tmpdir / 'mariadbd.pid'}",
            f"--log-error={err}",
            f"--tmpdir={self.tmpdir}",
            "--bind-address=127.0.0.1",
            f"--port={self.port}",
            "--skip-name-resolve",
            "--skip-log-bin",
            "--max-connections=300",
            *self._common_args(),
        ]
        if _is_root():
            cmd.append("--user=root")
        out = open(self.tmpdir / "mariadbd.out", "wb")
        try:
            self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         preexec_fn=die_with_parent)
        finally:
            out.close()
        deadline = time.monotonic() + self.startup_timeout
        last_exc: Exception | None = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                code = self.proc.returncode
                self.proc = None
                return False, f"mariadbd exited with {code} during startup:\n{tail(err)}"
            if self.socket_path is not None and self.socket_path.exists():
                try:
                    with self.admin_connection() as conn, conn.cursor() as cur:
                        cur.execute("SELECT 1")
                    return True, ""
                except pymysql.MySQLError as exc:
                    last_exc = exc
            time.sleep(0.1)
        proc, self.proc = self.proc, None
        proc.kill()
        proc.wait(timeout=10)
        raise MariaDBError(
            f"mariadbd not ready within {self.startup_timeout:.0f} s (last error: {last_exc}):\n{tail(err)}"
        )

    def _provision(self) -> None:
        with self.admin_connection() as conn, conn.cursor() as cur:
            cur.execute(f"CREATE DATABASE `{self.database}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
            for host in ("%", "localhost"):
                cur.execute("CREATE USER %s@%s IDENTIFIED BY %s", (self.user, host, self.password))
                cur.execute("GRANT ALL PRIVILEGES ON *.* TO %s@%s", (self.user, host))
        self._url = (
            f"mysql+pymysql://{self.user}:{self.password}@127.0.0.1:{self.port}/{self.database}?charset=utf8mb4"
        )
        # Prove the normal user can log in over TCP, as the app will.
        with pymysql.connect(host="127.0.0.1", port=self.port, user=self.user, password=self.password,
                             database=self.database, charset="utf8mb4", connect_timeout=5) as conn:
            with conn.cursor() as cur:
                cur.execute("SELECT 1")


# ---------------------------------------------------------------------- pytest glue
_shared: MariaDBServer | None = None
_shared_users = 0
_shared_lock = threading.Lock()


def acquire_shared_server() -> MariaDBServer:
    """The process-wide server, started on first use (refcounted with release_shared_server)."""
    global _shared, _shared_users
    with _shared_lock:
        if _shared is None:
            _shared = MariaDBServer().start()
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


def mariadb_server_fixture(name: str = "mariadb_server", scope: str = "session") -> Callable[..., Any]:
    """Make a pytest fixture yielding a started MariaDBServer (skips when none can run).

    All fixtures made here share one server per test process, so a test module that
    defines its own does not start a second one next to conftest.py's.
    """
    import pytest

    @pytest.fixture(scope=scope, name=name)  # type: ignore[call-overload]
    def _mariadb_server():
        usable, reason = mysql_available()
        if not usable:
            skip_or_fail(reason)
        server = acquire_shared_server()
        try:
            yield server
        finally:
            release_shared_server()

    return _mariadb_server


__all__ = [
    "ENV_URL", "MariaDBError", "MariaDBServer", "acquire_shared_server", "find_install_db", "find_mariadbd",
    "mariadb_server_fixture", "mysql_available", "release_shared_server",
]

if __name__ == "__main__":  # python -m tests.support.mariadb: start, time, stop
    t0 = time.monotonic()
    with MariaDBServer() as srv:
        print(f"started in {srv.startup_seconds:.2f} s: {srv.url}")
    print(f"start+stop {time.monotonic() - t0:.2f} s")
