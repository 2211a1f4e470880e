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
from core.work.outcomes import EXIT_FAILED as EXIT_FAIL, EXIT_OK, EXIT_USAGE, degraded_of, exit_code, run_problems
from core.work.states import RunState


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


def _install_signal_handlers(stop: threading.Event) -> None:
    def handler(signum, _frame):
        stop.set()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, handler)


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
    sup = rt.new_supervisor(config).start()
    rt.supervisor = sup
    stop = threading.Event()
    _install_signal_handlers(stop)
    print(json.dumps({"worker": sup.worker_id, "status": "started"}), flush=True)
    deadline = time.monotonic() + args.seconds if args.seconds else None
    while not stop.wait(0.2):
        if deadline and time.monotonic() > deadline:
            break
    interrupted = sup.shutdown()
    rt.close()
    print(json.dumps({"worker": sup.worker_id, "status": "stopped", "interrupted": interrupted}), flush=True)
    return EXIT_OK


def cmd_probe(args) -> int:
    from core.work.probe import probe_jobs

    rt = _runtime(start_supervisor=not args.no_wait)
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
        if action == "cancel":
            result = {"run_id": args.run_id, "status": sup.cancel_run(args.run_id, timeout=args.timeout)}
        else:
            result = {"run_id": args.run_id, "resumed_jobs": sup.resume_run(args.run_id)}
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
    problems = run_problems(run.status, run.params, run.error, run_id)
    message = run.error if run.status == RunState.INSUFFICIENT_DATA else " ".join(problems) or None
    return {"run_id": run_id, "status": run.status, "mode": run.mode, "topic": run.topic,
            "coverage": run.params.get("coverage"), "message": message,
            "error": None if run.status == RunState.COMPLETED else run.error,
            "degraded": degraded_of(run.params) if run.status in RunState.USABLE else [],
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
    rt = build_runtime(settings=settings, console_log=False)
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
    try:
        run_id = start_analysis(rt.supervisor, settings, topic, engines, paragraphs=args.paragraphs,
                                reflections=args.reflections, offline=args.offline, force_report=args.force_report)
    except (TopicError, ValueError) as exc:
        print(f"run: {exc}", file=sys.stderr)
        rt.close()
        return EXIT_USAGE
    if not args.json:
        print(f"run {run_id}: {topic} ({', '.join(engines)})", file=sys.stderr)
    try:
        status = _follow(rt, run_id, args.timeout, quiet=args.json)
    except KeyboardInterrupt:
        print("run: interrupted, cancelling…", file=sys.stderr)
        rt.supervisor.cancel_run(run_id, timeout=5)
        status = RunState.CANCELLED
    summary = run_summary(rt, run_id, time.monotonic() - t0)
    rt.close()
    print(json.dumps(summary, ensure_ascii=False, indent=None if args.json else 2))
    if summary["message"] and not args.json:
        print(f"run: {summary['status']}: {summary['message']}", file=sys.stderr)
    return exit_code(status)


DISK_FULL_GRACE_S = 5.0  # a full disk often clears itself (a rotated log, a temp file): give it a moment


def _follow(rt, run_id: str, timeout: float, quiet: bool) -> str:
    """Wait for the run, printing its events to stderr as they come (O(new events) per poll)."""
    from core.work.jobs import RUN_FINAL_STATES
    from sqlalchemy.exc import DBAPIError

    from core.work.runs import get_run

    cursor, deadline, outage, full_since = 0, time.monotonic() + timeout, False, None
    while True:
        try:
            batch, cursor = rt.events.since(cursor, run_id=run_id, limit=500)
            status = get_run(rt.db, run_id).status
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
                                             "coverage.")):
                    print(f"  {e.ts:%H:%M:%S} {e.type} {e.job_id or ''} "
                          f"{json.dumps(e.payload, ensure_ascii=False)[:160]}", file=sys.stderr)
        if status in RUN_FINAL_STATES or (status == RunState.INTERRUPTED and not rt.supervisor.running):
            return status
        if time.monotonic() > deadline:
            print(f"run: still {status} after {timeout:.0f} s; cancelling", file=sys.stderr)
            return rt.supervisor.cancel_run(run_id, timeout=10)
        time.sleep(0.2)


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

    rt = _runtime(start_supervisor=True)
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

    rs = sub.add_parser("resume", help="resume a run's interrupted, failed or cancelled jobs from their checkpoints")
    rs.add_argument("run_id")
    rs.set_defaults(fn=lambda a: _control(a, "resume"))

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
