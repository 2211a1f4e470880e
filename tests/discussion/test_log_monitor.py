"""The BettaFish live tail on real files: growth, partial lines, rotation, truncation, a concurrent
writer, cost per tick, duplicates, resume, and the "bettafish_tail" job end to end."""
from __future__ import annotations

import json
import os
import random
import threading
import time

import pytest

import core.infra.logtail
from core.analysis import analysis_jobs
from core.discussion.log_monitor import TAIL_KIND, BettaFishTail, tail_job
from core.forum import HOST_KIND, Forum, transcript
from core.infra.config import load_settings
from core.infra.models import Job, Run
from core.work.jobs import COMPLETED, HandlerInfo, JobSpec
from core.work.runs import jobs_of
from tests.conftest import wait_for

pytestmark = pytest.mark.timeout(120)

RUN = "a1b2c3d4e5f6"


def rec(content: str, *, paragraph: int = 0, engine: str = "query", node: str = "FirstSummaryNode",
        key: str = "paragraph_latest_state") -> bytes:
    """One BettaFish engine log line, old shape: `[HH:MM:SS] [Node] 清理后的输出: {json}`."""
    record = {key: content, "paragraph": paragraph, "title": "t"}
    return f"[08:44:12] [{node}] 清理后的输出: {json.dumps(record, ensure_ascii=False)}\n".encode("utf-8")


def append(path, data: bytes) -> None:
    with open(path, "ab") as fh:
        fh.write(data)


@pytest.fixture
def logs(tmp_path):
    d = tmp_path / "logs"
    d.mkdir(exist_ok=True)
    return d


class Jobs:
    """Stands in for the supervisor: the host jobs the forum adds."""

    def __init__(self):
        self.added = []

    def add_jobs(self, run_id, specs):
        self.added += list(specs)
        return [x.name for x in specs]


@pytest.fixture
def monitor(db, events, logs):
    def make(host_every: int = 5, jobs=None) -> BettaFishTail:
        return BettaFishTail(Forum(db, events, logs / "out", host_every=host_every, jobs=jobs), RUN, logs)

    return make


def contents(db, run_id=RUN, type="agent"):
    return [m.content for m in transcript(db, run_id, limit=10_000) if m.type == type]


# -- files ------------------------------------------------------------------------------------

def test_growing_files_and_a_partial_line_completed_later(db, monitor, logs):
    m = monitor()
    assert m.tick() == []  # no files yet
    append(logs / "query.log", rec("一") + rec("搜索", node="FirstSearchNode", key="search_query") + rec("二"))
    views = m.tick()
    assert [(v.content, v.source, v.type, v.sender) for v in views] == [
        ("一", "QUERY", "agent", "BettaFish Query Engine"), ("二", "QUERY", "agent", "BettaFish Query Engine")]
    line = rec("三\n换行", paragraph=2, engine="media")
    append(logs / "media.log", line[:37])
    assert m.tick() == []
    append(logs / "media.log", line[37:-1])  # still no newline
    assert m.tick() == []
    append(logs / "media.log", b"\n")
    [v] = m.tick()
    assert (v.content, v.source, v.paragraph) == ("三\n换行", "MEDIA", 2)
    assert m.tick() == []
    assert contents(db) == ["一", "二", "三\n换行"]
    forum_lines = (logs / "out" / "forum.log").read_text(encoding="utf-8").splitlines()
    assert [l[11:] for l in forum_lines] == ["[QUERY] 一", "[QUERY] 二", "[MEDIA] 三\\n换行"]


def test_rotation_reads_the_new_file_from_its_start(db, monitor, logs):
    m = monitor()
    append(logs / "insight.log", rec("旧文件一") + rec("旧文件二"))
    assert len(m.tick()) == 2
    os.rename(logs / "insight.log", logs / "insight.log.1")
    append(logs / "insight.log", rec("新文件"))
    assert [v.content for v in m.tick()] == ["新文件"]
    append(logs / "insight.log", rec("新文件二"))
    assert [v.content for v in m.tick()] == ["新文件二"]
    assert contents(db) == ["旧文件一", "旧文件二", "新文件", "新文件二"]


def test_truncation_reads_the_file_again_from_its_start(db, monitor, logs):
    m = monitor()
    append(logs / "query.log", rec("甲" * 50) + rec("乙" * 50) + rec("丙" * 50))
    assert len(m.tick()) == 3
    with open(logs / "query.log", "wb") as fh:
        fh.write(rec("截断后"))
    assert [v.content for v in m.tick()] == ["截断后"]
    assert m.tick() == []


def test_a_file_appended_while_being_read_loses_and_duplicates_nothing(db, monitor, logs):
    m = monitor()
    expected = [f"消息{i}：" + "内容" * (i % 7) for i in range(300)]
    data = b"".join(rec(c, paragraph=i % 5) for i, c in enumerate(expected))
    rng = random.Random(3)

    def writer():
        i = 0
        with open(logs / "query.log", "ab", buffering=0) as fh:
            while i < len(data):
                n = rng.randint(1, 700)  # splits lines and UTF-8 characters anywhere
                fh.write(data[i:i + n])
                i += n
                time.sleep(rng.random() * 0.002)

    t = threading.Thread(target=writer)
    t.start()
    got = []
    while t.is_alive():
        got += [v.content for v in m.tick()]
    t.join()
    got += [v.content for v in m.tick()]
    assert got == expected
    assert contents(db) == expected


def test_cost_per_tick_is_the_new_bytes_not_the_file_size(db, monitor, logs, monkeypatch):
    path = logs / "insight.log"
    filler = rec("很早以前的运行" * 10)
    with open(path, "wb") as fh:
        fh.write(filler * (20 * 2**20 // len(filler) + 1))
    size = path.stat().st_size
    assert size > 20 * 2**20
    m = monitor()
    m.seek_end()
    new = rec("新的一条") + rec("新的两条", paragraph=1)
    append(path, new)

    read_bytes = []
    real_open = open

    class Counting:
        def __init__(self, fh):
            self.fh = fh

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.fh.close()

        def seek(self, *a):
            return self.fh.seek(*a)

        def read(self, *a):
            chunk = self.fh.read(*a)
            read_bytes.append(len(chunk))
            return chunk

    monkeypatch.setattr(core.infra.logtail, "open", lambda *a, **k: Counting(real_open(*a, **k)), raising=False)
    views = m.tick()
    assert [v.content for v in views] == ["新的一条", "新的两条"]
    assert sum(read_bytes) == len(new)  # not one byte of the 20 MB before
    assert m.tails["INSIGHT"].offset == size + len(new)


# -- rounds and duplicates ---------------------------------------------------------------------

def test_bettafish_messages_count_towards_the_hosts_rounds(db, monitor, logs):
    jobs = Jobs()
    m = monitor(host_every=3, jobs=jobs)
    append(logs / "query.log", b"".join(rec(f"q{i}") for i in range(4)))
    append(logs / "media.log", b"".join(rec(f"m{i}") for i in range(3)))
    assert len(m.tick()) == 7
    assert [(s.kind, s.name, s.params["round"]) for s in jobs.added] == [(HOST_KIND, "host-1", 1),
                                                                        (HOST_KIND, "host-2", 2)]
    assert [v.round for v in transcript(db, RUN)] == [1, 1, 1, 2, 2, 2, 3]


SUMMARY = ("比亚迪宣布全系车型降价，最高优惠两万元。老车主集体维权，要求厂家给予补偿，认为降价太突然，"
           "保值率受到严重打击；业内人士认为价格战会继续蔓延到更多品牌。")


def test_duplicates_are_skipped_and_counted(db, events, monitor, logs):
    m = monitor(host_every=3)
    append(logs / "query.log", rec(SUMMARY + "[1][2]"))
    append(logs / "media.log", rec(SUMMARY.replace("两万元", "两万块") + "[5]")  # another engine's copy
           + rec("抖音上的试驾视频播放量很高。"))
    append(logs / "query.log", rec(SUMMARY + " [1] [2]", paragraph=1)  # the same engine, the same text again
           + rec(SUMMARY.replace("两万元", "两万块"), paragraph=1))     # its own revision: posted
    views = m.tick()
    assert [(v.source, v.content[:6]) for v in views] == [("QUERY", "比亚迪宣布全"), ("QUERY", "比亚迪宣布全"),
                                                          ("MEDIA", "抖音上的试驾")]
    assert m.posted == {"INSIGHT": 0, "MEDIA": 1, "QUERY": 2} and m.agent_messages == 3
    assert m.skipped == {"INSIGHT": 0, "MEDIA": 1, "QUERY": 1}
    assert sum("] [MEDIA] " in line for line in (logs / "out" / "forum.log").read_text(encoding="utf-8").splitlines()) == 1
    skipped, _ = events.since(0, run_id=RUN, types=["forum.duplicate_skipped"])
    assert sorted(e.payload["source"] for e in skipped) == ["MEDIA", "QUERY"]
    b = monitor(host_every=3)
    b.restore(json.loads(json.dumps(m.state())))
    assert b.skipped == m.skipped and b.posted == m.posted


# -- resume ------------------------------------------------------------------------------------

def test_resume_from_state_neither_loses_nor_duplicates(db, monitor, logs):
    a = monitor(host_every=50)
    append(logs / "query.log", rec("1") + rec("2"))
    append(logs / "insight.log", rec("i1"))
    assert len(a.tick()) == 3
    half = rec("4")
    append(logs / "query.log", rec("3") + half[:20])  # a partial line at checkpoint time
    assert len(a.tick()) == 1
    state = json.loads(json.dumps(a.state()))  # as stored in the job's checkpoint
    # after the checkpoint: more records are posted, then the process dies before checkpointing again
    append(logs / "query.log", half[20:] + rec("5"))
    append(logs / "insight.log", rec("i2"))
    assert [v.content for v in a.tick()] == ["4", "5", "i2"]
    append(logs / "query.log", rec("6"))
    append(logs / "media.log", rec("m1"))
    b = monitor(host_every=50)
    b.restore(state)
    assert sorted(v.content for v in b.tick()) == ["6", "m1"]  # 4, 5 and i2 again: refused as repeats
    assert sorted(contents(db)) == sorted(["1", "2", "i1", "3", "4", "5", "i2", "6", "m1"])
    assert sum(b.skipped.values()) == 3


# -- the job -------------------------------------------------------------------------------------

def test_the_tail_is_off_by_default_and_one_job_when_set(tmp_path):
    assert [j.kind for j in analysis_jobs(("query", "media"))] == ["coverage", "query", "media"]
    assert load_settings()["FORUM_BETTAFISH_LOG_DIR"] == ""
    specs = analysis_jobs(("query",), str(tmp_path))
    assert [(j.kind, j.depends_on) for j in specs][-1] == (TAIL_KIND, ("coverage",))
    assert specs[-1].params == {"folder": str(tmp_path)}


def _bettafish_writing(folder, lines: list[tuple[str, bytes]]):
    """An engine job that stands for BettaFish writing its logs while the run's engines work."""
    def handler(ctx):
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:  # until the tail follows the folder (it starts at the files' ends)
            with ctx.db.session() as s:
                job = s.get(Job, f"{ctx.run_id}-bettafish")
                if job.status == "running" and job.checkpoint.get("tail"):
                    break
            ctx.sleep(0.05)
        for name, line in lines:
            append(folder / name, line)
        return {"engine": "query"}
    return handler


def test_tail_job_end_to_end_through_a_supervisor(db, events, make_supervisor, job_handlers, monkeypatch, logs):
    monkeypatch.setenv("FORUM_HOST_EVERY", "2")
    settings = load_settings()
    append(logs / "query.log", rec("上一次运行的记录"))  # history: for the import, not the live tail
    monkeypatch.setitem(job_handlers, "query", HandlerInfo("query", _bettafish_writing(logs, [
        ("query.log", rec("查询一") + rec("查询二", paragraph=1)),
        ("insight.log", rec("洞察一\n两行")),
        ("query.log", rec("查询一（反思后）", node="ReflectionSummaryNode", key="updated_paragraph_latest_state")),
    ])))
    sup = make_supervisor()
    sup.settings = settings
    run_id = sup.submit_run([JobSpec("query"), tail_job(str(logs))], topic="价格战", params={"offline": True})
    assert sup.wait_run(run_id, 60) == COMPLETED
    jobs = {j.name: j for j in jobs_of(db, run_id)}
    assert jobs["bettafish"].result == {"agent_messages": 4, "skipped": 0, "folder": str(logs)}
    msgs = transcript(db, run_id)
    agents = [(v.source, v.sender, v.content) for v in msgs if v.type == "agent"]
    assert sorted(agents) == sorted([("QUERY", "BettaFish Query Engine", "查询一"),
                                     ("QUERY", "BettaFish Query Engine", "查询二"),
                                     ("QUERY", "BettaFish Query Engine", "查询一（反思后）"),
                                     ("INSIGHT", "BettaFish Insight Engine", "洞察一\n两行")])
    assert [(v.source, v.round) for v in msgs if v.type == "host"] == [("HOST", 1), ("HOST", 2)]
    assert {j.name for j in jobs.values() if j.kind == HOST_KIND} == {"host-1", "host-2"}
    forum_log = (settings.log_dir / "forum.log").read_text(encoding="utf-8")
    assert forum_log.count("] [QUERY] ") == 3 and "] [INSIGHT] 洞察一\\n两行" in forum_log
    assert "上一次运行的记录" not in forum_log


def test_tail_job_stops_on_cancel(db, events, make_supervisor, job_handlers, monkeypatch, logs):
    def endless(ctx):
        while True:
            ctx.sleep(0.05)

    monkeypatch.setitem(job_handlers, "media", HandlerInfo("media", endless))
    sup = make_supervisor()
    sup.settings = load_settings()
    run_id = sup.submit_run([JobSpec("media"), tail_job(str(logs))], topic="x")

    def tail_status():
        with db.session() as s:
            return s.get(Job, f"{run_id}-bettafish").status

    wait_for(lambda: tail_status() == "running", what="the tail job runs")
    assert sup.cancel_run(run_id, timeout=5) == "cancelled"
    assert tail_status() == "cancelled"
    with db.session() as s:
        assert s.get(Run, run_id).status == "cancelled"
