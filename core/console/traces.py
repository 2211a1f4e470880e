"""Everything for one trace id on one screen.

Trace ids nest: a run has one (`ab12...`), each job a child (`ab12....3f9a1c`), each node a
grandchild; a child id starts with its parent's. `trace_bundle` therefore matches by PREFIX:
the run's trace shows its jobs' and nodes' records too, a job's trace shows only that job.
A prefix match (`LIKE 'ab12%'`, never `'%ab12%'`) is served by each table's trace index
(core.infra.models: NOCASE on SQLite, so the match still ignores case).

    trace_bundle(db, trace_id, log_dir) -> {
        "trace_id", "runs", "jobs", "events", "llm_calls", "telemetry", "forum", "reports",  (DataFrames)
        "logs",            DataFrame of log entries (core.console.logview.ENTRY_COLUMNS)
        "counts",          rows per section
        "truncated",       section -> True when more rows matched than were kept
        "problems",        what could not be read, as core.i18n.Msg (a page renders it in the reader's language)
    }

Bounds: each database section keeps at most `limit` rows (oldest first; the newest when
truncated). Log lines come from an index-free scan of at most the last `max_log_bytes`
(default 8 MB) of each *.log file in `log_dir` (rotated .gz files are not read), keeping at
most `max_log_lines` lines; the same record written to app.log and to an engine's log shows
once. Never raises.
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import pandas as pd
from sqlalchemy import select

from core.i18n import Msg
from core.infra.db import Database
from core.console.logview import ENTRY_COLUMNS, scan_file_for
from core.infra.models import Event, ForumMessage, Job, LlmCall, Report, Run, TelemetryEvent
from core.console.usage import like_prefix
from core.infra.events import flush_queued

MAX_LOG_BYTES = 8 * 2**20
MIN_TRACE_CHARS = 4

_SECTIONS = {
    "runs": (Run, ["id", "kind", "status", "mode", "topic", "trace_id", "created_at", "started_at", "finished_at",
                   "error"], Run.created_at),
    "jobs": (Job, ["id", "run_id", "kind", "name", "status", "attempt", "progress", "stalled", "trace_id",
                   "started_at", "finished_at", "error"], Job.created_at),
    "events": (Event, ["id", "ts", "type", "source", "run_id", "job_id", "trace_id", "payload"], Event.id),
    "llm_calls": (LlmCall, ["id", "ts", "role", "model", "node", "status", "error_kind", "input_tokens",
                            "output_tokens", "latency_ms", "ttft_ms", "retries", "run_id", "job_id", "trace_id"],
                  LlmCall.id),
    "telemetry": (TelemetryEvent, ["id", "event_id", "ts", "type", "run_id", "session_id", "trace_id", "payload"],
                  TelemetryEvent.id),
    "forum": (ForumMessage, ["id", "timestamp", "source", "sender", "type", "paragraph", "round", "content",
                             "llm_call_id", "run_id", "trace_id"], ForumMessage.id),
    "reports": (Report, ["id", "run_id", "status", "stage", "progress", "partial", "title", "html_path", "error",
                         "trace_id", "updated_at"], Report.created_at),
}


def _empty_bundle(trace_id: str) -> dict:
    out = {name: pd.DataFrame(columns=cols) for name, (_, cols, _) in _SECTIONS.items()}
    out["logs"] = pd.DataFrame(columns=["file"] + [c for c in ENTRY_COLUMNS if c != "file"])
    out.update(trace_id=trace_id, counts={}, truncated={}, problems=[])
    return out


def trace_bundle(db: Database | None, trace_id: str, log_dir: str | Path | None, *, limit: int = 2000,
                 max_log_bytes: int = MAX_LOG_BYTES, max_log_lines: int = 2000) -> dict:
    trace_id = (trace_id or "").strip()
    out = _empty_bundle(trace_id)
    if len(trace_id) < MIN_TRACE_CHARS:
        out["problems"].append(Msg("monitor.trace_too_short", {"n": MIN_TRACE_CHARS}))
        return out
    pattern = like_prefix(trace_id)
    if db is not None:
        flush_queued(db)  # this process's queued events first: the bundle reads the tables directly
    if db is None:
        out["problems"].append(Msg("monitor.trace_no_database"))
    else:
        for name, (model, cols, order) in _SECTIONS.items():
            stmt = (select(*(getattr(model, c) for c in cols)).where(model.trace_id.like(pattern, escape="\\"))
                    .order_by(order.desc()).limit(limit + 1))
            try:
                with db.session() as s:
                    rows = s.execute(stmt).all()
            except Exception as exc:  # noqa: BLE001 - show the other sections
                out["problems"].append(Msg("monitor.trace_unreadable", {"what": Msg(f"monitor.section_{name}"),
                                                                        "error": type(exc).__name__}))
                continue
            out["truncated"][name] = len(rows) > limit
            out[name] = pd.DataFrame(list(reversed(rows[:limit])), columns=cols)
    if log_dir is not None:
        out["logs"], out["truncated"]["logs"], problems = _log_lines(Path(log_dir), trace_id, max_log_bytes,
                                                                     max_log_lines)
        out["problems"].extend(problems)
    else:
        out["problems"].append(Msg("monitor.trace_no_log_dir"))
    out["counts"] = {name: len(out[name]) for name in list(_SECTIONS) + ["logs"]}
    return out


def _log_lines(log_dir: Path, trace_id: str, max_bytes: int, max_lines: int) -> tuple[pd.DataFrame, bool, list[Msg]]:
    cols = ENTRY_COLUMNS
    if not log_dir.is_dir():
        return pd.DataFrame(columns=cols), False, [Msg("monitor.trace_no_log_folder", {"folder": str(log_dir)})]
    rows, truncated = [], False
    in_app: Counter[str] = Counter()
    files = sorted(log_dir.glob("*.log"), key=lambda p: (p.name != "app.log", p.name))
    for path in files:
        entries, cut = scan_file_for(path, trace_id, max_bytes=max_bytes, max_lines=max_lines)
        truncated = truncated or cut
        for e in entries:
            if path.name == "app.log":
                in_app[e.raw] += 1
            elif in_app[e.raw] > 0:
                in_app[e.raw] -= 1  # the same record in app.log and in its engine's log: shown once
                continue
            rows.append(e.as_dict())
    rows.sort(key=lambda r: (r["time"] or "", r["file"] != "app.log", r["seq"]))
    if len(rows) > max_lines:
        rows, truncated = rows[-max_lines:], True
    return pd.DataFrame(rows, columns=cols), truncated, []
