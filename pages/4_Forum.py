"""Forum: the engines' paragraph summaries and the host's moderation, a host round at a time."""
import streamlit as st

from ui.forum_human import chat_box
from ui.forum_import import import_section, take_pending_switch
from ui.forum_meter import show_metering
from ui.forum_view import pick_run, run_caption, show_transcript
from ui.i18n import t
from ui.widgets import page_setup

rt = page_setup(t("forum.title"), "💬")
st.title(f"💬 {t('forum.title')}")
st.caption(t("forum.intro"))

if rt.db.ok:
    take_pending_switch()
    run, run_id, following = pick_run(rt)
    if run_id is None:
        st.info(t("forum.empty"), icon="💬")
    else:
        st.markdown(run_caption(run, run_id, following))
        live_host = run is None or run.kind != "forum_import"
        if not live_host:
            st.caption(t("forum.imported_no_host"))
        chat_box(rt, run)
        show_transcript("forum_feed", run, run_id, host_every=int(rt.settings["FORUM_HOST_EVERY"]),
                        live_host=live_host, follow=following)
        show_metering(rt, run_id)
    with st.expander(t("forum.import_title"), expanded=run_id is None):
        import_section(rt)
