"""Logging: secrets never reach a file, trace ids in every record, per-engine sinks, rotation."""
from __future__ import annotations

import gzip
import logging
import sys
from pathlib import Path

import pytest
from loguru import logger

from core.infra import logs
from core.infra import redact
from core.infra.logs import StderrSink, engine_logger, setup_logging
from core.infra.tracing import trace_scope


@pytest.fixture(autouse=True)
def restore_logging(monkeypatch):
    """Each test configures loguru itself; afterwards loguru, stdlib logging and the redaction list are reset."""
    monkeypatch.setattr(redact, "_known", ())
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    logger.remove()
    logger.configure(patcher=None, extra={})
    logger.add(StderrSink(), level="WARNING")  # the stderr of the moment: pytest closes each capture
    root.handlers[:] = handlers
    root.setLevel(level)


def _flush():
    logger.complete()
    for handler_id in list(logs.state.handler_ids):
        try:
            logger.remove(handler_id)  # closes the files
        except ValueError:
            pass


def _read_all(log_dir: Path) -> dict[str, str]:
    """Every file in the log folder, rotated and compressed ones included."""
    out = {}
    for path in sorted(log_dir.rglob("*")):
        if not path.is_file():
            continue
        data = path.read_bytes()
        if path.name.endswith(".gz"):
            data = gzip.decompress(data)
        out[path.name] = data.decode("utf-8")
    return out


SECRETS = {
    "openai": "sk-proj-A1b2C3d4E5f6G7h8I9j0KLMNOP",
    "bearer": "eyJhbGciOiJIUzI1NiJ9.payload.sig9876",
    "password": "Hunter2-correct-horse",
    "dburl": "dbPassw0rd-77",
    "plain": "plainsecretvalue42",  # no recognisable shape: only known because it is configured
    "dict": "dictKeyValue-31337",
    "exception": "excSecret-0xDEAD",
    "exception_plain": "plainsecretvalue42",
    "stdlib": "stdlibToken-abcdef99",
}


def _log_every_secret():
    logger.info("calling openai with key {} now", SECRETS["openai"])
    logger.info("headers: Authorization: Bearer {} done", SECRETS["bearer"])
    logger.warning("login user=admin password={} failed", SECRETS["password"])
    logger.info("connecting to mysql+pymysql://shoal:{}@db.example.com:3306/shoal ok", SECRETS["dburl"])
    logger.info("the configured value {} appears here", SECRETS["plain"])
    logger.info("settings dump {}", {"api_key": SECRETS["dict"], "model": "deepseek-chat"})
    try:
        raise RuntimeError(f"upstream said token={SECRETS['exception']} and {SECRETS['exception_plain']}")
    except RuntimeError:
        logger.exception("request failed")
    logging.getLogger("thirdparty").warning("thirdparty call with api_key=%s finished", SECRETS["stdlib"])


def test_secrets_never_reach_any_log_file(tmp_path):
    log_dir = tmp_path / "logs"
    state = setup_logging(log_dir, level="DEBUG", secrets=[SECRETS["plain"]], console=False)
    assert state.writable and not state.problem
    _log_every_secret()
    _flush()

    files = _read_all(log_dir)
    assert "app.log" in files
    everything = "\n".join(files.values())
    for name, secret in SECRETS.items():
        assert secret not in everything, name
    # The surrounding text is kept, and the redaction is visible.
    app = files["app.log"]
    for text in ("calling openai with key", "now", "headers: Authorization:", "login user=admin password=",
                 "failed", "mysql+pymysql://shoal:", "@db.example.com:3306/shoal ok",
                 "the configured value", "appears here", "settings dump", "'model': 'deepseek-chat'",
                 "request failed", "Traceback (most recent call last)", "RuntimeError: upstream said token=",
                 "thirdparty call with api_key=", "finished"):
        assert text in app, text
    assert app.count(redact.MASK) >= 9


def test_secrets_redacted_on_the_console_too(tmp_path, capsys):
    setup_logging(tmp_path / "logs", secrets=[SECRETS["plain"]], console=True)
    _log_every_secret()
    _flush()
    err = capsys.readouterr().err
    assert "login user=admin password=" in err  # a WARNING, so it reaches the console sink
    assert "request failed" in err
    for name, secret in SECRETS.items():
        assert secret not in err, name


def test_secrets_redacted_in_rotated_and_compressed_files(tmp_path):
    log_dir = tmp_path / "logs"
    setup_logging(log_dir, rotation="1 KB", secrets=[SECRETS["plain"]], console=False)
    for i in range(30):
        _log_every_secret()
        logger.info("filler line {} {}", i, "x" * 80)
    _flush()
    files = _read_all(log_dir)
    assert any(name.endswith(".gz") for name in files)
    everything = "\n".join(files.values())
    assert everything.count("calling openai with key") == 30
    for name, secret in SECRETS.items():
        assert secret not in everything, name


def test_trace_id_in_records(tmp_path):
    log_dir = tmp_path / "logs"
    setup_logging(log_dir, console=False)
    logger.info("outside before")
    with trace_scope("abc123"):
        logger.info("plain record in scope")
        engine_logger("query").info("engine record in scope")
        logging.getLogger("thirdparty").warning("stdlib record in scope")
        logger.bind(trace_id="explicit9").info("explicitly bound")
    logger.info("outside after")
    _flush()
    lines = _read_all(log_dir)["app.log"].splitlines()

    def line(text):
        found = [entry for entry in lines if text in entry]
        assert len(found) == 1, (text, lines)
        return [part.strip() for part in found[0].split("|")]

    assert [part.strip() for part in lines[0].split("|")][3] == "app"

    assert line("plain record in scope")[2] == "abc123"
    assert line("engine record in scope")[2] == "abc123"
    assert line("stdlib record in scope")[2] == "abc123"
    assert line("explicitly bound")[2] == "explicit9"
    assert line("outside before")[2] == "-"
    assert line("outside after")[2] == "-"


def test_engine_sinks(tmp_path):
    log_dir = tmp_path / "logs"
    setup_logging(log_dir, console=False)
    engine_logger("query").info("query engine searching")
    engine_logger("media").info("media engine looking")
    logger.info("plain app record")
    _flush()
    files = _read_all(log_dir)
    assert "query engine searching" in files["query.log"]
    assert "query engine searching" in files["app.log"]
    assert "query engine searching" not in files.get("media.log", "")
    assert "media engine looking" in files["media.log"]
    assert "media engine looking" not in files["query.log"]
    assert "plain app record" in files["app.log"]
    assert "plain app record" not in files["query.log"] + files["media.log"]
    assert " query " in [entry for entry in files["query.log"].splitlines()][0]  # the sink column


def test_level_filters_records(tmp_path):
    log_dir = tmp_path / "logs"
    setup_logging(log_dir, level="WARNING", console=False)
    logger.info("an info record")
    logger.warning("a warning record")
    _flush()
    app = _read_all(log_dir)["app.log"]
    assert "a warning record" in app
    assert "an info record" not in app


def test_rotation_produces_compressed_files(tmp_path):
    log_dir = tmp_path / "logs"
    setup_logging(log_dir, rotation="1 KB", console=False)
    for i in range(300):
        logger.info("line number {:04d} with some padding to fill the file", i)
    _flush()
    gz = sorted(log_dir.glob("app.*.gz"))
    assert len(gz) >= 5
    for path in gz:
        assert path.stat().st_size > 0
    files = _read_all(log_dir)
    everything = "\n".join(files.values())
    for i in (0, 150, 299):
        assert f"line number {i:04d}" in everything
    assert len(files["app.log"].encode()) <= 1024 + 200  # the live file stays near the rotation size


def test_unwritable_log_dir_is_not_fatal(tmp_path, capsys):
    afile = tmp_path / "afile"
    afile.write_text("not a folder")
    log_dir = afile / "logs"
    state = setup_logging(log_dir, console=False, secrets=[SECRETS["plain"]])
    assert state.writable is False
    assert "not writable" in state.problem
    assert str(log_dir) in state.problem
    assert state.configured
    # Logging still works, to stderr, and still redacts.
    logger.warning("still logging with {}", SECRETS["plain"])
    logging.getLogger("thirdparty").error("stdlib still works")
    _flush()
    err = capsys.readouterr().err
    assert "still logging with [REDACTED]" in err
    assert "stdlib still works" in err
    assert SECRETS["plain"] not in err
    assert not log_dir.exists()


def test_setup_again_replaces_sinks(tmp_path):
    first, second = tmp_path / "one", tmp_path / "two"
    setup_logging(first, console=False)
    logger.info("to the first folder")
    setup_logging(second, console=False)
    logger.info("to the second folder")
    _flush()
    one, two = _read_all(first)["app.log"], _read_all(second)["app.log"]
    assert "to the first folder" in one and "to the second folder" not in one
    assert "to the second folder" in two and "to the first folder" not in two


def test_the_console_sink_writes_to_the_stderr_of_the_moment(tmp_path, monkeypatch):
    """A host that swaps sys.stderr (pytest's capture, closed after each test) must not leave the
    console sink writing to a closed stream ("I/O operation on closed file" at exit)."""
    import io

    first, second = io.StringIO(), io.StringIO()
    monkeypatch.setattr(sys, "stderr", first)
    setup_logging(tmp_path / "logs", console=True)
    logger.warning("to the first stream")
    monkeypatch.setattr(sys, "stderr", second)
    first.close()
    logger.warning("to the second stream")
    _flush()
    assert "to the second stream" in second.getvalue() and "Logging error" not in second.getvalue()
