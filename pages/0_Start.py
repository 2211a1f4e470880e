"""Shoal — start an analysis, see the current run, system health and recent runs (panels: ui/home_view.py)."""
from ui.home_view import render
from ui.i18n import t
from ui.widgets import page_setup

render(page_setup(t("home.page_title")))
