"""The Data page's post browser: search (the engines' own BM25 ranking), platform filter, page size
and page navigation. One page is read at a time (core.corpus.browse.browse_posts)."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from core.corpus.browse import PAGE_SIZES, browse_posts
from core.corpus.search import MAX_CANDIDATES
from ui.i18n import fmt_time, t

QUERY, PLATFORM, SIZE, PAGE = "data_q", "data_platform", "data_page_size", "data_page"
EXCERPT_CHARS = 140
ALL = ""


def _first_page() -> None:
    st.session_state[PAGE] = 1


def _step(delta: int, pages: int) -> None:
    st.session_state[PAGE] = max(1, min(pages, int(st.session_state.get(PAGE, 1)) + delta))


def excerpt(title: str, content: str) -> str:
    text = " ".join(f"{title}\n{content}".split()) if title and not content.startswith(title) else \
        " ".join(content.split())
    return text if len(text) <= EXCERPT_CHARS else text[:EXCERPT_CHARS - 1] + "…"


def show_browser(rt, platforms: list[str]) -> None:
    st.subheader(t("data.browse_title"))
    c1, c2, c3 = st.columns([4, 2, 1])
    query = c1.text_input(t("data.search"), key=QUERY, placeholder=t("data.search_placeholder", example="新能源汽车 价格战"),
                          on_change=_first_page)
    everywhere = t("data.all_platforms")  # an option of its own (a format_func would not survive AppTest)
    platform = c2.selectbox(t("data.platform_filter"), [everywhere, *platforms], key=PLATFORM, on_change=_first_page)
    if platform == everywhere:
        platform = ALL
    size = c3.selectbox(t("data.page_size"), PAGE_SIZES, index=1, key=SIZE, on_change=_first_page)
    wanted = int(st.session_state.get(PAGE, 1) or 1)
    try:
        page = browse_posts(rt.db, query, platforms=[platform] if platform else None, page=wanted, page_size=size)
    except Exception as exc:  # noqa: BLE001 - a database hiccup is a message, not a traceback
        st.error(t("data.browse_failed", error=str(exc)[:300]))
        return
    if page.page != wanted:
        st.session_state[PAGE] = page.page  # past the end (fewer posts now): the last page
    searching = bool(query.strip())
    if not page.total:
        st.caption(t("data.no_match") if searching else t("data.no_posts"))
        return
    last = page.first + len(page.posts) - 1
    order = t("data.order_relevance") if searching else t("data.order_newest")
    st.caption(t("data.showing", first=page.first, last=last, total=page.total, order=order) +
               (" " + t("data.capped", n=MAX_CANDIDATES) if page.capped else ""))
    rows = [{"rank": page.first + i, "score": d.score if searching else None, "platform": d.platform,
             "time": fmt_time(d.published) if d.published else "—", "author": d.author, "kind": d.kind,
             "text": excerpt(d.title, d.content), "link": d.url or None} for i, d in enumerate(page.posts)]
    columns = {
        "rank": st.column_config.NumberColumn(t("data.col_rank"), width="small"),
        "score": st.column_config.NumberColumn(t("data.col_score"), format="%.3f", help=t("data.score_help")),
        "platform": st.column_config.TextColumn(t("data.col_platform")),
        "time": st.column_config.TextColumn(t("data.col_time")),
        "author": st.column_config.TextColumn(t("data.col_author")),
        "kind": st.column_config.TextColumn(t("data.col_kind")),
        "text": st.column_config.TextColumn(t("data.col_text"), width="large"),
        "link": st.column_config.LinkColumn(t("data.col_link"), display_text=t("data.open_link")),
    }
    frame = pd.DataFrame(rows)
    if not searching:
        frame = frame.drop(columns=["score"])
        columns.pop("score")
    st.dataframe(frame, hide_index=True, width="stretch", column_config=columns)
    n1, n2, n3 = st.columns([1, 2, 1])
    n1.button(t("data.prev_page"), key="data_prev", disabled=page.page <= 1, on_click=_step, args=(-1, page.pages))
    n2.number_input(t("data.page_of", pages=page.pages), min_value=1, max_value=page.pages, step=1, key=PAGE)
    n3.button(t("data.next_page"), key="data_next", disabled=page.page >= page.pages, on_click=_step,
              args=(1, page.pages))
