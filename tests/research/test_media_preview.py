"""Image and video results carry their thumbnails to the page (core.research.results.MediaPreview):
the provider's own URLs, http(s) only, with the page each comes from."""
from __future__ import annotations

import pytest

from core.corpus.documents import Document
from core.infra import redact
from core.research.results import MediaPreview, ResultSource, web_url
from core.research.web_search import BochaProvider, TavilyProvider
from tests.fakes.search_servers import ARTICLES, fake_bocha, fake_tavily  # noqa: F401  (fixtures)

EV = "新能源汽车 价格战"


@pytest.fixture(autouse=True)
def isolated_redaction(monkeypatch):
    """Providers register their keys for redaction; keep that from leaking into other test modules."""
    monkeypatch.setattr(redact, "_known", ())


def test_only_absolute_http_urls_pass():
    assert web_url("https://img.example.cn/a.jpg?x=1") == "https://img.example.cn/a.jpg?x=1"
    assert web_url("HTTP://example.cn/") == "HTTP://example.cn/"
    for bad in ("javascript:alert(1)", "JavaScript:alert(1)", "data:image/png;base64,AAAA", "//example.cn/a.jpg",
                "/local/a.jpg", "file:///etc/passwd", "https://", "https://a.cn/x\ny", " ", None, 42):
        assert web_url(bad) == "", bad


def test_bocha_images_and_videos_keep_their_thumbnails_and_source_pages(fake_bocha):
    with BochaProvider(**fake_bocha.provider_kwargs(timeout=5)) as bocha:
        docs = bocha.run_tool("comprehensive_search", EV)
    previews = {d.kind: [] for d in docs}
    for d in docs:
        previews[d.kind].append(MediaPreview.of(d))
    image_url, _ = ARTICLES[0].image
    first = previews["image"][0]
    assert first == MediaPreview("image", image_url + "?thumb=1", ARTICLES[0].url, first.title) and first.title
    [clip] = previews["video"]  # the douyin clip: its cover, and its page
    assert clip.kind == "video" and clip.thumbnail == "https://img.example.cn/cover.jpg"
    assert clip.link == ARTICLES[0].url.replace(".html", "-video.html")
    assert all(p is None for p in previews["web"])  # pages and cards have no preview


def test_tavily_images_link_to_the_image_itself(fake_tavily):
    with TavilyProvider(**fake_tavily.provider_kwargs(timeout=5)) as tavily:
        docs = tavily.run_tool("search_images_for_news", EV)
    images = [d for d in docs if d.kind == "image"]
    assert images
    for d in images:
        assert MediaPreview.of(d) == MediaPreview("image", d.url, d.url, d.title)


def test_a_stored_source_gives_its_preview_and_bad_urls_give_none():
    video = Document(title="视频", content="", url="https://v.example.cn/page", kind="video",
                     extras={"thumbnail_url": "https://img.example.cn/t.jpg"})
    source = ResultSource.from_dict(3, video.as_dict())  # as the engine stores and reads it back
    assert source.media == MediaPreview("video", "https://img.example.cn/t.jpg", "https://v.example.cn/page", "视频")
    evil = Document(title="x", content="", url="javascript:alert(1)", kind="image",
                    extras={"thumbnail_url": "javascript:alert(2)", "host_page_url": "javascript:alert(3)"})
    assert MediaPreview.of(evil) is None
    half = Document(title="x", content="", url="https://img.example.cn/a.jpg", kind="image",
                    extras={"host_page_url": "javascript:alert(3)"})
    assert MediaPreview.of(half) == MediaPreview("image", "https://img.example.cn/a.jpg",
                                                 "https://img.example.cn/a.jpg", "x")
    assert MediaPreview.of(Document(title="p", content="c", url="https://a.cn", kind="post")) is None
    assert MediaPreview.of(Document(title="v", content="", url="https://a.cn", kind="video")) is None  # no thumbnail
