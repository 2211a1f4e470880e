"""The fault matrix of RELIABILITY.md: one row per fault, each proved by a test in the suite.

Runs the tests named in ROWS (pytest, real processes, real MariaDB where the row needs it) with
SHOAL_FAULT_TIMINGS set, so each test records the time from injecting its fault to the defined end
state (tests/support/faults.py), then prints one JSON line and, with --write, rewrites
RELIABILITY.md's matrix section. A row whose test fails or records nothing is reported as such,
never filled in by hand.

    python bench/fault_matrix.py [--write]
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, loadavg, parser  # noqa: E402

RELIABILITY = ROOT / "RELIABILITY.md"
START, END = "<!-- fault_matrix:start -->", "<!-- fault_matrix:end -->"


@dataclass(frozen=True)
class Row:
    key: str          # what the test passes to tests.support.faults.record
    fault: str
    test: str         # pytest selection: "file::name" or "file -k expr"
    injected_by: str
    end_state: str
    kept: str


ROWS: tuple[Row, ...] = (
    Row("worker_sigkill", "SIGKILL of a worker (MariaDB and SQLite)",
        "tests/test_multiprocess.py -k killed_worker", "os.kill(pid, SIGKILL) mid-job",
        "the other replica takes the job over when the lease expires and completes the run",
        "the job's checkpoint: resumed at the step it reached, not restarted"),
    Row("worker_sigterm", "SIGTERM of a worker", "tests/test_multiprocess.py -k sigterm",
        "SIGTERM mid-job", "the worker exits 0; its job is `interrupted`, lease released",
        "the checkpoint, for the next process to resume"),
    Row("cli_sigterm", "SIGTERM of `core run`", "tests/test_ownership_processes.py -k sigterm_stops",
        "SIGTERM while its insight job runs (after `resume` from another process was refused, naming it)",
        "exit 143 within SHOAL_SHUTDOWN_TIMEOUT, summary printed, no job left running, run `interrupted`, "
        "worker row closed; `resume` then completes it", "every finished job and the checkpoints; time is signal to exit"),
    Row("cli_sigkill", "SIGKILL of `core run`", "tests/test_ownership_processes.py -k killed_run",
        "SIGKILL while its insight job runs", "`core resume RUN` from another process sees the pid is gone, "
        "takes the job over at once (no lease wait) and completes the run", "the checkpoint; time is resume to completion"),
    Row("cli_sigkill_worker_recovers", "SIGKILL of a CLI process, then a worker starts",
        "tests/test_ownership_processes.py -k started_after_a_crash", "SIGKILL of `core probe` mid-job",
        "a `core worker` started afterwards finishes the run with no page open",
        "the checkpoint (resumed at its step); time is worker start to completion"),
    Row("app_sigkill", "SIGKILL of the app (`streamlit run Home.py`)", "tests/ui/test_app_faults.py -k killed_app",
        "SIGKILL of the Streamlit process while its supervisor runs a probe job (Home opened once in Chromium)",
        "a `core worker` started afterwards sees the app's pid is gone, takes the job over at once (no lease "
        "wait) and completes the run", "the checkpoint (resumed at its step, not restarted); time is kill to completion"),
    Row("app_sigterm", "SIGTERM of the app (`streamlit run Home.py`)", "tests/ui/test_app_faults.py -k sigterm",
        "SIGTERM of the Streamlit process while its supervisor runs a probe job (Home opened once in Chromium)",
        "the app exits 0 within SHOAL_SHUTDOWN_TIMEOUT; its job `interrupted` (no lease left), run `interrupted`, "
        "worker row closed; a `core worker` then completes the run",
        "the checkpoint (resumed at its step); time is signal to exit, the completion time is in the end state"),
    Row("mariadb_restart", "MariaDB crashed and restarted mid-run", "tests/test_db_outage.py",
        "SIGKILL of mariadbd while engines run, then a restart on the same files",
        "`core run` says the database is unreachable, waits, says it is back; the run completes",
        "every job; time is from the restart to completion"),
    Row("disk_full_logs", "logs/ full (tmpfs)", "tests/test_disk_full.py -k log_folder",
        "a 400 KB tmpfs on logs/, mostly filled", "file logging pauses with one stderr line; the run completes",
        "the run, the forum (in the database); time is the whole run"),
    Row("disk_full_data", "data/ full (SQLite, tmpfs)", "tests/test_disk_full.py -k data_folder",
        "a tmpfs on data/ with about 400 KB free",
        "`core run` stops with a message saying the folder is full and how to resume; after space is "
        "freed, `core resume` completes the run", "everything written before the disk filled; time is from the run's start (the disk fills during it) to its stop"),
    *(Row(f"llm_{case}", f"LLM and search: {label}", f"tests/test_fault_secrets.py -k {case}",
          "the fake OpenAI-compatible server and fake Tavily API serve the fault to every call",
          "`completed_degraded` (exit 3) on the offline fallback, naming the LLM reason and `search_failed`; "
          "0 canary secrets anywhere", "the run row, its sources and report")
      for case, label in (("unauthorized_echoing_the_key", "401 with the key echoed back"),
                          ("server_errors", "500 throughout"), ("rate_limited", "429 throughout"),
                          ("garbage", "non-JSON bodies"), ("dropped_streams", "streams cut after one chunk"),
                          ("stalled", "no byte for 3 s (LLM_TIMEOUT=1)"),
                          ("trickling", "4 characters every 0.4 s (LLM_TIMEOUT=1)"),
                          ("empty_answers", "empty answers / no search results"),
                          ("refused", "connection refused"))),
)


def run_rows(rows: tuple[Row, ...]) -> tuple[dict[str, dict], dict[str, str]]:
    timings_file = Path(tempfile.mkstemp(prefix="shoal-faults-", suffix=".jsonl")[1])
    outcome: dict[str, str] = {}
    for row in rows:
        target, _, expr = row.test.partition(" -k ")
        cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "addopts=", target]
        if expr:
            cmd += ["-k", expr]
        env = {**os.environ, "SHOAL_FAULT_TIMINGS": str(timings_file)}
        r = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
        last = (r.stdout.strip().splitlines() or ["(no output)"])[-1]
        outcome[row.key] = "passed" if r.returncode == 0 else f"FAILED: {last}"
    timings: dict[str, dict] = {}
    for line in timings_file.read_text(encoding="utf-8").splitlines():
        item = json.loads(line)
        timings.setdefault(item["row"], {"seconds": [], "end_state": item["end_state"]})["seconds"].append(item["seconds"])
    timings_file.unlink()
    return timings, outcome


def render(rows: tuple[Row, ...], timings: dict[str, dict], outcome: dict[str, str], started: str, load: tuple) -> str:
    lines = [START, "", f"`python bench/fault_matrix.py --write` — {started}; load average {load[0]} at start, "
             f"{load[1]} at end. Times are measured inside each test, from the fault to its end state "
             "(several figures: the test ran on SQLite and MariaDB, or in several cases).", "",
             "| fault | injected by | test | defined end state | kept | measured end state | time to end state (s) |",
             "|---|---|---|---|---|---|---|"]
    for row in rows:
        t = timings.get(row.key)
        seen = t["end_state"] if t else "—"
        secs = ", ".join(f"{s:.1f}" for s in t["seconds"]) if t else "not recorded"
        status = outcome.get(row.key, "not run")
        if status != "passed":
            seen = f"**{status}**"
        lines.append(f"| {row.fault} | {row.injected_by} | `{row.test}` | {row.end_state} | {row.kept} | {seen} | {secs} |")
    return "\n".join(lines + ["", END])


def write(section: str) -> None:
    text = RELIABILITY.read_text(encoding="utf-8")
    if START not in text:
        raise SystemExit(f"{RELIABILITY} has no {START} marker")
    text = re.sub(re.escape(START) + ".*?" + re.escape(END), lambda _m: section, text, flags=re.S)
    RELIABILITY.write_text(text, encoding="utf-8")


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--only", default="", help="comma-separated row keys")
    args = p.parse_args()
    rows = tuple(r for r in ROWS if not args.only or r.key in args.only.split(","))
    started, load0, t0 = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), loadavg(), time.monotonic()
    timings, outcome = run_rows(rows)
    print(json.dumps({"rows": len(rows), "passed": sum(v == "passed" for v in outcome.values()),
                      "timings": {k: v["seconds"] for k, v in timings.items()}, "wall_s": round(time.monotonic() - t0, 1)},
                     ensure_ascii=False))
    if args.write:
        write(render(rows, timings, outcome, started, (load0, loadavg())))


if __name__ == "__main__":
    main()
