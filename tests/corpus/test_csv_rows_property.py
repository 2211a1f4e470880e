"""Generated CSV files (hypothesis): valid rows of any text, written by the csv module, with one broken
row at a random place. Whatever the text, the broken row is one error at its line and every valid
row comes out whole."""
from __future__ import annotations

import csv
import io

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.corpus.csv_rows import csv_rows
from core.i18n import Msg

TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), min_size=1, max_size=30)
PLAIN = st.text(st.characters(whitelist_categories=("Lo", "Ll", "Nd")), min_size=1, max_size=12)
BROKEN = {
    "unterminated quote": lambda w: f'"{w},weibo,1\n',
    "quote closed mid-value": lambda w: f'"{w}"x,weibo,1\n',
    "too many values": lambda w: f"{w},weibo,1,extra\n",
    "too few values": lambda w: f"{w},weibo\n",
}


def _write(rows: list[str]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)  # "\r\n" ends rows, and values holding "\r" or "\n" are quoted
    for content in rows:
        writer.writerow([content, "weibo", "1"])
    return out.getvalue()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(before=st.lists(TEXT, max_size=5), after=st.lists(TEXT, max_size=5), word=PLAIN,
       kind=st.sampled_from(sorted(BROKEN)))
def test_one_broken_row_among_any_valid_rows(before, after, word, kind):
    head = "content,platform,likes\n" + _write(before)
    line = head.count("\n") + 1 + head.count("\r") - head.count("\r\n")  # where the broken row starts
    data = head + BROKEN[kind](word) + _write(after)
    out = list(csv_rows(io.BytesIO(data.encode("utf-8")), "utf-8", "csv"))
    errors = [(n, r) for n, r in out if isinstance(r, Msg)]
    records = [r["content"] for _, r in out if isinstance(r, dict) and r]
    assert [n for n, _ in errors] == [line], (errors, data)
    assert records == before + after, (out, data)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_any_bytes_after_a_header_never_crash_and_lines_only_grow(payload):
    data = b"content,platform\n" + payload
    out = list(csv_rows(io.BytesIO(data), "utf-8", "csv"))
    lines = [n for n, _ in out]
    assert all(isinstance(n, int) and n >= 2 for n in lines)
    assert lines == sorted(lines)
    assert all(isinstance(r, (Msg, dict)) for _, r in out)
