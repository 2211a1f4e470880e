"""The command-line handlers that run work: `run`, `resume` and `worker` (core.cli parses the arguments).

`run` and `resume` own their run: their supervisor claims only its jobs (`run --serve` and `worker`
take any run's). SIGTERM and SIGINT stop them gracefully (GracefulStop): unfinished jobs go back as
`interrupted` within SHOAL_SHUTDOWN_TIMEOUT and the summary is printed.
"""
from __future__ import annotations

import json
import signal
import sys
import threading
import time

from core.work.outcomes import EXIT_FAILED as EXIT_FAIL, EXIT_OK, EXIT_USAGE, degraded_of, exit_code, run_problems
from core.work.states import RunState

# `resume`: a live process holds the run's jobs (sysexits EX_TEMPFAIL: try again once it has stopped),
# or this process lacks a key the run was started with (EX_CONFIG). After SIGINT/SIGTERM, `run` and
# `resume` exit 128 + the signal's number (130, 143) once they have stopped gracefully.
EXIT_HELD, EXIT_CONFIG = 75, 78


class GracefulStop:
    """SIGTERM and SIGINT (Ctrl-C) ask for a graceful stop: the first sets `event`; a second one ends
    the process at once. The previous handlers come back on exit."""

    def __init__(self):
        self.event = threading.Event()
        self.signum = 0
        self._previous: dict = {}

    def __enter__(self) -> "GracefulStop":
        for sig in (signal.SIGTERM, signal.SIGINT):
            self._previous[sig] = signal.signal(sig, self._handler)
        return self

    def _handler(self, signum, _frame) -> None:
        self.signum = signum
        self.event.set()
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)

    def __exit__(self, *exc) -> None:
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name if self.signum else ""

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


def cmd_worker(args) -> int:
    """Run a headless supervisor (a second replica, or a worker beside the app) until signalled."""
    from core.runtime import build_runtime
    from core.infra.config import load_settings

    settings = load_settings()
    if args.max_workers:
        settings.values["SHOAL_MAX_WORKERS"] = args.max_workers
    rt = build_runtime(settings=settings, start_supervisor=False, console_log=False)
    if not rt.db.ok:
        print(f"worker: {rt.db.error}", file=sys.stderr)
        return EXIT_FAIL
    started: dict = {}
    if getattr(args, "metrics_port", None) is not None:
        from core.console import metrics_server
        from core.console.resources import ResourceSampler

        try:
            started["metrics_port"] = metrics_server.serve_runtime(rt, args.metrics_port).port
        except OSError as exc:
            print(f"worker: metrics port {args.metrics_port}: {exc}", file=sys.stderr)
            rt.close()
            return EXIT_FAIL
        rt.resources = ResourceSampler(settings["SHOAL_SAMPLE_SECONDS"], disk_path=settings.data_dir).start()
        from core.llm.pricing import load_price_table
        from core.runtime import _config_file

        rt.prices = load_price_table(_config_file(settings, "SHOAL_PRICE_TABLE", "prices.json"))  # as the app's
    from core.supervisor import SupervisorConfig

    config = SupervisorConfig.from_settings(settings)
    if args.kinds:
        config.kinds = frozenset(k.strip() for k in args.kinds.split(",") if k.strip())
    with GracefulStop() as stop:
        # At start it interrupts what dead local processes left; its scheduler then takes over expired
        # leases and resumes interrupted runs (SHOAL_AUTO_RESUME) without waiting for a page to open.
        sup = rt.new_supervisor(config).start()
        rt.supervisor = sup
        print(json.dumps({"worker": sup.worker_id, "status": "started", **started}), flush=True)
        deadline = time.monotonic() + args.seconds if args.seconds else None
        while not stop.event.wait(0.2):
            if deadline and time.monotonic() > deadline:
                break
        interrupted = sup.shutdown()
        rt.close()
    print(json.dumps({"worker": sup.worker_id, "status": "stopped", "interrupted": interrupted}), flush=True)
    return EXIT_OK


def _corpus_needed(settings, engines, offline: bool) -> bool:
    """Insight always reads the corpus; Query and Media do when offline or without a search key."""
    if "insight" in engines:
        return True
    keys = {"query": "TAVILY_API_KEY", "media": "BOCHA_WEB_SEARCH_API_KEY"}
    return any(offline or settings["SHOAL_MODE"] == "offline" or not settings.get(keys[e]) for e in engines)


def run_summary(rt, run_id: str, wall_s: float) -> dict:
    from sqlalchemy import func, select

    from core.forum import message_counts
    from core.infra.models import LlmCall
    from core.research.results import EngineResult
    from core.work.runs import get_run, jobs_of

    run = get_run(rt.db, run_id)
    engines = {}
    for job in jobs_of(rt.db, run_id):
        if job.kind in ("query", "media", "insight"):
            result = EngineResult.from_dict(job.result, job.kind)
            engines[job.name] = {"status": job.status, "paragraphs": len(result.paragraphs),
                                 "sources": result.n_sources, "mode": result.mode or None, "error": job.error}
    counts = message_counts(rt.db, run_id)
    from core.report import latest_report

    report = latest_report(rt.db, run_id, completed=True)
    with rt.db.session() as s:
        llm_calls = s.scalar(select(func.count()).select_from(LlmCall).where(LlmCall.run_id == run_id)) or 0
    problems = run_problems(run.status, run.params, run.error, run_id)
    message = run.error if run.status == RunState.INSUFFICIENT_DATA else " ".join(problems) or None
    return {"run_id": run_id, "status": run.status, "mode": run.mode, "topic": run.topic,
            "coverage": run.params.get("coverage"), "message": message,
            "error": None if run.status == RunState.COMPLETED else run.error,
            "degraded": degraded_of(run.params) if run.status in RunState.USABLE else [],
            "engines": engines,
            "forum_messages": sum(counts.values()), "host_messages": counts["host"],
            "report": report.html_path if report else None, "llm_calls": llm_calls, "trace_id": run.trace_id, "wall_s": round(wall_s, 3)}


def cmd_run(args) -> int:
    from core.analysis import TopicError, clean_topic, parse_engines, start_analysis
    from core.infra.config import load_settings
    from core.corpus.search import corpus_stats
    from core.runtime import build_runtime

    try:
        topic = clean_topic(args.topic)
        engines = parse_engines(args.engines)
        plan = _plan_of(args)
    except (TopicError, ValueError) as exc:
        print(f"run: {exc}", file=sys.stderr)
        return EXIT_USAGE
    settings = load_settings()
    if args.offline:
        settings.values["SHOAL_MODE"] = "offline"
    # Without --serve this process runs only its own run's jobs (a worker or the app may help with them).
    rt = build_runtime(settings=settings, console_log=False, own_runs_only=not args.serve)
    if not rt.ok:
        print("run: " + "; ".join(rt.problem_texts), file=sys.stderr)
        rt.close()
        return EXIT_FAIL
    if _corpus_needed(settings, engines, args.offline) and corpus_stats(rt.db).total == 0:
        print("run: the local corpus is empty, so offline engines have nothing to analyse. Fill it with "
              "`python -m core data demo` (labelled demo data) or `python -m core data import FILE` "
              "(CSV/JSONL), then run again.", file=sys.stderr)
        rt.close()
        return EXIT_FAIL
    t0 = time.monotonic()
    with GracefulStop() as stop:
        try:
            run_id = start_analysis(rt.supervisor, settings, topic, engines, paragraphs=args.paragraphs,
                                    reflections=args.reflections, offline=args.offline,
                                    force_report=args.force_report, plan=plan,
                                    max_tokens=getattr(args, "max_tokens", None),
                                    max_cost=getattr(args, "max_cost", None))
        except (TopicError, ValueError) as exc:
            print(f"run: {exc}", file=sys.stderr)
            rt.close()
            return EXIT_USAGE
        if not args.json:
            print(f"run {run_id}: {topic} ({', '.join(engines)})", file=sys.stderr)
        status = _follow_or_stop(rt, run_id, args.timeout, args.json, stop, "run")
        summary = run_summary(rt, run_id, time.monotonic() - t0)
        rt.close()
    print(json.dumps(summary, ensure_ascii=False, indent=None if args.json else 2))
    if summary["message"] and not args.json:
        print(f"run: {summary['status']}: {summary['message']}", file=sys.stderr)
    if stop.event.is_set():
        return stop.exit_code
    return exit_code(status)


def _plan_of(args) -> dict | None:
    """`run --plan FILE`: the reviewed paragraphs (core.cli_plan); None: each engine plans its own."""
    if not getattr(args, "plan", None):
        return None
    from core.cli_plan import load_plan_file

    return load_plan_file(args.plan)


def _follow_or_stop(rt, run_id: str, timeout: float, quiet: bool, stop: GracefulStop, command: str) -> str:
    """Follow the run until it ends, or stop gracefully on SIGTERM/SIGINT: within SHOAL_SHUTDOWN_TIMEOUT
    this process's jobs go back as `interrupted` (its unclaimed ones too), its worker row is closed, and
    the run can be resumed anywhere."""
    from core.work.runs import get_run

    status = _follow(rt, run_id, timeout, quiet=quiet, stop=stop.event)
    if not stop.event.is_set():
        return status
    limit = rt.settings["SHOAL_SHUTDOWN_TIMEOUT"]
    print(f"{command}: {stop.name} received; stopping (at most {limit:g} s), handing unfinished jobs back as "
          "interrupted", file=sys.stderr)
    rt.supervisor.shutdown(timeout=limit)
    status = get_run(rt.db, run_id).status
    if status not in RunState.FINAL:
        print(f"{command}: run {run_id} is {status}; continue it with `python -m core resume {run_id}` "
              "(a running worker or the app resumes it by itself)", file=sys.stderr)
    return status


def cmd_resume(args) -> int:
    """Take over a run whose owner is dead (lease expired, worker row stale, or its process gone) and
    finish it here; or say which live process holds it (EXIT_HELD)."""
    from core.infra.models import Run
    from core.runtime import build_runtime
    from core.supervisor import SupervisorConfig
    from core.work import run_settings

    rt = build_runtime(start_supervisor=False, console_log=False)
    if not rt.db.ok:
        print(f"resume: {rt.db.error}", file=sys.stderr)
        rt.close()
        return EXIT_FAIL
    with rt.db.session() as s:
        run = s.get(Run, args.run_id)
        status, recorded = (run.status, run.settings) if run else (None, None)
    if status is None:
        print(f"resume: no run {args.run_id}", file=sys.stderr)
        rt.close()
        return EXIT_FAIL
    config = SupervisorConfig.from_settings(rt.settings)
    config.own_runs_only = True
    sup = rt.new_supervisor(config)
    with GracefulStop() as stop:
        t0 = time.monotonic()
        result = sup.take_over(args.run_id)
        out = {"run_id": args.run_id, "status": status, "resumed_jobs": result.resumed, "taken_over": result.taken}
        if result.held_by:
            for h in result.held_by:
                what = f"jobs {', '.join(h.jobs)}" if h.jobs else "between two jobs"
                print(f"resume: run {args.run_id} is held by a live process, {h.describe()}; it is finishing the "
                      f"run ({what}). Stop that process first, or cancel the run.", file=sys.stderr)
            out["held_by"] = [h.as_dict() for h in result.held_by]
            rt.close()
            print(json.dumps(out, default=str))
            return EXIT_HELD
        for h in (h for h in result.dead if h.jobs):
            print(f"resume: took over {len(h.jobs)} job(s) from {h.describe()}", file=sys.stderr)
        from core.work.runs import get_run

        status = get_run(rt.db, args.run_id).status
        out["status"] = status
        if status in RunState.FINAL and not result.resumed:
            print(f"resume: run {args.run_id} is {status}; nothing to resume", file=sys.stderr)
            out["message"] = f"run is {status}; nothing to resume"
            rt.close()
            print(json.dumps(out))
            return exit_code(status)
        missing = run_settings.mismatched(recorded, rt.settings)
        if missing and not args.no_wait:
            print(f"resume: run {args.run_id} was started with {', '.join(missing)} set to a value this process "
                  "does not have (unset or different here), so it cannot run its jobs: they are pending again for "
                  "a worker or app that has it; or run `resume` where it is set", file=sys.stderr)
            rt.close()
            print(json.dumps(out))
            return EXIT_CONFIG
        if args.no_wait:
            print(f"resume: run {args.run_id}'s jobs are pending again; a running worker (`python -m core worker`) "
                  "or the app will finish them", file=sys.stderr)
            rt.close()
            print(json.dumps(out))
            return EXIT_OK
        if not args.json:
            print(f"resume: finishing run {args.run_id} here ({len(result.resumed)} job(s) resumed)", file=sys.stderr)
        rt.supervisor = sup.start()
        status = _follow_or_stop(rt, args.run_id, args.timeout, args.json, stop, "resume")
        summary = {**run_summary(rt, args.run_id, time.monotonic() - t0), "resumed_jobs": result.resumed,
                   "taken_over": result.taken}
        rt.close()
    print(json.dumps(summary, ensure_ascii=False, indent=None if args.json else 2))
    if stop.event.is_set():
        return stop.exit_code
    return exit_code(status)


DISK_FULL_GRACE_S = 5.0  # a full disk often clears itself (a rotated log, a temp file): give it a moment


def _follow(rt, run_id: str, timeout: float, quiet: bool, stop: threading.Event | None = None) -> str:
    """Wait for the run, printing its events to stderr as they come (O(new events) per poll)."""
    from sqlalchemy.exc import DBAPIError

    from core.work.jobs import RUN_FINAL_STATES
    from core.work.runs import get_run

    cursor, deadline, outage, full_since = 0, time.monotonic() + timeout, False, None
    while True:
        try:
            # The status first, then the events: a final status is committed with its run.* event,
            # so the events read after it include that one (read before it, they could miss it).
            run = get_run(rt.db, run_id)
            if run is None:  # the row itself is gone (a database restored from an older state)
                print(f"run: run {run_id} is no longer in the database; it cannot be followed", file=sys.stderr)
                return RunState.FAILED
            status = run.status
            batch, cursor = rt.events.since(cursor, run_id=run_id, limit=500)
        except DBAPIError as exc:
            # The database went away (a restart, a network blip): the jobs wait and retry their
            # writes, so the follower waits with them instead of dying mid-run.
            if not outage:
                print(f"run: the database is unreachable ({str(exc.orig or exc).splitlines()[0][:160]}); "
                      "waiting for it to come back", file=sys.stderr)
            outage = True
            if time.monotonic() > deadline:
                print(f"run: the database is still unreachable after {timeout:.0f} s", file=sys.stderr)
                return RunState.FAILED
            if stop is not None and stop.wait(0.5):
                return RunState.INTERRUPTED
            if stop is None:
                time.sleep(0.5)
            continue
        if outage:
            print("run: the database is back", file=sys.stderr)
            outage = False
        full = rt.db.storage_full()
        full_since = (full_since or time.monotonic()) if full else None
        if full_since is not None and time.monotonic() - full_since > DISK_FULL_GRACE_S:
            # Jobs can no longer record anything, not even that they failed: stop instead of
            # waiting out the whole timeout. The run stays resumable once space is freed.
            print(f"run: {full}. Free some space, then `python -m core resume {run_id}` finishes the run.",
                  file=sys.stderr)
            return RunState.FAILED
        if not quiet:
            for e in batch:
                if e.type.startswith(("run.", "job.", "engine.started", "engine.fallback", "engine.search_error",
                                             "coverage.", "llm.breaker_open")):
                    print(f"  {e.ts:%H:%M:%S} {e.type} {e.job_id or ''} "
                          f"{json.dumps(e.payload, ensure_ascii=False)[:160]}", file=sys.stderr)
        if status in RUN_FINAL_STATES or (status == RunState.INTERRUPTED and not rt.supervisor.running):
            return status
        if time.monotonic() > deadline:
            print(f"run: still {status} after {timeout:.0f} s; cancelling", file=sys.stderr)
            return rt.supervisor.cancel_run(run_id, timeout=10)
        if stop is None:
            time.sleep(0.2)
        elif stop.wait(0.2):
            return status
