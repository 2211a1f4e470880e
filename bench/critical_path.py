"""A whole LLM-mode analysis (3 engines, forum host, report) against its critical path of LLM calls.

Goal (issue 11): wall time ≤ 1.15 × the critical path.

Set-up, in a temporary folder (isolate()): the demo corpus (`--posts`, for Insight's corpus
search), the runtime as the app builds it (core.runtime.build_runtime: supervisor, budgets,
warm-up), every LLM role pointed at one fake OpenAI-compatible server (tests/fakes/openai_server.py:
each call waits `--latency` s before its first token, then streams 32-character chunks), Query's
Tavily and Media's Bocha at the fake search servers (tests/fakes/search_servers.py), each search
answered after `--search-latency` s. The fakes run in a child process of their own
(bench/_endpoints.py), as a real endpoint never shares Shoal's interpreter. Answers are BettaFish-sized: 1,000-character first
summaries, 1,300-character reflection summaries, and every answer is different text so the
forum's de-duplication keeps them (45 agent posts at P=5, R=2, so 9 host rounds at
FORUM_HOST_EVERY=5). Then `--repeats` analyses (P=5, R=2) through core.analysis.start_analysis,
one at a time, after the text warm-up has finished (as in the app, where it runs at start); the
first `--warmup-runs` (1) are reported apart and left out of the medians (first use of the SDK's
modules and the scorer in this process).

Wall time: start_analysis → Supervisor.wait_run returns (the run completed).

The critical path is computed from what the run stored, the llm_calls rows, never from a model
of the pipeline:

- Each call's interval: ended = the row's `ts` (written when the call returned), started =
  ended − `latency_ms`; its weight is its own duration without budget waits, `latency_ms −
  queued_ms` (queued_ms: time waiting for a slot of the endpoint's budget, core.llm.limits).
- Dependencies (an edge a → b: b cannot start before a ended):
  * an engine job's calls in the job's own trace (the report structure, after the keyword
    optimiser's calls for Insight's overview search; then the formatting) and
    in each paragraph's trace (every paragraph runs in a child trace of the job's,
    core.research.engine): structure → each paragraph's calls in their order (first search plan,
    first summary, R × (reflection, reflection summary), Insight's keyword-optimiser calls) →
    formatting, which follows every paragraph;
  * a host speech (role FORUM_HOST, found through its forum message's llm_call_id and round)
    follows the previous round's speech and the calls that wrote its round's agent posts
    (forum_messages.round, .llm_call_id);
  * the report's calls (REPORT_ENGINE, the report job): type → outline → each section; the type
    follows every engine's last call, each section the outline and every host speech (the type and
    outline do not read the forum; core.report writes them while the host finishes).
- Critical path = the longest path through that graph, summing the weights (earliest finish of
  every call, in order of start). Searches, checkpoints, forum posts and scheduling are not on
  it: they are what the ratio wall / critical path measures, with the budget waits.

Also reported: calls in flight (max and mean over the wall, from the rows' service intervals, and
the fake server's own max), calls per role, and, along the chain that actually ended last, the
gaps between a call and the one it waited for (where the time beyond the critical path went).

    python bench/critical_path.py [--repeats 3] [--latency 0.2] [--search-latency 0.05] [--write]
"""
from __future__ import annotations

import json
import os
import random
import sys
import time
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _endpoints import ChildEndpoints  # noqa: E402
from _common import Machine, command_md, isolate, median, parser, table, write_section  # noqa: E402

TOPIC = "新能源汽车价格战"
GOAL = 1.15
SUMMARY_CHARS, REFLECTION_CHARS, CHUNK_CHARS = 1000, 1300, 32  # BettaFish-sized answers, streamed
SPEECH_CHARS, SECTION_CHARS = 600, 1000

# Earlier measurements with this script (same settings, 3 runs after 1 warm-up, medians), kept in the
# section so a figure is read against what it replaced. The dependency rules are the current ones for
# every row (before b1a6487 the report's type and outline also waited for the host: its true critical
# path was a little longer than the one computed here, so its ratio is slightly overstated).
HISTORY = [
    ("2026-12-03 21:50 UTC", "a0a698d", "before issue 11's critical-path work", 9.03, 4.05, 2.11, "3.50 5.53 8.04"),
    ("2026-12-03 21:51 UTC", "ee82fcf", "forum posts off the paragraph chains; report type and outline while the "
     "host finishes; shared HTTP pools (LLM, web search); datasketch warmed", 7.47, 4.14, 1.81, "6.15 5.91 8.01"),
    ("2026-12-03 22:00 UTC", "a0a698d", "before, again, on a quieter machine", 7.19, 3.85, 1.85, "2.38 4.17 6.40"),
    ("2026-12-03 21:59 UTC", "d3b7478", "after (as 21:51), on the same quieter machine", 5.81, 3.90, 1.49,
     "2.59 4.38 6.54"),
    ("2026-12-03 22:36 UTC", "e519c40", "before this round (h-crit2), measured just before the row below, same load",
     6.93, 4.11, 1.70, "4.39 3.72 3.59"),
    ("2026-12-03 22:37 UTC", "7e1b29d", "after the h-crit2 round (this section's headline until 2026-12-04)",
     6.24, 4.21, 1.50, "3.45 3.58 3.55"),
    ("2026-12-04 14:21 UTC", "3effad3", "before this round (h-crit), measured just before the section's headline, "
     "load of three other helpers' work", 8.45, 4.61, 1.65, "2.42 6.10 6.31"),
    ("2026-12-04 14:42 UTC", "0eb29c6", "after the h-crit round (this section's headline until the next row)",
     5.83, 3.95, 1.47, "0.11 0.87 2.36"),
    ("2026-12-04 17:46 UTC", "bdda9ff", "after h-engine (a kept thread per bounded call, the llm_calls row as one "
     "INSERT, checkpoints and forum posts written 0.05 s behind) and h-cold, quiet machine", 4.15, 3.40, 1.21,
     "0.79 2.94 3.78"),
    ("2026-12-04 19:58 UTC", "7e9da88", "the same code, the last run with the fakes in the bench's own process (3 runs)",
     4.29, 3.37, 1.27, "2.19 2.39 1.61"),
    ("2026-12-04 20:27 UTC", "d7edfaa", "the fakes in a child process; the machine in its slow hours (3.1-3.6 s of CPU "
     "per analysis); 5 runs, the section's headline until the next row", 4.51, 3.42, 1.32, "0.72 1.00 1.06"),
    ("2026-12-04 22:50 UTC", "d8ba2e7", "almost the same code (a run's end no longer races a job added to it) in the "
     "machine's fast hours (1.9-2.1 s of CPU per analysis); 5 runs", 3.72, 3.16, 1.16, "0.32 0.48 0.62"),
    ("2026-12-04 23:06 UTC", "ada538a", "the host speaks for the rounds already waiting for it; 5 runs, the section's "
     "headline until the next row", 3.83, 3.23, 1.17, "0.58 0.77 0.71"),
]

# What the gaps showed at the last measurement (read with the table of gaps above).
REMAINING = """**2026-12-05: seven small cuts on the critical path and in the CPU beside it**, each in its own commit:
the coverage check counts the corpus while its web searches are in flight (3 ms); a search's thread alias and
FTS table are made once, not per search (about 0.5 ms of each of 16-48 searches); engines post to the forum
without reading the message's metering back (0.7 ms of CPU per post, 45 posts); the report assigns findings to
sections while its outline call is in flight (8 ms), saves sections that end together in one checkpoint write
and one progress update (three writes each before), and splits sentences with one regular expression (2.8 → 1.2 ms);
and the alert tick on the monitor thread takes percentiles with numpy instead of importing pandas (0.3 s holding
the interpreter, 5 s after start: the first analysis of a fresh process). Measured against the code before them
(`1f5a68a`, in a git worktree) in alternating runs of this script, 5 runs each, medians: 1.145 / 1.161 / 1.172
before against 1.134 / 1.137 / 1.158 after the first four; with all seven, 1.160 / 1.191 / 1.159 before against
1.149 / 1.143 / 1.144 after (02:09-02:12 UTC, load 0.3-1.6).

Where the rest goes (measured 2026-12-04 on a quiet 2-core machine, load 0.2-1.6). **This machine's
speed changes over hours, and every figure with it**: the same code ran at a ratio of 1.32 with 3.1-3.6 s of CPU per
analysis at 20:27 (slow hours) and at 1.12-1.24 with 1.5-2.4 s at 22:50-23:10 (fast hours); within one run of 5, two
runs differ by up to 0.1 in the ratio.

- **The CPU and the interpreter, shared by every thread.** In the slow hours an analysis used 3.1-3.6 s of CPU in
  4.3-4.8 s of wall in Shoal's process (`time.process_time`, printed per run; the fakes' own process 0.25 s), and
  about 1.9 s of it held the GIL (py-spy `--gil`, 4 runs): the corpus searches 0.31 s, the LLM calls'
  request and stream handling 0.29 s, the forum posts (de-duplication, redaction) 0.28 s, the engines'
  own node work 0.21 s, the report job 0.15 s, the writers behind the engines 0.09 s. A step that waits
  on the database or the network hands the GIL over and waits its turn to get it back: a corpus search
  of 6-8 ms alone took 26-89 ms beside one busy thread and 218-228 ms beside three (in the fast hours, within
  an analysis: median 19 ms, 90th percentile 52 ms, 48 searches per analysis).
- **The host's chain** (nine speeches in a row) ended last in about half the runs in the slow hours: while the
  engines ran, a round's speech started 0.33-0.57 s after the summary that completed the round and 0.14-0.38 s
  after the previous speech. Since 2026-12-04 23:00 a host job that has spoken also speaks for the next rounds
  whose jobs already wait for it (core/discussion/host_job.py), so consecutive speeches no longer pay a job's
  end, claim and start each. In one process, alternating runs (5 each, fast hours): the host chain's gaps summed
  0.42 s against 0.53 s without, it ended after the report's outline in 0 runs against 1, and the ratio's median
  did not move (1.161 both): in the fast hours the host chain rarely ends last.
- **The report's own path** (fast hours, 4 runs, timestamps inside the report job): the engines' last formatting
  call → the report's type call 63-79 ms (the job's end and the report job's claim 15-20 ms, the engines' results
  read 8-16 ms, the material built 30-42 ms: near-duplicate clustering of the findings and keyword tagging with
  jieba's part-of-speech tagger); the outline → the first section 16-31 ms (the host's last job ending); the last
  section → the run completed 62-78 ms (the claims checked, the provenance, the HTML rendered, three files written
  and synced, the job's end, the run's status).
- **Insight's chain** holds three searches per paragraph (the keyword optimiser's phrasings searched at
  once): the gap from the optimiser's answer to the summary is usually 0.07-0.2 s, in some slow-hour runs 0.5-1.2 s.
- **The start** (submit → first call, 0.09-0.25 s: the coverage check with its web searches at 0.05 s,
  the engines' claims).
- Tried and not adopted, each measured by interleaved runs: an in-process lock queuing this process's
  SQLite writers instead of SQLite's busy-handler sleeps (3 pairs on a quiet machine: ratios 1.22 / 1.20
  / 1.22 with it, 1.22 / 1.16 / 1.22 without); a shorter GIL switch interval, `sys.setswitchinterval(0.001)`
  (5 pairs under load: 1.42 / 1.41 / 1.37 / 1.28 against 1.34 / 1.25 / 1.32 / 1.52 / 1.17 at the default
  0.005 s: not better); reading a search's candidate rows from SQLite in one step (one JSON-aggregated
  row instead of one GIL hand-off per row: a search beside one busy loop 460 → 55 ms, but in the
  analysis 1.302 / 1.327 against 1.249 / 1.284 without, 5 runs each, interleaved: reverted).
- Since 2026-12-04 20:20 the fakes run in a child process (bench/_endpoints.py); before, their streaming
  took turns on Shoal's interpreter lock. On this 2-core machine the ratio did not change with it: 5 runs
  each, interleaved, in-process 1.309 / 1.288 against a child process 1.288 / 1.349 (the calls themselves
  were shorter, critical paths 3.3-3.5 s against 3.4-3.8 s, and so was the wall).
- Budget waits are nil (`queued_ms` ≈ 0).
"""


# -- the fakes ------------------------------------------------------------------------------------

def _text(rng: random.Random, chars: int) -> str:
    """`chars` characters of distinct Chinese-looking text with citations: no two answers alike."""
    out, n = [], 0
    while n < chars:
        piece = "".join(chr(0x4E00 + rng.randrange(6000)) for _ in range(rng.randint(12, 30)))
        piece += f" [{rng.randint(1, 6)}]。"
        out.append(piece)
        n += len(piece)
    return "".join(out)[:chars]


def make_responder(paragraphs: int):
    def responder(req):
        user, rng = req.user, random.Random(req.n * 7919)
        if "请写出本轮主持人发言" in user or "Write this round's host speech" in user:
            return _text(rng, SPEECH_CHARS)
        if '"report_type"' in user:
            return {"report_type": "crisis_response", "reason": "降价引发的舆情"}
        if '"sections"' in user and "outline" in req.system:
            return {"title": "新能源汽车价格战：舆情观察", "sections": []}
        if "Section to write:" in user:
            return _text(rng, SECTION_CHARS)
        if '"keywords"' in user:
            return {"keywords": ["电车降价", "买车后悔"]}
        if '"paragraphs"' in user:
            return {"paragraphs": [{"title": f"第{i + 1}段：价格战的一个侧面", "content": "覆盖降价与消费者反应"}
                                   for i in range(paragraphs)]}
        if '"paragraph_latest_state"' in user:
            return {"paragraph_latest_state": _text(rng, SUMMARY_CHARS)}
        if '"updated_paragraph_latest_state"' in user:
            return {"updated_paragraph_latest_state": _text(rng, REFLECTION_CHARS)}
        if "still missing" in user:
            return {"search_query": "二手车 保值率", "search_tool": "basic_search_news", "reasoning": "缺少二手车",
                    "done": False}
        if '"search_query"' in user:
            return {"search_query": "新能源汽车 降价", "search_tool": "basic_search_news", "reasoning": "先看新闻"}
        if '"overview"' in user:
            return {"title": "新能源汽车价格战观察", "overview": "价格战持续。"}
        return "{}"
    return responder


def slow_search_servers(delay: float):
    """The fake Tavily and Bocha, each answer after `delay` seconds."""
    from tests.fakes.search_servers import FakeBochaServer, FakeTavilyServer

    class SlowTavily(FakeTavilyServer):
        def _respond(self, request):
            time.sleep(delay)
            return super()._respond(request)

    class SlowBocha(FakeBochaServer):
        def _respond(self, request):
            time.sleep(delay)
            return super()._respond(request)

    return SlowTavily(), SlowBocha()


def fake_endpoints(paragraphs: int, latency: float, search_latency: float) -> dict:
    """The fakes, built in their own process (bench/_endpoints.py)."""
    from tests.fakes.openai_server import FakeOpenAI

    tavily, bocha = slow_search_servers(search_latency)
    return {"llm": FakeOpenAI(responder=make_responder(paragraphs), latency=latency, chunk_chars=CHUNK_CHARS),
            "tavily": tavily, "bocha": bocha}


# -- the critical path ------------------------------------------------------------------------------

def _epoch(dt: datetime) -> float:
    return (dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)).timestamp()


class Call:
    __slots__ = ("id", "role", "node", "job", "trace", "start", "end", "weight", "queued", "deps", "ef")

    def __init__(self, row):
        self.id, self.role, self.node, self.job, self.trace = row.id, row.role, row.node, row.job_id, row.trace_id
        self.end = _epoch(row.ts)
        self.start = self.end - row.latency_ms / 1000
        self.queued = (getattr(row, "queued_ms", None) or 0.0) / 1000  # None before llm_calls.queued_ms
        self.weight = max(0.0, row.latency_ms / 1000 - self.queued)
        self.deps: list[Call] = []
        self.ef = 0.0


def call_graph(db, run_id: str) -> list[Call]:
    """The run's llm_calls rows with their dependencies (see the module docstring)."""
    from sqlalchemy import select

    from core.infra.models import ForumMessage, Job, LlmCall

    with db.session() as s:
        calls = [Call(r) for r in s.scalars(select(LlmCall).where(LlmCall.run_id == run_id).order_by(LlmCall.id))]
        jobs = {j.id: j for j in s.scalars(select(Job).where(Job.run_id == run_id))}
        msgs = list(s.execute(select(ForumMessage.type, ForumMessage.round, ForumMessage.llm_call_id)
                              .where(ForumMessage.run_id == run_id)))
    calls.sort(key=lambda c: c.start)
    by_id = {c.id: c for c in calls}
    engine_kinds = ("query", "media", "insight")
    engine_last: list[Call] = []
    for job_id, job in jobs.items():
        if job.kind not in engine_kinds:
            continue
        mine = [c for c in calls if c.job == job_id]
        own = [c for c in mine if c.trace == job.trace_id]
        # in the job's own trace: the overview search's keyword-optimiser calls and the structure
        # (with its re-asks), then, after the paragraphs, the formatting
        planned = max((c.start for c in own if c.node == "ReportStructureNode"), default=float("-inf"))
        structure = [c for c in own if c.start <= planned]
        tail = [c for c in own if c.start > planned]
        groups: dict[str, list[Call]] = {}
        for c in mine:
            if c.trace != job.trace_id:
                groups.setdefault(c.trace, []).append(c)
        for a, b in zip(structure, structure[1:]):
            b.deps.append(a)
        lasts = []
        for chain in groups.values():
            prev = structure[-1:]
            for c in chain:
                c.deps += prev
                prev = [c]
            lasts += prev
        prev = lasts or structure[-1:]
        for c in tail:
            c.deps += prev
            prev = [c]
        engine_last += prev
    host_by_round: dict[int, Call] = {}
    writers_by_round: dict[int, list[Call]] = {}
    for kind, rnd, call_id in msgs:
        if rnd is None or call_id not in by_id:
            continue
        if kind == "host":
            host_by_round[rnd] = by_id[call_id]
        elif kind == "agent":
            writers_by_round.setdefault(rnd, []).append(by_id[call_id])
    for rnd, host in host_by_round.items():
        host.deps += writers_by_round.get(rnd, []) + ([host_by_round[rnd - 1]] if rnd - 1 in host_by_round else [])
    report_jobs = {j for j, job in jobs.items() if job.kind == "report"}
    report = [c for c in calls if c.job in report_jobs]
    before = list(engine_last)
    order = {"ReportTypeNode": 0, "ReportOutlineNode": 1}
    for c in (c for c in report if c.node in order):
        c.deps += before
        before = [c]
    for c in report:
        if c.node not in order:  # the sections quote the forum: after the last speech too
            c.deps += before + list(host_by_round.values())
    return calls


def critical_path(calls: list[Call]) -> tuple[float, list[Call]]:
    """(length in seconds, the calls on it) of the longest weighted path."""
    done: set[int] = set()

    def ef(c: Call) -> float:  # calls are few (≈ 120): plain recursion with memo
        if c.id not in done:
            c.ef = c.weight + max((ef(d) for d in c.deps), default=0.0)
            done.add(c.id)
        return c.ef

    if not calls:
        return 0.0, []
    last = max(calls, key=ef)
    path = [last]
    while path[-1].deps:
        path.append(max(path[-1].deps, key=lambda d: d.ef))
    return last.ef, path[::-1]


def actual_gaps(calls: list[Call], t_submit: float, t_done: float) -> list[tuple[str, float]]:
    """Walking back from the call that ended last, each step to the dependency that ended last: the
    time between that dependency's end (or the submit) and the call's start, where it went."""
    if not calls:
        return []
    c = max(calls, key=lambda x: x.end)
    out = [(f"{c.role}/{c.node} end → run completed", t_done - c.end)]
    while True:
        if c.queued > 0.005:
            out.append((f"{c.role}/{c.node}: waiting for a budget slot", c.queued))
        if not c.deps:
            out.append((f"submit → first call ({c.role}/{c.node})", c.start - t_submit))
            break
        d = max(c.deps, key=lambda x: x.end)
        out.append((f"{d.role}/{d.node} → {c.role}/{c.node}", c.start - d.end))
        c = d
    return out[::-1]


def in_flight(calls: list[Call], wall: float) -> tuple[int, float]:
    points = sorted([(c.start + c.queued, 1) for c in calls] + [(c.end, -1) for c in calls])
    best = cur = 0
    for _, d in points:
        cur += d
        best = max(best, cur)
    return best, sum(c.weight for c in calls) / wall if wall > 0 else 0.0


# -- one run ------------------------------------------------------------------------------------------

def run_once(rt, settings, fake, *, paragraphs: int, reflections: int) -> dict:
    from core.analysis import start_analysis

    fake.reset()
    fake_cpu0, cpu0 = fake.cpu_seconds(), time.process_time()
    t_submit = time.time()
    t0 = time.monotonic()
    run_id = start_analysis(rt.supervisor, settings, TOPIC, paragraphs=paragraphs, reflections=reflections)
    status = rt.supervisor.wait_run(run_id, 600)
    wall = time.monotonic() - t0
    cpu, fake_cpu = time.process_time() - cpu0, fake.cpu_seconds() - fake_cpu0
    t_done = t_submit + wall
    if status != "completed":
        raise SystemExit(f"run {run_id} ended {status}")
    calls = call_graph(rt.db, run_id)
    cp, path = critical_path(calls)
    max_fly, mean_fly = in_flight(calls, wall)
    roles = Counter(c.role for c in calls)
    nodes = Counter(f"{c.role}/{c.node}" for c in calls)
    gaps = actual_gaps(calls, t_submit, t_done)
    return {"run_id": run_id, "wall": wall, "cp": cp, "ratio": wall / cp if cp else float("inf"),
            "calls": len(calls), "roles": dict(roles), "nodes": dict(nodes), "max_in_flight": max_fly,
            "mean_in_flight": mean_fly, "fake_max": fake.max_concurrency(), "fake_calls": len(fake.requests()),
            "queued_s": sum(c.queued for c in calls), "cpu_s": cpu, "fake_cpu_s": fake_cpu,
            "path": [f"{c.role}/{c.node} {c.weight:.2f}s" for c in path], "gaps": gaps}


def main() -> int:
    ap = parser(__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--latency", type=float, default=0.2, help="seconds before each LLM reply's first token")
    ap.add_argument("--search-latency", type=float, default=0.05, help="seconds before each web search answers")
    ap.add_argument("--paragraphs", type=int, default=5)
    ap.add_argument("--reflections", type=int, default=2)
    ap.add_argument("--posts", type=int, default=1000, help="demo corpus size (Insight searches it)")
    ap.add_argument("--warmup-runs", type=int, default=1,
                    help="runs first, reported but not in the median (first use of the SDK, the scorer, …)")
    args = ap.parse_args()
    tmp = isolate("critpath")
    machine = Machine()
    P, R = args.paragraphs, args.reflections

    from core.corpus.demo import generate_demo_corpus
    from core.infra.config import load_settings
    from core.runtime import build_runtime
    with ChildEndpoints("critical_path", "fake_endpoints", P, args.latency, args.search_latency) as fake:
        env = {**os.environ, **fake.env(), **fake.search_env["tavily"], **fake.search_env["bocha"],
               "SHOAL_MIN_SOURCES": "1"}
        settings = load_settings(env=env)
        t0 = time.perf_counter()
        rt = build_runtime(settings=settings, console_log=False)
        assert rt.ok, rt.problems
        try:
            generate_demo_corpus(rt.db, posts=args.posts)
            setup_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            rt.warmup.hurry().wait(120)
            warm_s = time.perf_counter() - t0
            print(f"runtime + demo corpus ({args.posts} posts): {setup_s:.1f} s; text warm-up finished "
                  f"{warm_s:.1f} s later", flush=True)
            results, warmups = [], []
            for i in range(args.warmup_runs + args.repeats):
                r = run_once(rt, settings, fake, paragraphs=P, reflections=R)
                (warmups if i < args.warmup_runs else results).append(r)
                label = f"warm-up run {i + 1}" if i < args.warmup_runs else f"run {i + 1 - args.warmup_runs}"
                print(f"  {label}: wall {r['wall']:.2f} s, critical path {r['cp']:.2f} s, ratio {r['ratio']:.2f}, "
                      f"{r['calls']} calls {r['roles']}, in flight max {r['max_in_flight']} (fake "
                      f"{r['fake_max']}) mean {r['mean_in_flight']:.1f}, budget waits {r['queued_s']:.2f} s, CPU {r['cpu_s']:.2f} s "
                      f"(the fakes' process {r['fake_cpu_s']:.2f} s)",
                      flush=True)
                print("    critical path: " + " → ".join(r["path"]), flush=True)
                print("    actual last chain, gaps: " + "; ".join(f"{k} {v:.2f}s" for k, v in r["gaps"]
                                                                if abs(v) >= 0.02), flush=True)
        finally:
            rt.close()
    machine.end()

    walls, cps, ratios = [r["wall"] for r in results], [r["cp"] for r in results], [r["ratio"] for r in results]
    med = results[sorted(range(len(results)), key=lambda i: ratios[i])[len(results) // 2]]
    line = {"bench": "critical_path", "paragraphs": P, "reflections": R, "latency_s": args.latency,
            "search_latency_s": args.search_latency, "repeats": args.repeats, "warmup_runs": args.warmup_runs,
            "warmup_walls": [round(r["wall"], 3) for r in warmups],
            "wall_s": round(median(walls), 3), "critical_path_s": round(median(cps), 3),
            "ratio": round(median(ratios), 3), "goal_ratio": GOAL, "met": median(ratios) <= GOAL,
            "walls": [round(w, 3) for w in walls], "critical_paths": [round(c, 3) for c in cps],
            "max_in_flight": max(r["max_in_flight"] for r in results),
            "mean_in_flight": round(median(r["mean_in_flight"] for r in results), 2),
            "calls_per_role": med["roles"], "calls": med["calls"], "load_start": machine.load_start,
            "load_end": machine.load_end}
    print(json.dumps(line, ensure_ascii=False))

    if args.write:
        rows = [[f"warm-up {i + 1} (not in the median)", f"{r['wall']:.2f}", f"{r['cp']:.2f}", f"{r['ratio']:.2f}",
                 r["calls"], r["max_in_flight"], f"{r['mean_in_flight']:.1f}", f"{r['queued_s']:.2f}"]
                for i, r in enumerate(warmups)]
        rows += [[i + 1, f"{r['wall']:.2f}", f"{r['cp']:.2f}", f"{r['ratio']:.2f}", r["calls"], r["max_in_flight"],
                 f"{r['mean_in_flight']:.1f}", f"{r['queued_s']:.2f}"] for i, r in enumerate(results)]
        rows.append(["**median**", f"**{median(walls):.2f}**", f"**{median(cps):.2f}**",
                     f"**{median(ratios):.2f}** (goal ≤ {GOAL})", "", "", "", ""])
        role_rows = [[k, v] for k, v in sorted(med["nodes"].items())]
        gaps = [[k, f"{v:.2f}"] for k, v in med["gaps"] if abs(v) >= 0.02]
        history = table(["date", "code", "what", "wall (s)", "critical path (s)", "ratio", "load at start"],
                        [[d, f"`{c}`", w, f"{a:.2f}", f"{b:.2f}", f"{r:.2f}", ld] for d, c, w, a, b, r, ld in HISTORY])
        verdict = "met" if median(ratios) <= GOAL else "not met"
        body = f"""## 10. A whole analysis vs its critical path of LLM calls

**What**: a whole LLM-mode analysis (three engines P={P}, R={R}, the forum host, the report)
through `core.analysis.start_analysis` on the runtime the app builds, every LLM role on one fake
OpenAI-compatible server (each call {args.latency} s before its first token, then
{CHUNK_CHARS}-character chunks; BettaFish-sized answers: {SUMMARY_CHARS}-character summaries,
{REFLECTION_CHARS}-character reflection summaries), Tavily and Bocha faked with answers after
{args.search_latency} s (the fakes in a child process of their own, `bench/_endpoints.py`: a real endpoint never
shares Shoal's interpreter; until 2026-12-04 they ran in the bench's process), Insight on a
{args.posts}-post demo corpus, after the text warm-up and
{args.warmup_runs} warm-up run(s) (shown, not in the median).
Wall = submit → run completed. The critical path is the longest chain of LLM calls through their
dependencies, computed from the run's `llm_calls` rows (interval from `ts` and `latency_ms`,
weight without the budget wait `queued_ms`): per engine structure → each paragraph's calls in its
own trace → formatting; each host speech after its round's posts and the previous speech; the
report's type → outline after every engine, its sections after the outline and every speech. How it is computed is in the
script's docstring.

**Command**: {command_md()}

{machine.markdown()}
**Goal: wall / critical path ≤ {GOAL}. Measured: {median(ratios):.2f} (median of {args.repeats}) — {verdict}.**

{table(["run", "wall (s)", "critical path (s)", "wall / critical path", "LLM calls", "max calls in flight",
        "mean calls in flight", "budget waits, summed (s)"], rows)}
Calls per role and node (median run): {", ".join(f"{k} {v}" for k, v in sorted(med["roles"].items()))}.

{table(["role/node", "calls"], role_rows)}
The critical path of the median run: {" → ".join(med["path"])}.

Where the wall time beyond it went, along the chain of calls that actually ended last (each line:
the time between a call's dependency ending and the call starting; searches, checkpoints, forum
posts, job scheduling):

{table(["step", "s"], gaps)}
Earlier measurements (medians of 3 runs after a warm-up, same script and settings):

{history}
{REMAINING}"""
        write_section("critical_path", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
