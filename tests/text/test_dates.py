"""core/text/dates.py: the one date parser (importers, search, web search, demo, documents)."""
from __future__ import annotations

from datetime import date, datetime

import pytest

from core.corpus.documents import Document
from core.text.dates import parse_date, parse_time


@pytest.mark.parametrize("raw, expected", [
    ("Tue, 18 Feb 2025 04:48:30 GMT", datetime(2025, 2, 18, 4, 48, 30)),   # RFC 2822, now for imports too
    ("Tue Mar 05 12:00:00 +0800 2024", datetime(2024, 3, 5, 4, 0)),        # Weibo's API
    ("2024.3.1", datetime(2024, 3, 1)),
    ("20240301", datetime(2024, 3, 1)),
    ("2024-03-01T08:00:00z", datetime(2024, 3, 1, 8, 0)),
    (date(2024, 3, 1), datetime(2024, 3, 1)),
    ("null", None), (None, None),
])
def test_parse_time_reads_every_shape_callers_meet(raw, expected):
    assert parse_time(raw) == expected == parse_time(raw, lenient=True)


@pytest.mark.parametrize("raw", ["soon", "1985-01-01", -5, True, float("nan"), "2024-02-30"])
def test_unreadable_or_implausible_times_raise_or_with_lenient_give_none(raw):
    with pytest.raises(ValueError):
        parse_time(raw)
    assert parse_time(raw, lenient=True) is None


def test_parse_date_is_strict_and_names_the_parameter():
    assert parse_date("2024-3-1") == date(2024, 3, 1)
    assert parse_date(datetime(2024, 3, 1, 23, 59)) == date(2024, 3, 1)
    with pytest.raises(ValueError, match="start_date must be a date in the form YYYY-MM-DD"):
        parse_date("2024/03/01", "start_date")
    with pytest.raises(ValueError, match="end_date '2024-02-30' is not a real date"):
        parse_date("2024-02-30", "end_date")


def test_a_document_reads_its_published_time_back_through_the_same_parser():
    doc = Document(title="t", content="c", url="https://example.org/a", published=datetime(2024, 3, 1, 8, 0))
    assert Document.from_dict(doc.as_dict()).published == datetime(2024, 3, 1, 8, 0)
    assert Document.from_dict({**doc.as_dict(), "published": "2024-03-01T16:00:00+08:00"}).published == \
        datetime(2024, 3, 1, 8, 0)
    assert Document.from_dict({**doc.as_dict(), "published": "garbage"}).published is None
