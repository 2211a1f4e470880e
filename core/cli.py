"""`python -m core …`: headless use and automation through the same runtime as the app."""
from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from typing import Sequence

from core.console.health import FAIL, WARN, essential_failures, run_checks
from core.work.states import RunState

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2
# `resume`: a live process holds the run's jobs (sysexits EX_TEMPFAIL: try again once it has stopped),
# or this process lacks a key the run was started with (EX_CONFIG). After SIGINT/SIGTERM, `run` and
# `resume` exit 128 + the signal's number (130, 143) once they have stopped gracefully.
EXIT_HELD, EXIT_CONFIG = 75, 78


def _runtime(start_supervisor: bool):
    from core.runtime import build_runtime

    # The command line keeps stderr for its own messages; warnings still go to logs/app.log.
    return build_runtime(start_supervisor=start_supervisor, console_log=False)


def cmd_doctor(args) -> int:
    rt = _runtime(start_supervisor=False)
    try:
        results = run_checks(rt.settings, rt.db)
    finally:
        rt.close()
    failed = essential_failures(results)
    if args.json:
        print(json.dumps({"ok": not failed, "checks": [r.as_dict() for r in results]}, ensure_ascii=False, indent=2))
    else:
        marks = {"ok": "OK  ", WARN: "WARN", FAIL: "FAIL"}
        for r in results:
            print(f"[{marks[r.status]}] {r.name:<9} {r.detail}")
        print("doctor: " + ("essential checks failed: " + ", ".join(r.name for r in failed) if failed
                            else "everything essential works"))
    return EXIT_FAIL if failed else EXIT_OK


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
    from core.supervisor import SupervisorConfig

    config = SupervisorConfig.from_settings(settings)
    if args.kinds:
        config.kinds = frozenset(k.strip() for k in args.kinds.split(",") if k.strip())
    with GracefulStop() as stop:
        # At start it interrupts what dead local processes left; its scheduler then takes over expired
        # leases and resumes interrupted runs (SHOAL_AUTO_RESUME) without waiting for a page to open.
        sup = rt.new_supervisor(config).start()
        rt.supervisor = sup
        print(json.dumps({"worker": sup.worker_id, "status": "started"}), flush=True)
        deadline = time.monotonic() + args.seconds if args.seconds else None
        while not stop.event.wait(0.2):
            if deadline and time.monotonic() > deadline:
                break
        interrupted = sup.shutdown()
        rt.close()
    print(json.dumps({"worker": sup.worker_id, "status": "stopped", "interrupted": interrupted}), flush=True)
    return EXIT_OK


def cmd_probe(args) -> int:
    from core.runtime import build_runtime
    from core.work.probe import probe_jobs

    rt = build_runtime(start_supervisor=not args.no_wait, console_log=False, own_runs_only=True)
    if not rt.db.ok:
        print(f"probe: {rt.db.error}", file=sys.stderr)
        return EXIT_FAIL
    sup = rt.supervisor or rt.new_supervisor()
    run_id = sup.submit_run(probe_jobs(args.jobs, args.steps, args.step_seconds), kind="probe",
                            topic=f"probe: {args.jobs} jobs × {args.steps} steps")
    if args.no_wait:
        print(json.dumps({"run_id": run_id, "status": "queued"}))
        rt.close()
        return EXIT_OK
    t0 = time.monotonic()
    status = sup.wait_run(run_id, timeout=args.timeout)
    out = {"run_id": run_id, "status": status, "wall_s": round(time.monotonic() - t0, 3)}
    rt.close()
    print(json.dumps(out))
    return EXIT_OK if status == RunState.COMPLETED else EXIT_FAIL


def cmd_runs(args) -> int:
    from core.work.runs import list_runs

    rt = _runtime(start_supervisor=False)
    if not rt.db.ok:
        print(f"runs: {rt.db.error}", file=sys.stderr)
        return EXIT_FAIL
    runs = list_runs(rt.db, limit=args.limit)
    rt.close()
    if args.json:
        print(json.dumps([r.as_dict() for r in runs], ensure_ascii=False, indent=2))
    else:
        for r in runs:
            print(f"{r.id}  {r.status:<11} {r.kind:<9} {r.created_at:%Y-%m-%d %H:%M:%S}  {r.topic[:60]}")
        if not runs:
            print("no runs yet")
    return EXIT_OK


def _control(args, action: str) -> int:
    rt = _runtime(start_supervisor=False)
    if not rt.db.ok:
        print(f"{action}: {rt.db.error}", file=sys.stderr)
        return EXIT_FAIL
    # A control-only supervisor: it writes the requests; whichever supervisor owns the jobs acts.
    sup = rt.new_supervisor()
    try:
        result = {"run_id": args.run_id, "status": sup.cancel_run(args.run_id, timeout=args.timeout)}
    except KeyError as exc:
        print(f"{action}: {exc.args[0]}", file=sys.stderr)
        return EXIT_FAIL
    finally:
        rt.close()
    print(json.dumps(result))
    return EXIT_OK


def cmd_events(args) -> int:
    rt = _runtime(start_supervisor=False)
    if not rt.db.ok:
        print(f"events: {rt.db.error}", file=sys.stderr)
        return EXIT_FAIL
    cursor = args.since
    try:
        while True:
            batch, cursor = rt.events.since(cursor, run_id=args.run, limit=500)
            for e in batch:
                print(json.dumps(e.as_dict(), ensure_ascii=False), flush=True)
            if not args.follow:
                break
            if not batch:
                time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        rt.close()
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
    return {"run_id": run_id, "status": run.status, "mode": run.mode, "topic": run.topic,
            "coverage": run.params.get("coverage"), "message": run.error if run.status == "insufficient_data" else None,
            "engines": engines,
            "forum_messages": counts["agent"] + counts["host"] + counts["system"], "host_messages": counts["host"],
            "report": report.html_path if report else None, "llm_calls": llm_calls, "trace_id": run.trace_id, "wall_s": round(wall_s, 3)}


def cmd_run(args) -> int:
    from core.analysis import TopicError, clean_topic, parse_engines, start_analysis
    from core.infra.config import load_settings
    from core.corpus.search import corpus_stats
    from core.runtime import build_runtime

    try:
        topic = clean_topic(args.topic)
        engines = parse_engines(args.engines)
    except (TopicError, ValueError) as exc:
        print(f"run: {exc}", file=sys.stderr)
        return EXIT_USAGE
    settings = load_settings()
    if args.offline:
        settings.values["SHOAL_MODE"] = "offline"
    # Without --serve this process runs only its own run's jobs (a worker or the app may help with them).
    rt = build_runtime(settings=settings, console_log=False, own_runs_only=not args.serve)
    if not rt.ok:
        print("run: " + "; ".join(rt.problems), file=sys.stderr)
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
                                    force_report=args.force_report)
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
    if status == "insufficient_data" and not args.json:
        print(f"run: {summary['message']}", file=sys.stderr)
    if stop.event.is_set():
        return stop.exit_code
    return EXIT_OK if status == RunState.COMPLETED else EXIT_FAIL


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
                print(f"resume: run {args.run_id} is held by a live process, {h.describe()}; it is finishing the "
                      f"run (jobs {', '.join(h.jobs)}). Stop that process first, or cancel the run.", file=sys.stderr)
            out["held_by"] = [h.as_dict() for h in result.held_by]
            rt.close()
            print(json.dumps(out, default=str))
            return EXIT_HELD
        for h in result.dead:
            print(f"resume: took over {len(h.jobs)} job(s) from {h.describe()}", file=sys.stderr)
        from core.work.runs import get_run

        status = get_run(rt.db, args.run_id).status
        out["status"] = status
        if status in RunState.FINAL and not result.resumed:
            print(f"resume: run {args.run_id} is {status}; nothing to resume", file=sys.stderr)
            out["message"] = f"run is {status}; nothing to resume"
            rt.close()
            print(json.dumps(out))
            return EXIT_OK if status == RunState.COMPLETED else EXIT_FAIL
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
    return EXIT_OK if status == RunState.COMPLETED else EXIT_FAIL


def _follow(rt, run_id: str, timeout: float, quiet: bool, stop: threading.Event | None = None) -> str:
    """Wait for the run, printing its events to stderr as they come (O(new events) per poll)."""
    from core.work.jobs import RUN_FINAL_STATES
    from core.work.runs import get_run

    cursor, deadline = 0, time.monotonic() + timeout
    while True:
        batch, cursor = rt.events.since(cursor, run_id=run_id, limit=500)
        if not quiet:
            for e in batch:
                if e.type.startswith(("run.", "job.", "engine.started", "engine.fallback", "engine.search_error",
                                             "coverage.")):
                    print(f"  {e.ts:%H:%M:%S} {e.type} {e.job_id or ''} "
                          f"{json.dumps(e.payload, ensure_ascii=False)[:160]}", file=sys.stderr)
        status = get_run(rt.db, run_id).status
        if status in RUN_FINAL_STATES or (status == RunState.INTERRUPTED and not rt.supervisor.running):
            return status
        if time.monotonic() > deadline:
            print(f"run: still {status} after {timeout:.0f} s; cancelling", file=sys.stderr)
            return rt.supervisor.cancel_run(run_id, timeout=10)
        if stop is None:
            time.sleep(0.2)
        elif stop.wait(0.2):
            return status


def cmd_data(args) -> int:
    rt = _runtime(start_supervisor=False)
    try:
        if not rt.db.ok:
            print(f"data: {rt.db.error}", file=sys.stderr)
            return EXIT_FAIL
        if args.data_command == "demo":
            from core.corpus.demo import generate_demo_corpus

            report = generate_demo_corpus(rt.db, seed=args.seed, posts=args.posts)
            print(json.dumps(report.as_dict() if hasattr(report, "as_dict") else report, ensure_ascii=False,
                             default=str))
            return EXIT_OK
        if args.data_command == "import":
            from core.corpus.import_files import import_file

            report = import_file(rt.db, args.file)
            print(json.dumps(report.as_dict(), ensure_ascii=False, default=str))
            return EXIT_OK if report.imported + report.updated > 0 or not report.errors else EXIT_FAIL
        if args.data_command == "stats":
            from core.corpus.search import corpus_summary

            print(json.dumps(corpus_summary(rt.db), ensure_ascii=False, indent=2, default=str))
            return EXIT_OK
        print("data: choose demo, import or stats", file=sys.stderr)
        return EXIT_USAGE
    finally:
        rt.close()


def cmd_forum(args) -> int:
    if args.forum_command != "import":
        print("forum: choose import", file=sys.stderr)
        return EXIT_USAGE
    from core.discussion.log_parse import parse_bettafish_folder, store_forum_import

    result = parse_bettafish_folder(args.folder)
    for warning in result.warnings:
        print(f"forum import: {warning}", file=sys.stderr)
    if result.error:
        print(f"forum import: {result.error}", file=sys.stderr)
    for line in result.lines():
        print(line)
    if args.store and result.messages:
        rt = _runtime(start_supervisor=False)
        try:
            if not rt.db.ok:
                print(f"forum import: {rt.db.error}", file=sys.stderr)
                return EXIT_FAIL
            run_id = store_forum_import(rt.db, rt.events, result, args.label or f"BettaFish logs: {args.folder}")
        finally:
            rt.close()
        print(f"forum import: stored {len(result.messages)} messages as run {run_id}", file=sys.stderr)
    return EXIT_OK if not result.error else EXIT_FAIL


def cmd_report(args) -> int:
    """Generate (or regenerate) a run's report and print where it went."""
    from core.report import ReportError, request_report, wait_report

    from core.runtime import build_runtime

    rt = build_runtime(console_log=False, own_runs_only=True)  # only this run's jobs, not a bystander's
    try:
        if not rt.ok:
            print("report: " + "; ".join(rt.problems), file=sys.stderr)
            return EXIT_FAIL
        try:
            report_id = request_report(rt.supervisor, rt.db, args.run_id, partial=args.partial,
                                       report_type=args.type or None)
        except ReportError as exc:
            print(f"report: {exc}", file=sys.stderr)
            return EXIT_USAGE
        view = wait_report(rt.db, report_id, timeout=args.timeout)
        out = view.as_dict() if view else {"id": report_id, "status": "unknown"}
        print(json.dumps(out, ensure_ascii=False, default=str))
        return EXIT_OK if view and view.status == "completed" else EXIT_FAIL
    finally:
        rt.close()


def cmd_metrics(args) -> int:
    """Prometheus text exposition on stdout (for a textfile collector or a tiny HTTP wrapper)."""
    from core.console.metrics import prometheus_text
    from core.llm.pricing import load_price_table
    from core.console.resources import ResourceSampler
    from core.runtime import _config_file

    rt = _runtime(start_supervisor=False)
    try:
        sampler = ResourceSampler(interval=3600, disk_path=rt.settings.data_dir)
        sampler.sample_once()
        prices = load_price_table(_config_file(rt.settings, "SHOAL_PRICE_TABLE", "prices.json"))
        print(prometheus_text(rt.db if rt.db.ok else None, resources=sampler, prices=prices), end="")
    finally:
        rt.close()
    return EXIT_OK


def cmd_sentiment(args) -> int:
    try:
        from core.text.sentiment import main_sentiment
    except ImportError as exc:
        print(f"sentiment: the classifier is not available ({exc})", file=sys.stderr)
        return EXIT_FAIL
    return main_sentiment(sys.stdin, sys.stdout)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m core", description="Shoal from the command line: the same "
                                "runtime, database and supervisor as the Streamlit app.")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    d = sub.add_parser("doctor", help="check database, logs, disk, LLM and search configuration")
    d.add_argument("--json", action="store_true", help="print the checks as JSON")
    d.set_defaults(fn=cmd_doctor)

    w = sub.add_parser("worker", help="run a headless supervisor until SIGTERM/SIGINT (a replica)")
    w.add_argument("--max-workers", type=int, default=0, help="jobs at once (default: SHOAL_MAX_WORKERS)")
    w.add_argument("--kinds", default="", help="comma-separated job kinds this worker may claim (default: all)")
    w.add_argument("--seconds", type=float, default=0, help="stop after this many seconds (0: run until signalled)")
    w.set_defaults(fn=cmd_worker)

    pr = sub.add_parser("probe", help="submit a self-test run through the supervisor and wait for it")
    pr.add_argument("--jobs", type=int, default=3)
    pr.add_argument("--steps", type=int, default=5)
    pr.add_argument("--step-seconds", type=float, default=0.05)
    pr.add_argument("--timeout", type=float, default=120)
    pr.add_argument("--no-wait", action="store_true", help="only queue it (a running worker picks it up)")
    pr.set_defaults(fn=cmd_probe)

    r = sub.add_parser("runs", help="list recent runs")
    r.add_argument("--limit", type=int, default=20)
    r.add_argument("--json", action="store_true")
    r.set_defaults(fn=cmd_runs)

    c = sub.add_parser("cancel", help="cancel a run (bounded wait)")
    c.add_argument("run_id")
    c.add_argument("--timeout", type=float, default=10.0)
    c.set_defaults(fn=lambda a: _control(a, "cancel"))

    rs = sub.add_parser("resume", help="take over a run whose process died and finish it here: its interrupted, "
                        "failed or cancelled jobs resume from their checkpoints (exit 75 while a live process "
                        "holds them, naming it)")
    rs.add_argument("run_id")
    rs.add_argument("--no-wait", action="store_true", help="only hand the jobs back as pending, for a running "
                    "worker or the app to finish")
    rs.add_argument("--json", action="store_true", help="print only the JSON summary (no progress on stderr)")
    rs.add_argument("--timeout", type=float, default=3600, help="cancel the run after this many seconds")
    rs.set_defaults(fn=cmd_resume)

    e = sub.add_parser("events", help="print events after a cursor as JSON lines")
    e.add_argument("--since", type=int, default=0, help="event id to start after")
    e.add_argument("--run", default=None, help="only this run's events")
    e.add_argument("--follow", action="store_true", help="keep polling for new events")
    e.set_defaults(fn=cmd_events)

    run = sub.add_parser("run", help="run an analysis through the supervisor and print one JSON summary")
    run.add_argument("topic")
    run.add_argument("--engines", default="query,media,insight", help="comma-separated: query,media,insight")
    run.add_argument("--offline", action="store_true", help="never call an LLM or a web search API")
    run.add_argument("--force-report", action="store_true",
                     help="write the report even when fewer than SHOAL_MIN_SOURCES sources are about the topic "
                          "(it opens with a coverage banner)")
    run.add_argument("--paragraphs", type=int, default=None, help="paragraphs per engine report (default 5)")
    run.add_argument("--reflections", type=int, default=None, help="reflection rounds per paragraph (default 2)")
    run.add_argument("--json", action="store_true", help="print only the JSON summary (no progress on stderr)")
    run.add_argument("--timeout", type=float, default=3600, help="cancel the run after this many seconds")
    run.add_argument("--serve", action="store_true", help="also run other runs' jobs, like `worker` "
                     "(default: only this run's)")
    run.set_defaults(fn=cmd_run)

    data = sub.add_parser("data", help="the local corpus: demo data, imports, statistics")
    dsub = data.add_subparsers(dest="data_command", metavar="ACTION")
    demo = dsub.add_parser("demo", help="generate the labelled demo corpus (reproducible)")
    demo.add_argument("--seed", type=int, default=7)
    demo.add_argument("--posts", type=int, default=3000)
    imp = dsub.add_parser("import", help="import a CSV, JSONL or JSON file of posts")
    imp.add_argument("file")
    dsub.add_parser("stats", help="summarise the corpus")
    data.set_defaults(fn=cmd_data)

    forum = sub.add_parser("forum", help="the forum: import a BettaFish logs folder")
    fsub = forum.add_subparsers(dest="forum_command", metavar="ACTION")
    fimp = fsub.add_parser("import", help="print a BettaFish logs folder (insight/media/query.log) as a forum "
                           "transcript in forum.log format")
    fimp.add_argument("folder")
    fimp.add_argument("--store", action="store_true", help="also store it as a run you can open on the Forum page")
    fimp.add_argument("--label", default="", help="the stored run's title")
    forum.set_defaults(fn=cmd_forum)

    rp = sub.add_parser("report", help="generate (or regenerate) the report of a run")
    rp.add_argument("run_id")
    rp.add_argument("--partial", action="store_true", help="do not wait for missing engines; say what is missing")
    rp.add_argument("--type", default="", help="report type (default: the run's choice, or chosen automatically)")
    rp.add_argument("--timeout", type=float, default=900)
    rp.set_defaults(fn=cmd_report)

    m = sub.add_parser("metrics", help="print runs, jobs, LLM usage, latency, retries and resources in "
                       "Prometheus text format")
    m.set_defaults(fn=cmd_metrics)

    s = sub.add_parser("sentiment", help="classify one text per stdin line; prints label<TAB>score")
    s.set_defaults(fn=cmd_sentiment)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "fn", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        return args.fn(args)
    except BrokenPipeError:  # `… | head`: the reader left; that is not an error
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
