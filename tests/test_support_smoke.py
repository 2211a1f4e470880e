"""The test supports themselves work: a real MariaDB, a real PostgreSQL and a real Streamlit in real Chromium."""
from __future__ import annotations

import textwrap
import time

import pytest
from sqlalchemy import create_engine, inspect, text

from tests.support import skip_or_fail
from tests.support.mariadb import mariadb_server_fixture
from tests.support.postgres import postgres_server_fixture
from tests.support.streamlit_server import (
    StreamlitServer,
    chromium_available,
    launch_chromium,
    wait_for_streamlit_idle,
)

# Shares the one per-process server with any fixture conftest.py makes the same way.
mariadb_server = mariadb_server_fixture()
postgres_server = postgres_server_fixture()

SAMPLE = "武汉大学舆情 🐟🔥 新能源汽车价格战 — ok"


@pytest.mark.mysql
@pytest.mark.timeout(120)
def test_mariadb_roundtrips_chinese_and_emoji(mariadb_server):
    main = create_engine(mariadb_server.url, pool_pre_ping=True)
    try:
        with main.connect() as conn:
            charset = conn.execute(text("SELECT @@character_set_database, @@character_set_connection")).one()
            assert tuple(charset) == ("utf8mb4", "utf8mb4"), charset
    finally:
        main.dispose()
    # The table goes in a database of its own: the main one is shared by the session.
    engine = create_engine(mariadb_server.fresh_database(), pool_pre_ping=True)
    try:
        with engine.begin() as conn:
            conn.execute(text(
                "CREATE TABLE probe (id INT PRIMARY KEY AUTO_INCREMENT, body TEXT NOT NULL) "
                "CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
            ))
            conn.execute(text("INSERT INTO probe (body) VALUES (:b)"), {"b": SAMPLE})
        with engine.connect() as conn:
            assert conn.execute(text("SELECT body FROM probe")).scalar_one() == SAMPLE
            # 4-byte characters really stored as such, not mangled to '?'
            assert conn.execute(text("SELECT CHAR_LENGTH(body) FROM probe")).scalar_one() == len(SAMPLE)
    finally:
        engine.dispose()


@pytest.mark.mysql
@pytest.mark.timeout(120)
def test_fresh_database_is_empty_and_isolated(mariadb_server):
    url_a = mariadb_server.fresh_database()
    url_b = mariadb_server.fresh_database()
    assert url_a != url_b
    engine_a, engine_b = create_engine(url_a), create_engine(url_b)
    try:
        with engine_a.begin() as conn:
            conn.execute(text("CREATE TABLE only_in_a (x INT)"))
            conn.execute(text("INSERT INTO only_in_a VALUES (1)"))
        assert inspect(engine_a).get_table_names() == ["only_in_a"]
        assert inspect(engine_b).get_table_names() == []
        with engine_b.connect() as conn:
            assert conn.execute(text("SELECT @@character_set_database")).scalar_one() == "utf8mb4"
    finally:
        engine_a.dispose()
        engine_b.dispose()
    # Reusing a name gives an empty database again.
    name = "shoal_reused"
    engine = create_engine(mariadb_server.fresh_database(name))
    try:
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE t (x INT)"))
    finally:
        engine.dispose()
    engine = create_engine(mariadb_server.fresh_database(name))
    try:
        assert inspect(engine).get_table_names() == []
    finally:
        engine.dispose()


@pytest.mark.postgres
@pytest.mark.timeout(120)
def test_postgres_fresh_databases_are_empty_isolated_utf8_and_own_port(postgres_server):
    url_a, url_b = postgres_server.fresh_database(), postgres_server.fresh_database()
    assert url_a != url_b
    if not postgres_server.external:  # its own cluster on a free port, never the system's 5432
        assert postgres_server.port != 5432 and str(postgres_server.tmpdir).count("shoal-postgres-") == 1
    engine_a, engine_b = create_engine(url_a), create_engine(url_b)
    try:
        with engine_a.begin() as conn:
            conn.execute(text("CREATE TABLE only_in_a (body TEXT NOT NULL)"))
            conn.execute(text("INSERT INTO only_in_a VALUES (:b)"), {"b": SAMPLE})
        with engine_a.connect() as conn:
            assert conn.execute(text("SELECT body FROM only_in_a")).scalar_one() == SAMPLE
            assert conn.execute(text("SELECT char_length(body) FROM only_in_a")).scalar_one() == len(SAMPLE)
            assert conn.execute(text("SHOW server_encoding")).scalar_one() == "UTF8"
        assert inspect(engine_a).get_table_names() == ["only_in_a"]
        assert inspect(engine_b).get_table_names() == []
    finally:
        engine_a.dispose()
        engine_b.dispose()


PROBE_APP = textwrap.dedent(
    """
    import streamlit as st

    st.title("探针 probe")
    if "count" not in st.session_state:
        st.session_state.count = 0
    if st.button("加一 increment"):
        st.session_state.count += 1
    st.write(f"count: {st.session_state.count}")
    """
)


@pytest.mark.e2e
@pytest.mark.slow
@pytest.mark.timeout(180)
def test_streamlit_in_chromium_clicks_and_rerenders(tmp_path):
    usable, reason = chromium_available()
    if not usable:
        skip_or_fail(reason)
    from playwright.sync_api import expect, sync_playwright

    script = tmp_path / "probe_app.py"
    script.write_text(PROBE_APP, encoding="utf-8")
    began = time.monotonic()
    server = StreamlitServer(script, cwd=tmp_path, log_path=tmp_path / "streamlit.log").start()
    try:
        with sync_playwright() as pw:
            browser = launch_chromium(pw)
            page = browser.new_page()
            try:
                page.goto(server.url, wait_until="domcontentloaded")
                wait_for_streamlit_idle(page, timeout=60)
                expect(page.get_by_role("heading", name="探针 probe")).to_be_visible()
                expect(page.get_by_text("count: 0")).to_be_visible()

                button = page.get_by_role("button", name="加一 increment")
                button.click()
                expect(page.get_by_text("count: 1")).to_be_visible(timeout=15_000)
                button.click()
                expect(page.get_by_text("count: 2")).to_be_visible(timeout=15_000)
                wait_for_streamlit_idle(page)
                # The Chinese title was laid out with a real CJK font (not tofu boxes of zero width).
                width = page.get_by_role("heading", name="探针 probe").evaluate(
                    "el => { const r = document.createRange(); r.selectNodeContents(el); "
                    "return r.getBoundingClientRect().width; }"
                )
                assert width > 50, width
            except Exception as exc:
                try:
                    page.screenshot(path=str(tmp_path / "failure.png"), full_page=True)
                except Exception:  # noqa: BLE001 - the original error matters more
                    pass
                raise AssertionError(
                    f"{type(exc).__name__}: {exc}\n(screenshot: {tmp_path / 'failure.png'})\n"
                    f"streamlit log:\n{server.log_text()}"
                ) from exc
            finally:
                browser.close()
    finally:
        server.stop()
    print(f"e2e probe: {time.monotonic() - began:.1f} s (streamlit up in {server.startup_seconds:.1f} s)")
