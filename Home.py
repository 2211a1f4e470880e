"""Shoal's entry script (`streamlit run Home.py`): the sidebar's pages, named in the reader's
language (ui/navigation.py). The Home page itself is pages/0_Start.py.

This file is read twice. `streamlit run` finds `app = st.App(...)` below and imports this file once
as a module (`Home`) when the server starts: the app's lifespan (ui/app_server.py) has the first
page's imports and the runtime prepared while the browser is still loading Streamlit's frontend
(ui/preload.py), and closes the runtime when the server stops. Each
script run executes it as `__main__`: it waits for that preparation, then builds the menu and runs
the page, then lets the text warm-up begin (held until a page has been shown).
"""
import streamlit as st

from ui import preload
from ui.app_server import lifespan
from ui.navigation import run

if __name__ == "__main__":  # a session's script run (and AppTest)
    preload.wait()
    try:
        run()
    finally:
        preload.page_shown()  # the text warm-up may load (after its start delay)
else:  # imported by `streamlit run` at server start
    app = st.App(__file__, lifespan=lifespan)
