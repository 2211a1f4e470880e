"""A secrets scan after every faulty run: whatever the LLM endpoint and the search API do wrong
(reject the key and echo it back, fail, throttle, answer garbage, drop the stream, stall, refuse the
connection), a `python -m core run` ends with a final status, and the canary keys appear nowhere: not
on stdout or stderr, not in any log file (compressed ones included), not in the database file, not in
a report (issue 12, item 7).

Each case is a real CLI process with its own data and log folders, pointed at the fake
OpenAI-compatible server and the fake Tavily API on 127.0.0.1."""
from __future__ import annotations

import gzip
import json
import os
import socket
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from core.corpus.importers import import_records
from core.infra.config import LLM_ROLES
from core.infra.db import open_database
from tests.fakes.openai_server import FakeOpenAI, FakeReply
from tests.fakes.search_servers import FakeTavilyServer
from tests.support.corpora import price_war_posts
from tests.support.faults import record

pytestmark = pytest.mark.timeout(300)

ROOT = Path(__file__).resolve().parent.parent
TOPIC = "新能源汽车价格战"
LLM_KEY = "sk-canary-llm-5f1e9a7c3b2d4e6f8a0b"
SEARCH_KEY = "tvly-canary-search-0c9d8e7f6a5b4c3d"
FINAL = {"completed", "completed_degraded", "failed", "report_failed", "cancelled", "insufficient_data"}


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# Each case: what every LLM call gets, which fault the search API serves (for every request), and
# the reason the run must give for being degraded (core.work.outcomes).
CASES = {
    "unauthorized_echoing_the_key": (FakeReply.unauthorized(f"Incorrect API key provided: {LLM_KEY}"), "unauthorized",
                                     "llm_unauthorized"),
    "server_errors": (FakeReply.error(500, "upstream exploded"), "server_error", "llm_unavailable"),
    "rate_limited": (FakeReply.rate_limit(retry_after=0), "rate_limit", "llm_rate_limited"),
    "garbage": (FakeReply.malformed(), "garbage", "llm_unavailable"),  # a broken API envelope, not a bad answer
    "dropped_streams": (FakeReply.dropped("半句话", after=1), "drop", "llm_unavailable"),
    "stalled": (FakeReply.stall(3.0), "stall", "llm_unavailable"),
    # 4 characters every 0.4 s: each gap is well inside LLM_TIMEOUT, the whole answer is not.
    "trickling": (FakeReply("慢" * 400, chunk_chars=4, chunk_delay=0.4, latency=0.0), "empty", "llm_unavailable"),
    "empty_answers": (FakeReply.text(""), "empty", "llm_unparsable"),
    "refused": (None, None, "llm_unavailable"),
}


def _corpus(data_dir: Path) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    db = open_database(f"sqlite:///{data_dir / 'shoal.db'}")
    assert db.ok, db.error
    import_records(db, price_war_posts(40), source="test")
    db.dispose()


def _scan(paths: list[Path], texts: dict[str, str], secrets: tuple[str, ...]) -> list[str]:
    hits = [f"{name}: {s}" for name, t in texts.items() for s in secrets if s in t]
    for root in paths:
        for f in (p for p in root.rglob("*") if p.is_file()):
            data = f.read_bytes()
            if f.suffix == ".gz":
                data = gzip.decompress(data)
            elif f.suffix == ".zip":
                with zipfile.ZipFile(f) as z:
                    data = b"".join(z.read(n) for n in z.namelist())
            hits += [f"{f}: {s}" for s in secrets if s.encode() in data]
    return hits


@pytest.mark.parametrize("case", list(CASES))
def test_a_faulty_run_ends_and_leaks_no_secret(case, isolated_env):
    llm_reply, search_fault, reason = CASES[case]
    data_dir, log_dir = isolated_env / "data", isolated_env / "logs"
    _corpus(data_dir)
    env = {**os.environ, "SHOAL_MIN_SOURCES": "3", "LLM_TIMEOUT": "1", "SEARCH_TIMEOUT": "1",
           "RETRY_MAX_SECONDS": "2", "SHOAL_LOG_LEVEL": "DEBUG"}
    with FakeOpenAI(responder=lambda req: llm_reply) as llm, FakeTavilyServer(api_key=SEARCH_KEY) as tavily:
        llm_url, search_url = llm.url, tavily.url
        if llm_reply is None:
            llm_url = f"http://127.0.0.1:{_closed_port()}/v1"
            search_url = f"http://127.0.0.1:{_closed_port()}"
        else:
            tavily.fail(search_fault, times=1000, delay=3.0, echo_key=True)
        for role in LLM_ROLES:
            env.update({f"{role}_API_KEY": LLM_KEY, f"{role}_BASE_URL": llm_url, f"{role}_MODEL_NAME": "fake-model"})
        env.update({"TAVILY_API_KEY": SEARCH_KEY, "TAVILY_BASE_URL": search_url})
        t0 = time.monotonic()
        proc = subprocess.run([sys.executable, "-m", "core", "run", TOPIC, "--paragraphs", "1", "--reflections", "0",
                               "--json", "--timeout", "200"], cwd=ROOT, env=env, capture_output=True, text=True,
                              encoding="utf-8", timeout=280)
        if llm_reply is not None:
            assert llm.requests, "the run reached the faulty LLM endpoint"
    elapsed = time.monotonic() - t0
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["status"] in FINAL, proc.stdout + proc.stderr
    # The defined end state: completed on the offline fallback, saying why it is degraded.
    reasons = {d["reason"] for d in summary["degraded"]}
    assert summary["status"] == "completed_degraded" and reason in reasons, summary
    if search_fault != "empty":
        assert "search_failed" in reasons, summary
    assert proc.returncode == 3, proc.stderr[-2000:]
    record(f"llm_{case}", elapsed, f"completed_degraded: {', '.join(sorted(reasons))}")
    assert "Traceback" not in proc.stderr, proc.stderr
    hits = _scan([data_dir, log_dir], {"stdout": proc.stdout, "stderr": proc.stderr}, (LLM_KEY, SEARCH_KEY))
    assert hits == []
