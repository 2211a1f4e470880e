"""`python -m core` as a user runs it: separate processes, an isolated data/logs/.env per test.

Each start costs about a second, so independent commands run side by side.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 90


def _env(**overrides: str) -> dict[str, str]:
    env = os.environ.copy()  # carries SHOAL_DATA_DIR / SHOAL_LOG_DIR / SHOAL_ENV_FILE from isolated_env
    env.update(overrides)
    return env


def _start(args: list[str], **env: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "core", *args], cwd=ROOT, env=_env(**env),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, encoding="utf-8")


def _finish(proc: subprocess.Popen) -> tuple[int, str, str]:
    try:
        out, err = proc.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise AssertionError(f"{proc.args} did not finish in {TIMEOUT}s\n{out}\n{err}")
    return proc.returncode, out, err


def _run_all(*commands) -> list[tuple[int, str, str]]:
    procs = [_start(args, **env) for args, env in commands]
    return [_finish(p) for p in procs]


def test_help_usage_and_doctor_on_a_fresh_folder(isolated_env):
    (help_rc, help_out, _), (none_rc, none_out, none_err), (doc_rc, doc_out, doc_err), (json_rc, json_out, _) = \
        _run_all((["--help"], {}), ([], {}), (["doctor"], {}), (["doctor", "--json"], {}))

    assert help_rc == 0
    for command in ("doctor", "worker", "probe", "runs", "cancel", "resume", "events", "sentiment"):
        assert command in help_out, command

    assert none_rc == 2
    assert "usage:" in (none_out + none_err)
    assert "doctor" in (none_out + none_err)

    assert doc_rc == 0, doc_out + doc_err
    lines = doc_out.splitlines()
    for check in ("settings", "database", "logs", "disk", "llm", "search"):
        assert any(line.startswith("[OK  ]") and line.split()[2] == check for line in lines), (check, doc_out)
    assert "FAIL" not in doc_out
    assert "everything essential works" in doc_out
    assert "Traceback" not in doc_err
    # A fresh folder got its SQLite database and its log folder.
    assert (isolated_env / "data" / "shoal.db").is_file()
    assert (isolated_env / "logs").is_dir()

    assert json_rc == 0
    report = json.loads(json_out)
    assert report["ok"] is True
    names = {c["name"]: c for c in report["checks"]}
    assert {"settings", "database", "logs", "disk", "llm", "search"} <= set(names)
    assert all(c["status"] != "fail" for c in report["checks"])
    assert names["database"]["essential"] is True and "sqlite" in names["database"]["detail"]


def test_doctor_reports_broken_parts_without_leaking(isolated_env):
    afile = isolated_env / "afile"
    afile.write_text("a file, not a folder")
    (isolated_env / ".env").write_text("SHOAL_PARAGRAPHS=lots\n", encoding="utf-8")
    results = _run_all(
        (["doctor"], {"DATABASE_URL": "oracle://u:pgPw-88123@h/db"}),
        (["doctor"], {"DATABASE_URL": "mysql+pymysql://u:secretpw-4417@127.0.0.1:1/db"}),
        (["doctor"], {"SHOAL_LOG_DIR": str(afile / "logs")}),
        (["doctor", "--json"], {"DATABASE_URL": "mysql://u:jsonPw-5521@h/db"}),
    )
    (pg_rc, pg_out, pg_err), (my_rc, my_out, my_err), (log_rc, log_out, log_err), (js_rc, js_out, js_err) = results

    assert pg_rc == 1
    db_line = next(line for line in pg_out.splitlines() if " database " in line)
    assert db_line.startswith("[FAIL]")
    assert "postgresql" in db_line and "mysql" in db_line  # says why and what would work
    assert "essential checks failed: database" in pg_out
    assert "pgPw-88123" not in pg_out + pg_err
    assert "Traceback" not in pg_err

    assert my_rc == 1
    db_line = next(line for line in my_out.splitlines() if " database " in line)
    assert db_line.startswith("[FAIL]")
    assert "unreachable" in db_line and "Can't connect" in db_line and "127.0.0.1" in db_line
    assert "secretpw-4417" not in my_out + my_err
    assert "Traceback" not in my_err

    assert log_rc == 1
    logs_line = next(line for line in log_out.splitlines() if " logs " in line)
    assert logs_line.startswith("[FAIL]")
    assert "not writable" in logs_line and str(afile / "logs") in logs_line
    assert "essential checks failed: logs" in log_out
    assert "Traceback" not in log_err

    # A wrong setting value is a warning naming the key, not a failure.
    for out in (pg_out, my_out, log_out):
        settings_line = next(line for line in out.splitlines() if " settings " in line)
        assert settings_line.startswith("[WARN]") and "SHOAL_PARAGRAPHS" in settings_line

    assert js_rc == 1
    report = json.loads(js_out)
    assert report["ok"] is False
    database = next(c for c in report["checks"] if c["name"] == "database")
    assert database["status"] == "fail" and "pymysql" in database["detail"]
    assert "jsonPw-5521" not in js_out + js_err
    # Nothing leaked into the log files either.
    for path in (isolated_env / "logs").rglob("*"):
        if path.is_file():
            text = path.read_text(encoding="utf-8", errors="replace")
            for secret in ("pgPw-88123", "secretpw-4417", "jsonPw-5521"):
                assert secret not in text, path


def test_probe_then_runs_and_events(isolated_env):
    rc, out, err = _run_all((["probe", "--jobs", "2", "--steps", "3", "--step-seconds", "0.01"], {}))[0]
    assert rc == 0, out + err
    result = json.loads(out.strip().splitlines()[-1])
    assert result["status"] == "completed"
    run_id = result["run_id"]

    (runs_rc, runs_out, runs_err), (ev_rc, ev_out, ev_err), (bad_rc, bad_out, bad_err) = _run_all(
        (["runs", "--json"], {}),
        (["events", "--since", "0"], {}),
        (["runs"], {"DATABASE_URL": "oracle://u:runsPw-771@h/db"}),
    )
    assert runs_rc == 0, runs_err
    runs = json.loads(runs_out)
    assert [r["id"] for r in runs] == [run_id]
    assert runs[0]["status"] == "completed" and runs[0]["kind"] == "probe"

    assert ev_rc == 0, ev_err
    events = [json.loads(line) for line in ev_out.splitlines() if line.strip()]
    assert events
    ids = [e["id"] for e in events]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)  # a global, increasing id
    types = [e["type"] for e in events if e["run_id"] == run_id]
    assert "run.queued" in types and "run.completed" in types
    assert types.index("run.queued") < types.index("run.completed")

    # A command that needs the database says why it cannot run, on stderr, with exit 1.
    assert bad_rc == 1
    assert "postgresql" in bad_err
    assert "runsPw-771" not in bad_out + bad_err
    assert "Traceback" not in bad_err
