"""`python -m core run|data|sentiment` as a user and an automation script run them (issue 3 items 4, 5, 7).

Separate processes with this test's isolated data/logs/.env (the autouse fixture put them into
os.environ). Each start costs a second or two, so independent commands run side by side and
commands that share a corpus share one folder.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from core.cli import main as cli_main
from core.text.sentiment import MODEL_PATH
from tests.fakes.openai_server import FakeOpenAI
from tests.research.test_engine import llm_responder

pytestmark = pytest.mark.timeout(300)

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 120
TOPIC = "新能源汽车价格战"
ENGINES = ("query", "media", "insight")


def _start(args: list[str], env: dict[str, str] | None = None, stdin: bool = False) -> subprocess.Popen:
    full_env = os.environ.copy()
    full_env.update(env or {})
    return subprocess.Popen([sys.executable, "-m", "core", *args], cwd=ROOT, env=full_env,
                            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, encoding="utf-8")


def _finish(proc: subprocess.Popen, input: str | None = None) -> tuple[int, str, str]:
    try:
        out, err = proc.communicate(input=input, timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise AssertionError(f"{proc.args} did not finish in {TIMEOUT}s\n{out}\n{err}")
    return proc.returncode, out, err


def cli(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    return _finish(_start(list(args), env))


def cli_parallel(*commands: list[str] | tuple[list[str], dict[str, str]]) -> list[tuple[int, str, str]]:
    procs = [_start(c) if isinstance(c, list) else _start(c[0], c[1]) for c in commands]
    return [_finish(p) for p in procs]


def assert_clean(err: str) -> None:
    assert "Traceback" not in err, err


# ---------------------------------------------------------------------------------------- refusals


def test_run_refuses_bad_input_and_an_empty_corpus_clearly(isolated_env, capsys):
    missing = isolated_env / "no-such-file.csv"
    (empty_rc, empty_out, empty_err), (blank_rc, blank_out, blank_err), (miss_rc, miss_out, miss_err) = cli_parallel(
        ["run", "--offline", TOPIC],
        ["run", ""],
        ["data", "import", str(missing)],
    )

    assert empty_rc == 1, empty_out + empty_err
    assert "corpus is empty" in empty_err
    assert "python -m core data demo" in empty_err and "python -m core data import FILE" in empty_err
    assert empty_out == ""  # no half summary for automation to misread
    assert_clean(empty_err)

    assert blank_rc == 2 and "Enter a topic" in blank_err, blank_err
    assert blank_out == ""
    assert_clean(blank_err)

    assert miss_rc != 0
    report = json.loads(miss_out)
    assert report["imported"] == 0 and report["error_count"] == 1
    assert "no such file" in report["errors"][0][1] and str(missing) in report["errors"][0][1]
    assert_clean(miss_err)

    # The same entry point in this process (validation happens before anything starts, so no
    # subprocess is needed): an exception escaping main() would fail the test here.
    long_topic = "新能源" + "舆" * 49_997
    assert cli_main(["run", long_topic, "--offline"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and "50,000 characters" in err and "200" in err, err[:500]
    assert len(err) < 1000  # the message does not echo the topic back
    assert cli_main(["run", TOPIC, "--offline", "--engines", "query,telepathy"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and "telepathy" in err and "query, media, insight" in err, err


# ---------------------------------------------------------------------------------------- data


def test_data_demo_stats_and_import(isolated_env):
    csv_path = isolated_env / "posts.csv"
    csv_path.write_text("content,platform,likes,mood\n"
                        "新能源汽车又降价了,weibo,12,angry\n"
                        ",douyin,3,none\n"
                        "价格战何时休,xhs,5,tired\n", encoding="utf-8")
    other = isolated_env / "other"  # the import goes to its own folder, so the demo count stays exact
    (demo_rc, demo_out, demo_err), (imp_rc, imp_out, imp_err) = cli_parallel(
        ["data", "demo", "--posts", "300"],
        (["data", "import", str(csv_path)], {"SHOAL_DATA_DIR": str(other / "data"),
                                             "SHOAL_LOG_DIR": str(other / "logs")}),
    )
    assert demo_rc == 0, demo_err
    demo = json.loads(demo_out)
    assert demo["imported"] > 0 and demo["error_count"] == 0
    assert_clean(demo_err)

    assert imp_rc == 0, imp_out + imp_err
    imported = json.loads(imp_out)
    assert imported["imported"] == 2 and imported["error_count"] == 1
    [(row, message)] = imported["errors"]
    assert row == 3 and "content" in message  # line 3, the second data row, and why
    assert_clean(imp_err)

    stats_rc, stats_out, stats_err = cli("data", "stats")
    assert stats_rc == 0, stats_err
    stats = json.loads(stats_out)
    assert stats["total"] == demo["imported"] and stats["demo"] == demo["imported"]
    assert len(stats["by_platform"]) >= 3


# ---------------------------------------------------------------------------------------- run


def test_offline_run_prints_the_json_contract_then_an_llm_run(isolated_env):
    rc, out, err = cli("data", "demo", "--posts", "600")
    assert rc == 0 and json.loads(out)["imported"] > 0, err

    rc, out, err = cli("run", TOPIC, "--offline", "--paragraphs", "2", "--reflections", "1", "--json")
    assert rc == 0, out + err
    summary = json.loads(out)  # the whole of stdout is one JSON object
    assert out.strip().count("\n") == 0 and isinstance(summary, dict)
    assert isinstance(summary["run_id"], str) and summary["run_id"]
    assert summary["status"] == "completed" and summary["mode"] == "offline"
    assert set(summary["engines"]) == set(ENGINES)
    for name in ENGINES:
        engine = summary["engines"][name]
        assert engine["status"] == "completed" and engine["paragraphs"] == 2, (name, engine)
    assert type(summary["forum_messages"]) is int and type(summary["host_messages"]) is int
    assert summary["host_messages"] <= summary["forum_messages"]
    # the contract: a path to the report, or null while there is none
    assert summary["report"] is None or (isinstance(summary["report"], str) and Path(summary["report"]).is_file())
    assert summary["llm_calls"] == 0
    assert isinstance(summary["wall_s"], (int, float)) and 0 < summary["wall_s"] < TIMEOUT
    assert "run.completed" not in err and "job.started" not in err  # --json: no progress lines
    assert_clean(err)

    # LLM mode for Insight against the fake, without --json: progress on stderr, the JSON on stdout.
    with FakeOpenAI(responder=llm_responder) as fake:
        rc, out, err = cli("run", TOPIC, "--engines", "insight", "--paragraphs", "2", "--reflections", "1",
                           env=fake.env("INSIGHT_ENGINE"))
        requests = len(fake.requests)
    assert rc == 0, out + err
    llm = json.loads(out)
    assert llm["status"] == "completed" and llm["mode"] == "llm"
    assert llm["run_id"] != summary["run_id"]
    assert list(llm["engines"]) == ["insight"] and llm["engines"]["insight"]["status"] == "completed"
    assert llm["engines"]["insight"]["paragraphs"] == 2
    assert 0 < llm["llm_calls"] <= requests  # every recorded call reached the fake
    assert f"run {llm['run_id']}" in err and "run.completed" in err and "engine.started" in err
    assert "run.completed" not in out
    assert_clean(err)


def test_an_offline_run_never_imports_the_llm_client(isolated_env):
    # openai takes most of a second to import: a run that makes no LLM call (engines, host, report)
    # must not pay for it
    rc, out, err = cli("data", "demo", "--posts", "300")
    assert rc == 0, err
    code = ("import json, sys\nfrom core.cli import main\n"
            f"rc = main(['run', {TOPIC!r}, '--offline', '--json', '--paragraphs', '2', '--reflections', '1'])\n"
            "print(json.dumps([rc, sorted(m for m in ('openai', 'core.llm.client') if m in sys.modules)]), "
            "file=sys.stderr)")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, encoding="utf-8",
                          timeout=TIMEOUT)
    summary = json.loads(proc.stdout)
    assert summary["status"] == "completed" and summary["host_messages"] > 0 and summary["report"], summary
    assert json.loads(proc.stderr.strip().splitlines()[-1]) == [0, []]


# ---------------------------------------------------------------------------------------- sentiment


def test_sentiment_reads_stdin_and_prints_label_and_score():
    assert MODEL_PATH.is_file(), "the shipped sentiment model is missing"
    rc, out, err = _finish(_start(["sentiment"], stdin=True), input="太好了\n垃圾\n")
    assert rc == 0, err
    lines = out.splitlines()
    assert len(lines) == 2, out
    parsed = []
    for line in lines:
        label, score = line.split("\t")
        assert label in ("0", "1") and 0.0 <= float(score) <= 1.0, line
        parsed.append((int(label), float(score)))
    assert parsed[0][0] == 1 and parsed[1][0] == 0, parsed


def test_following_a_run_whose_row_is_gone_ends_with_a_message_not_a_traceback(tmp_path, monkeypatch, capsys):
    # seen when a database restarted and lost its last commits: the follower read the run as None
    from core.cli_work import _follow
    from core.runtime import build_runtime
    from core.work.states import RunState

    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'gone.db'}")
    rt = build_runtime(console_log=False)
    try:
        assert _follow(rt, "no-such-run", 30, quiet=True) == RunState.FAILED
    finally:
        rt.close()
    assert "run no-such-run is no longer in the database" in capsys.readouterr().err
