"""`python -m core report template …` (users' report templates) and `python -m core report pdf …`
(a written report as PDF); core.cli routes here. `report RUN --pdf` writes the PDF after the report.

    python -m core report template add FILE.md [--name NAME]   # validate and store (same name: replace)
    python -m core report template list [--json]
    python -m core report template remove KEY
    python -m core report pdf RUN_OR_REPORT_ID [-o FILE.pdf]     # the latest completed report of a run, or one report
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Sequence

from core.work.outcomes import EXIT_FAILED as EXIT_FAIL, EXIT_OK, EXIT_USAGE


def _runtime():
    from core.runtime import build_runtime

    return build_runtime(start_supervisor=False, console_log=False)


def template_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m core report template",
                                description="Report templates: a Markdown file whose headings are the report's "
                                            "sections (optional guidance under each).")
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    add = sub.add_parser("add", help="validate and store a template (a template of the same name is replaced)")
    add.add_argument("file", help="the template, UTF-8 Markdown")
    add.add_argument("--name", default=None, help="its name (default: its single top heading, else the file name)")
    ls = sub.add_parser("list", help="list the stored templates with their keys and sections")
    ls.add_argument("--json", action="store_true")
    rm = sub.add_parser("remove", help="delete a template by key")
    rm.add_argument("key")
    return p


def template_main(argv: Sequence[str]) -> int:
    from core.reporting.custom_templates import TemplateError, add_template, list_templates, remove_template

    args = template_parser().parse_args(list(argv))
    data = None
    if args.action == "add":
        try:
            data = Path(args.file).read_bytes()
        except OSError as exc:
            print(f"report template: cannot read {args.file}: {exc.strerror or exc}", file=sys.stderr)
            return EXIT_USAGE
    rt = _runtime()
    try:
        if not rt.db.ok:
            print(f"report template: {rt.db.error}", file=sys.stderr)
            return EXIT_FAIL
        if args.action == "add":
            try:
                view, replaced = add_template(rt.db, data, name=args.name, filename=args.file)
            except TemplateError as exc:
                print(f"report template: {args.file}: {exc}", file=sys.stderr)
                return EXIT_USAGE
            print(json.dumps({**view.as_dict(), "replaced": replaced}, ensure_ascii=False))
            print(f"report template: {'replaced' if replaced else 'added'} {view.key} ({view.name}, "
                  f"{len(view.sections)} sections); use it with --type {view.key}", file=sys.stderr)
            return EXIT_OK
        if args.action == "list":
            views = list_templates(rt.db)
            if args.json:
                print(json.dumps([v.as_dict() for v in views], ensure_ascii=False))
            else:
                for v in views:
                    print(f"{v.key}\t{v.name}\t{' | '.join(v.sections)}")
                if not views:
                    print("report template: no templates; add one with `python -m core report template add FILE.md`",
                          file=sys.stderr)
            return EXIT_OK
        if remove_template(rt.db, args.key):
            print(f"report template: removed {args.key}", file=sys.stderr)
            return EXIT_OK
        print(f"report template: no template {args.key}", file=sys.stderr)
        return EXIT_FAIL
    finally:
        rt.close()


def resolve_type_arg(db, value: str | None) -> str | None:
    """The CLI's --type: a built-in type as it is, a template by its key or name as its key."""
    from core.reporting.custom_templates import find_key

    if not value:
        return value
    return find_key(db, value) or value


def write_pdf(view, out: str | None = None) -> Path:
    """The PDF of a completed report: `out`, or beside its HTML file."""
    from core.reporting.pdf import export_pdf, pdf_path

    return export_pdf(view.json_path, out or pdf_path(view.html_path))


def pdf_main(argv: Sequence[str]) -> int:
    from core.reporting.pdf import NoCjkFont
    from core.reporting.store import get_report, latest_report

    p = argparse.ArgumentParser(prog="python -m core report pdf",
                                description="Write a completed report as PDF (Chinese rendered with an embedded "
                                            "CJK font).")
    p.add_argument("id", help="a run id (its latest completed report) or a report id")
    p.add_argument("-o", "--output", default=None, help="the PDF file (default: beside the report's HTML file)")
    args = p.parse_args(list(argv))
    rt = _runtime()
    try:
        if not rt.db.ok:
            print(f"report pdf: {rt.db.error}", file=sys.stderr)
            return EXIT_FAIL
        view = get_report(rt.db, args.id) or latest_report(rt.db, args.id, completed=True)
        if view is None or view.status != "completed" or not view.json_path:
            print(f"report pdf: no completed report {args.id} (nor a run with one)", file=sys.stderr)
            return EXIT_FAIL
        try:
            path = write_pdf(view, args.output)
        except NoCjkFont as exc:
            print(f"report pdf: {exc}", file=sys.stderr)
            return EXIT_FAIL
        except (OSError, ValueError) as exc:
            print(f"report pdf: {exc}", file=sys.stderr)
            return EXIT_FAIL
        print(json.dumps({"report_id": view.id, "run_id": view.run_id, "pdf_path": str(path)}, ensure_ascii=False))
        return EXIT_OK
    finally:
        rt.close()


def route(argv: Sequence[str]) -> int | None:
    """`report template …` and `report pdf …` are handled here; None for everything else."""
    if len(argv) >= 2 and argv[0] == "report" and argv[1] == "template":
        return template_main(argv[2:])
    if len(argv) >= 2 and argv[0] == "report" and argv[1] == "pdf":
        return pdf_main(argv[2:])
    return None
