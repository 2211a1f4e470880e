"""Data: the local corpus the Insight engine (and offline search) reads."""
import pandas as pd
import streamlit as st

from core.corpus import corpus_stats
from ui.widgets import not_available, page_setup

rt = page_setup("Data", "🗄️")
st.title("🗄️ Data")
st.caption("The local corpus: posts and comments from Weibo, Douyin, Bilibili, Xiaohongshu, Zhihu, Tieba, Kuaishou.")

if rt.db.ok:
    stats = corpus_stats(rt.db)
    st.metric("Posts in the corpus", f"{stats.total:,}")
    if stats.by_platform_source:
        st.dataframe(pd.DataFrame(stats.by_platform_source, columns=["platform", "source", "posts"]), hide_index=True)
    else:
        st.caption("The corpus is empty.")
not_available("Importing data", "CSV/JSONL import, a MindSpider/MediaCrawler MySQL connection and the demo corpus "
              "arrive with the research engines.")
