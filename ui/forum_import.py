"""The Forum page's downloads (the whole transcript, built only when clicked) and its BettaFish import."""
from __future__ import annotations

import json
import tempfile
from functools import partial
from pathlib import Path

import streamlit as st

from core.discussion.bettafish_import import parse_bettafish_folder, store_forum_import
from core.discussion.metering import all_messages, forum_metering, metering_csv, metering_of
from core.forum import forum_line
from core.infra.db import Database
from core.infra.filenames import download_name
from core.runtime import Runtime
from core.work.runs import RunView

from .access import server_path_import_allowed
from .i18n import show, t, zone
from .widgets import admin_unlocked, run_from_link

IMPORT_FILES = ("insight.log", "media.log", "query.log", "forum.log")  # forum.log: the host's speeches
MAX_WARNINGS_SHOWN = 20


# ---------------------------------------------------------------------------------------- downloads


def forum_log_text(db: Database, run_id: str) -> str:
    """The whole transcript in BettaFish's forum.log format, one message per line."""
    return "".join(forum_line(m.source, m.content, m.timestamp) + "\n" for m in all_messages(db, run_id))


def transcript_json(db: Database, run_id: str, prices=None) -> str:
    """Every message (with its call's tokens, cost and latency) and the metering per speaker and round."""
    messages = list(all_messages(db, run_id, prices))
    return json.dumps({"run_id": run_id, "messages": [m.as_dict() for m in messages],
                       "metering": metering_of(run_id, messages).as_dict()}, ensure_ascii=False, indent=2)


def metering_csv_text(db: Database, run_id: str, prices=None) -> str:
    return metering_csv(forum_metering(db, run_id, prices))


def download_buttons(db: Database, run: RunView | None, run_id: str, key: str, prices=None) -> None:
    """Built only when clicked (deferred data), so a long transcript costs nothing per rerun. Named
    `<topic>-<date>-forum.<ext>` (core.infra.filenames)."""
    topic, when = (run.topic, run.created_at) if run is not None else ("", None)
    c1, c2, c3, _ = st.columns([1, 1, 1, 2])
    c1.download_button(t("forum.download_log"), data=partial(forum_log_text, db, run_id),
                       file_name=download_name(topic, when, "forum", "log"), mime="text/plain",
                       key=f"{key}_dl_log", on_click="ignore")
    c2.download_button(t("forum.download_json"), data=partial(transcript_json, db, run_id, prices),
                       file_name=download_name(topic, when, "forum", "json"), mime="application/json",
                       key=f"{key}_dl_json", on_click="ignore")
    c3.download_button(t("metering.download_csv"), data=partial(metering_csv_text, db, run_id, prices),
                       file_name=download_name(topic, when, "forum-metering", "csv"), mime="text/csv",
                       key=f"{key}_dl_metering", on_click="ignore")


# ---------------------------------------------------------------------------------------- import


def saved_uploads(files, folder: Path) -> tuple[list[str], list[str]]:
    """Write uploaded engine logs into `folder` under their BettaFish names; others are refused."""
    saved, refused = [], []
    for f in files or []:
        name = Path(f.name).name.lower()
        if name in IMPORT_FILES and name not in saved:
            (folder / name).write_bytes(f.getvalue())
            saved.append(name)
        else:
            refused.append(f.name)
    return saved, refused


def run_import(rt: Runtime, folder: Path, label: str, notes: list[str] | None = None) -> None:
    """Parse, report warnings and errors, store when there are messages, then switch the page to the run."""
    result = parse_bettafish_folder(folder)
    warnings = [*(notes or []), *(show(w) for w in result.warnings)]
    messages = result.messages
    if result.error is not None:
        st.error(t("forum.import_failed", error=show(result.error)))
    if not messages:
        show_warnings(warnings)
        if result.error is None:
            st.warning(t("forum.import_nothing", folder=folder))
        return
    # the log's times are read in the zone this page shows times in, so each message keeps its log time
    run_id = store_forum_import(rt.db, rt.events, result, label or t("forum.import_label_default", folder=folder),
                                zone())
    st.session_state["forum_pending_run"] = run_id
    st.session_state["forum_flash"] = (t("forum.imported", n=len(messages), run_id=run_id), warnings)
    st.rerun()


def show_warnings(warnings: list[str]) -> None:
    for w in warnings[:MAX_WARNINGS_SHOWN]:
        st.warning(w)
    if len(warnings) > MAX_WARNINGS_SHOWN:
        st.caption(t("forum.more_warnings", n=len(warnings) - MAX_WARNINGS_SHOWN))


def import_section(rt: Runtime) -> None:
    st.caption(t("forum.import_intro"))
    if not admin_unlocked(rt, "forum_import"):
        return
    folder = ""
    if server_path_import_allowed(rt):
        folder = st.text_input(t("forum.import_folder"), key="forum_import_dir",
                               placeholder="/path/to/BettaFish/logs")
    else:
        st.caption(t("forum.server_path_off"))
    uploads = st.file_uploader(t("forum.import_upload"), type=["log"], accept_multiple_files=True,
                               key="forum_import_files", help=t("forum.import_upload_help"))
    label = st.text_input(t("forum.import_label"), key="forum_import_label")
    if not st.button(t("forum.import_go"), key="forum_import_go"):
        return
    if uploads:
        with tempfile.TemporaryDirectory(prefix="shoal-bettafish-") as tmp:
            saved, refused = saved_uploads(uploads, Path(tmp))
            notes = [t("forum.import_ignored", name=name, files=", ".join(IMPORT_FILES)) for name in refused]
            if not saved:
                show_warnings(notes)
                st.error(t("forum.import_none_valid"))
                return
            run_import(rt, Path(tmp), label.strip() or t("forum.import_label_uploaded"), notes)
    elif folder.strip():
        run_import(rt, Path(folder.strip()).expanduser(), label.strip())
    else:
        st.warning(t("forum.import_need_input") if server_path_import_allowed(rt) else t("forum.import_need_upload"))


def take_pending_switch() -> None:
    """Before the picker's widgets exist: open the run an import just created, and say so."""
    # an import just made, else a run a link asked for (Home's "open the forum of this run": ?run=<id>)
    pending = st.session_state.pop("forum_pending_run", None) or run_from_link()
    if pending:
        st.session_state["forum_follow"] = False
        st.session_state["forum_run"] = pending
    flash = st.session_state.pop("forum_flash", None)
    if flash:
        text, warnings = flash
        st.success(text)
        show_warnings(warnings)
