"""Disk full on logs/ and on data/ (issue 12, item 7), on a real full filesystem: a small tmpfs
mounted in a private user+mount namespace (`unshare -rm`, no root needed; skipped where the kernel
forbids it).

- logs/ full: file logging pauses with one line on stderr (no per-record error reports), forum.log
  is skipped, the run completes.
- data/ full (SQLite): `core run` stops within seconds saying the data folder is full and how to
  go on, instead of waiting out its timeout with jobs that cannot even record their failure. After
  space is freed, `core resume RUN` finishes the run.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from core.corpus.importers import import_records
from core.infra.db import open_database
from tests.support.corpora import price_war_posts
from tests.support.faults import record

pytestmark = pytest.mark.timeout(400)
ROOT = Path(__file__).resolve().parent.parent
TOPIC = "新能源汽车价格战"


def _can_mount_tmpfs(tmp: Path) -> bool:
    if not shutil.which("unshare"):
        return False
    probe = tmp / "probe"
    probe.mkdir()
    r = subprocess.run(["unshare", "-rm", "sh", "-c", f"mount -t tmpfs -o size=64k tmpfs {probe}"],
                       capture_output=True, timeout=30)
    return r.returncode == 0


@pytest.fixture
def seed_db(isolated_env) -> Path:
    if not _can_mount_tmpfs(isolated_env):
        pytest.skip("cannot mount a tmpfs in a user namespace here (unshare -rm)")
    path = isolated_env / "seed.db"
    db = open_database(f"sqlite:///{path}")
    assert db.ok, db.error
    import_records(db, price_war_posts(120), source="test")
    db.dispose()
    return path


def _in_namespace(script: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    """Run a shell script in a private mount namespace (its tmpfs mounts vanish with it)."""
    return subprocess.run(["unshare", "-rm", "sh", "-ec", script], cwd=ROOT, env=env, capture_output=True,
                          text=True, encoding="utf-8", timeout=360)


def _run_cmd(extra: str = "") -> str:
    return (f"{sys.executable} -m core run --offline {TOPIC} --paragraphs 2 --reflections 1 --json "
            f"--timeout 300 {extra}")


def test_a_full_log_folder_pauses_file_logging_and_the_run_completes(seed_db, isolated_env):
    data, logs = isolated_env / "data", isolated_env / "logs"
    data.mkdir(exist_ok=True)
    logs.mkdir(exist_ok=True)
    shutil.copy(seed_db, data / "shoal.db")
    env = {**os.environ, "SHOAL_MIN_SOURCES": "3", "SHOAL_LOG_LEVEL": "DEBUG"}
    # 400 KB of tmpfs, 130 KB taken by a filler: the run's logs write until the guard's floor
    # (256 KB free), then file logging pauses.
    t0 = time.monotonic()
    proc = _in_namespace(f"""
        mount -t tmpfs -o size=400k tmpfs {logs}
        head -c 133120 /dev/zero > {logs}/filler || true
        {_run_cmd()} > {isolated_env}/out.json
        df -k {logs} | tail -1 > {isolated_env}/df.txt
        ls {logs} > {isolated_env}/ls.txt
        """, env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((isolated_env / "out.json").read_text().strip().splitlines()[-1])
    assert summary["status"] == "completed", summary
    assert "file logging paused" in proc.stderr
    assert "Logging error" not in proc.stderr and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert "app.log" in (isolated_env / "ls.txt").read_text()
    # The forum is whole in the database even if forum.log could not be written.
    assert summary["forum_messages"] > 0
    record("disk_full_logs", time.monotonic() - t0, "completed")


def test_a_full_data_folder_stops_the_run_clearly_and_resume_finishes_it(seed_db, isolated_env):
    data = isolated_env / "data"
    data.mkdir(exist_ok=True)
    env = {**os.environ, "SHOAL_MIN_SOURCES": "3", "SHOAL_DATA_DIR": str(data)}
    seed_size = seed_db.stat().st_size
    size_kb = (seed_size + 4 * 1024 * 1024) // 1024
    filler_kb = size_kb - seed_size // 1024 - 400   # about 400 KB left for the run: it runs out
    proc = _in_namespace(f"""
        mount -t tmpfs -o size={size_kb}k tmpfs {data}
        cp {seed_db} {data}/shoal.db
        head -c {filler_kb * 1024} /dev/zero > {data}/filler || true
        set +e
        date +%s.%N > {isolated_env}/run.t0
        {_run_cmd()} > {isolated_env}/run.json 2> {isolated_env}/run.err
        echo $? > {isolated_env}/run.rc
        date +%s.%N > {isolated_env}/run.t1
        rm {data}/filler
        RUN=$({sys.executable} -c "import json,sys; print(json.loads(open('{isolated_env}/run.json').read().strip().splitlines()[-1])['run_id'])")
        {sys.executable} -m core resume $RUN > {isolated_env}/resume.out 2> {isolated_env}/resume.err
        echo $? > {isolated_env}/resume.rc
        {sys.executable} -m core runs --json --limit 1 > {isolated_env}/runs.json
        """, env)
    err = (isolated_env / "run.err").read_text()
    assert proc.returncode == 0, proc.stderr[-3000:] + err[-3000:]
    assert (isolated_env / "run.rc").read_text().strip() != "0"
    assert "is full" in err and "core resume" in err, err[-3000:]
    assert "Traceback" not in err, err[-3000:]
    stopped_after = float((isolated_env / "run.t1").read_text()) - float((isolated_env / "run.t0").read_text())
    resume_err = (isolated_env / "resume.err").read_text()
    assert (isolated_env / "resume.rc").read_text().strip() == "0", resume_err[-3000:]
    runs = json.loads((isolated_env / "runs.json").read_text())
    assert runs[0]["status"] == "completed", runs
    record("disk_full_data", stopped_after, "stopped, resumable")
