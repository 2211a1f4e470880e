"""`python -m core …`: headless use and automation through the same runtime as the app."""
from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from typing import Sequence

from .health import FAIL, WARN, essential_failures, run_checks

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2


def _runtime(start_supervisor: bool):
    from .runtime import build_runtime

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
    from .runtime import build_runtime
    from .config import load_settings

    settings = load_settings()
    if args.max_workers:
        settings.values["SHOAL_MAX_WORKERS"] = args.max_workers
    rt = build_runtime(settings=settings, start_supervisor=False, console_log=False)
    if not rt.db.ok:
        print(f"worker: {rt.db.error}", file=sys.stderr)
        return EXIT_FAIL
    from .supervisor import Supervisor, SupervisorConfig

    config = SupervisorConfig.from_settings(settings)
    if args.kinds:
        config.kinds = frozenset(k.strip() for k in args.kinds.split(",") if k.strip())
    sup = Supervisor(rt.db, rt.events, config).start()
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
    from .probe import probe_jobs

    rt = _runtime(start_supervisor=not args.no_wait)
    if not rt.db.ok:
        print(f"probe: {rt.db.error}", file=sys.stderr)
        return EXIT_FAIL
    from .supervisor import Supervisor, SupervisorConfig

    sup = rt.supervisor or Supervisor(rt.db, rt.events, SupervisorConfig.from_settings(rt.settings))
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
    return EXIT_OK if status == "completed" else EXIT_FAIL


def cmd_runs(args) -> int:
    from .runs import list_runs

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
    from .supervisor import Supervisor, SupervisorConfig

    # A control-only supervisor: it writes the requests; whichever supervisor owns the jobs acts.
    sup = Supervisor(rt.db, rt.events, SupervisorConfig.from_settings(rt.settings))
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


def cmd_sentiment(args) -> int:
    try:
        from .sentiment import main_sentiment
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

    s = sub.add_parser("sentiment", help="classify one text per stdin line; prints label<TAB>score")
    s.set_defaults(fn=cmd_sentiment)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "fn", None):
        parser.print_help()
        return EXIT_USAGE
    return args.fn(args)
