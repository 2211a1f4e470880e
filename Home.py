"""Shoal's entry script (`streamlit run Home.py`): the sidebar's pages, named in the reader's
language (ui/navigation.py). The Home page itself is pages/0_Start.py."""
from ui.navigation import run

run()
