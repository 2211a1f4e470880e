from datetime import datetime

from core.infra.filenames import download_name


def test_topic_date_type_and_extension():
    assert download_name("武汉大学舆情", datetime(2026, 12, 4, 9), "report", "html") == "武汉大学舆情-2026-12-04-report.html"


def test_characters_an_os_refuses_are_replaced():
    name = download_name('a/b\\c:d*e?"f<g>h|i\x01 j. ', None, "forum", ".LOG")
    assert name == "a-b-c-d-e-f-g-h-i-j-forum.log"
    assert not set('<>:"/\\|?*') & set(name)


def test_reserved_and_empty_names_fall_back():
    assert download_name("CON", None, "report", "md") == "shoal-report.md"
    assert download_name("   ", None, "", "json") == "shoal-file.json"


def test_long_topics_stay_under_the_file_system_limit():
    name = download_name("新能源汽车价格战" * 60, datetime(2026, 1, 1), "report", "html")
    assert len(name.encode("utf-8")) <= 255 and name.endswith("-2026-01-01-report.html")
