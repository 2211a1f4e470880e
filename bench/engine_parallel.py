"""The headline: one LLM-mode Query engine run, paragraphs in parallel (Shoal) vs BettaFish's sequential order.

The sequential baseline is Shoal's own engine run in BettaFish's order (one paragraph, one call at a
time): an EMULATION of BettaFish, not BettaFish itself.

Real HTTP on loopback: the fake OpenAI-compatible server (every call waits `--latency` seconds
before its first token) and the fake Tavily server, both from tests/fakes, in a child process
(bench/_endpoints.py). P paragraphs, R
reflections. Three configurations of the same code, run back to back in each repetition:

  sequential   BettaFish's order, emulated: paragraph_concurrency=1, SHOAL_LLM_CONCURRENCY=1
  shoal        as shipped: paragraphs in parallel (default paragraph_concurrency), the LLM budget at its
               default (SHOAL_LLM_CONCURRENCY 18, a slot reserved per role)
  shoal-llm4   as shipped, SHOAL_LLM_CONCURRENCY=4 (the default before per-role budgets)

Answers are BettaFish-sized (1,000-character first summaries, 1,300-character reflection summaries),
streamed in 32-character chunks.

Reports LLM calls (2 + P(2+2R) in every configuration), the engine job's wall time
(job.finished_at - job.started_at), the peak number of calls in flight (from the fake's own
timestamps), the theoretical critical path ((2 + 2 + 2R) calls x latency) and the ratio
sequential / parallel, median over the repetitions.

    python bench/engine_parallel.py [--repeats 3] [--latency 0.2] [--write]
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _endpoints import ChildEndpoints  # noqa: E402
from _common import Machine, command_md, isolate, median, parser, table, write_section  # noqa: E402

GOAL = 4.2  # issue 11: one engine as shipped vs BettaFish's order (emulated), the parallel floor being 4.5×

TOPIC = "新能源汽车价格战"
SUMMARY_CHARS, REFLECTION_CHARS, CHUNK_CHARS = 1000, 1300, 32  # BettaFish-sized answers, streamed


def _sized(sentence: str, chars: int) -> str:
    return (sentence * (chars // len(sentence) + 1))[:chars]


def make_responder(paragraphs: int):
    """Answers each node's prompt with the JSON it asks for (as tests/research/test_engine.py's llm_responder)."""
    def responder(req):
        user = req.user
        if '"paragraphs"' in user:
            return {"paragraphs": [{"title": f"第{i + 1}段：价格战的一个侧面", "content": "覆盖降价与消费者反应"}
                                   for i in range(paragraphs)]}
        if '"paragraph_latest_state"' in user:
            return {"paragraph_latest_state": _sized("多家车企降价，消费者观望 [1]。", SUMMARY_CHARS)}
        if '"updated_paragraph_latest_state"' in user:
            return {"updated_paragraph_latest_state": _sized("多家车企降价 [1]，二手车保值率下跌 [2]。",
                                                             REFLECTION_CHARS)}
        if "still missing" in user:
            return {"search_query": "二手车 保值率", "search_tool": "basic_search_news", "reasoning": "缺少二手车",
                    "done": False}
        if '"search_query"' in user:
            return {"search_query": "新能源汽车 降价", "search_tool": "basic_search_news", "reasoning": "先看新闻"}
        if '"overview"' in user:
            return {"title": "新能源汽车价格战观察", "overview": "价格战持续。"}
        return "{}"
    return responder


CONFIGS = [
    # label, SHOAL_LLM_CONCURRENCY (None: the shipped default), paragraph_concurrency (None: the shipped default)
    ("sequential (BettaFish's order, emulated)", 1, 1),
    ("shoal as shipped (LLM budget 18)", None, None),
    ("shoal, LLM limit 4 (old default)", 4, None),
]


def fake_endpoints(paragraphs: int, latency: float) -> dict:
    """The fakes, built in their own process (bench/_endpoints.py)."""
    from tests.fakes.openai_server import FakeOpenAI
    from tests.fakes.search_servers import FakeTavilyServer

    return {"llm": FakeOpenAI(responder=make_responder(paragraphs), latency=latency, chunk_chars=CHUNK_CHARS),
            "tavily": FakeTavilyServer()}


def run_once(db, events, fake, label, llm_limit, para_limit, *, paragraphs, reflections):
    from core.analysis import analysis_jobs, analysis_params
    from core.infra.config import load_settings
    from core.work.jobs import COMPLETED
    from core.infra.models import LlmCall
    from core.work.runs import jobs_of
    from core.supervisor import Supervisor, SupervisorConfig
    from core.runtime import build_handlers

    fake.reset()
    # The fake Tavily returns a handful of results: below the default coverage threshold, which is
    # not what this bench measures, so the run goes on with what it found.
    env = {**os.environ, **fake.env("QUERY_ENGINE"), **fake.search_env["tavily"], "SHOAL_MIN_SOURCES": "1"}
    if llm_limit is not None:
        env["SHOAL_LLM_CONCURRENCY"] = str(llm_limit)
    settings = load_settings(env=env)
    # The app's supervisor configuration (core.runtime: SupervisorConfig.from_settings): its scheduler
    # looks every 0.25 s and its jobs beat every 5 s; a faster look only adds database reads beside the engine.
    sup = Supervisor(db, events, SupervisorConfig.from_settings(settings), handlers=build_handlers())
    sup.settings = settings
    sup.start()
    try:
        params = analysis_params(settings, ("query",), paragraphs=paragraphs, reflections=reflections)
        if para_limit is not None:
            params["paragraph_concurrency"] = para_limit
        t0 = time.monotonic()
        run_id = sup.submit_run(analysis_jobs(("query",)), kind="analysis", topic=TOPIC, params=params, mode="llm")
        status = sup.wait_run(run_id, 600)  # woken when the run ends (core.work.ledger.ENDINGS)
        run_wall = time.monotonic() - t0
    finally:
        sup.shutdown(10)
    if status != COMPLETED:
        raise SystemExit(f"{label}: run {run_id} ended {status}")
    (job,) = [j for j in jobs_of(db, run_id) if j.kind == "query"]
    if job.result.get("mode") != "llm" or job.result.get("fallbacks"):
        raise SystemExit(f"{label}: the engine did not run on the LLM: {job.result.get('mode')}")
    calls = [(start, end) for start, end in fake.requests() if end is not None]
    with db.session() as s:
        recorded = s.query(LlmCall).filter(LlmCall.run_id == run_id).count()
    span = max(end for _, end in calls) - min(start for start, _ in calls)
    return {
        "label": label,
        "llm_limit": settings["SHOAL_LLM_CONCURRENCY"],
        "para_limit": params.get("paragraph_concurrency") or "unset (shipped default)",
        "calls": len(calls),
        "recorded": recorded,
        "job_wall": (job.finished_at - job.started_at).total_seconds(),
        "run_wall": run_wall,
        "max_conc": fake.max_concurrency(),
        "avg_in_flight": sum(end - start for start, end in calls) / span if span > 0 else 0.0,
        "mean_call": sum(end - start for start, end in calls) / len(calls),
    }


def main() -> int:
    ap = parser(__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--latency", type=float, default=0.2, help="seconds before each LLM reply's first token")
    ap.add_argument("--paragraphs", type=int, default=5)
    ap.add_argument("--reflections", type=int, default=2)
    args = ap.parse_args()
    isolate("engine")
    machine = Machine()

    from core.infra.config import load_settings
    from core.infra.db import open_database
    from core.infra.events import EventLog
    from core.infra.logs import setup_logging
    from core.text.warmup import start_warmup

    base = load_settings()
    setup_logging(base.log_dir, console=False)
    db = open_database(base.database_url)
    assert db.ok, db.error
    events = EventLog(db)
    # As in the app, whose runtime warms the text tooling up when it makes its supervisor
    # (core.runtime.Runtime.new_supervisor) and then freezes the collector: without it the first
    # repetition loads jieba and the models inside its run, and every full collection walks their
    # tables again, a 0.15-0.25 s pause of every thread in the middle of a run.
    if not start_warmup().wait(300):
        raise SystemExit("the text warm-up did not finish")
    P, R, L = args.paragraphs, args.reflections, args.latency
    expected_calls = 2 + P * (2 + 2 * R)
    critical = (2 + 2 + 2 * R) * L
    print(f"P={P} R={R} latency={L}s: expected LLM calls {expected_calls}; sequential lower bound "
          f"{expected_calls * L:.1f}s; critical path (2+2+2R)x L = {critical:.1f}s", flush=True)

    results: dict[str, list[dict]] = {c[0]: [] for c in CONFIGS}
    with ChildEndpoints("engine_parallel", "fake_endpoints", P, L) as fake:
        for rep in range(args.repeats):
            for label, llm_limit, para_limit in CONFIGS:
                r = run_once(db, events, fake, label, llm_limit, para_limit, paragraphs=P, reflections=R)
                results[label].append(r)
                print(f"  rep {rep + 1}: {label:<32} calls {r['calls']:>3}  job wall {r['job_wall']:6.2f}s  "
                      f"run wall {r['run_wall']:6.2f}s  max in flight {r['max_conc']}  avg in flight "
                      f"{r['avg_in_flight']:.2f}  mean call {r['mean_call']:.3f}s", flush=True)
    machine.end()
    db.dispose()

    seq_label = CONFIGS[0][0]
    rows, ratios = [], {}
    for label, *_ in CONFIGS:
        rs = results[label]
        walls = [r["job_wall"] for r in rs]
        per_rep = [s["job_wall"] / r["job_wall"] for s, r in zip(results[seq_label], rs)]
        ratios[label] = median(per_rep)
        rows.append([label, rs[0]["llm_limit"], rs[0]["para_limit"], "/".join(str(r["calls"]) for r in rs),
                     f"{median(walls):.2f}", " / ".join(f"{w:.2f}" for w in walls),
                     max(r["max_conc"] for r in rs), f"{median(r['avg_in_flight'] for r in rs):.2f}",
                     f"{median(walls) / critical:.2f}", f"{ratios[label]:.2f}"])
    headers = ["configuration", "SHOAL_LLM_CONCURRENCY", "paragraph_concurrency", "LLM calls",
               "engine job wall, median (s)", "each repetition (s)", "max calls in flight",
               "avg calls in flight", "wall / critical path", "sequential / this (median of per-rep ratios)"]
    print()
    print(table(headers, rows))
    shipped = CONFIGS[1][0]
    headline = (f"**{ratios[shipped]:.2f}× faster as shipped** (LLM budget 18) than Shoal emulating BettaFish's "
                f"sequential order (not BettaFish itself), and {ratios[CONFIGS[2][0]]:.2f}× with the old "
                f"limit 4: engine job {median(r['job_wall'] for r in results[seq_label]):.2f} s in sequence vs "
                f"{median(r['job_wall'] for r in results[shipped]):.2f} s / "
                f"{median(r['job_wall'] for r in results[CONFIGS[2][0]]):.2f} s in parallel, for the same "
                f"{expected_calls} LLM calls; the critical path is {critical:.1f} s.")
    print(headline)
    goal_line = (f"**Goal (issue 11): ≥ {GOAL}× as shipped. Measured: {ratios[shipped]:.2f}× (median of "
                 f"{args.repeats}) — {'met' if ratios[shipped] >= GOAL else 'not met'}.**")
    print(goal_line)
    ok = all(r["calls"] == expected_calls and r["recorded"] == expected_calls for rs in results.values() for r in rs)
    print(f"every run made exactly {expected_calls} LLM calls (fake and llm_calls table agree): {ok}")

    if args.write:
        seq_wall = median(r['job_wall'] for r in results[seq_label])
        ship_wall = median(r['job_wall'] for r in results[shipped])
        body = f"""## 1. Engine: paragraphs in parallel vs BettaFish's sequence (headline)

**What**: one Query engine run in LLM mode, P={P} paragraphs, R={R} reflections, against the fake
OpenAI-compatible server (`tests/fakes/openai_server.py`, every call waits {L} s before its first
token, then streams) and the fake Tavily server, over real HTTP on loopback, in a child process of
their own (`bench/_endpoints.py`: a real endpoint never shares Shoal's interpreter; until 2026-12-04
they ran in the bench's process), through the
supervisor (`Supervisor.submit_run(analysis_jobs(("query",)), params=…)`, so the engine posts to the
forum and the host speaks as in a real run). The same code in three configurations, run back to back in each
of {args.repeats} repetitions: BettaFish's order **emulated by Shoal** (`paragraph_concurrency=1`,
`SHOAL_LLM_CONCURRENCY=1`; not BettaFish itself), Shoal as shipped (paragraphs in parallel, LLM
budget 18 per endpoint with a slot reserved per role), and Shoal with `SHOAL_LLM_CONCURRENCY=4`, the
old default. Answers are BettaFish-sized ({SUMMARY_CHARS}-character summaries,
{REFLECTION_CHARS}-character reflection summaries) streamed in {CHUNK_CHARS}-character chunks. Wall time is the engine job's `finished_at − started_at`.
Calls in flight come from the fake server's own request timestamps.

**Command**: {command_md()}

{machine.markdown()}
Expected LLM calls `2 + P(2+2R)` = {expected_calls}; a strictly sequential engine needs at least
{expected_calls} × {L} s = {expected_calls * L:.1f} s; the critical path with paragraphs in
parallel is `(2 + 2 + 2R) × L` = {critical:.1f} s.

{goal_line}

{table(headers, rows)}
{'All runs made' if ok else 'NOT all runs made'} exactly {expected_calls} LLM calls, counted by the fake server and in the `llm_calls` table.

{headline} "Unset" `paragraph_concurrency` is the shipped default in `core/research/engine.py`
(`services_for`: 8 paragraphs at once), so all {P} paragraphs start together and the per-provider
LLM budget is what bounds the load. With the old limit of 4 the paragraphs' {P * (2 + 2 * R)}
calls share 4 slots, so the wall time sits above the critical path; the shipped budget lets all
{P} paragraphs call at once.
What remains above the LLM latency is what every call and search costs beyond it (HTTP and streaming,
the `llm_calls` row, the forum guidance read before a plan or summary, the searches): the sequential
run pays it {expected_calls} times ({seq_wall:.2f} s against {expected_calls * L:.1f} s of pure LLM latency), the parallel
run {2 + 2 + 2 * R} times on its critical path ({ship_wall:.2f} s against {critical:.1f} s), five paragraphs at a time, whose
Python work (one GIL) and database writes queue behind one another on a loaded machine.
**Why 4.2× is out of reach against this baseline**: both orders run the same code, so a call costs the
same in both; the sequential makes {expected_calls} calls and {1 + P * (1 + R)} searches, the parallel critical path
{2 + 2 + 2 * R} calls and {2 + R} searches, 4× fewer of each. The ratio is therefore at most about
{expected_calls}/{2 + 2 + 2 * R} = {expected_calls / (2 + 2 + 2 * R):.1f} (warm; the first repetition's sequential run also loads the text models), and
cutting per-call costs (as issue 11 asked, and as done on 2026-12-04: streams read without the SDK's
per-event models and with the connection reused, checkpoints and node log lines written behind the
paragraphs) brings both runs toward their LLM-only times and the ratio toward 4.0 from below. At this
sequential time, 4.2× would need the parallel job to take {seq_wall / GOAL:.2f} s: {(seq_wall / GOAL - critical) / (2 + 2 + 2 * R) * 1000:.0f} ms beyond the
latency per call on its critical path, where the same calls cost {(seq_wall - expected_calls * L) / expected_calls * 1000:.0f} ms each in the sequential run.
"""
        write_section("engine_parallel", body)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
