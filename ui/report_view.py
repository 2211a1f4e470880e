"""The Report page's components: reports of a run, generate and cancel, the live stage and event
log, a preview, downloads, and the history across runs.

The report's content comes from the web, the corpus and LLMs: it is untrusted. The report engine
sanitises it and its HTML file carries a CSP, but the page still never gives it script access to
the app (DESIGN §7: `st.components.v1.html` and `st.iframe` are same-origin, not a sandbox):

- The preview is drawn from the report's JSON document (core.reporting.types.ReportDocument), never
  from its HTML file: core.reporting.render.preview_parts renders the masthead, banners, tiles,
  sections, sources and provenance with the report's own templates, then through the one
  sanitiser (core.reporting.sanitise). It goes through `st.html` WITHOUT
  `unsafe_allow_javascript`: Streamlit renders it in the page (not in an iframe) after DOMPurify
  with its `html` profile. A small stylesheet, every rule scoped to the preview's wrapper, styles it.
- The charts (inline SVG in the document, which DOMPurify's html profile would strip) are shown
  with `st.image`: an SVG in an <img> (a data: URI) is never scripted and never fetches anything.
- The Markdown tab is `st.markdown` without `unsafe_allow_html`.

Above the preview, a caption gives the claims check's count (the document's `claims_count`): how
many sentences state a figure, date, name or quote, and how many of them the cited sources or the
report's statistics support; the preview keeps the report's `<mark class="unsupported">` highlights.

Every text of the page comes from the `[report]` catalogue table (ui.i18n.t), in the reader's
language; the report itself (preview, Markdown) is in the language it was written in, which the
page names above the preview. Downloads are named `<topic>-<date>-report.<ext>`
(core.infra.filenames.download_name).

The live panel is `render_live`, a plain function wrapped by a `run_every` fragment only while the
selected report is still open; it reads the report's events after a cursor kept in session state,
into a bounded buffer.
"""
from __future__ import annotations

import re
import time
from collections import deque
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import pandas as pd
import streamlit as st

from core import report as rep
from core.i18n import LANGUAGE_NAMES, tr
from core.infra.clock import as_zone
from core.infra.events import EventLog
from core.infra.filenames import download_name
from core.reporting.charts import image_svg
from core.reporting.render import preview_parts
from core.reporting.types import AUTO, REPORT_TYPES, ReportDocument
from core.work.runs import RunView, get_job, list_runs
from core.runtime import Runtime

from .runtime import get_runtime
from .report_templates import custom_label, template_names, templates_panel
from .access import allow_run_start, count_run_start
from .i18n import lang, show as show_msg, status_label, t, zone
from .widgets import BADGE_COLORS, admin_unlocked, fmt_time, outcome_notice, run_picker

KEY = "report"
EVENT_BUFFER = 200   # report events kept per session and shown
EVENT_BATCH = 500    # events read per refresh at most (the next refresh goes on from the cursor)
HISTORY_LIMIT = 50   # reports listed across runs
FLASH_SECONDS = 10.0  # how long the outcome of Generate or Cancel stays on the page
TYPE_OPTIONS = [AUTO, *REPORT_TYPES]
LANGUAGE_OPTIONS = list(rep.LANGUAGE_CHOICES)  # auto, zh, en
REPORT_BADGES = {**BADGE_COLORS, "error": "red", "cancelled": "violet", "pending": "gray", "running": "blue",
                 "completed": "green"}
DOWNLOADS = (("html", "HTML", "text/html"), ("md", "Markdown", "text/markdown"), ("json", "JSON", "application/json"))
PREVIEW_CSS = """<style>
.shoal-report { line-height: 1.6; }
.shoal-report .meta span { margin-right: 1.2em; color: #6b7280; font-size: 0.9em; }
.shoal-report .banner { border-left: 4px solid #d97706; background: rgba(217, 119, 6, 0.08);
  padding: 0.6em 1em; margin: 0.8em 0; border-radius: 4px; }
.shoal-report .notices { border-left: 4px solid #6b7280; background: rgba(107, 114, 128, 0.08);
  padding: 0.6em 1em; margin: 0.8em 0; border-radius: 4px; }
.shoal-report .tiles { display: flex; flex-wrap: wrap; gap: 0.8em; }
.shoal-report .tile { border: 1px solid rgba(128, 128, 128, 0.35); border-radius: 6px; padding: 0.4em 0.9em;
  min-width: 7em; }
.shoal-report .tile b { display: block; font-size: 1.4em; }
.shoal-report .tile span { color: #6b7280; font-size: 0.85em; }
.shoal-report .badge { font-size: 0.6em; margin-left: 0.6em; padding: 0.1em 0.5em; border-radius: 4px;
  background: rgba(220, 38, 38, 0.12); color: #b91c1c; vertical-align: middle; }
.shoal-report .badge.empty { background: rgba(107, 114, 128, 0.12); color: #4b5563; }
.shoal-report .section-note { color: #b45309; }
.shoal-report .banner.coverage { border-left-color: #dc2626; background: rgba(220, 38, 38, 0.08); }
.shoal-report .claims-summary { font-weight: 600; }
.shoal-report mark.unsupported { background: rgba(250, 204, 21, 0.35); color: inherit; border-bottom: 2px dotted #d97706; }
.shoal-report mark.unsupported .tag { font-size: 0.7em; margin-left: 0.3em; padding: 0 0.3em; border-radius: 3px;
  background: #d97706; color: #fff; }
.shoal-report .prov, .shoal-report .src-meta, .shoal-report footer { color: #6b7280; font-size: 0.85em; }
.shoal-report ol.sources li { margin-bottom: 0.3em; overflow-wrap: anywhere; }
.shoal-report table.prov-table { border-collapse: collapse; font-size: 0.85em; }
.shoal-report .sec .body table { border-collapse: collapse; margin: 0.6em 0; }
.shoal-report .sec .body th, .shoal-report .sec .body td { border: 1px solid rgba(128, 128, 128, 0.35);
  padding: 0.2em 0.5em; }
.shoal-report table.prov-table th, .shoal-report table.prov-table td { border: 1px solid rgba(128, 128, 128, 0.35);
  padding: 0.2em 0.5em; }
</style>"""

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:])")


def md_escape(text: str | None) -> str:
    """Untrusted text inside Markdown: shown as typed (no links, no emphasis, no LaTeX)."""
    return _MD_SPECIAL.sub(r"\\\1", " ".join(str(text or "").split()))


def report_status(status: str) -> str:
    """A Report row's status in words (its `error` is the report's own; the rest are job statuses)."""
    return t("report.status_error") if status == rep.R_ERROR else status_label(status)


def report_badge(status: str) -> str:
    return f":{REPORT_BADGES.get(status, 'gray')}-badge[{report_status(status)}]"


def stage_label(stage: str) -> str:
    return t(f"report.stage_{stage.replace(' ', '_')}") if stage in (*rep.STAGES, rep.STAGE_DONE) else stage


def type_label(key: str | None, language: str | None = None) -> str:
    language = language or lang()
    if not key or key == AUTO:
        return tr(language, "report.type_auto") if key == AUTO else "—"
    rtype = REPORT_TYPES.get(key)
    return rtype.name(language == "zh") if rtype else (custom_label(key, language) or key)  # a user's template


def kind_label(partial_report: bool) -> str:
    return t("report.kind_partial") if partial_report else t("report.kind_full")


def report_label(v: rep.ReportView) -> str:
    rtype = type_label(v.report_type) if v.report_type else t("report.type_pending")
    return f"{fmt_time(v.created_at)} · {report_status(v.status)} · {rtype} · {kind_label(v.partial)} · {v.id}"


REPORT_COLUMNS = ("created", "status", "stage", "progress", "type", "partial", "title", "report")


def reports_frame(views: list[rep.ReportView], topics: dict[str, str] | None = None) -> pd.DataFrame:
    """The table's columns keep their keys (tests and exports read them); their headings are translated
    by `columns()`. Statuses, stages and types are shown in words."""
    rows = []
    for v in views:
        row = {"created": fmt_time(v.created_at), "status": report_status(v.status), "stage": stage_label(v.stage),
               "progress": v.progress, "type": type_label(v.report_type) if v.report_type else "",
               "partial": v.partial, "title": v.title, "report": v.id}
        if topics is not None:
            row = {"run": v.run_id, "topic": topics.get(v.run_id, ""), **row}
        rows.append(row)
    return pd.DataFrame(rows)


def columns(*names: str) -> dict:
    """Translated headings for a table's columns (the progress column drawn as a bar)."""
    config: dict = {n: st.column_config.Column(t(f"report.col_{n}")) for n in names}
    if "progress" in names:
        config["progress"] = st.column_config.ProgressColumn(t("report.col_progress"), min_value=0.0, max_value=1.0)
    return config


# ---------------------------------------------------------------------------------------- live panel


@dataclass
class ReportFeed:
    """One report's event cursor and bounded buffer, kept in session state."""
    run_id: str
    report_id: str
    maxlen: int = EVENT_BUFFER
    cursor: int = 0
    buffer: deque = field(default_factory=deque)
    polls: int = 0

    def __post_init__(self):
        self.buffer = deque(self.buffer, maxlen=self.maxlen)

    def poll(self, events: EventLog) -> int:
        """Read this report's events after the cursor (one bounded read); returns how many were new."""
        self.polls += 1
        rows, self.cursor = rep.report_events(events, self.run_id, self.cursor, report_id=self.report_id,
                                              limit=EVENT_BATCH)
        self.buffer.extend(rows)
        return len(rows)


def feed_for(key: str, run_id: str, report_id: str) -> ReportFeed:
    feed = st.session_state.get(key)
    if not isinstance(feed, ReportFeed) or feed.report_id != report_id or feed.run_id != run_id:
        feed = ReportFeed(run_id=run_id, report_id=report_id)
        st.session_state[key] = feed
    return feed


def event_detail(payload: dict) -> str:
    p = {k: v for k, v in (payload or {}).items() if k != "report_id" and v not in (None, "", [], {})}
    if "sections" in p and isinstance(p["sections"], list):
        p["sections"] = f"{len(p['sections'])} sections"
    text = ", ".join(f"{k}={v}" for k, v in list(p.items())[:6])
    return text[:240]


def stage_line(view: rep.ReportView) -> str:
    """The stages in order, the current one in bold."""
    if view.stage == rep.STAGE_DONE:
        return " → ".join(stage_label(s) for s in rep.STAGES) + f" → **{stage_label(rep.STAGE_DONE)}**"
    return " → ".join(f"**{stage_label(s)}**" if s == view.stage else stage_label(s) for s in rep.STAGES)


def job_message(db, report_id: str) -> str:
    """What the report's job says it is doing now (a typed message in the reader's language)."""
    job_id = rep.report_job_id(db, report_id)
    job = get_job(db, job_id) if job_id else None
    return show_msg(job.message) if job is not None and job.message else ""


def render_live(key: str, run_id: str, report_id: str, *, shown_status: str | None = None,
                can_cancel: bool = False) -> None:
    """Body of the live panel: status, stage, progress, Cancel, and the report's events by cursor.

    When `shown_status` is given (the status the rest of the page was drawn for) and the report has
    moved on, the whole page reruns so the preview and downloads follow."""
    rt = get_runtime()
    if not rt.db.ok:
        st.caption(t("report.no_db"))
        return
    view = rep.get_report(rt.db, report_id)
    if view is None:
        st.caption(t("report.gone"))
        return
    if shown_status is not None and view.status != shown_status:
        st.rerun()
    c1, c2 = st.columns([5, 1])
    rtype = type_label(view.report_type) if view.report_type else t("report.type_not_chosen")
    c1.markdown(t("report.live_line", badge=report_badge(view.status), stage=stage_label(view.stage),
                  kind=kind_label(view.partial), type=rtype, updated=fmt_time(view.updated_at)))
    if c2.button(t("report.cancel"), key=f"{key}_cancel", disabled=view.done or not can_cancel or rt.supervisor is None,
                 help=t("report.cancel_help") if can_cancel else t("report.cancel_locked")):
        try:
            status = rep.cancel_report(rt.supervisor, report_id)
        except rep.ReportError as exc:
            st.error(t("report.cancel_failed", error=md_escape(str(exc))))
        else:
            flash(t("report.cancelled_flash", id=report_id, status=report_status(status)))
            st.rerun()
    st.progress(min(1.0, max(0.0, view.progress)), text=f"{stage_label(view.stage)} · {view.progress:.0%}")
    st.caption(stage_line(view))
    if not view.done:
        message = job_message(rt.db, report_id)
        if message:
            st.caption(t("report.job_message", message=md_escape(message)))
    if view.error:
        st.error(t("report.not_written" if view.status == rep.R_ERROR else "report.problem",
                   error=md_escape(view.error)))
    feed = feed_for(key, run_id, report_id)
    feed.poll(rt.events)
    if not feed.buffer:
        st.caption(t("report.no_events"))
        return
    rows = [{"id": e.id, "time": fmt_time(e.ts, with_date=False), "event": e.type, "detail": event_detail(e.payload)}
            for e in reversed(feed.buffer)]
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch", height=min(36 * (len(rows) + 1) + 2, 320),
                 column_config=columns("id", "time", "event", "detail"))
    st.caption(t("report.events_caption", cursor=feed.cursor, shown=len(feed.buffer), kept=feed.maxlen))


@st.fragment(run_every=2)
def live_report(key: str, run_id: str, report_id: str, shown_status: str | None = None,
                can_cancel: bool = False) -> None:
    render_live(key, run_id, report_id, shown_status=shown_status, can_cancel=can_cancel)


# ---------------------------------------------------------------------------------------- preview


def wrap(fragment: str) -> str:
    return f'{PREVIEW_CSS}<div class="shoal-report">{fragment}</div>'


def read_text(path: str | None) -> str | None:
    if not path:
        return None
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError:
        return None


def missing_files(view: rep.ReportView) -> list[str]:
    return [label for kind, label, _ in DOWNLOADS
            if not getattr(view, f"{kind}_path") or not Path(getattr(view, f"{kind}_path")).is_file()]


def claims_caption(counts: dict | None) -> str | None:
    if not counts or "total" not in counts:
        return None
    total, supported = int(counts["total"]), int(counts.get("supported", 0))
    if total == supported:
        return "✅ " + t("report.claims_all", total=total, supported=supported)
    return "⚠️ " + t("report.claims_some", total=total, supported=supported, unsupported=total - supported)


def load_document(view: rep.ReportView) -> ReportDocument | None:
    """The report's JSON document, or None when its file is missing or unreadable."""
    text = read_text(view.json_path)
    if text is None:
        return None
    try:
        return ReportDocument.from_json(text)
    except ValueError:
        return None


def language_caption(doc: ReportDocument) -> str:
    """The language the report was written in, and whether the reader chose it."""
    code = str(doc.report.get("language") or ("zh" if doc.zh else "en"))
    by = doc.report.get("language_by")
    how = t(f"report.written_by_{by}") if by in ("user", "setting", "topic") else ""
    return t("report.written_in", language=LANGUAGE_NAMES.get(code, code), how=how)


def render_preview(view: rep.ReportView) -> None:
    tab_html, tab_md = st.tabs([t("report.tab_preview"), t("report.tab_markdown")])
    with tab_html:
        doc = load_document(view)
        if doc is None:
            st.warning(t("report.json_unreadable"))
        else:
            st.caption(language_caption(doc))
            caption = claims_caption(doc.claims_count)
            if caption:
                st.caption(caption)
            parts = preview_parts(doc)
            st.caption(t("report.sanitised"))
            if parts.head.strip():
                st.html(wrap(parts.head))
            if parts.charts:
                cols = st.columns(2)
                for i, (caption, svg) in enumerate(parts.charts):
                    with cols[i % 2]:
                        st.image(image_svg(svg), caption=md_escape(caption) or None, width="stretch",
                                 alt=caption or t("report.chart"))
            if parts.body.strip():
                st.html(wrap(parts.body))
    with tab_md:
        md = read_text(view.md_path)
        if md is None:
            st.warning(t("report.md_missing"))
        else:
            st.markdown(md.replace("$", "\\$"))


def read_bytes(path: str) -> bytes:
    return Path(path).read_bytes()


def file_name(view: rep.ReportView, topic: str, ext: str) -> str:
    """`<topic>-<date>-report.<ext>`: the date the report was written, in the page's time zone."""
    return download_name(topic, as_zone(view.created_at, zone()) if view.created_at else None, "report", ext)


def render_downloads(view: rep.ReportView, topic: str) -> None:
    """Built from the files only when a download is clicked (deferred data)."""
    missing = missing_files(view)
    if missing:
        st.warning(t("report.files_missing", files=", ".join(missing)))
    cols = st.columns(len(DOWNLOADS) + 2)
    for col, (kind, label, mime) in zip(cols, DOWNLOADS):
        path = getattr(view, f"{kind}_path")
        if label in missing:
            continue
        col.download_button(t("report.download", label=label), data=partial(read_bytes, path),
                            file_name=file_name(view, topic, kind), mime=mime, key=f"{KEY}_dl_{kind}",
                            on_click="ignore")
    pdf_button(cols[len(DOWNLOADS)], view, topic, "JSON" in missing)


def pdf_button(col, view: rep.ReportView, topic: str, no_document: bool) -> None:
    """The PDF, drawn from the report's JSON document when clicked (core/reporting/pdf.py)."""
    from core.reporting.pdf import NoCjkFont, document_pdf, find_cjk_font

    if no_document:
        return
    try:
        find_cjk_font()
    except NoCjkFont as exc:
        st.caption(t("report_extras.pdf_no_font", error=md_escape(str(exc))))
        return
    col.download_button(t("report_extras.pdf_download"), data=partial(document_pdf, view.json_path),
                        file_name=file_name(view, topic, "pdf"), mime="application/pdf", key=f"{KEY}_dl_pdf",
                        on_click="ignore", help=t("report_extras.pdf_help"))


# ---------------------------------------------------------------------------------------- page


def flash(text: str) -> None:
    """A message for the next runs of the page (an action reruns it, and so may the live panel)."""
    st.session_state[f"{KEY}_flash"] = (text, time.monotonic() + FLASH_SECONDS)


def show_flash() -> None:
    entry = st.session_state.get(f"{KEY}_flash")
    if not entry:
        return
    text, until = entry
    if time.monotonic() < until:
        st.success(text)
    else:
        st.session_state.pop(f"{KEY}_flash", None)


def missing_notice(rt: Runtime, run: RunView) -> bool:
    """Say what the run's engines still lack; returns True when a full report can be written now."""
    try:
        inputs = rep.report_inputs(rt.db, run.id)
    except rep.ReportError as exc:
        st.error(md_escape(str(exc)))
        return False
    missing = rep.missing_msgs(inputs)
    engines_missing = [md_escape(show_msg(m)) for m in missing if not rep.is_forum_gap(m)]
    forum_missing = [md_escape(show_msg(m)) for m in missing if rep.is_forum_gap(m)]
    ready = rep.inputs_ready(inputs)
    if not ready:
        st.warning(t("report.not_ready") + "\n\n" + "\n".join(f"- {m}" for m in engines_missing)
                   + "\n\n" + t("report.not_ready_hint"), icon="⏳")
    elif engines_missing or forum_missing:
        st.caption(t("report.inputs_line", items="; ".join(engines_missing + forum_missing)))
    return ready


def default_language(rt: Runtime, run: RunView) -> str:
    """The language a report of this run gets without a choice: the setting's, else the topic's."""
    return rep.report_language(run.topic, str(rt.settings.get("SHOAL_REPORT_LANGUAGE", "auto")))


def generate_controls(rt: Runtime, run: RunView, ready: bool, unlocked: bool) -> None:
    st.subheader(t("report.generate_heading"))
    c1, c2, c3, c4 = st.columns([2, 2, 2, 1])
    # option labels are fixed now, in this reader's language: a format_func may be called outside the run
    reader = lang()
    type_names = {k: type_label(k, reader) for k in [*TYPE_OPTIONS, *template_names(rt)]}  # + users' templates
    rtype = c1.selectbox(t("report.type_label"), list(type_names), format_func=type_names.get,
                         key=f"{KEY}_type")
    auto_name = LANGUAGE_NAMES[default_language(rt, run)]
    names = {c: tr(reader, "report.language_auto", name=auto_name) if c == "auto" else LANGUAGE_NAMES[c]
             for c in LANGUAGE_OPTIONS}
    language = c2.selectbox(t("report.language_label"), LANGUAGE_OPTIONS, key=f"{KEY}_language_{run.id}",
                            format_func=names.get, help=t("report.language_help"))
    partial_report = c3.checkbox(t("report.partial_label"), value=not ready, key=f"{KEY}_partial_{run.id}",
                                 help=t("report.partial_help"))
    c3.caption(t("report.partial_on") if partial_report else t("report.partial_off"))
    disabled = rt.supervisor is None or not unlocked
    if c4.button(t("report.generate"), type="primary", key=f"{KEY}_generate", disabled=disabled) \
            and allow_run_start(rt):
        try:
            rid = rep.request_report(rt.supervisor, rt.db, run.id, partial=partial_report, report_type=rtype,
                                     language=language)
        except rep.ReportError as exc:
            st.error(t("report.generate_failed", error=md_escape(str(exc))))
        else:
            count_run_start()
            st.session_state[f"{KEY}_pick"] = rid  # the report list opens the new one
            name = auto_name if language == "auto" else LANGUAGE_NAMES[language]
            flash(t("report.queued", id=rid, kind=kind_label(partial_report), type=type_label(rtype), language=name))
            st.rerun()
    if rt.supervisor is None:
        st.caption(t("report.no_supervisor"))
    elif not unlocked:
        st.caption(t("report.locked"))


def pick_report(views: list[rep.ReportView]) -> rep.ReportView:
    ids = [v.id for v in views]
    if st.session_state.get(f"{KEY}_pick") not in ids:
        st.session_state.pop(f"{KEY}_pick", None)
    labels = {v.id: report_label(v) for v in views}
    chosen = st.selectbox(t("report.pick"), options=ids, format_func=labels.get, key=f"{KEY}_pick")
    return next(v for v in views if v.id == chosen)


def history(rt: Runtime) -> None:
    with st.expander(t("report.history")):
        views = rep.list_reports(rt.db, None, limit=HISTORY_LIMIT)
        if not views:
            st.caption(t("report.no_history"))
            return
        topics = {r.id: r.topic for r in list_runs(rt.db, limit=200)}
        st.dataframe(reports_frame(views, topics), hide_index=True, width="stretch",
                     column_config=columns("run", "topic", *REPORT_COLUMNS))
        st.caption(t("report.history_caption", limit=HISTORY_LIMIT, keep=rep.KEEP_REPORTS))


def show(rt: Runtime) -> None:
    show_flash()
    template_names(rt)  # users' templates: their names in the type lists and labels
    run = run_picker(rt, key=f"{KEY}_run", kind="analysis", label=t("report.run"))
    if run is None:
        st.info(t("report.no_runs"), icon="📄")
        templates_panel(rt, admin_unlocked(rt, KEY))  # a template can be added before the first analysis
        history(rt)
        return
    mode = {"offline": t("report.mode_offline"), "llm": t("report.mode_llm")}.get(run.mode, run.mode)
    st.markdown(t("report.run_line", run=run.id, badge=report_badge(run.status), topic=md_escape(run.topic[:80]),
                  mode=mode, created=fmt_time(run.created_at)))
    outcome_notice(run)  # a failed report says the engines' work is intact and Generate retries it
    ready = missing_notice(rt, run)
    unlocked = admin_unlocked(rt, KEY)
    generate_controls(rt, run, ready, unlocked)
    templates_panel(rt, unlocked)

    st.subheader(t("report.reports_heading"))
    views = rep.list_reports(rt.db, run.id, limit=rep.KEEP_REPORTS)
    if not views:
        st.caption(t("report.no_reports"))
        history(rt)
        return
    st.dataframe(reports_frame(views), hide_index=True, width="stretch", column_config=columns(*REPORT_COLUMNS))
    view = pick_report(views)

    st.subheader(t("report.progress_heading"))
    if view.done:
        render_live(f"{KEY}_events", run.id, view.id, can_cancel=unlocked)
    else:
        live_report(f"{KEY}_events", run.id, view.id, view.status, unlocked)

    if view.status == rep.R_COMPLETED:
        st.subheader(t("report.downloads_heading"))
        render_downloads(view, run.topic)
        st.subheader(t("report.preview_heading"))
        if view.partial:
            st.caption(t("report.partial_caption"))
        render_preview(view)
    elif view.status in rep.REPORT_OPEN:
        st.caption(t("report.no_preview_yet"))
    history(rt)
