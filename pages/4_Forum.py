"""Forum: the engines' paragraph summaries and the host's moderation, as a live transcript."""
import streamlit as st

from ui.forum_view import import_section, pick_run, run_caption, show_transcript, take_pending_switch
from ui.widgets import page_setup

rt = page_setup("Forum", "💬")
st.title("💬 Forum")
st.caption("Agents post their paragraph summaries here; a host moderates every few messages.")

if rt.db.ok:
    take_pending_switch()
    run, run_id, following = pick_run(rt)
    if run_id is None:
        st.info("**No forum transcript yet.** Messages appear here while an analysis runs: start one on the "
                "Home page, and each engine posts a summary as it finishes a paragraph. You can also import a "
                "BettaFish logs folder below.", icon="💬")
    else:
        st.markdown(run_caption(run, run_id, following))
        live_host = run is None or run.kind != "forum_import"
        if not live_host:
            st.caption("An imported BettaFish transcript: no live host moderates it.")
        show_transcript("forum_feed", run_id, host_every=int(rt.settings["FORUM_HOST_EVERY"]), live_host=live_host,
                        follow=following)
    with st.expander("Import a BettaFish logs folder", expanded=run_id is None):
        import_section(rt)
