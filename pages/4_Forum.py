"""Forum: the engines' paragraph summaries and the host's moderation, as a live transcript."""
import streamlit as st

from ui.widgets import not_available, page_setup

rt = page_setup("Forum", "💬")
st.title("💬 Forum")
st.caption("Agents post their paragraph summaries here; a host moderates every few messages.")
not_available("The forum", "It arrives with the research engines: a live transcript with filters by source, "
              "host cadence, and import of a BettaFish logs folder.")
