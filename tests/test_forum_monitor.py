"""The forum log monitor on real files: growth, partial lines, rotation, truncation, a concurrent
writer, cost per tick, the host's cadence and failures, resume, and the "forum" job end to end."""
from __future__ import annotations

import json
import os
import random
import threading
import time

import pytest
from loguru import logger

import core.discussion.log_monitor as fm
import core.infra.logtail
from core.infra.config import load_settings
from core.research.engine import log_node
from core.forum import transcript
from core.discussion.log_monitor import ForumMonitor, run_forum_job  # noqa: F401 - registers the "forum" kind
from core.work.jobs import COMPLETED, HandlerInfo, JobSpec
from core.infra.logs import setup_logging
from core.infra.models import Job, Run
from core.work.runs import jobs_of

pytestmark = pytest.mark.timeout(120)

RUN = "a1b2c3d4e5f6"


def rec(content: str, *, run_id: str = RUN, paragraph: int = 0, engine: str = "query",
        node: str = "FirstSummaryNode", key: str = "paragraph_latest_state") -> bytes:
    """One engine log line as core.research.engine.log_node writes it."""
    record = {"engine": engine, "run_id": run_id, "paragraph": paragraph, key: content, "title": "t"}
    line = (f"2026-11-22 08:44:12.145 | INFO     | 9c0d2e4f1a2b3c4d | {engine:<7} | core.research.engine:log_node:137 - "
            f"[{node}] 清理后的输出: {json.dumps(record, ensure_ascii=False)}\n")
    return line.encode("utf-8")


def append(path, data: bytes) -> None:
    with open(path, "ab") as fh:
        fh.write(data)


@pytest.fixture
def logs(tmp_path):
    d = tmp_path / "logs"
    d.mkdir(exist_ok=True)
    return d


@pytest.fixture
def monitor(db, events, logs):
    made = []

    def make(**kw) -> ForumMonitor:
        m = ForumMonitor(db, events, RUN, logs, topic="新能源汽车价格战", **kw)
        made.append(m)
        return m

    yield make
    for m in made:
        m.close()


def contents(db, run_id=RUN, type="agent"):
    return [m.content for m in transcript(db, run_id, limit=10_000) if m.type == type]


class FakeHost:
    def __init__(self, delay: float = 0.0, fail: bool = False, gate: threading.Event | None = None):
        self.calls = []
        self.delay, self.fail, self.gate = delay, fail, gate

    def speak(self, topic, messages, previous):
        self.calls.append((topic, [m.content for m in messages], previous))
        if self.gate is not None:
            assert self.gate.wait(30), "the test never released the host"
        if self.delay:
            time.sleep(self.delay)
        if self.fail:
            raise RuntimeError("host LLM unavailable")
        return f"主持人第{len(self.calls)}次发言：请补充数据。\n问题一？"


# -- files ------------------------------------------------------------------------------------

def test_growing_files_and_a_partial_line_completed_later(db, monitor, logs):
    m = monitor()
    assert m.tick() == []  # no files yet
    append(logs / "query.log", rec("一") + rec("其他运行", run_id="ffffffffffff") + rec("二", engine="query"))
    views = m.tick()
    assert [(v.content, v.source, v.type, v.sender) for v in views] == [("一", "QUERY", "agent", "Query Engine"),
                                                                         ("二", "QUERY", "agent", "Query Engine")]
    line = rec("三\n换行", paragraph=2)
    append(logs / "media.log", line[:37])
    assert m.tick() == []
    append(logs / "media.log", line[37:-1])  # still no newline
    assert m.tick() == []
    append(logs / "media.log", b"\n")
    [v] = m.tick()
    assert (v.content, v.source, v.paragraph) == ("三\n换行", "MEDIA", 2)
    assert m.tick() == []
    assert contents(db) == ["一", "二", "三\n换行"]
    forum_lines = (logs / "forum.log").read_text(encoding="utf-8").splitlines()
    assert [l[11:] for l in forum_lines] == ["[QUERY] 一", "[QUERY] 二", "[MEDIA] 三\\n换行"]


def test_rotation_reads_the_new_file_from_its_start(db, monitor, logs):
    m = monitor()
    append(logs / "insight.log", rec("旧文件一", engine="insight") + rec("旧文件二", engine="insight"))
    assert len(m.tick()) == 2
    os.rename(logs / "insight.log", logs / "insight.log.1")
    append(logs / "insight.log", rec("新文件", engine="insight"))
    assert [v.content for v in m.tick()] == ["新文件"]
    append(logs / "insight.log", rec("新文件二", engine="insight"))
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
    filler = rec("很早以前的运行" * 10, run_id="000000000000", engine="insight")
    with open(path, "wb") as fh:
        fh.write(filler * (20 * 2**20 // len(filler) + 1))
    size = path.stat().st_size
    assert size > 20 * 2**20
    m = monitor()
    m.seek_end()
    new = rec("新的一条", engine="insight") + rec("新的两条", engine="insight", paragraph=1)
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
    t0 = time.perf_counter()
    views = m.tick()
    elapsed = time.perf_counter() - t0
    assert [v.content for v in views] == ["新的一条", "新的两条"]
    assert sum(read_bytes) == len(new)  # not one byte of the 20 MB before
    assert m.tails["INSIGHT"].offset == size + len(new)
    assert elapsed < 0.5, elapsed
    print(f"tick on a {size / 2**20:.1f} MiB file, {len(new)} new bytes: {elapsed * 1000:.1f} ms")


# -- the host ------------------------------------------------------------------------------------

def test_host_speaks_after_every_n_agent_messages_with_the_last_n(db, monitor, logs):
    host = FakeHost()
    m = monitor(host=host, host_every=3)
    append(logs / "query.log", b"".join(rec(f"q{i}") for i in range(4)))
    append(logs / "media.log", b"".join(rec(f"m{i}", engine="media") for i in range(3)))
    assert len(m.tick()) == 7
    assert m.drain(5)
    assert len(host.calls) == 2
    assert host.calls[0] == ("新能源汽车价格战", ["q0", "q1", "q2"], None)
    assert host.calls[1] == ("新能源汽车价格战", ["q3", "m0", "m1"], "主持人第1次发言：请补充数据。\n问题一？")
    hosts = [v for v in transcript(db, RUN) if v.type == "host"]
    assert [(v.source, v.sender) for v in hosts] == [("HOST", "Forum Host")] * 2
    assert m.host_messages == 2
    assert sum("[HOST] 主持人第" in l for l in (logs / "forum.log").read_text(encoding="utf-8").splitlines()) == 2
    append(logs / "media.log", rec("m3", engine="media"))  # the 8th: not yet a third speech
    m.tick()
    assert m.drain(5) and len(host.calls) == 2


def test_a_slow_host_never_delays_a_tick(db, monitor, logs):
    # The host is blocked until the test releases it: ticks that return while it is still blocked
    # prove they never wait on it (no wall-clock bound, which a loaded CI machine would break).
    gate = threading.Event()
    host = FakeHost(gate=gate)
    m = monitor(host=host, host_every=3)
    append(logs / "query.log", b"".join(rec(f"q{i}") for i in range(3)))
    assert len(m.tick()) == 3
    append(logs / "query.log", b"".join(rec(f"r{i}") for i in range(3)))
    assert len(m.tick()) == 3  # a second speech is queued behind the first, still blocked
    assert not gate.is_set() and m.host_pending >= 1 and contents(db, type="host") == []
    gate.set()
    assert m.drain(10)
    assert contents(db, type="host") == ["主持人第1次发言：请补充数据。\n问题一？", "主持人第2次发言：请补充数据。\n问题一？"]


def test_a_failing_host_posts_nothing_and_the_monitor_goes_on(db, monitor, logs):
    errors, warnings = [], []
    sink = logger.add(lambda msg: warnings.append(str(msg)), level="WARNING")
    try:
        m = monitor(host=FakeHost(fail=True), host_every=2, on_host_error=errors.append)
        append(logs / "query.log", rec("a") + rec("b") + rec("c"))
        assert len(m.tick()) == 3
        assert m.drain(5)
        append(logs / "query.log", rec("d"))
        assert [v.content for v in m.tick()] == ["d"]
        assert m.drain(5)
    finally:
        logger.remove(sink)
    assert len(errors) == 2 and all(isinstance(e, RuntimeError) for e in errors)
    assert contents(db, type="host") == [] and m.host_messages == 0
    assert contents(db) == ["a", "b", "c", "d"]
    assert any("forum host failed" in w for w in warnings)


# -- duplicates ----------------------------------------------------------------------------------

SUMMARY = ("比亚迪宣布全系车型降价，最高优惠两万元。老车主集体维权，要求厂家给予补偿，认为降价太突然，"
           "保值率受到严重打击；业内人士认为价格战会继续蔓延到更多品牌。")


def test_duplicates_are_skipped_counted_and_not_spoken_about(db, events, monitor, logs):
    host = FakeHost()
    m = monitor(host=host, host_every=3)
    append(logs / "query.log", rec(SUMMARY + "[1][2]"))
    append(logs / "media.log", rec(SUMMARY.replace("两万元", "两万块") + "[5]", engine="media")  # another engine's copy
           + rec("抖音上的试驾视频播放量很高。", engine="media"))
    append(logs / "query.log", rec(SUMMARY + " [1] [2]", paragraph=1)  # the same engine, the same text again
           + rec(SUMMARY.replace("两万元", "两万块"), paragraph=1))     # its own revision: posted
    views = m.tick()
    assert [(v.source, v.content[:6]) for v in views] == [("QUERY", "比亚迪宣布全"), ("QUERY", "比亚迪宣布全"),
                                                          ("MEDIA", "抖音上的试驾")]
    assert m.posted == {"QUERY": 2, "MEDIA": 1, "INSIGHT": 0} and m.agent_messages == 3
    assert m.skipped == {"QUERY": 1, "MEDIA": 1, "INSIGHT": 0}
    assert m.state()["skipped"] == m.skipped
    assert m.drain(5) and len(host.calls) == 1 and len(host.calls[0][1]) == 3  # three posted messages, one speech
    assert sum("] [MEDIA] " in line for line in (logs / "forum.log").read_text(encoding="utf-8").splitlines()) == 1
    skipped, _ = events.since(0, run_id=RUN, types=["forum.duplicate_skipped"])
    assert sorted(e.payload["source"] for e in skipped) == ["MEDIA", "QUERY"]
    b = monitor(host_every=3)
    b.restore(json.loads(json.dumps(m.state())))
    assert b.skipped == m.skipped and b.posted == m.posted


# -- resume ------------------------------------------------------------------------------------

def test_resume_from_state_neither_loses_nor_duplicates(db, monitor, logs):
    a = monitor(host_every=50)
    append(logs / "query.log", rec("1") + rec("2"))
    append(logs / "insight.log", rec("i1", engine="insight"))
    assert len(a.tick()) == 3
    half = rec("4")
    append(logs / "query.log", rec("3") + half[:20])  # a partial line at checkpoint time
    assert len(a.tick()) == 1
    state = json.loads(json.dumps(a.state()))  # as stored in the job's checkpoint
    # after the checkpoint: more records are posted, then the process dies before checkpointing again
    append(logs / "query.log", half[20:] + rec("5"))
    append(logs / "insight.log", rec("i2", engine="insight"))
    assert [v.content for v in a.tick()] == ["4", "5", "i2"]
    a.close()
    append(logs / "query.log", rec("6"))
    append(logs / "media.log", rec("m1", engine="media"))
    b = monitor(host_every=50)
    b.restore(state)
    assert sorted(v.content for v in b.tick()) == ["6", "m1"]
    assert sorted(contents(db)) == sorted(["1", "2", "i1", "3", "4", "5", "i2", "6", "m1"])
    assert b.agent_messages == 9


# -- the job -------------------------------------------------------------------------------------

def _fake_engine(engine: str, summaries: list[tuple[str, str, int, str]]):
    def handler(ctx):
        ctx.sleep(0.3)
        for node, key, paragraph, text in summaries:
            log_node(engine, "SearchNode", {"search_query": text, "results": 2}, run_id=ctx.run_id,
                     paragraph=paragraph)
            log_node(engine, node, {key: text, "title": "t"}, run_id=ctx.run_id, paragraph=paragraph)
            ctx.sleep(0.05)
        return {"engine": engine}
    return handler


def test_forum_job_end_to_end_through_a_supervisor(db, events, make_supervisor, job_handlers, monkeypatch):
    monkeypatch.setenv("FORUM_HOST_EVERY", "2")
    settings = load_settings()
    setup_logging(settings.log_dir, console=False)
    log_node("query", "FirstSummaryNode", {"paragraph_latest_state": "上一次运行的记录"}, run_id="0ld0ld0ld0ld",
             paragraph=0)
    hosts = []

    def fake_make_host(settings_, db_, events_, offline):
        hosts.append(FakeHost())
        hosts[-1].offline = offline
        return hosts[-1]

    monkeypatch.setattr(fm, "_make_host", fake_make_host)
    monkeypatch.setitem(job_handlers, "query", HandlerInfo("query", _fake_engine("query", [
        ("FirstSummaryNode", "paragraph_latest_state", 0, "查询一"),
        ("FirstSummaryNode", "paragraph_latest_state", 1, "查询二"),
        ("ReflectionSummaryNode", "updated_paragraph_latest_state", 0, "查询一（反思后）"),
    ])))
    monkeypatch.setitem(job_handlers, "insight", HandlerInfo("insight", _fake_engine("insight", [
        ("FirstSummaryNode", "paragraph_latest_state", 0, "洞察一\n两行"),
    ])))
    sup = make_supervisor()
    sup.settings = settings
    run_id = sup.submit_run([JobSpec("query"), JobSpec("insight"), JobSpec("forum")], topic="价格战",
                            params={"offline": True})
    assert sup.wait_run(run_id, 60) == COMPLETED
    jobs = {j.name: j for j in jobs_of(db, run_id)}
    assert jobs["forum"].result == {"agent_messages": 4, "host_messages": 2}
    msgs = transcript(db, run_id)
    agents = [(v.source, v.content, v.paragraph) for v in msgs if v.type == "agent"]
    assert sorted(agents) == sorted([("QUERY", "查询一", 0), ("QUERY", "查询二", 1), ("QUERY", "查询一（反思后）", 0),
                                     ("INSIGHT", "洞察一\n两行", 0)])
    assert [v.source for v in msgs if v.type == "host"] == ["HOST", "HOST"]
    assert hosts and hosts[0].offline is True and hosts[0].calls[0][0] == "价格战"
    forum_log = (settings.log_dir / "forum.log").read_text(encoding="utf-8").splitlines()
    assert sum("] [QUERY] " in l for l in forum_log) == 3 and "] [INSIGHT] 洞察一\\n两行" in "\n".join(forum_log)
    assert sum("] [HOST] " in l for l in forum_log) == 2
    assert "上一次运行的记录" not in "\n".join(forum_log)
    assert jobs["forum"].checkpoint["monitor"]["posted"] == {"QUERY": 3, "MEDIA": 0, "INSIGHT": 1}


def test_forum_job_stops_on_cancel(db, events, make_supervisor, job_handlers, monkeypatch):
    settings = load_settings()
    monkeypatch.setattr(fm, "_make_host", lambda *a, **k: None)

    def endless(ctx):
        while True:
            ctx.sleep(0.05)

    monkeypatch.setitem(job_handlers, "media", HandlerInfo("media", endless))
    sup = make_supervisor()
    sup.settings = settings
    run_id = sup.submit_run([JobSpec("media"), JobSpec("forum")], topic="x")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with db.session() as s:
            if s.get(Job, f"{run_id}-forum").status == "running":
                break
        time.sleep(0.05)
    t0 = time.monotonic()
    assert sup.cancel_run(run_id, timeout=5) == "cancelled"
    assert time.monotonic() - t0 < 5
    with db.session() as s:
        assert s.get(Job, f"{run_id}-forum").status == "cancelled"
        assert s.get(Run, run_id).status == "cancelled"
