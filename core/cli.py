"""`python -m core …`: headless use and automation through the same runtime as the app."""
from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Sequence

from core.cli_work import (EXIT_FAIL, EXIT_OK, EXIT_USAGE, cmd_resume, cmd_run, cmd_worker,  # noqa: F401
                           run_summary)  # run_summary: bench/offline_run.py imports it from here
from core.cli_plan import cmd_plan
from core.console.health import FAIL, WARN, essential_failures, run_checks
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
            print(f"{r.id}  {r.status:<18} {r.kind:<9} {r.created_at:%Y-%m-%d %H:%M:%S}  {r.topic[:60]}")
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


def _mindspider_args(args) -> tuple[str, list[str] | None, object] | str:
    """(URL, platforms, since) from the arguments, or what is wrong with them."""
    from core.corpus.mindspider import url_problem
    from core.corpus.search import validate_platform
    from core.text.dates import parse_time

    url = (sys.stdin.readline() if args.url == "-" else args.url or "").strip()
    # a SQLite copy of a MindSpider database is read too; the page takes server URLs only
    problem = None if url.lower().startswith("sqlite") else url_problem(url)
    if problem:
        return problem
    platforms = None
    if args.platforms:
        try:
            platforms = sorted({validate_platform(p) for p in args.platforms.replace("，", ",").split(",") if p.strip()})
        except ValueError as exc:
            return str(exc)
    since = None
    if args.since:
        try:
            since = parse_time(args.since)
        except ValueError as exc:
            return f"--since: {exc}"
    return url, platforms, since


def cmd_mindspider(args) -> int:
    """Import a MindSpider/MediaCrawler database into the corpus, as the Data page does; the report
    as JSON on stdout, its URL's password masked everywhere."""
    from core.corpus.mindspider import import_mindspider
    from core.infra.redact import mask_url, register_secrets, scrub_url_text, url_password

    parsed = _mindspider_args(args)
    if isinstance(parsed, str):
        print(f"data mindspider: {scrub_url_text(parsed, args.url if args.url != '-' else '')}", file=sys.stderr)
        return EXIT_USAGE
    url, platforms, since = parsed
    register_secrets([url_password(url)])  # logs, too, mask it from here on
    rt = _runtime(start_supervisor=False)
    try:
        if not rt.db.ok:
            print(f"data mindspider: {rt.db.error}", file=sys.stderr)
            return EXIT_FAIL
        try:
            report = import_mindspider(rt.db, url, limit_per_table=args.limit or None, platforms=platforms,
                                       since=since)
        except Exception as exc:  # noqa: BLE001 - said without the password, not raised
            print(f"data mindspider: {mask_url(url)}: {scrub_url_text(str(exc), url)}", file=sys.stderr)
            return EXIT_FAIL
    finally:
        rt.close()
    report = report.scrubbed(lambda text: scrub_url_text(text, url))
    out = report.as_dict()
    out["url"] = mask_url(url)
    print(json.dumps(out, ensure_ascii=False, default=str))
    read = report.imported + report.updated + report.skipped
    print(f"data mindspider: {scrub_url_text(report.summary(), url)} from {mask_url(url)}", file=sys.stderr)
    for _, text in report.error_texts()[:5]:
        print(f"data mindspider: {text}", file=sys.stderr)
    return EXIT_FAIL if report.error_count and not read else EXIT_OK


def cmd_data(args) -> int:
    if args.data_command == "mindspider":
        return cmd_mindspider(args)
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
        print("data: choose demo, import, mindspider or stats", file=sys.stderr)
        return EXIT_USAGE
    finally:
        rt.close()


def cmd_forum(args) -> int:
    if args.forum_command == "post":
        return cmd_forum_post(args)
    if args.forum_command != "import":
        print("forum: choose import or post", file=sys.stderr)
        return EXIT_USAGE
    from core.discussion.bettafish_import import parse_bettafish_folder, store_forum_import
    from core.infra.clock import display_zone

    result = parse_bettafish_folder(args.folder)
    for warning in result.warning_texts():
        print(f"forum import: {warning}", file=sys.stderr)
    if result.error:
        print(f"forum import: {result.error_text()}", file=sys.stderr)
    for line in result.lines():
        print(line)
    if args.store and result.messages:
        rt = _runtime(start_supervisor=False)
        try:
            if not rt.db.ok:
                print(f"forum import: {rt.db.error}", file=sys.stderr)
                return EXIT_FAIL
            zone = display_zone(rt.settings.get("SHOAL_TIMEZONE"))  # the log's clock: as the app shows times
            run_id = store_forum_import(rt.db, rt.events, result, args.label or f"BettaFish logs: {args.folder}", zone)
        finally:
            rt.close()
        print(f"forum import: stored {len(result.messages)} messages as run {run_id}", file=sys.stderr)
    return EXIT_OK if not result.error else EXIT_FAIL


def cmd_forum_post(args) -> int:
    """The analyst's message to a running analysis (source HUMAN); prints the stored message as JSON."""
    from core.forum import Forum, HumanPostError

    rt = _runtime(start_supervisor=False)
    try:
        if not rt.db.ok:
            print(f"forum post: {rt.db.error}", file=sys.stderr)
            return EXIT_FAIL
        forum = Forum(rt.db, rt.events, rt.settings.log_dir, host_every=rt.settings["FORUM_HOST_EVERY"])
        try:
            view = forum.post_human(args.run_id, args.text)
        except HumanPostError as exc:
            print(f"forum post: {exc}", file=sys.stderr)
            return EXIT_USAGE
    finally:
        rt.close()
    print(json.dumps(view.as_dict(), ensure_ascii=False))
    return EXIT_OK


def cmd_report(args) -> int:
    """Generate (or regenerate) a run's report and print where it went."""
    from core.cli_report_extras import resolve_type_arg, write_pdf
    from core.report import ReportError, request_report, wait_report

    from core.runtime import build_runtime

    rt = build_runtime(console_log=False, own_runs_only=True)  # only this run's jobs, not a bystander's
    try:
        if not rt.ok:
            print("report: " + "; ".join(rt.problem_texts), file=sys.stderr)
            return EXIT_FAIL
        try:
            report_id = request_report(rt.supervisor, rt.db, args.run_id, partial=args.partial,
                                       report_type=resolve_type_arg(rt.db, args.type) or None,
                                       language=args.language or None)
        except ReportError as exc:
            print(f"report: {exc}", file=sys.stderr)
            return EXIT_USAGE
        view = wait_report(rt.db, report_id, timeout=args.timeout)
        out = view.as_dict() if view else {"id": report_id, "status": "unknown"}
        if args.pdf and view and view.status == "completed":
            try:
                out["pdf_path"] = str(write_pdf(view))
            except Exception as exc:  # noqa: BLE001 - the report is written; say why its PDF is not
                print(f"report: the PDF was not written: {exc}", file=sys.stderr)
                return EXIT_FAIL
        print(json.dumps(out, ensure_ascii=False, default=str))
        return EXIT_OK if view and view.status == "completed" else EXIT_FAIL
    finally:
        rt.close()


def cmd_metrics(args) -> int:
    """Prometheus text exposition on stdout, once (prometheus_client's generate_latest). For a scrape
    endpoint run `worker --metrics-port N` or set SHOAL_METRICS_PORT for the app."""
    from core.console.metrics import histograms_from_database, prometheus_text
    from core.llm.pricing import load_price_table
    from core.console.resources import MIN_CPU_WINDOW_S, ResourceSampler
    from core.runtime import _config_file

    rt = _runtime(start_supervisor=False)
    try:
        sampler = ResourceSampler(interval=3600, disk_path=rt.settings.data_dir)
        time.sleep(max(MIN_CPU_WINDOW_S, args.cpu_seconds))  # CPU is measured over an interval, not an instant
        sampler.sample_once()
        prices = load_price_table(_config_file(rt.settings, "SHOAL_PRICE_TABLE", "prices.json"))
        db = rt.db if rt.db.ok else None
        # This process made no LLM call: its latency histograms are read from the recorded calls.
        print(prometheus_text(db, resources=sampler, prices=prices, settings=rt.settings,
                              histograms=histograms_from_database(db, rt.settings)), end="")
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
    w.add_argument("--metrics-port", type=int, default=None, metavar="N",
                   help="serve Prometheus /metrics on port N (0: a free port, printed at start)")
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
    run.add_argument("--max-tokens", type=int, default=None, help="cap on the run's LLM tokens, unpriced models "
                     "included (default SHOAL_RUN_MAX_TOKENS; 0 = no cap)")
    run.add_argument("--max-cost", type=float, default=None, help="cap on the run's LLM cost in USD (default "
                     "SHOAL_RUN_MAX_COST_USD; 0 = no cap)")
    run.add_argument("--json", action="store_true", help="print only the JSON summary (no progress on stderr)")
    run.add_argument("--timeout", type=float, default=3600, help="cancel the run after this many seconds")
    run.add_argument("--serve", action="store_true", help="also run other runs' jobs, like `worker` "
                     "(default: only this run's)")
    run.add_argument("--plan", default=None, metavar="FILE", help="the engines' paragraphs as reviewed: a JSON file "
                     "from `python -m core plan TOPIC --json`, edited (- reads stdin); without it each engine plans "
                     "its own")
    run.set_defaults(fn=cmd_run)

    pl = sub.add_parser("plan", help="print each engine's planned paragraphs for a topic, without starting a run "
                        "(edit the --json output and pass it to `run --plan`)")
    pl.add_argument("topic")
    pl.add_argument("--engines", default="query,media,insight", help="comma-separated: query,media,insight")
    pl.add_argument("--offline", action="store_true", help="never call an LLM or a web search API")
    pl.add_argument("--paragraphs", type=int, default=None, help="paragraphs per engine (default 5)")
    pl.add_argument("--json", action="store_true", help="print the plan file's JSON")
    pl.set_defaults(fn=cmd_plan)

    data = sub.add_parser("data", help="the local corpus: demo data, imports, statistics")
    dsub = data.add_subparsers(dest="data_command", metavar="ACTION")
    demo = dsub.add_parser("demo", help="generate the labelled demo corpus (reproducible)")
    demo.add_argument("--seed", type=int, default=7)
    demo.add_argument("--posts", type=int, default=3000)
    imp = dsub.add_parser("import", help="import a CSV, JSONL or JSON file of posts")
    imp.add_argument("file")
    dsub.add_parser("stats", help="summarise the corpus")
    ms = dsub.add_parser("mindspider", help="import a MindSpider/MediaCrawler database (as the Data page does); "
                         "prints the import report as JSON, exit 1 when nothing could be read")
    ms.add_argument("url", metavar="URL", help="mysql+pymysql://user:password@host:3306/db (a SQLite copy: "
                    "sqlite:///path); - reads it from stdin, out of the shell's history")
    ms.add_argument("--platforms", default="", help="comma-separated platforms to import (default: all), "
                    "e.g. weibo,douyin,xhs")
    ms.add_argument("--since", default="", help="only posts and comments published then or later "
                    "(YYYY-MM-DD or a time); undated rows are left out")
    ms.add_argument("--limit", type=int, default=0, help="rows per table at most (default: all)")
    data.set_defaults(fn=cmd_data)

    forum = sub.add_parser("forum", help="the forum: import BettaFish logs, or post to a running analysis")
    fsub = forum.add_subparsers(dest="forum_command", metavar="ACTION")
    fimp = fsub.add_parser("import", help="print BettaFish logs (a logs folder with insight/media/query.log "
                           "and forum.log, or a forum.log) as a forum transcript in forum.log format, host "
                           "speeches included")
    fimp.add_argument("folder", metavar="PATH")
    fimp.add_argument("--store", action="store_true", help="also store it as a run you can open on the Forum page")
    fimp.add_argument("--label", default="", help="the stored run's title")
    fpost = fsub.add_parser("post", help="post the analyst's message (a question, a steer) to a running analysis: "
                            "the host answers it in its next speech, the engines in their next summaries")
    fpost.add_argument("run_id", metavar="RUN_ID")
    fpost.add_argument("text", metavar="TEXT")
    forum.set_defaults(fn=cmd_forum)

    rp = sub.add_parser("report", help="generate (or regenerate) the report of a run")
    rp.add_argument("run_id")
    rp.add_argument("--partial", action="store_true", help="do not wait for missing engines; say what is missing")
    rp.add_argument("--type", default="", help="report type or a template's key or name (default: the run's "
                    "choice, or chosen automatically)")
    rp.add_argument("--language", choices=("zh", "en"), default=None,
                    help="language of the report (default: SHOAL_REPORT_LANGUAGE, auto = the topic's language)")
    rp.add_argument("--timeout", type=float, default=900)
    rp.add_argument("--pdf", action="store_true", help="also write the report as PDF beside its HTML file "
                    "(a written report: `report pdf RUN_OR_REPORT_ID [-o FILE]`; templates: `report template add|list|remove`)")
    rp.set_defaults(fn=cmd_report)

    m = sub.add_parser("metrics", help="print runs, jobs, LLM usage, latency, retries and resources in "
                       "Prometheus text format")
    m.add_argument("--cpu-seconds", type=float, default=1.0, help="measure CPU over this many seconds (default 1)")
    m.set_defaults(fn=cmd_metrics)

    s = sub.add_parser("sentiment", help="classify one text per stdin line; prints label<TAB>score")
    s.set_defaults(fn=cmd_sentiment)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    from core.cli_report_extras import route  # `report template …`, `report pdf …`

    routed = route(list(sys.argv[1:] if argv is None else argv))
    if routed is not None:
        return routed
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
