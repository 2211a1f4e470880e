"""`python -m core plan TOPIC`: each engine's planned paragraphs before a run, and the plan file that
`python -m core run TOPIC --plan FILE` reads (core.research.plan has the format).

    python -m core plan 新能源汽车价格战 --json > plan.json   # edit the titles and briefs, then
    python -m core run 新能源汽车价格战 --plan plan.json
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2
MAX_PLAN_FILE_BYTES = 1_000_000


class PlanFileError(ValueError):
    """A plan file that cannot be read; the message names the file and why."""


def load_plan_file(path: str) -> dict:
    """The JSON of a plan file ("-": stdin). Validation against the run is start_analysis's (PlanError)."""
    try:
        text = sys.stdin.read(MAX_PLAN_FILE_BYTES + 1) if path == "-" else \
            Path(path).read_text(encoding="utf-8")[: MAX_PLAN_FILE_BYTES + 1]
    except (OSError, UnicodeDecodeError) as exc:
        raise PlanFileError(f"cannot read the plan file {path}: {exc}") from exc
    if len(text) > MAX_PLAN_FILE_BYTES:
        raise PlanFileError(f"the plan file {path} is over {MAX_PLAN_FILE_BYTES:,} bytes; a plan is a few titles")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PlanFileError(f"the plan file {path} is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise PlanFileError(f"the plan file {path} is not a JSON object (python -m core plan TOPIC --json writes one)")
    return data


def cmd_plan(args) -> int:
    from core.analysis import TopicError
    from core.infra.config import load_settings
    from core.research.plan_preview import preview_plan
    from core.runtime import build_runtime

    settings = load_settings()
    if args.offline:
        settings.values["SHOAL_MODE"] = "offline"
    rt = build_runtime(settings=settings, start_supervisor=False, console_log=False)
    try:
        if not rt.db.ok:
            print(f"plan: {rt.db.error}", file=sys.stderr)
            return EXIT_FAIL
        plan = preview_plan(rt.db, settings, args.topic, args.engines, paragraphs=args.paragraphs,
                            offline=args.offline, events=rt.events)
    except (TopicError, ValueError) as exc:
        print(f"plan: {exc}", file=sys.stderr)
        return EXIT_USAGE
    finally:
        rt.close()
    if args.json:
        print(json.dumps(plan.to_json(), ensure_ascii=False, indent=2))
    else:
        for e in plan.engines:
            print(f"{e.engine} ({e.mode}, {e.provider}, {e.sources} sources on topic)")
            if e.error or e.nothing_on_topic:
                print(f"  no plan: {e.error or 'nothing this engine reads is about the topic'}")
            for p in e.paragraphs:
                print(f"  {p.index + 1}. {p.title}\n     {p.brief}")
    return EXIT_OK if plan.planned else EXIT_FAIL
