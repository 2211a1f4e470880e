"""`python -m core data mindspider` and `python -m core forum import` as a user runs them: separate
processes, an isolated data/logs/.env per test (conftest's isolated_env)."""
from __future__ import annotations

import json
import sqlite3
from datetime import datetime
from pathlib import Path

from core.infra.db import open_database
from core.infra.models import Post
from tests.test_cli import _run_all

PASSWORD = "s3cret-Pw0rd"


def _ms(ts: str) -> int:
    """MediaCrawler stores times as epoch milliseconds."""
    return int(datetime.fromisoformat(ts).timestamp() * 1000)


def mindspider_source(path: Path) -> str:
    """A MindSpider/MediaCrawler database as its crawler leaves it (a SQLite copy of its tables)."""
    con = sqlite3.connect(path)
    con.executescript("""
        CREATE TABLE weibo_note (id INTEGER PRIMARY KEY, note_id TEXT, content TEXT, nickname TEXT,
                                 create_time INTEGER, liked_count TEXT, note_url TEXT, source_keyword TEXT);
        CREATE TABLE weibo_note_comment (id INTEGER PRIMARY KEY, comment_id TEXT, note_id TEXT, content TEXT,
                                         nickname TEXT, create_time INTEGER);
        CREATE TABLE douyin_aweme (id INTEGER PRIMARY KEY, aweme_id TEXT, title TEXT, desc TEXT, nickname TEXT,
                                   create_time INTEGER, liked_count TEXT);
    """)
    con.executemany("INSERT INTO weibo_note (note_id, content, nickname, create_time, liked_count, note_url, "
                    "source_keyword) VALUES (?, ?, ?, ?, ?, ?, ?)", [
                        ("w1", "武汉大学樱花季预约系统崩了", "珞珈山下", _ms("2025-03-20 10:00:00"), "1.2万",
                         "https://weibo.com/1/w1", "武汉大学"),
                        ("w2", "去年的旧帖：樱花还没开", "旧账号", _ms("2024-03-01 09:00:00"), "3", "", "武汉大学"),
                        ("w3", "没有时间的帖子", "无名", None, "0", "", "武汉大学"),
                    ])
    con.executemany("INSERT INTO weibo_note_comment (comment_id, note_id, content, nickname, create_time) "
                    "VALUES (?, ?, ?, ?, ?)", [
                        ("c1", "w1", "同感，排了一个小时", "路人甲", _ms("2025-03-20 11:00:00")),
                    ])
    con.executemany("INSERT INTO douyin_aweme (aweme_id, title, desc, nickname, create_time, liked_count) "
                    "VALUES (?, ?, ?, ?, ?, ?)", [
                        ("d1", "樱花大道航拍", "武大樱花航拍视频", "航拍君", _ms("2025-03-21 08:00:00"), "8万"),
                    ])
    con.commit()
    con.close()
    return f"sqlite:///{path}"


def corpus(tmp_path: Path) -> list[tuple[str, str, str]]:
    db = open_database(f"sqlite:///{tmp_path / 'data' / 'shoal.db'}")
    try:
        with db.session() as s:
            return sorted((p.platform, p.kind, p.content) for p in s.query(Post).all())
    finally:
        db.dispose()


def test_mindspider_import_with_platforms_and_since(isolated_env, tmp_path):
    url = mindspider_source(tmp_path / "mindspider.db")
    [(code, out, err)] = _run_all((["data", "mindspider", url, "--platforms", "微博", "--since", "2025-01-01"], {}))
    assert code == 0, err
    report = json.loads(out)
    assert (report["imported"], report["error_count"], report["source"]) == (2, 0, "mindspider")
    assert any("weibo_note: 2 rows" in n and "left out" in n for n in report["notes"])
    assert not any("douyin" in n for n in report["notes"])  # other platforms are not even looked at
    assert "2 imported" in err
    assert corpus(tmp_path) == [("weibo", "comment", "同感，排了一个小时"), ("weibo", "post", "武汉大学樱花季预约系统崩了")]

    # everything, once more: what is there already is skipped, the rest comes in
    [(code, out, err)] = _run_all((["data", "mindspider", url], {}))
    assert code == 0, err
    report = json.loads(out)
    assert (report["imported"], report["skipped"]) == (3, 2)
    assert sorted(c for _, _, c in corpus(tmp_path)) == sorted(["同感，排了一个小时", "武汉大学樱花季预约系统崩了",
                                                           "去年的旧帖：樱花还没开", "没有时间的帖子", "武大樱花航拍视频"])


def test_mindspider_failures_exit_non_zero_and_never_print_the_password(isolated_env, tmp_path):
    empty = tmp_path / "empty.db"
    sqlite3.connect(empty).close()
    (unreachable, no_tables, bad_url, bad_platform, bad_since) = _run_all(
        (["data", "mindspider", f"mysql+pymysql://shoal:{PASSWORD}@127.0.0.1:1/mindspider"], {}),
        (["data", "mindspider", f"sqlite:///{empty}"], {}),
        (["data", "mindspider", f"ftp://shoal:{PASSWORD}@host/db"], {}),
        (["data", "mindspider", f"mysql://shoal:{PASSWORD}@host/db", "--platforms", "myspace"], {}),
        (["data", "mindspider", f"mysql://shoal:{PASSWORD}@host/db", "--since", "someday"], {}),
    )
    code, out, err = unreachable
    assert code == 1, err
    report = json.loads(out)
    assert report["error_count"] >= 1 and report["imported"] == 0
    assert "[REDACTED]" in report["url"] and "[REDACTED]" in err
    code, out, err = no_tables
    assert code == 1 and "no MindSpider/MediaCrawler tables" in out
    for code, out, err in (bad_url, bad_platform, bad_since):
        assert code == 2 and out == "" and err.startswith("data mindspider: "), err
    assert "myspace" in bad_platform[2] and "--since" in bad_since[2]
    for code, out, err in (unreachable, no_tables, bad_url, bad_platform, bad_since):
        assert PASSWORD not in out + err
    logs = "".join(p.read_text(encoding="utf-8", errors="replace") for p in (tmp_path / "logs").rglob("*.log"))
    assert PASSWORD not in logs


def test_mindspider_url_from_stdin(isolated_env, tmp_path):
    import subprocess
    import sys

    from tests.test_cli import ROOT, TIMEOUT, _env

    url = mindspider_source(tmp_path / "mindspider.db")
    proc = subprocess.run([sys.executable, "-m", "core", "data", "mindspider", "-", "--platforms", "douyin"],
                          cwd=ROOT, env=_env(), input=url + "\n", capture_output=True, text=True, encoding="utf-8",
                          timeout=TIMEOUT)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["imported"] == 1


FORUM_LOG = "\n".join([
    "[23:59:00] [SYSTEM] [0badf00d] === ForumEngine 监控开始 - 2025-11-06 23:59:00 ===",
    "[23:59:30] [QUERY] [0badf00d] 午夜前的总结\\n第二行",
    "[00:00:10] [HOST] [0badf00d] 主持人：请继续。",
    "[00:00:40] [MEDIA] [0badf00d] 午夜后的总结",
]) + "\n"


def test_forum_import_of_a_forum_log_prints_and_stores_it_with_the_host(isolated_env, tmp_path):
    logs = tmp_path / "bettafish" / "logs"
    logs.mkdir(parents=True)
    (logs / "forum.log").write_text(FORUM_LOG, encoding="utf-8")
    (printed, stored) = _run_all((["forum", "import", str(logs / "forum.log")], {}),
                                 (["forum", "import", str(logs), "--store", "--label", "跨午夜"], {}))
    code, out, err = printed
    assert code == 0, err
    assert out.splitlines() == ["[23:59:30] [QUERY] 午夜前的总结\\n第二行", "[00:00:10] [HOST] 主持人：请继续。",
                                "[00:00:40] [MEDIA] 午夜后的总结"]
    code, out, err = stored
    assert code == 0, err
    assert "stored 3 messages as run" in err
    run_id = err.rsplit("as run ", 1)[1].split()[0]
    from core.forum import transcript

    db = open_database(f"sqlite:///{tmp_path / 'data' / 'shoal.db'}")
    try:
        msgs = transcript(db, run_id)
    finally:
        db.dispose()
    assert [(m.type, m.source, m.timestamp) for m in msgs] == [
        ("agent", "QUERY", datetime(2025, 11, 6, 23, 59, 30)), ("host", "HOST", datetime(2025, 11, 7, 0, 0, 10)),
        ("agent", "MEDIA", datetime(2025, 11, 7, 0, 0, 40))]


def test_forum_import_of_nothing_fails(isolated_env, tmp_path):
    [(code, out, err)] = _run_all((["forum", "import", str(tmp_path / "nowhere")], {}))
    assert code == 1 and out == "" and "does not exist" in err
