"""The report's charts: sentiment over time rests on enough sources per point and shows three
classes and n; the forum's time axis shows real clock times, also for a single instant."""
from __future__ import annotations

import re
from datetime import datetime, timedelta

from core.reporting import charts


def day_row(day: str, positive: int = 0, neutral: int = 0, negative: int = 0, unscored: int = 0) -> dict:
    scored = positive + neutral + negative
    return {"day": day, "n": scored + unscored, "scored": scored, "positive": positive, "neutral": neutral,
            "negative": negative}


def svg_texts(svg: str) -> list[str]:
    return re.findall(r"<text[^>]*>([^<]*)</text>", svg)


def test_a_day_with_one_post_does_not_make_a_0_or_100_percent_point():
    days = [day_row("2025-03-01", negative=1),            # one post: alone it would be 100 % negative
            day_row("2025-03-02", positive=3, neutral=1, negative=2),
            day_row("2025-03-03", positive=1),            # one post: 100 % positive
            day_row("2025-03-04", positive=2, neutral=2, negative=2),
            day_row("2025-03-05", negative=1)]            # a one-post tail
    binned = charts.sentiment_bins(days, min_n=5)
    assert binned["granularity"] == "day"
    points = binned["points"]
    assert points and all(p["scored"] >= 5 for p in points)
    for p in points:
        shares = [p[k] / p["scored"] for k in ("positive", "neutral", "negative")]
        assert 0.0 < max(shares) < 1.0, p  # no point rests on a single post
    # nothing is lost: the small days were merged into their neighbours
    assert sum(p["scored"] for p in points) == 15
    assert [(p["start"], p["end"]) for p in points] == [("2025-03-01", "2025-03-02"), ("2025-03-03", "2025-03-05")]
    assert binned["merged"] == 3
    chart = charts.sentiment_over_time(days, zh=True, min_n=5)
    texts = svg_texts(chart.svg)
    assert "n=7" in texts and "n=8" in texts  # n above each of the two points
    assert "03-01–03-02" in texts and "03-03–03-05" in texts           # real dates on the axis
    assert "3 个日期的可判定来源少于 5 条，已与相邻时段合并" in chart.note
    assert {"正面", "中性", "负面"} <= set(texts)                        # three classes
    assert chart.data["points"] == points


def test_too_few_scored_sources_draw_volume_and_say_so():
    days = [day_row("2025-03-01", negative=1), day_row("2025-03-02", positive=1, unscored=3)]
    chart = charts.sentiment_over_time(days, zh=False, min_n=5)
    assert chart.data["points"] == []
    assert chart.svg and "Only 2 sources have a sentiment" in chart.note
    assert "%" not in "".join(svg_texts(chart.svg))  # counts only, no share
    assert {"03-01", "03-02"} <= set(svg_texts(chart.svg))


def test_a_long_or_sparse_span_is_drawn_by_week():
    start = datetime(2025, 1, 6)
    days = [day_row((start + timedelta(days=i)).date().isoformat(), positive=1 + i % 2, negative=1)
            for i in range(0, 90, 3)]
    binned = charts.sentiment_bins(days, min_n=5)
    assert binned["granularity"] == "week"
    assert all(p["scored"] >= 5 for p in binned["points"])
    for p in binned["points"]:  # a point spans at most the weeks merged into it, and starts on a data day
        assert p["start"] in {d["day"] for d in days} and p["end"] in {d["day"] for d in days}
    chart = charts.sentiment_over_time(days, zh=False, min_n=5)
    assert "by week" in "".join(svg_texts(chart.svg))


def test_no_dates_no_chart():
    chart = charts.sentiment_over_time([], zh=True)
    assert chart.svg == "" and "没有日期" in chart.note


def test_the_forum_axis_of_a_single_instant_is_padded_with_real_clock_times():
    t = datetime(2025, 3, 1, 13, 22, 5)
    over = charts.time_buckets([t, t, t])
    labels = [b["label"] for b in over["buckets"]]
    assert len(labels) >= 5 and len(set(labels)) == len(labels)  # a padded axis, not "13:22 to 13:22"
    assert all(re.fullmatch(r"\d{2}:\d{2}", x) for x in labels)
    assert datetime.fromisoformat(over["start"]) < t < datetime.fromisoformat(over["end"])
    assert sum(b["n"] for b in over["buckets"]) == 3
    assert next(b for b in over["buckets"] if b["n"])["label"] == "13:22"
    chart = charts.forum_activity([("QUERY", 2), ("HOST", 1)], [t, t, t], zh=True)
    texts = svg_texts(chart.svg)
    assert "13:22" in texts and any(x.startswith("随时间（UTC") and "2025-03-01 13:" in x for x in texts)
    assert chart.data["step_minutes"] == 1 and chart.data["timezone"] == "UTC"


def test_the_forum_axis_over_days_labels_dates_and_times():
    t0 = datetime(2025, 3, 1, 22, 0)
    stamps = [t0 + timedelta(hours=h) for h in range(0, 30, 3)]
    over = charts.time_buckets(stamps)
    assert len(over["buckets"]) <= 12 and over["step_minutes"] >= 180
    assert sum(b["n"] for b in over["buckets"]) == len(stamps)
    assert all(re.fullmatch(r"\d{2}-\d{2} \d{2}:\d{2}", b["label"]) for b in over["buckets"])
    assert over["buckets"][0]["label"] == "03-01 21:00" and over["buckets"][-1]["label"] == "03-03 00:00"
    steps = {datetime.fromisoformat(b["start"]).minute for b in over["buckets"]}
    assert steps == {0}  # aligned to the clock


def test_chart_labels_are_escaped():
    chart = charts.forum_activity([("<script>x</script>", 1)], [datetime(2025, 1, 1)], zh=False)
    assert "<script>" not in chart.svg and "&lt;script&gt;" in chart.svg
