"""The Forum page's chat input: the analyst posts to the run the page shows (core.forum.Forum.post_human).

Only an analysis run that has not ended takes messages; for any other the input is shown disabled
with the reason. Posting steers the analysis, so it is a control action (ui.access.has_control).
A refused message (empty, too long, the run just ended) is said in the reader's language; the
typed text is then shown back so nothing is lost.
"""
from __future__ import annotations

import streamlit as st

from core.forum import MAX_HUMAN_CHARS, Forum, HumanPostError
from core.runtime import Runtime
from core.work.runs import RunView
from core.work.states import RunState

from .access import has_control
from .i18n import show, status_label, t

INPUT_KEY = "forum_human_input"


def disabled_reason(rt: Runtime, run: RunView | None) -> str | None:
    """Why this session cannot post to ``run`` now; None when it can."""
    if run is None or run.kind != "analysis":
        return t("forum_human.not_analysis")
    if run.status not in (RunState.QUEUED, RunState.RUNNING):
        return t("forum_human.ended", status=status_label(run.status))
    if not has_control(rt):
        return t("forum_human.no_control")
    return None


def chat_box(rt: Runtime, run: RunView | None) -> None:
    """The chat input under the transcript, and what became of the last message."""
    why = disabled_reason(rt, run)
    text = st.chat_input(why or t("forum_human.placeholder"), key=INPUT_KEY, max_chars=MAX_HUMAN_CHARS,
                         disabled=why is not None)
    if why is None:
        st.caption(t("forum_human.hint"))
    if not text or run is None or why is not None:
        return
    forum = Forum(rt.db, rt.events, rt.settings.log_dir, host_every=int(rt.settings["FORUM_HOST_EVERY"]))
    try:
        view = forum.post_human(run.id, text)
    except HumanPostError as exc:
        st.error(show(exc.msg), icon="✋")
        st.code(text, language=None)  # what was typed, to copy and post again
        return
    st.success(t("forum_human.posted", id=view.id), icon="🧑‍💼")
